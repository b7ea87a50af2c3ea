/**
 * Is the cluster ready, and what does the operations guide's quick health check say on each node.
 * Readiness is what an operator would check by hand: every node's worker RUNNING, exactly one node
 * saying pgraft_is_leader(), and every node naming that leader. The printed check runs through the real
 * psql, verbatim, so what the user sees is what they will see when they paste the query themselves.
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { ClusterState, NodeState } from "./state.ts";

/** The operations guide's quick health check, verbatim. */
export const QUICK_HEALTH_CHECK = `SELECT 
    pgraft_is_leader() as is_leader,
    pgraft_get_term() as term,
    pgraft_get_leader() as leader_id,
    pgraft_get_worker_state() as worker;`;

const QUERY_TIMEOUT_MS = 5_000;
const READY_POLL_MS = 250;
const PSQL_TIMEOUT_MS = 30_000;

export interface HealthRow {
  readonly is_leader: boolean;
  readonly term: number;
  readonly leader_id: number;
  readonly worker: string;
}

/** node-postgres settings for the node's server: the same socket, port and role as its psql string. */
export function clientConfig(node: NodeState): pg.ClientConfig {
  return { host: node.pgdata, port: node.pgPort, user: node.pgUser, database: "postgres", connectionTimeoutMillis: QUERY_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS };
}

/** The quick health check through node-postgres; rejects while the node or its SQL interface is not up. */
export async function healthRow(node: NodeState): Promise<HealthRow> {
  const client = new pg.Client(clientConfig(node));
  client.on("error", () => undefined);
  await client.connect();
  try {
    const row = (await client.query(QUICK_HEALTH_CHECK)).rows[0] as { is_leader: boolean; term: string | number; leader_id: string | number; worker: string };
    return { is_leader: row.is_leader, term: Number(row.term), leader_id: Number(row.leader_id), worker: row.worker };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, for progress lines and the error at the deadline. */
  readonly reason: string;
  readonly leader: NodeState | undefined;
  readonly term: number | undefined;
}

/** One look at every node: ready, or the first reason it is not. */
export async function checkReadiness(state: ClusterState): Promise<Readiness> {
  const rows: HealthRow[] = [];
  for (const node of state.nodes) {
    try {
      rows.push(await healthRow(node));
    } catch (error) {
      return { ready: false, reason: `${node.name}'s SQL interface does not answer yet (${(error as Error).message})`, leader: undefined, term: undefined };
    }
  }
  const notRunning = state.nodes.filter((_, index) => rows[index]!.worker !== "RUNNING");
  if (notRunning.length > 0) return { ready: false, reason: `worker not RUNNING on ${notRunning.map((node) => node.name).join(", ")}`, leader: undefined, term: undefined };
  const leaders = state.nodes.filter((_, index) => rows[index]!.is_leader);
  if (leaders.length !== 1) return { ready: false, reason: `${leaders.length} nodes say pgraft_is_leader() (waiting for exactly one)`, leader: undefined, term: undefined };
  const leader = leaders[0]!;
  const disagree = state.nodes.filter((_, index) => rows[index]!.leader_id !== leader.id);
  if (disagree.length > 0) return { ready: false, reason: `${disagree.map((node) => node.name).join(", ")} do not name ${leader.name} as leader yet`, leader: undefined, term: undefined };
  return { ready: true, reason: "", leader, term: rows[state.nodes.indexOf(leader)]!.term };
}

/**
 * Polls until the cluster is ready; throws at `deadlineMs` (Date.now() based) with the last reason, or
 * when `check` (a node died, the user pressed Ctrl-C) throws.
 */
export async function waitUntilReady(state: ClusterState, deadlineMs: number, check: () => void, progress: (reason: string) => void): Promise<Readiness> {
  let lastReason = "";
  for (;;) {
    check();
    const readiness = await checkReadiness(state);
    if (readiness.ready) return readiness;
    if (readiness.reason.replace(/\(.*\)/, "") !== lastReason.replace(/\(.*\)/, "")) progress(readiness.reason);
    lastReason = readiness.reason;
    if (Date.now() > deadlineMs) throw new Error(`Cannot start the cluster: it was not ready in time: ${lastReason}`);
    await sleep(READY_POLL_MS);
  }
}

export interface PsqlOutput {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `sql` through the real psql on the node's connection string (aligned output, as a person sees it). */
export function psql(node: NodeState, sql: string, extraArguments: readonly string[] = []): Promise<PsqlOutput> {
  // The user's PG* variables (PGPASSWORD, PGSERVICE, ...) must not change what the printed command does.
  const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PG")));
  return new Promise((resolve, reject) => {
    const child = spawn("psql", ["-X", ...extraArguments, node.psql, "-c", sql], { env: environment, timeout: PSQL_TIMEOUT_MS, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", (error) => reject(new Error(`Cannot run psql: ${error.message}; install the PostgreSQL client (apt-get install postgresql-client-15)`)));
    child.on("close", (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}
