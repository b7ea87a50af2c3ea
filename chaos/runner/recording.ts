/**
 * The fault timeline a chaos run really performed, written as JSON so that `npm run sim -- --replay
 * FILE` can run the same steps at the same times in the simulator (sim/replay.ts).
 *
 * Times are milliseconds from the run's start (when every node first answered /health), measured with
 * a monotonic clock. Each entry is one step as it happened: its file line, the verb, the nodes its
 * selectors resolved to, what the provider and the proxies did, how long it took and whether it worked,
 * and how many draws the Toxiproxy server had made by then (in-process server only; its seed is in the
 * header), so the server's fault decisions can be reproduced.
 */
import { writeFileSync } from "node:fs";
import { RECORDING_FORMAT, type RecordedStepJson } from "../../sim/replay.ts";

// The format and the step shape belong to the reader (sim/replay.ts); the writer follows them.
export { RECORDING_FORMAT };
/** Entries kept: a scenario repeating a step every 10 ms for an hour stays below this. */
export const RECORDING_ENTRIES_MAX = 100_000;

export interface RecordedStep extends RecordedStepJson {
  /** What was done: provider calls and proxy changes, one short line each. */
  readonly actions: readonly string[];
  readonly tookMs: number;
  /** add_node / remove_node on PostgreSQL nodes: the SQL statement run on the `via` node's server. */
  readonly sql?: string;
  /** The Toxiproxy server's draw count after the step (in-process server only). */
  readonly toxiproxyDraws?: number;
}

export interface Recording {
  readonly format: typeof RECORDING_FORMAT;
  readonly scenario: { readonly name: string; readonly file: string; readonly text: string };
  readonly seed: number;
  readonly provider: string;
  readonly postgres: boolean;
  readonly toxiproxy: { readonly url: string; readonly inProcess: boolean; readonly seed: number | null; readonly drawsAtEnd: number | null };
  readonly startedAt: string;
  readonly steps: RecordedStep[];
  /** Every node's state changes and the leaders seen, as short lines with times (bounded). */
  readonly events: { readonly atMs: number; readonly what: string }[];
  /** The end of each node's log (pgraft start's stderr), taken before teardown. */
  readonly logTails: Record<string, string>;
  result?: { readonly status: string; readonly reasons: readonly string[] };
}

export function writeRecording(file: string, recording: Recording): void {
  writeFileSync(file, `${JSON.stringify(recording, null, 1)}\n`);
}
