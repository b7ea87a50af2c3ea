/** What the benchmark needs from a 3-member cluster, whichever system runs it. */
import * as path from "node:path";
import { cpuSecondsOf, killProcess, stopProcess, type ServerProcess } from "./processes.ts";

export type SystemName = "pgraft" | "etcd";

export interface Member {
  readonly name: string;
  /** http://127.0.0.1:PORT, where /v3/kv/put answers. */
  readonly clientUrl: string;
  process: ServerProcess | undefined;
}

export interface BenchCluster {
  readonly system: SystemName;
  readonly members: readonly Member[];
  /** Starts every member and waits until the cluster is healthy. */
  start(): Promise<void>;
  /** The member that leads now (asked of every running member), or undefined. */
  leader(): Promise<Member | undefined>;
  /**
   * Waits until every member runs, all agree on one leader and the leader hears from every follower;
   * returns the leader. Throws after `timeoutMs`.
   */
  waitHealthy(timeoutMs: number): Promise<Member>;
  /** SIGKILLs the member's process (a crash) and waits for it to exit. */
  kill(member: Member): Promise<void>;
  /** SIGSTOPs the member's process: silent, its connections open. */
  pause(member: Member): void;
  /** SIGCONTs a paused member. */
  resume(member: Member): void;
  /** Starts a killed member again on its data directory. */
  restart(member: Member): Promise<void>;
  /** Stops every member (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
  /** CPU seconds used so far by the member processes together. */
  cpuSeconds(): number;
  /** Where the members' logs are. */
  readonly logDirectory: string;
}

export async function pollUntil<T>(what: string, timeoutMs: number, intervalMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let attempts = 0;
  while (performance.now() < deadline) {
    attempts++;
    const result = await probe();
    if (result !== undefined) return result;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`Timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${what}`);
}

/**
 * What both systems' clusters share: member processes that are killed, restarted and stopped the same
 * way, and CPU accounting that stays monotonic across kills. Subclasses say how a member starts and how
 * health is judged.
 */
export abstract class MemberProcesses implements BenchCluster {
  abstract readonly system: SystemName;
  abstract readonly members: readonly Member[];
  abstract readonly logDirectory: string;
  /** CPU seconds of member processes that have exited (so totals stay monotonic across kills). */
  #cpuOfExited = 0;

  /** Starts member `index`'s process on its data directory. */
  protected abstract spawn(index: number): void;
  abstract leader(): Promise<Member | undefined>;
  abstract waitHealthy(timeoutMs: number): Promise<Member>;

  async start(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) this.spawn(i);
    await this.waitHealthy(60_000);
  }

  async kill(member: Member): Promise<void> {
    if (member.process === undefined) return;
    const before = cpuSecondsOf(member.process.pid);
    await killProcess(member.process);
    this.#cpuOfExited += before ?? 0;
    member.process = undefined;
  }

  /** SIGSTOP: the member goes silent without closing a connection (a hung process, as a partition looks). */
  pause(member: Member): void {
    if (member.process === undefined) return;
    process.kill(member.process.pid, "SIGSTOP");
  }

  /** SIGCONT after pause(). */
  resume(member: Member): void {
    if (member.process === undefined) return;
    process.kill(member.process.pid, "SIGCONT");
  }

  async restart(member: Member): Promise<void> {
    this.spawn(this.members.indexOf(member));
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.members.map(async (member) => {
        if (member.process) await stopProcess(member.process);
        member.process = undefined;
      }),
    );
  }

  cpuSeconds(): number {
    let total = this.#cpuOfExited;
    for (const member of this.members) if (member.process) total += cpuSecondsOf(member.process.pid) ?? 0;
    return total;
  }

  /** Fails the run at once when a member died on its own, pointing at its log. */
  protected checkAlive(): void {
    for (const member of this.members) {
      if (member.process?.exitedAlready) {
        throw new Error(`${this.system} ${member.name} exited unexpectedly; see ${path.join(this.logDirectory, `${member.name}.log`)}`);
      }
    }
  }
}
