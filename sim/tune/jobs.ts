/**
 * The units of work of a tuning run, as plain JSON so that they cross a process boundary: a batch of
 * Figure 16 trials, a batch of failover trials, one long quiet run, or a batch of failure runs.
 * `runJob` is what a worker process (or the main process, with --workers 1) executes.
 */
import { unreachable } from "../../src/assert.ts";
import { runFigure16Trial, type Figure16Settings, type Figure16Trial } from "./figure16.ts";
import {
  runFailoverTrial,
  runFailure,
  runQuietRun,
  type ExperimentCell,
  type FailoverTrial,
  type FailureKind,
  type FailureTrial,
  type QuietRun,
} from "./failover.ts";

export type TuneJob =
  | {
      readonly kind: "figure16";
      /** Which model or sweep cell the batch belongs to (for collecting; the settings say what runs). */
      readonly label: string;
      readonly range: string;
      readonly seeds: readonly string[];
      readonly settings: Figure16Settings;
    }
  | { readonly kind: "failover"; readonly cell: ExperimentCell; readonly seeds: readonly string[] }
  | { readonly kind: "quiet"; readonly cell: ExperimentCell; readonly seed: string; readonly durationMs: number }
  | { readonly kind: "failure"; readonly failure: FailureKind; readonly cell: ExperimentCell; readonly seeds: readonly string[] };

export type TuneJobResult =
  | { readonly kind: "figure16"; readonly trials: readonly Figure16Trial[] }
  | { readonly kind: "failover"; readonly trials: readonly FailoverTrial[] }
  | { readonly kind: "quiet"; readonly run: QuietRun }
  | { readonly kind: "failure"; readonly trials: readonly FailureTrial[] };

export function runJob(job: TuneJob): TuneJobResult {
  switch (job.kind) {
    case "figure16":
      return { kind: "figure16", trials: job.seeds.map((seed) => runFigure16Trial(job.range, seed, job.settings)) };
    case "failover":
      return { kind: "failover", trials: job.seeds.map((seed) => runFailoverTrial(job.cell, seed)) };
    case "quiet":
      return { kind: "quiet", run: runQuietRun(job.cell, job.seed, job.durationMs) };
    case "failure":
      return { kind: "failure", trials: job.seeds.map((seed) => runFailure(job.failure, job.cell, seed)) };
    default:
      return unreachable(job, "tune job");
  }
}

/** How many trials or runs a job counts for in the progress bar. */
export function jobUnits(job: TuneJob): number {
  return job.kind === "quiet" ? 1 : job.seeds.length;
}

/**
 * A rough relative cost, so the most expensive jobs start first and no worker is left with a long one
 * at the end. Simulated time per unit, divided by the tick (events scale with ticks).
 */
export function jobCost(job: TuneJob): number {
  switch (job.kind) {
    case "figure16": {
      const [min = 150, max = 150] = job.range.split("-").map(Number);
      const slow = max - min <= 1 ? job.settings.durationMsMax / 2 : 20 * max;
      return job.seeds.length * (slow / (max - min <= 1 ? 0.25 : 1));
    }
    case "failover":
    case "failure":
      return job.seeds.length * 8 * job.cell.timing.electionTimeoutMs * (job.kind === "failure" ? 2 : 1);
    case "quiet":
      return job.durationMs;
    default:
      return unreachable(job, "tune job");
  }
}

/** Splits `seeds` into batches of at most `size`. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}
