/**
 * `npm run sim`: runs the simulator over one seed or a range of seeds, in parallel worker threads.
 *
 *   npm run sim -- [--seed N | --seeds A..B] [--nodes N] [--duration 60s] [--faults none|swarm]
 *                  [--trace FILE] [--json] [--workers N]
 *
 * With --json, stdout carries exactly one JSON object per seed and a final summary line; progress and
 * logs go to stderr. Exit codes: 0 every seed passed, 2 bad arguments, 3 a liveness failure, 4 a
 * correctness failure (safety or linearizability), 5 the simulator itself crashed.
 */
import { writeFileSync } from "node:fs";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runSeed, type RunOptions, type RunResult } from "./run.ts";
import { parseSimArguments, SimUsageError, type SimArguments } from "./arguments.ts";

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
  const base: Omit<RunOptions, "seed"> = {
    nodeCount: args.nodeCount,
    durationMs: args.durationMs,
    faults: args.faults,
    traceMessages: true,
  };
  const seeds: number[] = [];
  for (let seed = args.seedFirst; seed <= args.seedLast; seed++) seeds.push(seed);
  const startMs = Date.now();
  const results: RunResult[] = [];
  const report = (result: RunResult): void => {
    results.push(result);
    printResult(result, args, results.length, seeds.length);
  };

  if (args.traceFile !== undefined || seeds.length === 1 || args.workers <= 1) {
    for (const seed of seeds) {
      const result = runSeed({ ...base, seed, keepTrace: args.traceFile !== undefined });
      if (args.traceFile !== undefined && result.traceLines) {
        const file = seeds.length === 1 ? args.traceFile : `${args.traceFile}.${seed}`;
        writeFileSync(file, result.traceLines.join("\n") + "\n");
        process.stderr.write(`trace of seed ${seed} written to ${file} (${result.traceLines.length} lines)\n`);
      }
      report({ ...result, traceLines: undefined });
    }
  } else {
    await runInWorkers(seeds, base, Math.min(args.workers, seeds.length), report);
  }

  const failed = results.filter((r) => !r.ok);
  const summary = {
    seeds: results.length,
    failed: failed.length,
    passed: results.length - failed.length,
    failedSeeds: failed.map((r) => r.seed),
    simulatedMs: results.reduce((sum, r) => sum + r.simulatedMs, 0),
    wallMs: Date.now() - startMs,
    events: results.reduce((sum, r) => sum + r.events, 0),
  };
  if (args.json) process.stdout.write(JSON.stringify({ summary }) + "\n");
  else {
    process.stderr.write(
      `\n${summary.passed} of ${summary.seeds} seeds passed in ${(summary.wallMs / 1000).toFixed(1)} s ` +
        `(${(summary.simulatedMs / 1000).toFixed(0)} simulated seconds, ${(summary.simulatedMs / Math.max(1, summary.wallMs)).toFixed(0)}x real time)\n`,
    );
    if (failed.length > 0) process.stderr.write(`failed seeds: ${summary.failedSeeds.join(", ")}\n`);
  }
  process.exitCode = exitCode(failed);
}

function exitCode(failed: RunResult[]): number {
  if (failed.length === 0) return 0;
  const all = failed.flatMap((r) => r.violations);
  if (all.some((v) => v.startsWith("Crash:"))) return 5;
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
  process.stderr.write(
    `${status} seed ${result.seed}: ${(result.simulatedMs / 1000).toFixed(1)} s simulated in ${(result.wallMs / 1000).toFixed(2)} s, ` +
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
  seeds: number[],
  base: Omit<RunOptions, "seed">,
  workerCount: number,
  report: (result: RunResult) => void,
): Promise<void> {
  const queue = [...seeds];
  const buffered = new Map<number, RunResult>();
  let nextToReport = 0;
  // Report in seed order, so output is the same however the workers interleave.
  const accept = (result: RunResult): void => {
    buffered.set(result.seed, result);
    while (nextToReport < seeds.length && buffered.has(seeds[nextToReport]!)) {
      report(buffered.get(seeds[nextToReport]!)!);
      buffered.delete(seeds[nextToReport]!);
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
        const feed = (): void => {
          const seed = queue.shift();
          worker.send(seed ?? -1);
        };
        worker.on("message", (result: RunResult) => {
          accept(result);
          feed();
        });
        worker.on("error", reject);
        worker.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`Simulator worker exited with code ${code}`))));
        feed();
      });
    }),
  );
}
