/**
 * Parses the `npm run tune` command line. A bad or contradictory flag is refused with a message that
 * names the flag, the value received and what it takes.
 *
 *   npm run tune                                   verify the three profiles (the default mode)
 *   npm run tune -- --figure16                     repeat the Raft paper's Figure 16
 *   npm run tune -- --rtt 35ms --jitter 10ms       recommend a timing for a measured network
 */
import { availableParallelism } from "node:os";

export class TuneUsageError extends Error {
  override name = "TuneUsageError";
}

export type TuneMode = "profiles" | "figure16" | "recommend";

export interface TuneArguments {
  readonly mode: TuneMode;
  /** Figure 16: trials per timeout range (150-150 runs a tenth, as in the paper). */
  readonly trials: number;
  /** Profiles and recommendation: failover trials per cell. */
  readonly seeds: number;
  readonly rttMs: number | undefined;
  readonly jitterMs: number;
  readonly json: boolean;
  /** Where the Markdown report and SVG charts go; undefined (no --out): nowhere, tables only. */
  readonly outDirectory: string | undefined;
  readonly quick: boolean;
  readonly long: boolean;
  readonly workers: number;
  readonly nodeCount: number;
  readonly help: boolean;
}

export const USAGE = `Usage: npm run tune -- [--profiles | --figure16 | --rtt RTT [--jitter JITTER]] [options]

Modes (profile verification when none is given):
  --profiles           verify the low, medium and high profiles across latencies
  --figure16           repeat the Raft paper's Figure 16 election experiment
  --rtt 35ms           recommend a timing for a network with this round-trip time
  --jitter 10ms        with --rtt: how much the round trip varies (default 0)

Options:
  --trials N           Figure 16 trials per range (default 1000; 150-150 runs N/10, as the paper;
                       the two variants and each cell of the split sweep run N/5)
  --seeds N            failover trials per profile and latency (default 200)
  --quick              a fast, smaller run (fewer trials, 10 simulated minutes for spurious elections)
  --long               profiles: extend the latency sweep to 3000 ms to find where each profile breaks
  --nodes N            cluster size for profiles and recommendations (default 3)
  --workers N          child processes (default: the number of cores)
  --out DIR            write the Markdown report and SVG charts into DIR; without it nothing is
                       written (the committed reports: --out docs/tune, full settings)
  --json               one JSON object per line on stdout, nothing else there
  --help               this text

Durations take ms or s ("35ms", "0.5s"); a bare number is milliseconds.`;

export function parseTuneDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!match) {
    throw new TuneUsageError(`Invalid value for ${flag}: "${text}" is not a duration; use milliseconds or seconds, like "35ms" or "0.5s"`);
  }
  return Number(match[1]) * (match[2] === "s" ? 1_000 : 1);
}

function integer(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(value) || value < min || value > max) {
    throw new TuneUsageError(`Invalid value for ${flag}: "${text}" must be a whole number from ${min} to ${max}`);
  }
  return value;
}

export const TRIALS_MAX = 100_000;
export const SEEDS_MAX = 10_000;
export const RTT_MS_MAX = 60_000;

function outDirectory(text: string | undefined): string | undefined {
  if (text !== undefined && text.trim() === "") throw new TuneUsageError('Invalid value for --out: "" is not a directory; give one, like --out /tmp/tune');
  return text;
}

export function parseTuneArguments(argv: readonly string[]): TuneArguments {
  const seen = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (!FLAGS.has(flag)) {
      throw new TuneUsageError(`Unknown flag ${JSON.stringify(flag)}: run "npm run tune -- --help" for the flags`);
    }
    if (seen.has(flag)) throw new TuneUsageError(`Flag ${flag} was given twice: give it once`);
    if (!FLAGS.get(flag)) {
      seen.set(flag, true);
      continue;
    }
    const value = argv[++i];
    if (value === undefined || value.startsWith("--")) throw new TuneUsageError(`Missing value for ${flag}: ${FLAG_VALUE_HINT[flag]}`);
    seen.set(flag, value);
  }
  const text = (flag: string): string | undefined => {
    const value = seen.get(flag);
    return typeof value === "string" ? value : undefined;
  };
  const modes = ["--profiles", "--figure16", "--rtt"].filter((flag) => seen.has(flag));
  if (modes.length > 1) throw new TuneUsageError(`Cannot use ${modes.join(" and ")} together: pick one mode`);
  const mode: TuneMode = seen.has("--figure16") ? "figure16" : seen.has("--rtt") ? "recommend" : "profiles";
  if (seen.has("--jitter") && mode !== "recommend") throw new TuneUsageError("Cannot use --jitter without --rtt: --jitter describes the measured network");
  if (seen.has("--trials") && mode !== "figure16") throw new TuneUsageError("Cannot use --trials without --figure16: use --seeds for profiles and recommendations");
  if (seen.has("--seeds") && mode === "figure16") throw new TuneUsageError("Cannot use --seeds with --figure16: use --trials for Figure 16");
  if (seen.has("--long") && mode !== "profiles") throw new TuneUsageError("Cannot use --long outside profile verification: it extends the profiles' latency sweep");
  if (seen.has("--quick") && seen.has("--long")) throw new TuneUsageError("Cannot use --quick and --long together: pick one");
  if (seen.has("--nodes") && mode === "figure16") throw new TuneUsageError("Cannot use --nodes with --figure16: the paper's experiment uses 5 servers");
  const quick = seen.has("--quick");
  const rttMs = text("--rtt") === undefined ? undefined : parseTuneDuration(text("--rtt")!, "--rtt");
  if (rttMs !== undefined && (rttMs <= 0 || rttMs > RTT_MS_MAX)) {
    throw new TuneUsageError(`Invalid value for --rtt: "${text("--rtt")}" must be above 0 and at most ${RTT_MS_MAX / 1000} s`);
  }
  const jitterMs = text("--jitter") === undefined ? 0 : parseTuneDuration(text("--jitter")!, "--jitter");
  if (rttMs !== undefined && jitterMs > rttMs) {
    throw new TuneUsageError(`Invalid value for --jitter: "${text("--jitter")}" must not exceed the round trip (--rtt ${text("--rtt")})`);
  }
  return {
    mode,
    trials: text("--trials") === undefined ? (quick ? 100 : 1000) : integer(text("--trials")!, "--trials", 10, TRIALS_MAX),
    seeds: text("--seeds") === undefined ? (quick ? 30 : 200) : integer(text("--seeds")!, "--seeds", 1, SEEDS_MAX),
    rttMs,
    jitterMs,
    json: seen.has("--json"),
    outDirectory: outDirectory(text("--out")),
    quick,
    long: seen.has("--long"),
    workers: text("--workers") === undefined ? Math.max(1, availableParallelism()) : integer(text("--workers")!, "--workers", 1, 64),
    nodeCount: text("--nodes") === undefined ? 3 : integer(text("--nodes")!, "--nodes", 3, 9),
    help: seen.has("--help"),
  };
}

/** Each flag, and whether it takes a value. */
const FLAGS = new Map<string, boolean>([
  ["--profiles", false],
  ["--figure16", false],
  ["--rtt", true],
  ["--jitter", true],
  ["--trials", true],
  ["--seeds", true],
  ["--json", false],
  ["--out", true],
  ["--quick", false],
  ["--long", false],
  ["--workers", true],
  ["--nodes", true],
  ["--help", false],
]);

const FLAG_VALUE_HINT: Record<string, string> = {
  "--rtt": "give the measured round-trip time, like --rtt 35ms",
  "--jitter": "give how much the round trip varies, like --jitter 10ms",
  "--trials": "give a number of trials per range, like --trials 1000",
  "--seeds": "give a number of trials per profile and latency, like --seeds 100",
  "--out": "give a directory, like --out /tmp/tune",
  "--workers": "give a number of child processes, like --workers 2",
  "--nodes": "give a cluster size from 3 to 9, like --nodes 5",
};
