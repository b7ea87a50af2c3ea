/**
 * A child process that runs seeds for `npm run sim`: it receives seeds over IPC, runs each, and sends
 * back the result. Child processes rather than worker threads, because tsx's loader does not reach
 * worker threads on Node 20.
 */
import { runSeed, type RunOptions } from "./run.ts";

const base = JSON.parse(process.env.PGRAFT_SIM_OPTIONS ?? "{}") as Omit<RunOptions, "seed">;

process.on("message", (seed: number) => {
  if (seed < 0) {
    process.disconnect();
    return;
  }
  const result = runSeed({ ...base, seed });
  process.send!({ ...result, traceLines: undefined });
});
