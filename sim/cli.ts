/**
 * `npm run sim`: runs the simulator over one seed or a range of seeds, in parallel worker processes.
 *
 *   npm run sim -- [--seed N | --seeds A..B] [--scenario FILE|FOLDER] [--nodes N] [--duration 60s]
 *                  [--faults none|swarm] [--trace FILE] [--json] [--workers N]
 *                  [--shrink OUT.yaml [--shrink-runs N]] [--render OUT.svg]
 *
 * With --scenario, each seed runs the scenario file (scenarios/README.md) instead of the built-in
 * run, or every scenario file of a folder (`--scenario scenarios`); a file that carries a `seed` runs
 * that seed when none is given. --shrink searches a failing seed
 * (a scenario's or a swarm seed's) for a smaller scenario that still fails and writes it; --render draws
 * the seed's trace as an SVG timeline.
 *
 * With --json, stdout carries exactly one JSON object per seed and a final summary line; progress and
 * logs go to stderr. Exit codes: 0 every seed passed, 2 bad arguments (or a malformed scenario file), 3
 * a liveness failure, 4 a correctness failure (safety, linearizability, or a failed expectation), 5 the
 * simulator itself crashed or the cluster lacks what the scenario needs.
 */
import { writeFileSync } from "node:fs";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runSeed, type RunResult } from "./run.ts";
import { parseSimArguments, SimUsageError, type SimArguments } from "./arguments.ts";
import { renderTrace } from "./render.ts";
import { loadScenarioPath, runScenario, ScenarioError, type Scenario } from "./scenario/index.ts";
import { describeSize, ShrinkError, shrinkScenario, swarmScenario } from "./shrink.ts";
import type { WorkerOptions } from "./worker.ts";
import { ReplayError, replayScenario } from "./replay.ts";

await main();

async function main(): Promise<void> {
  let args: SimArguments;
  try {
    args = parseSimArguments(process.argv.slice(2));
  } catch (error) {
    if (error instanceof SimUsageError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const scenarios = args.replayFile !== undefined ? loadReplay(args.replayFile) : loadScenarios(args.scenarioFile);
  if (scenarios.length > 1 && (args.shrinkFile !== undefined || args.renderFile !== undefined)) {
    process.stderr.write(`Cannot use --${args.shrinkFile !== undefined ? "shrink" : "render"} with a folder of scenarios: name one scenario file\n`);
    process.exit(2);
  }
  const base: WorkerOptions = {
    nodeCount: args.nodeCount,
    durationMs: args.durationMs,
    faults: args.faults,
    traceMessages: true,
  };
  const tasks: SeedTask[] = [];
  const seedsOf = (scenario: Scenario | undefined): number[] => {
    if (!args.seedGiven && scenario?.seed !== undefined) return [scenario.seed];
    return Array.from({ length: args.seedLast - args.seedFirst + 1 }, (_, i) => args.seedFirst + i);
  };
  for (const scenario of scenarios.length > 0 ? scenarios : [undefined]) {
    for (const seed of seedsOf(scenario)) tasks.push({ index: tasks.length, seed, scenarioFile: scenario?.file });
  }
  const byFile = new Map(scenarios.map((scenario) => [scenario.file, scenario]));
  const runOne = (task: SeedTask, keepTrace: boolean): RunResult => {
    const scenario = task.scenarioFile !== undefined ? byFile.get(task.scenarioFile)! : undefined;
    return scenario !== undefined ? runScenario(scenario, { seed: task.seed, keepTrace }) : runSeed({ ...base, seed: task.seed, keepTrace });
  };
  const startMs = Date.now();
  const results: RunResult[] = [];
  const report = (result: RunResult): void => {
    results.push(result);
    printResult(result, args, results.length, tasks.length);
  };

  const keepTrace = args.traceFile !== undefined || args.renderFile !== undefined;
  if (keepTrace || tasks.length === 1 || args.workers <= 1) {
    for (const task of tasks) {
      const result = runOne(task, keepTrace);
      if (args.traceFile !== undefined && result.traceLines) {
        const name = scenarios.length > 1 ? `.${byFile.get(task.scenarioFile!)!.name}` : "";
        const file = tasks.length === 1 ? args.traceFile : `${args.traceFile}${name}.${task.seed}`;
        writeFileSync(file, result.traceLines.join("\n") + "\n");
        process.stderr.write(`trace of seed ${task.seed} written to ${file} (${result.traceLines.length} lines)\n`);
      }
      if (args.renderFile !== undefined && result.traceLines) {
        writeFileSync(args.renderFile, renderTrace(result.traceLines));
        process.stderr.write(`timeline of seed ${task.seed} drawn in ${args.renderFile}\n`);
      }
      report({ ...result, traceLines: undefined });
    }
  } else {
    await runInWorkers(tasks, base, Math.min(args.workers, tasks.length), report);
  }

  const failed = results.filter((r) => !r.ok);
  const summary = {
    seeds: results.length,
    failed: failed.length,
    passed: results.length - failed.length,
    failedSeeds: failed.map((r) => r.seed),
    ...(scenarios.length > 0 ? { scenarios: scenarios.length, failedRuns: failed.map(describeRun) } : {}),
    simulatedMs: results.reduce((sum, r) => sum + r.simulatedMs, 0),
    wallMs: Date.now() - startMs,
    events: results.reduce((sum, r) => sum + r.events, 0),
  };
  if (args.json) process.stdout.write(JSON.stringify({ summary }) + "\n");
  else {
    process.stderr.write(
      `\n${summary.passed} of ${summary.seeds} ${scenarios.length > 0 ? "scenario runs" : "seeds"} passed in ${(summary.wallMs / 1000).toFixed(1)} s ` +
        `(${(summary.simulatedMs / 1000).toFixed(0)} simulated seconds, ${(summary.simulatedMs / Math.max(1, summary.wallMs)).toFixed(0)}x real time)\n`,
    );
    if (failed.length > 0) process.stderr.write(`failed seeds: ${failed.map(describeRun).join(", ")}\n`);
  }
  process.exitCode = exitCode(failed);
  if (args.shrinkFile !== undefined && failed.length === 1) shrink(args, scenarios[0], failed[0]!);
  else if (args.shrinkFile !== undefined) process.stderr.write(`seed ${tasks[0]!.seed} passed: there is no failure to shrink\n`);
}

/** One seed of the built-in run, or of a scenario file. */
export interface SeedTask {
  readonly index: number;
  readonly seed: number;
  readonly scenarioFile: string | undefined;
}

/** --replay: the chaos timeline as a scenario (sim/replay.ts); a bad file ends the command (exit 2). */
function loadReplay(file: string): Scenario[] {
  try {
    const replay = replayScenario(file);
    process.stderr.write(`replay: ${file} as the scenario ${replay.file}${replay.skipped.length > 0 ? ` (${replay.skipped.length} failed steps left out)` : ""}\n`);
    return [replay.scenario];
  } catch (error) {
    if (!(error instanceof ReplayError) && !(error instanceof ScenarioError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}

/** The scenario file, or every *.yaml in a folder, each checked; a malformed one ends the command (exit 2). */
function loadScenarios(path: string | undefined): Scenario[] {
  if (path === undefined) return [];
  const { scenarios, problems } = loadScenarioPath(path);
  if (problems.length > 0) {
    process.stderr.write(`${problems.join("\n")}\n`);
    process.exit(2);
  }
  return scenarios;
}

function describeRun(result: RunResult): string {
  const scenario = (result as { scenario?: string }).scenario;
  return scenario !== undefined ? `${scenario}:${result.seed}` : String(result.seed);
}

/** --shrink: the failing seed's scenario (or the swarm seed as a scenario), made smaller, written out. */
function shrink(args: SimArguments, scenario: Scenario | undefined, failure: RunResult): void {
  const out = args.shrinkFile!;
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    let start = scenario;
    if (start === undefined) {
      log(`shrink: recording the fault schedule of swarm seed ${failure.seed}`);
      start = swarmScenario({ seed: failure.seed, nodeCount: args.nodeCount, durationMs: args.durationMs }).scenario;
      const replay = runScenario(start, { seed: failure.seed, traceMessages: false });
      if (replay.ok) {
        log(`shrink: swarm seed ${failure.seed} as a scenario passes (its failure depends on timing a scenario file does not capture); nothing written`);
        return;
      }
    }
    const result = shrinkScenario(start, { seed: failure.seed, runsMax: args.shrinkRunsMax, log, file: out });
    writeFileSync(out, result.text);
    log(`shrink: wrote ${out}: ${describeSize(result.shrunkSize)} (was ${describeSize(result.originalSize)})`);
    log(`shrink: it fails on its own with: ${result.result.violations[0]!.split("\n")[0]}`);
    log(`shrink: replay: npm run sim -- --scenario ${out}`);
  } catch (error) {
    if (!(error instanceof ShrinkError)) throw error;
    log(error.message);
  }
}

function exitCode(failed: RunResult[]): number {
  if (failed.length === 0) return 0;
  const all = failed.flatMap((r) => r.violations);
  if (all.some((v) => v.startsWith("Crash:") || v.startsWith("Unsupported:"))) return 5;
  if (all.some((v) => !v.startsWith("Liveness:"))) return 4;
  return 3;
}

function printResult(result: RunResult, args: SimArguments, done: number, total: number): void {
  if (args.json) {
    const { recentEvents, traceLines, ...line } = result;
    void traceLines;
    process.stdout.write(JSON.stringify(result.ok ? line : { ...line, recentEvents }) + "\n");
    if (total > 1) process.stderr.write(`\r${done}/${total} seeds`);
    if (done === total && total > 1) process.stderr.write("\n");
    return;
  }
  const status = result.ok ? "ok  " : "FAIL";
  const scenario = (result as { scenario?: string }).scenario;
  process.stderr.write(
    `${status} ${scenario !== undefined ? `${scenario} ` : ""}seed ${result.seed}: ${(result.simulatedMs / 1000).toFixed(1)} s simulated in ${(result.wallMs / 1000).toFixed(2)} s, ` +
      `${result.events} events, ${result.elections} leaders, ${result.operations} ops (${result.acknowledgedWrites} writes acknowledged), ` +
      `${result.faultActions} faults${result.recoveryMs !== null ? `, recovered in ${result.recoveryMs.toFixed(0)} ms` : ""}\n`,
  );
  if (!result.ok) {
    process.stderr.write(`  world: ${result.knobs}\n`);
    for (const violation of result.violations) process.stderr.write(`  violation: ${violation}\n`);
    process.stderr.write(`  last events:\n${(result.recentEvents ?? []).map((l) => `    ${l}`).join("\n")}\n`);
    process.stderr.write(`  replay: ${result.replay}\n`);
  }
}

async function runInWorkers(
  tasks: readonly SeedTask[],
  base: WorkerOptions,
  workerCount: number,
  report: (result: RunResult) => void,
): Promise<void> {
  const queue = [...tasks];
  const buffered = new Map<number, RunResult>();
  let nextToReport = 0;
  // Report in task order, so output is the same however the workers interleave.
  const accept = (index: number, result: RunResult): void => {
    buffered.set(index, result);
    while (nextToReport < tasks.length && buffered.has(nextToReport)) {
      report(buffered.get(nextToReport)!);
      buffered.delete(nextToReport);
      nextToReport++;
    }
  };
  await Promise.all(
    Array.from({ length: workerCount }, () => {
      return new Promise<void>((resolve, reject) => {
        const worker = fork(fileURLToPath(new URL("./worker.ts", import.meta.url)), [], {
          execArgv: ["--import", "tsx"],
          env: { ...process.env, PGRAFT_SIM_OPTIONS: JSON.stringify(base) },
          stdio: ["ignore", "ignore", "inherit", "ipc"],
        });
        let current: SeedTask | undefined;
        const feed = (): void => {
          current = queue.shift();
          worker.send(current ?? -1);
        };
        worker.on("message", (result: RunResult) => {
          accept(current!.index, result);
          feed();
        });
        worker.on("error", reject);
        worker.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`Simulator worker exited with code ${code}`))));
        feed();
      });
    }),
  );
}
