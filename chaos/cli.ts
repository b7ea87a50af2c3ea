/**
 * `npm run chaos`: runs scenario files against real nodes, every Raft link behind Toxiproxy.
 *
 *   npm run chaos -- --scenario FILE|DIR [--provider local|testcontainers] [--seed N] [--repeat N]
 *                    [--json] [--toxiproxy-url URL] [--no-postgres] [--timeline-dir DIR] [--slack MS]
 *   npm run chaos -- --setup [--provider NAME]
 *
 * Progress goes to stderr; at the end a table (or, with --json, one JSON object per run and a summary
 * line on stdout, nothing else). Exit codes: 0 every run passed, 2 bad arguments or a malformed file,
 * 3 a liveness failure, 4 a correctness failure, 5 a run could not be made (including a single named
 * file that is simulator-only). Ctrl-C tears down the run in progress (processes, proxies, directories)
 * and exits 130.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomInt } from "node:crypto";
import { loadScenarioPath, type Scenario } from "../sim/scenario/index.ts";
import { loadProvider } from "./providers/registry.ts";
import type { ClusterProvider } from "./providers/provider.ts";
import { ChaosUsageError, parseChaosArguments, type ChaosArguments } from "./runner/arguments.ts";
import { formatReasons, formatTable } from "./runner/report.ts";
import { EXIT_COULD_NOT_RUN, EXIT_USAGE, exitCodeOf, type ChaosRunResult } from "./runner/result.ts";
import { runChaosScenario } from "./runner/run.ts";

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

await main();

async function main(): Promise<void> {
  let args: ChaosArguments;
  try {
    args = parseChaosArguments(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof ChaosUsageError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(EXIT_USAGE);
  }
  const note = (line: string): void => void process.stderr.write(`chaos: ${line}\n`);
  let module: Awaited<ReturnType<typeof loadProvider>>;
  try {
    module = await loadProvider(args.provider);
  } catch (error) {
    note((error as Error).message);
    process.exit(EXIT_COULD_NOT_RUN);
  }
  if (args.setup) {
    if (module.setup === undefined) {
      note(`the ${args.provider} provider needs no setup`);
      return;
    }
    await module.setup({ projectRoot, note });
    if (args.scenarioPath === undefined) return;
  }
  const scenarios = loadScenarios(args.scenarioPath!);
  const single = !(existsSync(args.scenarioPath!) && statSync(args.scenarioPath!).isDirectory());
  const firstSeed = args.seed ?? randomInt(1, 2 ** 31 - 1);
  if (args.seed === undefined) note(`seed ${firstSeed} (drawn; pass --seed ${firstSeed} to repeat the same choices)`);
  const timelineDir = args.timelineDir ?? join(tmpdir(), "pgraft-chaos-timelines");
  mkdirSync(timelineDir, { recursive: true });

  const abort = new AbortController();
  let current: ClusterProvider | undefined;
  let interrupts = 0;
  const onSignal = (signal: string): void => {
    interrupts++;
    note(`${signal}: tearing everything down`);
    abort.abort();
    if (interrupts > 1) {
      current?.destroyNow?.();
      process.exit(130);
    }
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("exit", () => current?.destroyNow?.());

  // A killed earlier run's leftovers go first.
  const cleaner = module.createProvider({ projectRoot, note, label: "clean" });
  const stale = await cleaner.cleanStale();
  await cleaner.destroy();
  if (stale.killed.length + stale.removed.length > 0) note(`cleaned a killed earlier run: killed ${stale.killed.join(", ") || "nothing"}; removed ${stale.removed.length} paths`);

  const results: ChaosRunResult[] = [];
  const total = scenarios.length * args.repeat;
  for (const scenario of scenarios) {
    for (let r = 0; r < args.repeat; r++) {
      if (abort.signal.aborted) break;
      const seed = firstSeed + r;
      note(`[${results.length + 1}/${total}] ${scenario.name} seed ${seed} (${(scenario.durationMs / 1000).toFixed(0)} s)`);
      const provider = module.createProvider({ projectRoot, note, label: scenario.name });
      current = provider;
      const timelineFile = join(timelineDir, `${scenario.name}-${seed}-${Date.now()}.json`);
      const result = await runChaosScenario({
        scenario,
        provider,
        seed,
        postgres: args.postgres,
        timelineFile,
        note,
        signal: abort.signal,
        ...(args.toxiproxyUrl !== undefined ? { toxiproxyUrl: args.toxiproxyUrl } : {}),
        ...(args.slackMs !== undefined ? { slackMs: args.slackMs } : {}),
      });
      current = undefined;
      const shown = result.status === "simulator-only" ? { ...result, timelineFile: undefined } : result;
      results.push(shown);
      if (args.json) process.stdout.write(`${JSON.stringify(shown)}\n`);
      note(`${scenario.name} seed ${seed}: ${result.status}${result.reasons[0] !== undefined ? `: ${result.reasons[0]}` : ""}`);
      if (result.status === "simulator-only") break;
    }
  }
  const summary = {
    runs: results.length,
    passed: results.filter((result) => result.status === "passed").length,
    simulatorOnly: results.filter((result) => result.status === "simulator-only").map((result) => result.scenario),
    failed: results.filter((result) => result.status !== "passed" && result.status !== "simulator-only").map((result) => `${result.scenario}:${result.seed}`),
    acknowledgedLost: results.reduce((sum, result) => sum + result.acknowledgedLost, 0),
    interrupted: abort.signal.aborted,
  };
  if (args.json) process.stdout.write(`${JSON.stringify({ summary })}\n`);
  else {
    process.stderr.write(`\n${formatTable(results)}\n`);
    const reasons = formatReasons(results);
    if (reasons !== "") process.stderr.write(`\n${reasons}\n`);
    process.stderr.write(
      `\n${summary.passed} of ${summary.runs} runs passed; ${summary.simulatorOnly.length} simulator-only; acknowledged writes lost: ${summary.acknowledgedLost}\n`,
    );
  }
  process.exitCode = abort.signal.aborted ? 130 : exitCodeOf(results, single);
  process.exit();
}

/** The scenario file, or every *.yaml in a folder, each checked; a malformed one ends the command (exit 2). */
function loadScenarios(path: string): Scenario[] {
  const { scenarios, problems } = loadScenarioPath(path);
  if (problems.length > 0) {
    process.stderr.write(`${problems.join("\n")}\n`);
    process.exit(EXIT_USAGE);
  }
  return scenarios;
}
