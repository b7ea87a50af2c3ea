/**
 * What an operator sees through SQL, beside /health: every node's answer to the operations guide's
 * functions, sampled every SQL_POLL_INTERVAL_MS over one persistent connection per node:
 *
 *   SELECT pgraft_is_leader(), pgraft_get_leader(), pgraft_get_term(), pgraft_get_worker_state()
 *
 * (one statement, so the four answers come from one snapshot of the node's status row), and the checks
 * that hold the SQL view to the /health view:
 *
 * - one leader per term: no term has two leaders among everything /health and SQL reported (a node in
 *   the leader role, or a node naming its leader); a SQL view contradicting /health fails the run;
 * - every leader /health showed (the node /leader answers 200 on) for at least LEADER_CONFIRM_MS was
 *   confirmed by SQL: pgraft_is_leader() was true, with that term, on its server during its tenure;
 * - at the end, after recovery, every member's pgraft_get_worker_state() is RUNNING, and
 *   pgraft_is_leader() is true on the leader /health names and on no other node (settleAgreement).
 *
 * The status row behind the functions is rewritten every half heartbeat and counts as stale after 2.5
 * heartbeats, so SQL may lag /health by that much: the checks compare terms and tenures, never
 * single instants.
 */
import { nodeName } from "../../sim/scenario/index.ts";
import type { Sample } from "./observer.ts";
import type { SqlConnections } from "./sql-connections.ts";

export const SQL_POLL_INTERVAL_MS = 400;
export const SQL_POLL_TIMEOUT_MS = 1500;
/** A /health leader that lasted this long must have been confirmed by pgraft_is_leader() on its server. */
export const LEADER_CONFIRM_MS = 3000;
/** SQL samples kept: an hour at the poll interval for 9 nodes. */
const SQL_SAMPLES_MAX = 100_000;

export const STATUS_QUERY = "SELECT pgraft_is_leader() AS is_leader, pgraft_get_leader() AS leader_id, pgraft_get_term() AS term, pgraft_get_worker_state() AS worker_state";

export interface SqlView {
  readonly isLeader: boolean;
  readonly leaderId: number;
  readonly term: number;
  readonly workerState: string;
}

export interface SqlSample {
  readonly timeMs: number;
  readonly id: number;
  /** Undefined when the statement failed (the node's PostgreSQL down, paused or slow). */
  readonly view: SqlView | undefined;
  readonly error: string | undefined;
}

export async function readSqlView(connections: SqlConnections, id: number, timeoutMs = SQL_POLL_TIMEOUT_MS): Promise<SqlView> {
  const rows = await connections.query(id, STATUS_QUERY, [], timeoutMs);
  const row = rows[0] ?? {};
  return { isLeader: row.is_leader === true, leaderId: Number(row.leader_id ?? 0), term: Number(row.term ?? 0), workerState: String(row.worker_state) };
}

export class SqlObserver {
  readonly samples: SqlSample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(
    readonly connections: SqlConnections,
    /** The nodes to sample now (running members with PostgreSQL). */
    readonly ids: () => readonly number[],
    readonly nowMs: () => number,
    readonly intervalMs = SQL_POLL_INTERVAL_MS,
  ) {}

  start(): void {
    this.#running = true;
    const tick = (): void => {
      void this.poll().finally(() => {
        if (this.#running) this.#timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.#timer = setTimeout(tick, 0);
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async poll(): Promise<SqlSample[]> {
    const taken = await Promise.all(
      this.ids().map(async (id): Promise<SqlSample> => {
        const timeMs = this.nowMs();
        try {
          return { timeMs, id, view: await readSqlView(this.connections, id), error: undefined };
        } catch (error) {
          return { timeMs, id, view: undefined, error: (error as Error).message };
        }
      }),
    );
    for (const sample of taken) if (this.samples.length < SQL_SAMPLES_MAX) this.samples.push(sample);
    return taken;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`;
}

/** Problems with the SQL view against the /health samples (empty when they agree). */
export function checkSqlAgainstHealth(health: readonly Sample[], sql: readonly SqlSample[], confirmMs = LEADER_CONFIRM_MS): string[] {
  const problems: string[] = [];
  // One leader per term, over every claim either view made.
  const claims = new Map<number, { leader: number; source: string }>();
  const conflicting = new Set<number>();
  const claim = (term: number, leader: number, source: string): void => {
    if (term <= 0 || leader <= 0) return;
    const earlier = claims.get(term);
    if (earlier === undefined) claims.set(term, { leader, source });
    else if (earlier.leader !== leader && !conflicting.has(term) && conflicting.size < 5) {
      conflicting.add(term);
      problems.push(`two leaders of term ${term}: ${earlier.source} named ${nodeName(earlier.leader)}, ${source} named ${nodeName(leader)}`);
    }
  };
  for (const sample of health) {
    for (const [id, view] of sample.views) {
      if (view.role === "leader") claim(view.term, id, `/health of ${nodeName(id)} at ${seconds(sample.timeMs)}`);
      else claim(view.term, view.leaderId, `/health of ${nodeName(id)} at ${seconds(sample.timeMs)}`);
    }
  }
  for (const sample of sql) {
    if (sample.view === undefined) continue;
    const where = `SQL on ${nodeName(sample.id)} at ${seconds(sample.timeMs)}`;
    if (sample.view.isLeader) claim(sample.view.term, sample.id, `${where} (pgraft_is_leader())`);
    claim(sample.view.term, sample.view.leaderId, `${where} (pgraft_get_leader())`);
  }
  // Every lasting /leader tenure confirmed by pgraft_is_leader() on its server.
  for (const tenure of tenures(health)) {
    if (tenure.untilMs - tenure.fromMs < confirmMs) continue;
    const during = sql.filter((sample) => sample.id === tenure.leader && sample.timeMs >= tenure.fromMs && sample.timeMs <= tenure.untilMs);
    const confirmed = during.some((sample) => sample.view?.isLeader === true && sample.view.term === tenure.term);
    if (confirmed) continue;
    const seen = during.slice(-3).map((sample) => (sample.view === undefined ? `error: ${sample.error}` : `is_leader ${sample.view.isLeader}, term ${sample.view.term}, worker ${sample.view.workerState}`));
    problems.push(
      `${nodeName(tenure.leader)} led term ${tenure.term} from ${seconds(tenure.fromMs)} to ${seconds(tenure.untilMs)} by /health (/leader 200), but pgraft_is_leader() on its server never said so in ${during.length} samples${seen.length > 0 ? `; last: ${seen.join("; ")}` : ""}`,
    );
  }
  return problems;
}

/** Spans of consecutive /health samples with the same leader (with a quorum) in the same term. */
export function tenures(health: readonly Sample[]): { leader: number; term: number; fromMs: number; untilMs: number }[] {
  const spans: { leader: number; term: number; fromMs: number; untilMs: number }[] = [];
  let open: { leader: number; term: number; fromMs: number; untilMs: number } | undefined;
  for (const sample of health) {
    const leader = sample.leader;
    const term = leader === undefined ? undefined : sample.views.get(leader)?.term;
    if (open !== undefined && (leader !== open.leader || term !== open.term)) {
      spans.push(open);
      open = undefined;
    }
    if (leader === undefined || term === undefined) continue;
    if (open === undefined) open = { leader, term, fromMs: sample.timeMs, untilMs: sample.timeMs };
    else open.untilMs = sample.timeMs;
  }
  if (open !== undefined) spans.push(open);
  return spans;
}

/**
 * After recovery: waits (bounded by `timeoutMs`) until every node of `ids` reports RUNNING through
 * pgraft_get_worker_state(), pgraft_is_leader() is true on `leader` alone, and every node's
 * pgraft_get_leader() names it. Returns undefined when that happened, else what was seen last.
 */
export async function settleAgreement(
  connections: SqlConnections,
  runningIds: () => readonly number[],
  leader: () => number | undefined,
  timeoutMs: number,
  sleep: (ms: number) => Promise<void>,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = "nothing was read";
  const runningAtFirst = runningIds();
  for (;;) {
    const expected = leader();
    // Read again each round: a node restarted by the liveness phase may stop on its own while we wait
    // (a disk the scenario corrupted fails its checksum), and it is no longer one that must agree. The
    // report names the nodes that stopped meanwhile, so a node that stopped by a bug still shows.
    const ids = runningIds();
    const stopped = runningAtFirst.filter((id) => !ids.includes(id));
    const views = await Promise.all(
      ids.map(async (id) => {
        try {
          return { id, view: await readSqlView(connections, id), error: undefined };
        } catch (error) {
          return { id, view: undefined, error: (error as Error).message };
        }
      }),
    );
    const wrong = views.filter(({ id, view }) => view === undefined || view.workerState !== "RUNNING" || view.isLeader !== (id === expected) || view.leaderId !== expected);
    // The leader /health names must be among the nodes read: agreement of the others alone is not.
    if (expected !== undefined && ids.includes(expected) && wrong.length === 0) return undefined;
    last =
      `/leader names ${expected === undefined ? "no node" : nodeName(expected)}; SQL: ` +
      views.map(({ id, view, error }) => (view === undefined ? `${nodeName(id)} error (${error})` : `${nodeName(id)} ${view.workerState}, is_leader ${view.isLeader}, leader ${view.leaderId}, term ${view.term}`)).join("; ") +
      (stopped.length === 0 ? "" : `; stopped while waiting: ${stopped.map(nodeName).join(", ")}`);
    if (Date.now() >= deadline) return last; // a timeout of 0 reads once
    await sleep(300);
  }
}
