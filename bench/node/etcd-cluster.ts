/**
 * A 3-member etcd cluster from Debian's etcd-server package on 127.0.0.1, one data directory each under
 * the run's temporary directory, with the heartbeat and election timeout the pgraft cluster uses.
 * etcd fsyncs its WAL on every Raft batch by default; nothing here turns that off.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Member } from "./cluster.ts";
import { MemberProcesses, pollUntil } from "./cluster.ts";
import { tryHttp, tryParseJson } from "./http.ts";
import { startProcess } from "./processes.ts";

export interface EtcdClusterOptions {
  readonly binary: string;
  readonly directory: string;
  /** 6 ports: 3 peer ports then 3 client ports. */
  readonly ports: readonly number[];
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  /** etcd 3.4's --pre-vote (off by default in 3.4; pgraft's pgraft.pre_vote is on by default). */
  readonly preVote: boolean;
}

interface StatusAnswer {
  readonly header?: { readonly member_id?: string; readonly raft_term?: string };
  readonly leader?: string;
  readonly raftIndex?: string;
}

/** The installed etcd's version line, or an error that says how to install it. */
export function checkEtcdInstalled(binary: string): string {
  const result = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (result.error !== undefined || result.status !== 0) {
    const why = result.error !== undefined ? result.error.message : `exit code ${result.status}: ${result.stderr.trim()}`;
    throw new Error(
      `Cannot run etcd ("${binary} --version" failed: ${why}). The benchmark compares pgraft with a real etcd: ` +
        `install it with apt-get install etcd-server (Debian's package, etcd 3.4), pass --etcd-bin PATH, or run pgraft alone with --systems pgraft`,
    );
  }
  return result.stdout.split("\n")[0]!.trim();
}

export class EtcdCluster extends MemberProcesses {
  readonly system = "etcd" as const;
  readonly members: Member[];
  readonly logDirectory: string;
  readonly #options: EtcdClusterOptions;
  readonly #arguments: string[][] = [];

  constructor(options: EtcdClusterOptions) {
    super();
    this.#options = options;
    this.logDirectory = options.directory;
    fs.mkdirSync(options.directory, { recursive: true });
    const names = ["e1", "e2", "e3"];
    const peerPorts = options.ports.slice(0, 3);
    const clientPorts = options.ports.slice(3, 6);
    this.members = names.map((name, i) => ({ name, clientUrl: `http://127.0.0.1:${clientPorts[i]}`, process: undefined }));
    const initialCluster = names.map((name, i) => `${name}=http://127.0.0.1:${peerPorts[i]}`).join(",");
    const token = `bench-${process.pid}-${Date.now()}`;
    names.forEach((name, i) => {
      this.#arguments.push([
        "--name", name,
        "--data-dir", path.join(options.directory, name),
        "--listen-client-urls", `http://127.0.0.1:${clientPorts[i]}`,
        "--advertise-client-urls", `http://127.0.0.1:${clientPorts[i]}`,
        "--listen-peer-urls", `http://127.0.0.1:${peerPorts[i]}`,
        "--initial-advertise-peer-urls", `http://127.0.0.1:${peerPorts[i]}`,
        "--initial-cluster", initialCluster,
        "--initial-cluster-token", token,
        // Ignored once the data directory holds a member: a restart rejoins as the same member.
        "--initial-cluster-state", "new",
        "--heartbeat-interval", String(options.heartbeatMs),
        "--election-timeout", String(options.electionTimeoutMs),
        `--pre-vote=${options.preVote}`,
        "--logger", "zap",
        "--log-outputs", "stderr",
      ]);
    });
  }

  protected spawn(index: number): void {
    const member = this.members[index]!;
    member.process = startProcess(`etcd ${member.name}`, this.#options.binary, this.#arguments[index]!, {
      cwd: this.#options.directory,
      logFile: path.join(this.#options.directory, `${member.name}.log`),
    });
  }


  async #status(member: Member): Promise<StatusAnswer | undefined> {
    if (member.process === undefined || member.process.exitedAlready) return undefined;
    const answer = await tryHttp({ method: "POST", url: `${member.clientUrl}/v3/maintenance/status`, body: "{}", timeoutMs: 1000 });
    if (answer === undefined || answer.status !== 200) return undefined;
    return tryParseJson(answer.body) as StatusAnswer | undefined;
  }

  async leader(): Promise<Member | undefined> {
    const statuses = await Promise.all(this.members.map((member) => this.#status(member)));
    const index = statuses.findIndex((status) => status?.leader !== undefined && status.leader !== "0" && status.leader === status.header?.member_id);
    return index < 0 ? undefined : this.members[index];
  }

  async waitHealthy(timeoutMs: number): Promise<Member> {
    return pollUntil(`etcd: 3 running members agreeing on a leader, with the same raft index (logs in ${this.logDirectory})`, timeoutMs, 50, async () => {
      this.checkAlive();
      const statuses = await Promise.all(this.members.map((member) => this.#status(member)));
      if (statuses.some((status) => status === undefined)) return undefined;
      const leaderId = statuses[0]!.leader;
      if (leaderId === undefined || leaderId === "0" || statuses.some((status) => status!.leader !== leaderId)) return undefined;
      const leaderIndex = statuses.findIndex((status) => status!.header?.member_id === leaderId);
      if (leaderIndex < 0) return undefined;
      // A follower that has caught up with the leader has heard from it (no load runs meanwhile).
      const indexes = statuses.map((status) => Number(status!.raftIndex ?? 0));
      if (Math.max(...indexes) - Math.min(...indexes) > 2) return undefined;
      return this.members[leaderIndex];
    });
  }
}
