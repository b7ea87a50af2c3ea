/**
 * The SQL part of a chaos run's workload: one client putting keys through the operations guide's
 * `SELECT pgraft_kv_put(key, value)` on the node that leads, recorded in the same history as the etcd
 * clients (over the same keys), so the linearizability checker orders SQL writes against etcd ones.
 *
 * pgraft_kv_put returns once the write is committed and applied to pgraft.kv on that node, so the
 * version the write produced is read back on the same connection right after:
 * `SELECT value, version FROM pgraft.kv WHERE key = $1`. Values are unique, so when the row still
 * holds this put's value its version is this put's; when another write got there first the version is
 * unknown and the put is recorded with an unknown outcome (sound: the checker then lets it take effect
 * anywhere after its call), and counted in `versionsUnknown`.
 *
 * Outcomes: acknowledged (true) -> ok; SQLSTATE PR001 (not the leader), PR002 (no quorum, read-only),
 * PR004 (node not running) or no connection at all -> failed (the write certainly did not happen);
 * PR003 (outcome unknown), a timeout or a broken connection -> unknown.
 */
import seedrandom from "seedrandom";
import type { HistoryRecorder } from "../../sim/history.ts";
import type { ScenarioWorkload } from "../../sim/scenario/index.ts";
import { SqlFailure, type SqlConnections } from "./sql-connections.ts";

/** The SQL client's id in the history (etcd workload clients are 0.., probes from 1000). */
export const SQL_CLIENT_ID = 900;
/** SQLSTATEs after which the write certainly did not happen. */
export const SQL_STATES_FAILED: readonly string[] = ["PR001", "PR002", "PR004", "22023"];
const OPERATIONS_MAX = 200_000;

export class SqlWorkload {
  writesAttempted = 0;
  writesAcknowledged = 0;
  versionsUnknown = 0;
  /** SQLSTATE (or "connection") -> count, for the run's notes. */
  readonly refusals = new Map<string, number>();
  #running = false;
  #loop: Promise<void> | undefined;
  readonly #random: () => number;

  constructor(
    readonly connections: SqlConnections,
    readonly history: HistoryRecorder,
    readonly workload: ScenarioWorkload,
    readonly context: { nowMs(): number; leader(): number | undefined },
    seed: number,
  ) {
    this.#random = seedrandom.alea(`chaos-sql-${seed}`);
  }

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  async #run(): Promise<void> {
    for (let sequence = 1; this.#running && sequence <= OPERATIONS_MAX; sequence++) {
      const node = this.context.leader();
      if (node === undefined) {
        await sleep(100);
        continue;
      }
      const key = `k${Math.floor(this.#random() * this.workload.keys)}`;
      const value = `sql-${sequence}`;
      this.writesAttempted++;
      const id = this.history.invoke(SQL_CLIENT_ID, { op: "put", key, value }, this.context.nowMs());
      const timeoutMs = this.workload.clientTimeoutMs;
      try {
        const rows = await this.connections.query(node, "SELECT pgraft_kv_put($1, $2) AS ok", [key, value], timeoutMs);
        if (rows[0]?.ok !== true) {
          this.history.unknown(id);
        } else {
          this.writesAcknowledged++;
          const read = await this.connections.query(node, "SELECT value, version FROM pgraft.kv WHERE key_bytes = convert_to($1, 'UTF8')", [key], timeoutMs).catch(() => []);
          const row = read[0];
          if (row !== undefined && row.value === value) this.history.complete(id, { op: "put", version: Number(row.version) }, this.context.nowMs());
          else {
            this.versionsUnknown++;
            this.history.unknown(id);
          }
        }
      } catch (error) {
        const failure = error instanceof SqlFailure ? error : new SqlFailure((error as Error).message, true, undefined);
        const code = failure.sqlState ?? (failure.sent ? "connection" : "not connected");
        this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
        if (!failure.sent || (failure.sqlState !== undefined && SQL_STATES_FAILED.includes(failure.sqlState))) this.history.fail(id, this.context.nowMs());
        else this.history.unknown(id);
        await sleep(20 + this.#random() * 80);
      }
      await sleep(this.#random() * 2 * this.workload.thinkTimeMsMean);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
