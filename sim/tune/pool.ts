/**
 * Runs tuning jobs over a few child processes (sim/tune/worker.ts), most expensive first, and returns
 * the results in job order, so the output does not depend on how the workers interleave. With one
 * worker, jobs run in this process (tests, debugging, and machines with one core).
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { jobCost, jobUnits, runJob, type TuneJob, type TuneJobResult } from "./jobs.ts";

export interface PoolOptions {
  readonly workers: number;
  /** Called after each job with the units done so far and in total. */
  readonly onProgress?: (unitsDone: number, unitsTotal: number) => void;
}

export class TuneJobError extends Error {
  override name = "TuneJobError";
}

export async function runJobs(jobs: readonly TuneJob[], options: PoolOptions): Promise<TuneJobResult[]> {
  const unitsTotal = jobs.reduce((sum, job) => sum + jobUnits(job), 0);
  let unitsDone = 0;
  const results = new Array<TuneJobResult | undefined>(jobs.length);
  const order = jobs.map((job, index) => ({ index, cost: jobCost(job) })).sort((a, b) => b.cost - a.cost || a.index - b.index);
  const accept = (index: number, result: TuneJobResult): void => {
    results[index] = result;
    unitsDone += jobUnits(jobs[index]!);
    options.onProgress?.(unitsDone, unitsTotal);
  };
  options.onProgress?.(0, unitsTotal);
  const workerCount = Math.max(1, Math.min(options.workers, jobs.length));
  if (workerCount === 1) {
    for (const { index } of order) {
      accept(index, runJob(jobs[index]!));
      // Let the progress bar and signals through between jobs.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } else {
    const queue = order.map(({ index }) => index);
    await Promise.all(Array.from({ length: workerCount }, () => runWorker(jobs, queue, accept)));
  }
  return results.map((result, index) => {
    if (result === undefined) throw new TuneJobError(`Tuning job ${index} produced no result`);
    return result;
  });
}

function runWorker(jobs: readonly TuneJob[], queue: number[], accept: (index: number, result: TuneJobResult) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = fork(fileURLToPath(new URL("./worker.ts", import.meta.url)), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    let failed = false;
    const feed = (): void => {
      const index = queue.shift();
      child.send(index === undefined ? { index: -1 } : { index, job: jobs[index] });
    };
    child.on("message", (message: { index: number; result?: TuneJobResult; error?: string }) => {
      if (message.error !== undefined || message.result === undefined) {
        failed = true;
        queue.length = 0;
        child.kill();
        reject(new TuneJobError(`Tuning job ${message.index} failed in a worker: ${message.error ?? "no result"}`));
        return;
      }
      accept(message.index, message.result);
      feed();
    });
    child.on("error", (error) => {
      failed = true;
      reject(error);
    });
    child.on("exit", (code) => {
      if (failed) return;
      if (code === 0) resolve();
      else reject(new TuneJobError(`Tuning worker exited with code ${code}`));
    });
    feed();
  });
}
