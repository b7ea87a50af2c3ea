/**
 * The result of one chaos run of one scenario, and the exit code of a whole invocation (the simulator's
 * codes: 0 every run passed, 2 bad arguments or a malformed file, 3 a liveness failure, 4 a correctness
 * failure, 5 a run could not be made).
 */
export type ChaosStatus = "passed" | "liveness" | "correctness" | "error" | "simulator-only";

export interface ChaosRunResult {
  readonly scenario: string;
  readonly file: string;
  readonly seed: number;
  readonly provider: string;
  readonly status: ChaosStatus;
  /** Why it did not pass (failed expectations, violations, refusals), one line each. */
  readonly reasons: readonly string[];
  /** Approximations made (loss shown as delay...). */
  readonly notes: readonly string[];
  /** For each fault that hit the leader: ms from the fault to the next leader seen. */
  readonly failoverMs: readonly number[];
  /** Rises of the highest term after the first leader was seen. */
  readonly elections: number;
  /** Share of workload writes acknowledged (0..1), null without writes. */
  readonly writeAvailability: number | null;
  readonly writesAttempted: number;
  readonly writesAcknowledged: number;
  readonly operations: number;
  /** Acknowledged probe writes that did not read back at the end. */
  readonly acknowledgedLost: number;
  readonly linearizable: "yes" | "no" | "undecided" | "not checked";
  /** ms from healing everything to the first acknowledged write, when the liveness phase ran. */
  readonly recoveryMs: number | null;
  readonly wallMs: number;
  /** The recorded fault timeline (JSON), when one was written. */
  readonly timelineFile: string | undefined;
  /** With PostgreSQL: the SQL view sampled and the SQL part of the workload. */
  readonly sql?: ChaosSqlSummary;
}

export interface ChaosSqlSummary {
  /** Samples of the guide's status functions taken (every node, every 400 ms), and how many failed. */
  readonly samples: number;
  readonly sampleErrors: number;
  /** pgraft_kv_put calls on the leader (counted in writesAttempted/writesAcknowledged too). */
  readonly writesAttempted: number;
  readonly writesAcknowledged: number;
  /** Acknowledged SQL puts whose version could not be read back (recorded with an unknown outcome). */
  readonly versionsUnknown: number;
  /** Failed pgraft_kv_put calls by SQLSTATE ("connection" when below SQL). */
  readonly refusals: Readonly<Record<string, number>>;
  /** Acknowledged probe writes found on the leader through pgraft_kv_get at the end. */
  readonly readBack: number;
  /** Whether, after recovery, every node's SQL said RUNNING and named the /leader node (null: not checked). */
  readonly agreedAtEnd: boolean | null;
}

export const EXIT_OK = 0;
export const EXIT_USAGE = 2;
export const EXIT_LIVENESS = 3;
export const EXIT_CORRECTNESS = 4;
export const EXIT_COULD_NOT_RUN = 5;

/**
 * The exit code of a set of results. Simulator-only scenarios count as not run (5) only when
 * `refusedIsFailure` (a single file named on the command line); in a folder they are listed and pass.
 */
export function exitCodeOf(results: readonly ChaosRunResult[], refusedIsFailure: boolean): number {
  if (results.some((result) => result.status === "error")) return EXIT_COULD_NOT_RUN;
  if (refusedIsFailure && results.some((result) => result.status === "simulator-only")) return EXIT_COULD_NOT_RUN;
  if (results.some((result) => result.status === "correctness")) return EXIT_CORRECTNESS;
  if (results.some((result) => result.status === "liveness")) return EXIT_LIVENESS;
  return EXIT_OK;
}
