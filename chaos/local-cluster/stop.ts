/**
 * Stops every process a local cluster started, in order, and makes sure of it:
 *
 * 1. SIGTERM to each `pgraft start` process: the node stops its PostgreSQL (fast shutdown) and exits.
 * 2. A node still alive after NODE_STOP_MS: SIGKILL to its process group.
 * 3. A postmaster still running on a data directory (its node was killed, or could not stop it): fast
 *    shutdown (SIGINT), then after POSTMASTER_STOP_MS SIGKILL to it and the backends it had.
 * 4. Sweep: any process still working in or naming the cluster's directory (found from /proc: one the
 *    state file missed, a backend that outlived its postmaster) gets SIGKILL.
 * 5. Verify: no node process, no postmaster, no process using the directory; otherwise throw.
 * 6. Delete the cluster's directory, or with `keep` leave it and mark the state "kept".
 */
import { existsSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { childProcessIds, findRunningPostmaster, isProcessAlive } from "../../src/postgres/data-directory.ts";
import { isAlive, processesUsing, writeClusterState, type ClusterState, type ProcessIdentity } from "./state.ts";

/** pgraft's own stop: the node server, then PostgreSQL's fast shutdown (which ends sessions). */
const NODE_STOP_MS = 30_000;
const POSTMASTER_STOP_MS = 10_000;
const KILL_WAIT_MS = 5_000;
const POLL_MS = 50;

export interface StopOptions {
  readonly keep: boolean;
  readonly note: (line: string) => void;
}

export interface StopSummary {
  /** Processes that needed SIGKILL (a healthy stop has none). */
  readonly killed: string[];
  readonly removedDirectory: boolean;
}

export async function stopCluster(state: ClusterState, options: StopOptions): Promise<StopSummary> {
  const killed: string[] = [];
  const nodes = state.nodes.filter((node) => isAlive(node.process));
  for (const node of nodes) signal(node.process!.pid, "SIGCONT");
  for (const node of nodes) signal(node.process!.pid, "SIGTERM");
  const stoppingMs = Date.now();
  if (nodes.length > 0) options.note(`sent SIGTERM to ${nodes.length} node${nodes.length === 1 ? "" : "s"} (pids ${nodes.map((node) => node.process!.pid).join(", ")}); each stops its PostgreSQL, then exits`);
  if (await waitUntil(() => nodes.every((node) => !isAlive(node.process)), NODE_STOP_MS)) {
    if (nodes.length > 0) options.note(`every node exited in ${((Date.now() - stoppingMs) / 1000).toFixed(1)} s`);
  }
  for (const node of nodes) {
    if (!isAlive(node.process)) continue;
    options.note(`${node.name} (pid ${node.process!.pid}) did not stop within ${NODE_STOP_MS / 1000} s of SIGTERM; sending SIGKILL`);
    killGroup(node.process!);
    killed.push(`${node.name} node (pid ${node.process!.pid})`);
  }
  await waitUntil(() => nodes.every((node) => !isAlive(node.process)), KILL_WAIT_MS);
  for (const node of state.nodes) {
    const stopped = await stopPostmaster(node.pgdata, node.name, options.note);
    if (stopped !== undefined) killed.push(stopped);
  }
  const strays = processesUsing(state.directory);
  if (strays.length > 0) {
    options.note(`processes still using ${state.directory}: ${strays.join(", ")}; sending SIGKILL`);
    for (const pid of strays) signal(pid, "SIGKILL");
    killed.push(...strays.map((pid) => `pid ${pid} (using ${state.directory})`));
    await waitUntil(() => strays.every((pid) => !isProcessAlive(pid)), KILL_WAIT_MS);
  }
  const left = leftovers(state);
  if (left.length > 0) {
    throw new Error(`Cannot stop cluster "${state.name}": ${left.join(", ")} still run after SIGKILL; look at them with ps -p ${left.map((item) => item.replace(/.*pid (\d+).*/, "$1")).join(",")}`);
  }
  if (options.keep) {
    state.status = "kept";
    if (existsSync(state.directory)) writeClusterState(state);
    return { killed, removedDirectory: false };
  }
  rmSync(state.directory, { recursive: true, force: true });
  return { killed, removedDirectory: true };
}

/** Every process of the cluster that still runs, described; empty when all are gone. */
export function leftovers(state: ClusterState): string[] {
  const left: string[] = [];
  for (const node of state.nodes) {
    if (isAlive(node.process)) left.push(`${node.name}'s node (pid ${node.process!.pid})`);
    const postmaster = existsSync(node.pgdata) ? findRunningPostmaster(node.pgdata) : undefined;
    if (postmaster !== undefined) left.push(`${node.name}'s postmaster (pid ${postmaster.pid})`);
  }
  const named = new Set(left.map((item) => item.replace(/.*pid (\d+).*/, "$1")));
  for (const pid of processesUsing(state.directory)) if (!named.has(String(pid))) left.push(`a process using ${state.directory} (pid ${pid})`);
  return left;
}

/** Stops a postmaster left running on `pgdata`; returns what needed SIGKILL, if anything. */
async function stopPostmaster(pgdata: string, name: string, note: (line: string) => void): Promise<string | undefined> {
  const running = existsSync(pgdata) ? findRunningPostmaster(pgdata) : undefined;
  if (running === undefined) return undefined;
  const pid = running.pid;
  note(`${name}'s PostgreSQL (pid ${pid}) still runs after its node stopped; asking it to shut down (fast)`);
  signal(pid, "SIGCONT");
  signal(pid, "SIGINT");
  if (await waitUntil(() => !isProcessAlive(pid), POSTMASTER_STOP_MS)) return undefined;
  const backends = childProcessIds(pid);
  note(`${name}'s PostgreSQL (pid ${pid}) did not stop within ${POSTMASTER_STOP_MS / 1000} s; sending SIGKILL to it and its ${backends.length} children`);
  signal(pid, "SIGKILL");
  for (const backend of backends) signal(backend, "SIGKILL");
  await waitUntil(() => !isProcessAlive(pid) && backends.every((backend) => !isProcessAlive(backend)), KILL_WAIT_MS);
  return `${name}'s postmaster (pid ${pid})`;
}

/** SIGKILL to the node's process group (it was started as a group leader), then to the pid itself. */
function killGroup(process_: ProcessIdentity): void {
  signal(-process_.pid, "SIGCONT");
  signal(-process_.pid, "SIGKILL");
  if (isAlive(process_)) signal(process_.pid, "SIGKILL");
}

function signal(pid: number, name: NodeJS.Signals): void {
  // 0, 1 and -1 would reach this process's group, init, or every process: never ours to signal.
  if (!Number.isInteger(pid) || Math.abs(pid) <= 1) return;
  try {
    process.kill(pid, name);
  } catch {
    // Gone already, or (for a group) no such group.
  }
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}
