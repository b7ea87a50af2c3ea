/** What the benchmark needs from a 3-member cluster, whichever system runs it. */
import type { ServerProcess } from "./processes.ts";

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
