/**
 * `npm run mutate`: plants each mutation of the catalogue (sim/mutate/mutations.ts) alone into a copy
 * of the code and runs the swarm over seeds until one fails, then prints, per mutation, the first
 * failing seed, the violated property and the seeds per minute. The unpatched code runs the same seeds
 * first and must pass them all.
 *
 *   npm run mutate -- [--only ID,ID...] [--seeds A..B] [--jobs N] [--out FILE.md] [--json] [--no-baseline] [--check]
 *
 * --seeds defaults to 1..100 (the bar: every mutation caught within 100 seeds). --jobs runs that many
 * mutations side by side (default 2). --check only verifies that every mutation still plants (each
 * original text is in its file exactly once) and exits. Exit codes: 0 every mutation caught and the
 * baseline clean, 1 otherwise, 2 bad arguments or a mutation that no longer plants.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { MUTATIONS, type Mutation } from "./mutations.ts";
import { huntMutation, huntSeeds, stopAllHunts, type HuntResult, type SeedRange } from "./hunt.ts";
import { mutatedText, MutationError } from "./plant.ts";
import { formatMutationReport } from "./report.ts";

const USAGE = "Usage: npm run mutate -- [--only ID,ID...] [--seeds A..B] [--jobs N] [--out FILE.md] [--json] [--no-baseline] [--check]";
const JOBS_MAX = 16;
const SEED_MAX = 2 ** 31;

interface Arguments {
  readonly only: readonly string[] | undefined;
  readonly range: SeedRange;
  readonly jobs: number;
  readonly out: string | undefined;
  readonly json: boolean;
  readonly baseline: boolean;
  readonly check: boolean;
}

class UsageError extends Error {}

function parseArguments(argv: readonly string[]): Arguments {
  let only: string[] | undefined;
  let range: SeedRange = { first: 1, last: 100 };
  let jobs = 2;
  let out: string | undefined;
  let json = false;
  let baseline = true;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`Missing value for ${arg}`);
      return next;
    };
    if (arg === "--only") only = value().split(",").map((id) => id.trim()).filter((id) => id !== "");
    else if (arg === "--seeds") {
      const text = value();
      const match = /^(\d+)\.\.(\d+)$/.exec(text);
      if (match === null || Number(match[1]) < 1 || Number(match[1]) > Number(match[2]) || Number(match[2]) > SEED_MAX) {
        throw new UsageError(`--seeds takes a range A..B with 1 <= A <= B <= ${SEED_MAX}, received "${text}"`);
      }
      range = { first: Number(match[1]), last: Number(match[2]) };
    } else if (arg === "--jobs") {
      const text = value();
      jobs = Number(text);
      if (!/^\d+$/.test(text) || jobs < 1 || jobs > JOBS_MAX) throw new UsageError(`--jobs takes a number from 1 to ${JOBS_MAX}, received "${text}"`);
    } else if (arg === "--out") out = value();
    else if (arg === "--json") json = true;
    else if (arg === "--no-baseline") baseline = false;
    else if (arg === "--check") check = true;
    else throw new UsageError(`Unknown argument "${arg}"`);
  }
  if (only !== undefined) {
    const known = new Set(MUTATIONS.map((mutation) => mutation.id));
    const unknown = only.filter((id) => !known.has(id));
    if (unknown.length > 0) throw new UsageError(`Unknown mutation ${unknown.map((id) => `"${id}"`).join(", ")}; the catalogue has: ${[...known].join(", ")}`);
  }
  return { only, range, jobs, out, json, baseline, check };
}

async function main(): Promise<number> {
  let args: Arguments;
  try {
    args = parseArguments(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  const root = resolve(import.meta.dirname, "../..");
  const chosen = args.only === undefined ? MUTATIONS : MUTATIONS.filter((mutation) => args.only!.includes(mutation.id));
  // Every mutation must plant before anything runs: a stale one is a broken catalogue, not a pass.
  const stale: string[] = [];
  for (const mutation of chosen) {
    try {
      mutatedText(root, mutation);
    } catch (error) {
      if (!(error instanceof MutationError)) throw error;
      stale.push(error.message);
    }
  }
  if (stale.length > 0) {
    process.stderr.write(`${stale.join("\n")}\n`);
    return 2;
  }
  if (args.check) {
    process.stderr.write(`mutate: all ${chosen.length} mutations plant cleanly\n`);
    return 0;
  }
  process.on("SIGINT", () => {
    stopAllHunts();
    process.stderr.write("\nmutate: interrupted; stopped the simulator runs and removed their copies\n");
    process.exit(130);
  });

  const seedsText = `${args.range.first}..${args.range.last}`;
  const started = Date.now();
  let baseline: HuntResult | undefined;
  if (args.baseline) {
    process.stderr.write(`mutate: baseline: the unpatched code over swarm seeds ${seedsText}\n`);
    baseline = await huntSeeds(root, "baseline", args.range, (seed) => progress(`baseline seed ${seed}`));
    clearProgress();
    if (baseline.caughtAtSeed !== undefined) {
      process.stderr.write(`mutate: the unpatched code fails swarm seed ${baseline.caughtAtSeed}: ${baseline.violation}\nFix that first: a mutation caught by a failing seed proves nothing.\n`);
      return 1;
    }
    process.stderr.write(`mutate: baseline clean: ${baseline.seedsRun} seeds in ${(baseline.wallMs / 1000).toFixed(1)} s\n`);
  }

  const results: HuntResult[] = new Array(chosen.length);
  let next = 0;
  let done = 0;
  const current = new Map<string, number>();
  const worker = async (): Promise<void> => {
    for (;;) {
      const index = next++;
      if (index >= chosen.length) return;
      const mutation = chosen[index]!;
      const result = await huntMutation(root, mutation, args.range, (seed) => {
        current.set(mutation.id, seed);
        progress([...current].map(([id, at]) => `${id} @${at}`).join("  "));
      });
      current.delete(mutation.id);
      results[index] = result;
      done++;
      clearProgress();
      process.stderr.write(`mutate: [${done}/${chosen.length}] ${describe(mutation, result)}\n`);
      if (args.json) process.stdout.write(`${JSON.stringify({ ...result, rule: mutation.rule, file: mutation.file })}\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.jobs, chosen.length) }, () => worker()));

  const report = formatMutationReport(chosen, results, { seeds: seedsText, baseline, wallMs: Date.now() - started });
  if (!args.json) process.stdout.write(`${report.table}\n`);
  if (args.out !== undefined) {
    writeFileSync(args.out, report.markdown);
    process.stderr.write(`mutate: wrote ${args.out}\n`);
  }
  const missed = results.filter((result) => result.caughtAtSeed === undefined);
  process.stderr.write(`mutate: ${results.length - missed.length} of ${results.length} mutations caught within seeds ${seedsText}${missed.length > 0 ? `; missed: ${missed.map((result) => result.id).join(", ")}` : ""}\n`);
  return missed.length === 0 ? 0 : 1;
}

function describe(mutation: Mutation, result: HuntResult): string {
  if (result.caughtAtSeed === undefined) return `${mutation.id}: NOT caught in ${result.seedsRun} seeds (${(result.wallMs / 1000).toFixed(1)} s)`;
  return `${mutation.id}: caught at seed ${result.caughtAtSeed} (${result.property}) after ${result.seedsRun} seeds, ${(result.wallMs / 1000).toFixed(1)} s`;
}

let progressShown = false;
function progress(text: string): void {
  if (!process.stderr.isTTY) return;
  process.stderr.write(`\r\x1b[2K${text.slice(0, (process.stderr.columns ?? 100) - 1)}`);
  progressShown = true;
}
function clearProgress(): void {
  if (progressShown) process.stderr.write("\r\x1b[2K");
  progressShown = false;
}

process.exitCode = await main();
