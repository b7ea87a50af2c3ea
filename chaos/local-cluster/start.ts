/**
 * Creates and starts a local cluster: claims its name, chooses free ports, writes a shared secret,
 * creates one PostgreSQL data directory per node (a copy of an initdb template built on the first
 * run; the node's pgraft.* settings and port go into its postgresql.conf, as an operator would write
 * them), starts one `pgraft start --pgdata DIR` per node, and waits until the cluster has a leader that
 * every node names. Every process is recorded in the state file the moment it exists, so whatever
 * happens next (Ctrl-C, an error, this process killed) `--stop` or the caller's clean-up finds it.
 *
 * Nodes are spawned detached: each leads a process group and session of its own, so a Ctrl-C in the
 * terminal reaches only `npm run cluster`, which then stops them in order; and with --detach they
 * outlive it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findRunningPostmaster } from "../../src/postgres/data-directory.ts";
import { resolveOsUser } from "../../src/postgres/os-user.ts";
import { initdb, SMALL_SERVER_SETTINGS } from "../../src/postgres/supervisor.ts";
import { waitUntilReady, type Readiness } from "./health.ts";
import { choosePortsRecorded, type NodePorts } from "./ports.ts";
import { clusterDirectory, clustersDirectory, identify, writeClusterState, type ClusterState, type NodeState } from "./state.ts";

/** How long a start may take, initdb of a first run included; a healthy start needs a fraction. */
export const START_TIMEOUT_MS = 180_000;
const HOST = "127.0.0.1";
const LOG_TAIL_CHARS = 3000;

export interface StartOptions {
  readonly name: string;
  readonly nodeCount: number;
  readonly mode: "foreground" | "detached";
  readonly projectRoot: string;
  readonly progress: (line: string) => void;
  /** Aborted by Ctrl-C or SIGTERM during the start. */
  readonly signal: AbortSignal;
}

/** The first state file of a cluster: no ports, no processes yet. */
export function initialState(options: Pick<StartOptions, "name" | "mode">): ClusterState {
  const directory = clusterDirectory(options.name);
  return {
    version: 1,
    name: options.name,
    directory,
    stateFile: join(directory, "state.json"),
    mode: options.mode,
    createdAt: new Date().toISOString(),
    owner: identify(process.pid),
    status: "starting",
    secretFile: join(directory, "secret"),
    nodes: [],
  };
}

/**
 * Starts the cluster whose name `state` has claimed; resolves when it is ready. On failure the caller
 * stops it (stopCluster) from `state`, which records everything started so far.
 */
export async function startCluster(state: ClusterState, options: StartOptions, children: Map<string, ChildProcess>): Promise<Readiness> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const check = (): void => {
    if (options.signal.aborted) throw new Error("Cannot start the cluster: interrupted");
    for (const node of state.nodes) {
      const child = children.get(node.name);
      if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
        throw new Error(`Cannot start the cluster: ${node.name}'s node exited (${child.exitCode ?? child.signalCode}) during the start; its log ${node.logFile} ends with:\n${logTail(node.logFile)}`);
      }
    }
  };
  const user = resolveOsUser();
  options.progress(`choosing ${options.nodeCount * 4} free ports on ${HOST}`);
  await choosePortsRecorded(options.name, options.nodeCount, (ports) => {
    state.nodes = ports.map((nodePorts, index) => nodeState(state, index + 1, nodePorts, user.name));
    writeClusterState(state);
  });
  writeFileSync(state.secretFile, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
  check();
  const templates = templatesDirectory();
  options.progress(
    `creating ${state.nodes.length} PostgreSQL data directories as OS user ${user.name}` +
      (hasTemplate(templates) ? ` (copies of the initdb template in ${templates})` : ` (first building an initdb template in ${templates}, once per machine: this takes seconds)`),
  );
  const started = Date.now();
  await Promise.all(state.nodes.map((node) => createDataDirectory(state, node)));
  options.progress(`data directories ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  check();
  options.progress(`starting ${state.nodes.length} nodes: pgraft start --pgdata DIR (each starts its PostgreSQL)`);
  for (const node of state.nodes) {
    children.set(node.name, spawnNode(node, options));
    writeClusterState(state);
  }
  options.progress("waiting for every node's worker and an elected leader");
  const readiness = await waitUntilReady(state, deadline, check, (reason) => options.progress(`  ${reason}`));
  for (const node of state.nodes) node.postmasterPid = findRunningPostmaster(node.pgdata)?.pid;
  state.status = "running";
  writeClusterState(state);
  return readiness;
}

function nodeState(state: ClusterState, id: number, ports: NodePorts, osUserName: string): NodeState {
  const name = `n${id}`;
  const pgdata = join(state.directory, name, "pgdata");
  // The socket lives in the data directory (the supervisor's default): a path no other cluster shares.
  const psql = `host=${conninfoValue(pgdata)} port=${ports.pgPort} user=${conninfoValue(osUserName)} dbname=postgres`;
  return {
    name,
    id,
    pgdata,
    logFile: join(state.directory, `${name}.log`),
    ...ports,
    pgUser: osUserName,
    psql,
    psqlCommand: `psql ${shellQuote(psql)}`,
    clientUrl: `http://${HOST}:${ports.clientPort}`,
    metricsUrl: `http://${HOST}:${ports.metricsPort}/metrics`,
    process: undefined,
    postmasterPid: undefined,
  };
}

/** The node's pgraft.* settings, written into its postgresql.conf. */
export function nodeSettings(state: ClusterState, node: NodeState): Record<string, string> {
  return {
    port: String(node.pgPort),
    "pgraft.cluster_id": `local-${state.name}`,
    "pgraft.name": node.name,
    "pgraft.initial_cluster": state.nodes.map((member) => `${member.name}=${HOST}:${member.peerPort}`).join(","),
    "pgraft.listen_address": `${HOST}:${node.peerPort}`,
    "pgraft.client_address": `${HOST}:${node.clientPort}`,
    "pgraft.client_urls": state.nodes.map((member) => `${member.name}=${HOST}:${member.clientPort}`).join(","),
    "pgraft.auth_secret_file": state.secretFile,
    "pgraft.metrics_enabled": "on",
    "pgraft.metrics_port": String(node.metricsPort),
  };
}

async function createDataDirectory(state: ClusterState, node: NodeState): Promise<void> {
  const nodeDirectory = join(state.directory, node.name);
  // PostgreSQL's OS user must search its way to the data directory.
  mkdirSync(nodeDirectory, { mode: 0o711 });
  chmodSync(nodeDirectory, 0o711);
  await initdb(node.pgdata, {
    // A throwaway cluster in the temp directory: skip initdb's fsync, copy one template per machine.
    noSync: true,
    templateCacheDirectory: templatesDirectory(),
    settings: { ...SMALL_SERVER_SETTINGS, ...nodeSettings(state, node) },
  });
}

function templatesDirectory(): string {
  return join(clustersDirectory(), "templates");
}

/** Whether initdb.ts has built a template there (named pg<major>-<key>; one being built has a suffix). */
function hasTemplate(directory: string): boolean {
  try {
    return readdirSync(directory).some((entry) => /^pg\d+-[0-9a-f]{16}$/.test(entry));
  } catch {
    return false;
  }
}

function spawnNode(node: NodeState, options: StartOptions): ChildProcess {
  const log = openSync(node.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [join(options.projectRoot, "bin", "pgraft.js"), "start", "--pgdata", node.pgdata], {
      cwd: options.projectRoot,
      stdio: ["ignore", log, log],
      detached: true,
      env: { ...process.env, PGRAFT_LOG_LEVEL: process.env.PGRAFT_LOG_LEVEL ?? "info" },
    });
  } finally {
    closeSync(log);
  }
  if (child.pid === undefined) throw new Error(`Cannot start ${node.name}: spawning ${process.execPath} failed`);
  node.process = identify(child.pid);
  child.on("error", (error) => options.progress(`${node.name}: ${error.message}`));
  return child;
}

export function logTail(file: string, chars = LOG_TAIL_CHARS): string {
  try {
    const text = readFileSync(file, "utf8");
    return text.slice(-chars);
  } catch {
    return "(no log)";
  }
}

/** Quotes `text` for a POSIX shell: in double quotes as the docs show it, in single quotes when it must. */
export function shellQuote(text: string): string {
  if (/^[A-Za-z0-9_./:=@,+ -]+$/.test(text)) return `"${text}"`;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A libpq connection-string value, quoted when it holds spaces, quotes or backslashes. */
function conninfoValue(value: string): string {
  if (value !== "" && !/[\s'\\]/.test(value)) return value;
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}
