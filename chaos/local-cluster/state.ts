/**
 * Where a local cluster lives and what it records about itself, so that `--stop` (another process, maybe
 * days later) can find and stop every process it started, and a second start with the same name can tell
 * a running cluster from the leftovers of one whose processes are gone.
 *
 * Layout, in the OS temp directory:
 *
 *   pgraft-cluster/                 mode 0711: PostgreSQL's OS user must reach the data directories
 *     .ports.lock                   held for milliseconds while a cluster chooses its ports
 *     <name>/                       the cluster's directory (mode 0711), deleted when it stops
 *       state.json                  this file's ClusterState, rewritten as processes start
 *       secret                      the peers' shared secret (mode 0600)
 *       n1/pgdata/                  n1's PostgreSQL data directory, socket, and pgraft/ (Raft data)
 *       n1.log                      n1's `pgraft start` output
 *     templates/                    an initdb template, built on the first run and copied after
 *
 * A cluster claims its name by renaming a private directory holding its first state.json onto
 * `<name>/`, which fails when the name is taken: two starts with one name never both win. Every
 * process is recorded with its start time from /proc, so a reused pid is never taken for ours.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findRunningPostmaster, isProcessAlive } from "../../src/postgres/data-directory.ts";
import { processStartTime } from "../providers/run-registry.ts";

export const STATE_VERSION = 1;
export const CLUSTERS_DIR_NAME = "pgraft-cluster";
const STATE_FILE_NAME = "state.json";
/** More entries than this in the clusters directory means something is wrong; refuse to scan on. */
const CLUSTER_DIRECTORIES_MAX = 200;

export interface ProcessIdentity {
  readonly pid: number;
  /** /proc/<pid>/stat's start time (clock ticks since boot); undefined where /proc is missing. */
  readonly startTime: number | undefined;
}

export interface NodeState {
  readonly name: string;
  readonly id: number;
  readonly pgdata: string;
  readonly logFile: string;
  readonly pgPort: number;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly metricsPort: number;
  /** The PostgreSQL role psql connects as: the OS user PostgreSQL runs as (its superuser). */
  readonly pgUser: string;
  /** libpq key=value connection string, for psql "..." and node-postgres alike. */
  readonly psql: string;
  /** The whole psql command line, quoted for a POSIX shell. */
  readonly psqlCommand: string;
  readonly clientUrl: string;
  readonly metricsUrl: string;
  /** The `pgraft start` process, once spawned. */
  process: ProcessIdentity | undefined;
  /** The postmaster's pid when the cluster became ready (informative; postmaster.pid is authoritative). */
  postmasterPid: number | undefined;
}

export interface ClusterState {
  readonly version: number;
  readonly name: string;
  readonly directory: string;
  readonly stateFile: string;
  readonly mode: "foreground" | "detached";
  readonly createdAt: string;
  /** The `npm run cluster` process that started it (gone after a --detach start returns). */
  readonly owner: ProcessIdentity;
  /** "starting" until every node runs and a leader is elected; "kept" after a stop with --keep. */
  status: "starting" | "running" | "kept";
  readonly secretFile: string;
  nodes: NodeState[];
}

export function clustersDirectory(base = tmpdir()): string {
  return join(base, CLUSTERS_DIR_NAME);
}

export function clusterDirectory(name: string, base = tmpdir()): string {
  return join(clustersDirectory(base), name);
}

/** Creates the clusters directory, searchable (not readable) by PostgreSQL's OS user. */
export function ensureClustersDirectory(base = tmpdir()): string {
  const directory = clustersDirectory(base);
  mkdirSync(directory, { recursive: true, mode: 0o711 });
  chmodSync(directory, 0o711);
  return directory;
}

export function identify(pid: number): ProcessIdentity {
  return { pid, startTime: processStartTime(pid) };
}

/** Alive (a zombie is not), and the same process that was recorded when the start time is known. */
export function isAlive(process: ProcessIdentity | undefined): boolean {
  if (process === undefined || !isProcessAlive(process.pid)) return false;
  if (process.startTime === undefined) return true;
  const now = processStartTime(process.pid);
  return now === undefined || now === process.startTime;
}

/** What of a cluster still runs: its owner, its node processes, its postmasters. */
export interface ClusterLiveness {
  readonly owner: boolean;
  readonly nodePids: number[];
  readonly postmasterPids: number[];
  /** Every process working in or naming the cluster's directory (from /proc; backends included). */
  readonly usingDirectoryPids: number[];
}

export function clusterLiveness(state: ClusterState): ClusterLiveness {
  const nodePids: number[] = [];
  const postmasterPids: number[] = [];
  for (const node of state.nodes) {
    if (isAlive(node.process)) nodePids.push(node.process!.pid);
    const postmaster = existsSync(node.pgdata) ? findRunningPostmaster(node.pgdata) : undefined;
    if (postmaster !== undefined) postmasterPids.push(postmaster.pid);
  }
  return { owner: isAlive(state.owner), nodePids, postmasterPids, usingDirectoryPids: processesUsing(state.directory) };
}

export function isRunning(liveness: ClusterLiveness): boolean {
  return liveness.owner || liveness.nodePids.length > 0 || liveness.postmasterPids.length > 0 || liveness.usingDirectoryPids.length > 0;
}

export type ReadResult =
  | { readonly kind: "none" }
  | { readonly kind: "state"; readonly state: ClusterState }
  /** A directory without a readable state file: a claim being written, or damage. */
  | { readonly kind: "unreadable"; readonly directory: string; readonly reason: string };

export function readClusterState(name: string, base = tmpdir()): ReadResult {
  const directory = clusterDirectory(name, base);
  if (!existsSync(directory)) return { kind: "none" };
  const file = join(directory, STATE_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return { kind: "unreadable", directory, reason: `${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
  try {
    const state = JSON.parse(text) as ClusterState;
    if (state.version !== STATE_VERSION || state.name !== name || !Array.isArray(state.nodes)) {
      return { kind: "unreadable", directory, reason: `${file} is not a version ${STATE_VERSION} cluster state of "${name}"` };
    }
    return { kind: "state", state };
  } catch (error) {
    return { kind: "unreadable", directory, reason: `${file} is not JSON (${(error as Error).message})` };
  }
}

/** Rewrites the state file atomically (write a sibling, rename over). */
export function writeClusterState(state: ClusterState): void {
  const temporary = `${state.stateFile}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, state.stateFile);
}

/**
 * Claims `name` with `state` as its first state file; false when another cluster holds the name (the
 * caller then reads it and decides: refuse, or clean up a stale one and claim again).
 */
export function claimClusterName(state: ClusterState, base = tmpdir()): boolean {
  const parent = ensureClustersDirectory(base);
  const staging = mkdtempSync(join(parent, `.claim-${state.name}-`));
  chmodSync(staging, 0o711);
  writeFileSync(join(staging, STATE_FILE_NAME), `${JSON.stringify(state, null, 2)}\n`);
  try {
    renameSync(staging, state.directory);
    return true;
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") return false;
    throw error;
  }
}

/** States of every other cluster in the clusters directory (their ports are avoided). */
export function otherClusterStates(name: string, base = tmpdir()): ClusterState[] {
  let entries: string[];
  try {
    entries = readdirSync(clustersDirectory(base));
  } catch {
    return [];
  }
  if (entries.length > CLUSTER_DIRECTORIES_MAX) {
    throw new Error(`Cannot choose ports: ${clustersDirectory(base)} holds ${entries.length} entries (at most ${CLUSTER_DIRECTORIES_MAX} expected); stop old clusters with --stop --name NAME or delete their directories`);
  }
  const states: ClusterState[] = [];
  for (const entry of entries) {
    if (entry === name || entry.startsWith(".") || entry === "templates") continue;
    const read = readClusterState(entry, base);
    if (read.kind === "state") states.push(read.state);
  }
  return states;
}

/** Every port a cluster state names. */
export function portsOf(state: ClusterState): number[] {
  return state.nodes.flatMap((node) => [node.pgPort, node.peerPort, node.clientPort, node.metricsPort]);
}

/** Bound on /proc entries scanned; a machine with more processes than this is not a dev machine. */
const PROC_ENTRIES_MAX = 100_000;

/**
 * Processes other than this one that work in or name `directory`: a postmaster and its backends (their
 * working directory is the data directory), and `pgraft start --pgdata <directory>/...`. Found from
 * /proc, so also those no state file recorded; empty where there is no /proc.
 */
export function processesUsing(directory: string): number[] {
  const prefix = `${directory}/`;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const entry of entries.slice(0, PROC_ENTRIES_MAX)) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (cwd === directory || cwd.startsWith(prefix) || args.some((arg) => arg === directory || arg.startsWith(prefix))) found.push(Number(entry));
    } catch {
      // Exited while we looked, or not ours to inspect.
    }
  }
  return found;
}
