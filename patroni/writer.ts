/**
 * A writer on each PostgreSQL node: one sequential loop per node, each inserting a row into the probe
 * table through a connection to that node only, recording every attempt (sent, answered, accepted or
 * not). Bounded: each attempt by the client's timeouts, the loop by `maxDurationMs` and by `stop()`.
 */
import { performance } from "node:perf_hooks";
import type pg from "pg";
import type { WriteAttempt } from "./overlap.ts";
import { sleep } from "./processes.ts";
import { PROBE_TABLE, type PatroniNode, type PatroniStack } from "./stack.ts";

const PAUSE_MS = 50;
const FAILED_PAUSE_MS = 100;

export class Writers {
  readonly attempts: WriteAttempt[] = [];
  readonly #loops: Promise<void>[];
  #stopped = false;
  readonly #maxAttempts = 1_000_000;

  constructor(
    readonly stack: PatroniStack,
    readonly maxDurationMs: number,
  ) {
    const deadline = performance.now() + maxDurationMs;
    this.#loops = stack.nodes.map((node) => this.#loop(node, deadline));
  }

  /** The first accepted write by a node other than `exclude` that was sent at or after `sinceMs`. */
  firstAcceptedSince(sinceMs: number, exclude?: string): WriteAttempt | undefined {
    return this.attempts.find((attempt) => attempt.ok && attempt.startMs >= sinceMs && attempt.node !== exclude);
  }

  acceptedBy(node: string, sinceMs = 0): number {
    return this.attempts.filter((attempt) => attempt.ok && attempt.node === node && attempt.startMs >= sinceMs).length;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops);
  }

  async #loop(node: PatroniNode, deadline: number): Promise<void> {
    let client: pg.Client | undefined;
    let seq = 0;
    while (!this.#stopped && performance.now() < deadline && this.attempts.length < this.#maxAttempts) {
      const startMs = performance.now();
      let ok = false;
      try {
        if (client === undefined) {
          client = this.stack.client(node, 2_000);
          client.on("error", () => undefined);
          await client.connect();
        }
        await client.query(`INSERT INTO ${PROBE_TABLE} (node, seq) VALUES ($1, $2)`, [node.name, ++seq]);
        ok = true;
      } catch {
        await client?.end().catch(() => undefined);
        client = undefined;
      }
      this.attempts.push({ node: node.name, startMs, endMs: performance.now(), ok });
      await sleep(ok ? PAUSE_MS : FAILED_PAUSE_MS);
    }
    await client?.end().catch(() => undefined);
  }
}
