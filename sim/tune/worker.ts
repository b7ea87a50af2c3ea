/**
 * A child process for `npm run tune`: it receives jobs over IPC, runs each and sends back the result;
 * an index of -1 tells it to leave. Child processes rather than worker threads, because tsx's loader
 * does not reach worker threads on Node 20 (as sim/worker.ts).
 */
import { runJob, type TuneJob } from "./jobs.ts";

process.on("message", (message: { index: number; job?: TuneJob }) => {
  if (message.index < 0 || message.job === undefined) {
    process.disconnect();
    return;
  }
  try {
    process.send!({ index: message.index, result: runJob(message.job) });
  } catch (error) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.send!({ index: message.index, error: text });
  }
});
