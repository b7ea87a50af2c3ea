/**
 * Parses the `npm run sim` command line. Contradictory or malformed flags are refused with a message
 * naming the flag, what it received and what it takes.
 */
import { availableParallelism } from "node:os";

export class SimUsageError extends Error {
  override name = "SimUsageError";
}

export interface SimArguments {
  readonly seedFirst: number;
  readonly seedLast: number;
  readonly nodeCount: number | undefined;
  readonly durationMs: number;
  readonly faults: "none" | "swarm";
  readonly traceFile: string | undefined;
  readonly json: boolean;
  readonly workers: number;
  /** A scenario file (scenarios/*.yaml) to run instead of the built-in run. */
  readonly scenarioFile: string | undefined;
  /** Whether --seed or --seeds was given (a scenario file may name its own seed). */
  readonly seedGiven: boolean;
  /** Shrink the failing seed and write the smaller scenario here. */
  readonly shrinkFile: string | undefined;
  /** Runs the shrinker may make. */
  readonly shrinkRunsMax: number;
  /** Render the seed's trace as an SVG timeline here. */
  readonly renderFile: string | undefined;
  /** A chaos run's recorded timeline (npm run chaos) to replay as a scenario (sim/replay.ts). */
  readonly replayFile: string | undefined;
}

export const USAGE =
  "Usage: npm run sim -- [--seed N | --seeds A..B] [--scenario FILE|FOLDER] [--nodes N] [--duration 60s] [--faults none|swarm] [--trace FILE] [--json] [--workers N] [--shrink OUT.yaml] [--render OUT.svg] [--replay TIMELINE.json]";

/** Runs a --shrink search may make unless --shrink-runs says otherwise. */
export const SHRINK_RUNS_MAX_DEFAULT = 300;

export const SEEDS_MAX = 1_000_000;

export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|min)?$/.exec(text.trim());
  if (!match) throw new SimUsageError(`Invalid value for ${flag}: "${text}" is not a duration; use a value like "60s", "500ms" or "2m"`);
  const value = Number(match[1]);
  const unit = match[2] ?? "s";
  const factor = unit === "ms" ? 1 : unit === "s" ? 1_000 : 60_000;
  return Math.round(value * factor);
}

function integer(text: string | undefined, flag: string, min: number, max: number): number {
  if (text === undefined) throw new SimUsageError(`Missing value for ${flag}: ${USAGE}`);
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SimUsageError(`Invalid value for ${flag}: "${text}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function parseSimArguments(argv: readonly string[]): SimArguments {
  let seedFirst: number | undefined;
  let seedLast: number | undefined;
  let seedFlag: string | undefined;
  let nodeCount: number | undefined;
  let durationMs = 60_000;
  let faults: "none" | "swarm" = "none";
  let traceFile: string | undefined;
  let json = false;
  let workers = Math.max(1, availableParallelism());
  let scenarioFile: string | undefined;
  let shrinkFile: string | undefined;
  let shrinkRunsMax = SHRINK_RUNS_MAX_DEFAULT;
  let renderFile: string | undefined;
  let replayFile: string | undefined;
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined || next.startsWith("--")) throw new SimUsageError(`Missing value for ${flag}: ${USAGE}`);
      return next;
    };
    given.add(flag);
    switch (flag) {
      case "--seed": {
        if (seedFlag === "--seeds") throw new SimUsageError("Cannot use --seed and --seeds together: pick one");
        seedFlag = flag;
        seedFirst = seedLast = integer(value(), flag, 0, Number.MAX_SAFE_INTEGER);
        break;
      }
      case "--seeds": {
        if (seedFlag === "--seed") throw new SimUsageError("Cannot use --seed and --seeds together: pick one");
        seedFlag = flag;
        const text = value();
        const match = /^(\d+)\.\.(\d+)$/.exec(text);
        if (!match) throw new SimUsageError(`Invalid value for --seeds: "${text}" must be a range like "1..500"`);
        seedFirst = Number(match[1]);
        seedLast = Number(match[2]);
        if (seedLast < seedFirst) throw new SimUsageError(`Invalid value for --seeds: "${text}" ends before it starts`);
        if (seedLast - seedFirst + 1 > SEEDS_MAX) throw new SimUsageError(`Invalid value for --seeds: "${text}" has more than ${SEEDS_MAX} seeds`);
        break;
      }
      case "--nodes":
        nodeCount = integer(value(), flag, 1, 9);
        break;
      case "--duration":
        durationMs = parseDuration(value(), flag);
        if (durationMs < 1_000 || durationMs > 24 * 3_600_000) {
          throw new SimUsageError(`Invalid value for --duration: ${durationMs} ms must be between 1s and 24h`);
        }
        break;
      case "--faults": {
        const text = value();
        if (text !== "none" && text !== "swarm") throw new SimUsageError(`Invalid value for --faults: "${text}" must be "none" or "swarm"`);
        faults = text;
        break;
      }
      case "--trace":
        traceFile = value();
        break;
      case "--json":
        json = true;
        break;
      case "--workers":
        workers = integer(value(), flag, 1, 64);
        break;
      case "--scenario":
        scenarioFile = value();
        break;
      case "--shrink":
        shrinkFile = value();
        break;
      case "--shrink-runs":
        shrinkRunsMax = integer(value(), flag, 1, 100_000);
        break;
      case "--render":
        renderFile = value();
        break;
      case "--replay":
        replayFile = value();
        break;
      case "--help":
      case "-h":
        throw new SimUsageError(USAGE);
      default:
        throw new SimUsageError(`Unknown flag "${flag}": ${USAGE}`);
    }
  }
  if (scenarioFile !== undefined) {
    for (const flag of ["--nodes", "--duration", "--faults"]) {
      if (given.has(flag)) throw new SimUsageError(`Cannot use --scenario with ${flag}: the scenario file sets the cluster, its duration and its faults`);
    }
  }
  if (replayFile !== undefined) {
    for (const flag of ["--scenario", "--nodes", "--duration", "--faults"]) {
      if (given.has(flag)) throw new SimUsageError(`Cannot use --replay with ${flag}: the recorded timeline's scenario sets the cluster, its duration and its faults`);
    }
  }
  const single = (seedFirst ?? 1) === (seedLast ?? 1);
  if (shrinkFile !== undefined && !single) throw new SimUsageError("Cannot use --shrink with a range of seeds: shrink one failing seed, given with --seed N");
  if (shrinkFile !== undefined && scenarioFile === undefined && faults !== "swarm") {
    throw new SimUsageError("Cannot use --shrink without faults to shrink: add --scenario FILE or --faults swarm");
  }
  if (renderFile !== undefined && !single) throw new SimUsageError("Cannot use --render with a range of seeds: render one seed, given with --seed N");
  return {
    seedFirst: seedFirst ?? 1,
    seedLast: seedLast ?? 1,
    nodeCount,
    durationMs,
    faults,
    traceFile,
    json,
    workers,
    scenarioFile,
    seedGiven: seedFlag !== undefined,
    shrinkFile,
    shrinkRunsMax,
    renderFile,
    replayFile,
  };
}
