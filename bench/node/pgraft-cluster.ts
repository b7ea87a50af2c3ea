/**
 * Three `pgraft start` processes on 127.0.0.1, each with its own settings file and data directory under
 * the run's temporary directory. Every node fsyncs each Raft batch (FileDisk); heartbeat and election
 * timeout are set explicitly so they match the etcd cluster's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Member } from "./cluster.ts";
import { MemberProcesses, pollUntil } from "./cluster.ts";
import { tryHttp, tryParseJson } from "./http.ts";
import { startProcess } from "./processes.ts";

export interface PgraftClusterOptions {
  readonly repositoryRoot: string;
  readonly directory: string;
  /** 6 ports: 3 peer ports then 3 client ports. */
  readonly ports: readonly number[];
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  /** Extra `pgraft.NAME=VALUE` settings for every node (experiments; none by default). */
  readonly extraSettings: readonly string[];
}

interface HealthReport {
  readonly state?: string;
  readonly member_id?: number;
  readonly role?: string;
  readonly leader_id?: number;
}

interface ClusterReport {
  readonly leader_id?: number;
  readonly members?: readonly { readonly id: number; readonly state: string; readonly reachable: boolean | null }[];
}

export class PgraftCluster extends MemberProcesses {
  readonly system = "pgraft" as const;
  readonly members: Member[];
  readonly logDirectory: string;
  readonly #options: PgraftClusterOptions;
  readonly #configFiles: string[] = [];

  constructor(options: PgraftClusterOptions) {
    super();
    this.#options = options;
    this.logDirectory = options.directory;
    const names = ["n1", "n2", "n3"];
    const peerPorts = options.ports.slice(0, 3);
    const clientPorts = options.ports.slice(3, 6);
    this.members = names.map((name, i) => ({ name, clientUrl: `http://127.0.0.1:${clientPorts[i]}`, process: undefined }));
    const initialCluster = names.map((name, i) => `${name}=127.0.0.1:${peerPorts[i]}`).join(",");
    const clientUrls = names.map((name, i) => `${name}=127.0.0.1:${clientPorts[i]}`).join(",");
    fs.mkdirSync(options.directory, { recursive: true });
    const secretFile = path.join(options.directory, "secret");
    fs.writeFileSync(secretFile, "bench-node-secret-0123456789abcdef\n", { mode: 0o600 });
    names.forEach((name, i) => {
      const file = path.join(options.directory, `${name}.conf`);
      const lines = [
        `pgraft.cluster_id = 'bench'`,
        `pgraft.name = '${name}'`,
        `pgraft.initial_cluster = '${initialCluster}'`,
        `pgraft.client_urls = '${clientUrls}'`,
        `pgraft.client_address = '127.0.0.1:${clientPorts[i]}'`,
        `pgraft.data_dir = '${path.join(options.directory, name)}'`,
        `pgraft.auth_secret_file = '${secretFile}'`,
        `pgraft.heartbeat_interval = ${options.heartbeatMs}ms`,
        `pgraft.election_timeout = ${options.electionTimeoutMs}ms`,
      ];
      fs.writeFileSync(file, lines.join("\n") + "\n");
      this.#configFiles.push(file);
    });
  }

  protected spawn(index: number): void {
    const member = this.members[index]!;
    const args = [path.join(this.#options.repositoryRoot, "bin", "pgraft.js"), "start", "--config", this.#configFiles[index]!, ...this.#options.extraSettings];
    member.process = startProcess(`pgraft ${member.name}`, process.execPath, args, {
      cwd: this.#options.repositoryRoot,
      logFile: path.join(this.#options.directory, `${member.name}.log`),
      env: { ...process.env, PGRAFT_LOG_LEVEL: process.env.PGRAFT_LOG_LEVEL ?? "info" },
    });
  }


  async #health(member: Member): Promise<HealthReport | undefined> {
    if (member.process === undefined || member.process.exitedAlready) return undefined;
    const answer = await tryHttp({ method: "GET", url: `${member.clientUrl}/health`, timeoutMs: 1000 });
    if (answer === undefined || answer.status !== 200) return undefined;
    return tryParseJson(answer.body) as HealthReport | undefined;
  }

  async leader(): Promise<Member | undefined> {
    const answers = await Promise.all(
      this.members.map(async (member) => {
        if (member.process === undefined || member.process.exitedAlready) return undefined;
        const answer = await tryHttp({ method: "GET", url: `${member.clientUrl}/leader`, timeoutMs: 1000 });
        return answer?.status === 200 ? member : undefined;
      }),
    );
    return answers.find((member) => member !== undefined);
  }

  async waitHealthy(timeoutMs: number): Promise<Member> {
    return pollUntil(`pgraft: 3 running members agreeing on a leader that hears from both followers (logs in ${this.logDirectory})`, timeoutMs, 50, async () => {
      this.checkAlive();
      const reports = await Promise.all(this.members.map((member) => this.#health(member)));
      if (reports.some((report) => report?.state !== "running")) return undefined;
      const leaderId = reports[0]!.leader_id;
      if (leaderId === undefined || leaderId === 0 || reports.some((report) => report!.leader_id !== leaderId)) return undefined;
      const leaderIndex = reports.findIndex((report) => report!.member_id === leaderId);
      if (leaderIndex < 0 || reports[leaderIndex]!.role !== "leader") return undefined;
      const leader = this.members[leaderIndex]!;
      const cluster = await tryHttp({ method: "GET", url: `${leader.clientUrl}/cluster`, timeoutMs: 1000 });
      if (cluster?.status !== 200) return undefined;
      const report = tryParseJson(cluster.body) as ClusterReport | undefined;
      const members = report?.members ?? [];
      if (members.length !== 3 || members.some((m) => m.state !== "running" || m.reachable === false)) return undefined;
      const isLeader = await tryHttp({ method: "GET", url: `${leader.clientUrl}/leader`, timeoutMs: 1000 });
      return isLeader?.status === 200 ? leader : undefined;
    });
  }
}
