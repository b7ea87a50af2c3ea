/**
 * The DCS under Patroni: three pgraft nodes (`pgraft start` processes) or three etcd 3.4 members
 * (Debian's etcd-server), on 127.0.0.1 with ports from the OS. Both answer etcd's v3 API on their
 * client URLs, which is all Patroni's etcd3 module uses.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePorts } from "./ports.ts";
import { isRunning, killChild, sleep, spawnLogged, tail, type Managed } from "./processes.ts";

export type DcsKind = "pgraft" | "etcd";
export const DCS_KINDS: readonly DcsKind[] = ["pgraft", "etcd"];

export interface DcsNode extends Managed {
  readonly clientUrl: string;
  readonly peerUrl: string;
}

export interface Dcs {
  readonly kind: DcsKind;
  readonly nodes: readonly DcsNode[];
  /** Starts (or restarts, on its data directory) one node. */
  start(node: DcsNode): void;
  /** kill -9 of one node. */
  kill(node: DcsNode): Promise<void>;
  /** The node that reports itself leader (POST /v3/maintenance/status), or undefined. */
  leader(): Promise<DcsNode | undefined>;
  logs(): string;
  close(): Promise<void>;
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const STATUS_TIMEOUT_MS = 1_000;

interface MaintenanceStatus {
  header?: { member_id?: string };
  leader?: string;
}

async function status(url: string): Promise<MaintenanceStatus | undefined> {
  try {
    const response = await fetch(`${url}/v3/maintenance/status`, { method: "POST", body: "{}", signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
    if (response.status !== 200) {
      await response.arrayBuffer();
      return undefined;
    }
    return (await response.json()) as MaintenanceStatus;
  } catch {
    return undefined;
  }
}

function which(program: string): string | undefined {
  try {
    return execFileSync("which", [program], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export async function startDcs(kind: DcsKind, directory: string): Promise<Dcs> {
  const ports = await freePorts(6);
  const nodes: DcsNode[] = [0, 1, 2].map((i) => {
    const name = kind === "pgraft" ? `n${i + 1}` : `e${i + 1}`;
    return { name, peerUrl: `http://127.0.0.1:${ports[i]}`, clientUrl: `http://127.0.0.1:${ports[3 + i]}`, logFile: join(directory, `${name}.log`), child: undefined };
  });
  const args = kind === "pgraft" ? pgraftArgs(nodes, directory) : etcdArgs(nodes, directory);
  const program = kind === "pgraft" ? process.execPath : which("etcd");
  if (program === undefined) throw new Error("Cannot start the etcd DCS: etcd is not installed; run apt-get install etcd-server");
  const dcs: Dcs = {
    kind,
    nodes,
    start(node) {
      if (isRunning(node.child)) return;
      node.child = spawnLogged(program, args.get(node)!, node.logFile, { cwd: REPO, env: { ...process.env, PGRAFT_LOG_LEVEL: "info" } });
    },
    kill: (node) => killChild(node.child),
    async leader() {
      for (const node of nodes) {
        if (!isRunning(node.child)) continue;
        const answer = await status(node.clientUrl);
        if (answer?.leader !== undefined && answer.leader !== "0" && answer.leader === answer.header?.member_id) return node;
      }
      return undefined;
    },
    logs: () => nodes.map((node) => `--- ${kind} ${node.name}\n${tail(node.logFile)}`).join("\n"),
    close: async () => {
      await Promise.all(nodes.map((node) => killChild(node.child)));
    },
  };
  for (const node of nodes) dcs.start(node);
  return dcs;
}

/** Waits (bounded) until some node reports itself leader. */
export async function waitForDcsLeader(dcs: Dcs, timeoutMs: number): Promise<DcsNode> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const leader = await dcs.leader();
    if (leader !== undefined) return leader;
    await sleep(100);
  }
  throw new Error(`Cannot use the ${dcs.kind} DCS: no leader within ${timeoutMs} ms\n${dcs.logs()}`);
}

const hostPort = (url: string): string => url.replace(/^http:\/\//, "");

function pgraftArgs(nodes: readonly DcsNode[], directory: string): Map<DcsNode, string[]> {
  const secretFile = join(directory, "pgraft-secret");
  writeFileSync(secretFile, `${Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join("")}\n`, { mode: 0o600 });
  const cluster = nodes.map((n) => `${n.name}=${hostPort(n.peerUrl)}`).join(",");
  const clients = nodes.map((n) => `${n.name}=${hostPort(n.clientUrl)}`).join(",");
  return new Map(
    nodes.map((node) => [
      node,
      [
        join(REPO, "bin", "pgraft.js"),
        "start",
        "pgraft.cluster_id=patroni-dcs",
        `pgraft.name=${node.name}`,
        `pgraft.initial_cluster=${cluster}`,
        `pgraft.client_urls=${clients}`,
        `pgraft.client_address=${hostPort(node.clientUrl)}`,
        `pgraft.data_dir=${join(directory, node.name)}`,
        `pgraft.auth_secret_file=${secretFile}`,
        "pgraft.election_timeout=1000ms",
        "pgraft.heartbeat_interval=100ms",
      ],
    ]),
  );
}

function etcdArgs(nodes: readonly DcsNode[], directory: string): Map<DcsNode, string[]> {
  const cluster = nodes.map((n) => `${n.name}=${n.peerUrl}`).join(",");
  const token = `patroni-dcs-${hostPort(nodes[0]!.clientUrl).split(":")[1]}`;
  return new Map(
    nodes.map((node) => {
      mkdirSync(join(directory, node.name), { recursive: true, mode: 0o700 });
      return [
        node,
        [
          `--name=${node.name}`,
          `--data-dir=${join(directory, node.name)}`,
          `--listen-peer-urls=${node.peerUrl}`,
          `--initial-advertise-peer-urls=${node.peerUrl}`,
          `--listen-client-urls=${node.clientUrl}`,
          `--advertise-client-urls=${node.clientUrl}`,
          `--initial-cluster=${cluster}`,
          "--initial-cluster-state=new",
          `--initial-cluster-token=${token}`,
          "--heartbeat-interval=100",
          "--election-timeout=1000",
          "--logger=zap",
          "--log-level=warn",
        ],
      ];
    }),
  );
}
