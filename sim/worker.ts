/**
 * A child process that runs seeds for `npm run sim`: it receives seed tasks over IPC (a seed of the
 * built-in run, or of a scenario file), runs each, and sends back the result. Child processes rather
 * than worker threads, because tsx's loader does not reach worker threads on Node 20.
 */
import type { SeedTask } from "./cli.ts";
import { runSeed, type RunOptions, type RunResult } from "./run.ts";
import { loadScenarioFile, runScenario, type Scenario } from "./scenario/index.ts";

/** The built-in run's options, the same for every seed. */
export type WorkerOptions = Omit<RunOptions, "seed">;

const base = JSON.parse(process.env.PGRAFT_SIM_OPTIONS ?? "{}") as WorkerOptions;
const scenarios = new Map<string, Scenario>();

process.on("message", (task: SeedTask | -1) => {
  if (task === -1) {
    process.disconnect();
    return;
  }
  let result: RunResult;
  if (task.scenarioFile !== undefined) {
    let scenario = scenarios.get(task.scenarioFile);
    if (scenario === undefined) {
      scenario = loadScenarioFile(task.scenarioFile);
      scenarios.set(task.scenarioFile, scenario);
    }
    result = runScenario(scenario, { seed: task.seed });
  } else {
    result = runSeed({ ...base, seed: task.seed });
  }
  process.send!({ ...result, traceLines: undefined });
});
