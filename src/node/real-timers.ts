/**
 * Production time for a node: node's monotonic clock and timers behind the Timers interface that the
 * simulator implements over simulated time.
 */
import { performance } from "node:perf_hooks";
import type { TimerHandle, Timers } from "./environment.ts";

export class RealTimers implements Timers {
  nowMs(): number {
    return performance.now();
  }

  soon(callback: () => void): TimerHandle {
    const handle = setImmediate(callback);
    return { cancel: () => clearImmediate(handle) };
  }

  after(delayMs: number, callback: () => void): TimerHandle {
    const handle = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(handle) };
  }
}
