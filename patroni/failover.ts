/**
 * One measured failover: with a writer on every node, kill -9 the primary's Patroni and PostgreSQL and
 * time until another node accepts a write; then restart the killed node and wait until the cluster has a
 * primary with two streaming replicas again, ready for the next trial.
 */
import { performance } from "node:perf_hooks";
import { describeOverlap, overlaps } from "./overlap.ts";
import type { PatroniNode, PatroniStack } from "./stack.ts";
import { sleep } from "./processes.ts";
import { Writers } from "./writer.ts";

export interface FailoverResult {
  readonly killed: string;
  readonly newPrimary: string;
  /** From the kill to the end of the first write the new primary accepted. */
  readonly failoverMs: number;
}

const WRITER_LIMIT_MS = 600_000;

export async function measureFailover(stack: PatroniStack, timeoutMs: number): Promise<FailoverResult> {
  const primary = await stack.waitForPrimary({ replicas: 2, timeoutMs });
  const writers = new Writers(stack, WRITER_LIMIT_MS);
  try {
    // The writers must be writing before the kill, so the first accepted write after it is a real one.
    const started = performance.now();
    while (writers.acceptedBy(primary.name, started) === 0) {
      if (performance.now() - started > timeoutMs) throw new Error(`The writer never wrote on ${primary.name}\n${stack.logs()}`);
      await sleep(50);
    }
    const killedAtMs = performance.now();
    await stack.killNode(primary);
    let first = writers.firstAcceptedSince(killedAtMs, primary.name);
    while (first === undefined) {
      if (performance.now() - killedAtMs > timeoutMs) throw new Error(`No node accepted a write within ${timeoutMs} ms of killing ${primary.name}\n${stack.logs()}`);
      await sleep(20);
      first = writers.firstAcceptedSince(killedAtMs, primary.name);
    }
    await writers.stop();
    const split = overlaps(writers.attempts);
    if (split.length > 0) throw new Error(`Two primaries accepted writes at the same time: ${split.map(describeOverlap).join("; ")}`);
    const result = { killed: primary.name, newPrimary: first.node, failoverMs: first.endMs - killedAtMs };
    await rejoin(stack, primary, timeoutMs);
    return result;
  } finally {
    await writers.stop();
  }
}

/** Restarts Patroni on a killed node and waits until the primary streams to two replicas again. */
export async function rejoin(stack: PatroniStack, node: PatroniNode, timeoutMs: number): Promise<void> {
  stack.startPatroni(node);
  await stack.waitForPrimary({ replicas: 2, timeoutMs });
}

export interface Summary {
  readonly trials: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly maxMs: number;
}

/** Median, p90 (nearest rank) and max of the samples. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error("Cannot summarize no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  const middle = sorted.length >> 1;
  const medianMs = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { trials: sorted.length, medianMs, p90Ms: rank(0.9), maxMs: sorted[sorted.length - 1]! };
}
