/**
 * `npm run tune`: election-timeout tuning experiments, running the production node's code (RaftNode
 * over the Raft core, unchanged) inside the deterministic simulator.
 *
 *   npm run tune                                  verify the operations guide's three profiles
 *   npm run tune -- --figure16                    repeat the Raft paper's Figure 16
 *   npm run tune -- --rtt 35ms --jitter 10ms      recommend a timing for a measured network
 *   npm run tune -- --out docs/tune               the same, writing the committed reports
 *
 * Tables go to stdout (or, with --json, one JSON object per line and nothing else); the progress bar
 * and notes go to stderr; the Markdown report and SVG charts go into --out DIR, and without --out
 * nowhere (reports.ts). Exit codes: 0 done, 2 bad arguments, 5 the experiment itself failed.
 */
import { parseTuneArguments, TuneUsageError, USAGE, type TuneArguments } from "./arguments.ts";
import { collectFigure16, figure16Charts, figure16JsonLines, figure16Markdown, figure16TerminalReport, planFigure16 } from "./figure16-run.ts";
import { formatDuration, ProgressBar } from "./progress.ts";
import { runJobs } from "./pool.ts";
import { describeMachine, notWrittenNote, tuneCommand, writeReports, type RunRecord } from "./reports.ts";
import { collectProfiles, planProfiles, profilesCharts, profilesJsonLines, profilesMarkdown, profilesTerminalReport } from "./profiles-run.ts";
import {
  collectRecommendation,
  planRecommendation,
  recommendationChart,
  recommendationJsonLines,
  recommendationMarkdown,
  recommendationTerminalReport,
} from "./recommend-run.ts";

await main();

async function main(): Promise<void> {
  let args: TuneArguments;
  try {
    args = parseTuneArguments(process.argv.slice(2));
  } catch (error) {
    if (error instanceof TuneUsageError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  try {
    if (args.mode === "figure16") await runFigure16(args);
    else if (args.mode === "recommend") await runRecommendation(args);
    else await runProfiles(args);
  } catch (error) {
    process.stderr.write(`Tuning run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(5);
  }
}

async function runFigure16(args: TuneArguments): Promise<void> {
  const startMs = Date.now();
  const plan = planFigure16(args);
  const results = await runJobs(plan.jobs, { workers: args.workers, onProgress: progress("Figure 16", "trials") });
  const outcome = collectFigure16(plan, results);
  const run = runRecord(args, startMs);
  emit(args, figure16TerminalReport(outcome), figure16JsonLines(outcome));
  const files = new Map(figure16Charts(outcome));
  files.set("figure16.md", figure16Markdown(outcome, { run, trials: args.trials }));
  writeOutputs(args, files, run);
}

async function runProfiles(args: TuneArguments): Promise<void> {
  const startMs = Date.now();
  const plan = planProfiles(args);
  const results = await runJobs(plan.jobs, { workers: args.workers, onProgress: progress("Profiles", "runs") });
  const outcome = collectProfiles(plan, results);
  const run = runRecord(args, startMs);
  emit(args, profilesTerminalReport(outcome), profilesJsonLines(outcome));
  const files = new Map(profilesCharts(outcome));
  files.set("profiles.md", profilesMarkdown(outcome, { run, seeds: args.seeds, quietDurationMs: plan.quietDurationMs, long: args.long }));
  writeOutputs(args, files, run);
}

async function runRecommendation(args: TuneArguments): Promise<void> {
  const startMs = Date.now();
  const plan = planRecommendation(args);
  const results = await runJobs(plan.jobs, { workers: args.workers, onProgress: progress("Recommendation", "runs") });
  const outcome = collectRecommendation(plan, results);
  const run = runRecord(args, startMs);
  emit(args, recommendationTerminalReport(outcome), recommendationJsonLines(outcome));
  const files = new Map<string, string>([
    ["recommendation.md", recommendationMarkdown(outcome, { run, quietDurationMs: plan.quietDurationMs })],
    ["recommendation-failover.svg", recommendationChart(outcome)],
  ]);
  writeOutputs(args, files, run);
}

function progress(label: string, unit: string): (done: number, total: number) => void {
  const bar = new ProgressBar({ label, unit });
  return (done, total) => bar.update(done, total);
}

function emit(args: TuneArguments, table: string, jsonLines: readonly string[]): void {
  if (args.json) process.stdout.write(jsonLines.map((line) => `${line}\n`).join(""));
  else process.stdout.write(`${table}\n`);
}

function runRecord(args: TuneArguments, startMs: number): RunRecord {
  return { command: tuneCommand(process.argv.slice(2)), wallMs: Date.now() - startMs, workers: args.workers, machine: describeMachine() };
}

function writeOutputs(args: TuneArguments, files: ReadonlyMap<string, string>, run: RunRecord): void {
  const written = writeReports(args.outDirectory, files);
  if (written.length === 0) process.stderr.write(`${notWrittenNote(files)} (${formatDuration(run.wallMs)})\n`);
  else process.stderr.write(`Wrote ${written.join(", ")} (${formatDuration(run.wallMs)})\n`);
}
