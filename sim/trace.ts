/**
 * The event trace of one simulated run: one line per event, in order, hashed as it grows. Two runs of
 * the same seed and code produce the same lines and so the same `traceHash`; that is the determinism
 * promise, checked by a test in two separate processes. The last lines are kept for violation reports;
 * the full trace is kept only when asked for (--trace FILE).
 */
import { createHash, type Hash } from "node:crypto";

const RECENT_LINES_MAX = 400;
const HASH_CHUNK_LINES = 512;

export class Trace {
  #hash: Hash = createHash("sha256");
  #chunk: string[] = [];
  #recent: string[] = [];
  #recentStart = 0;
  #all: string[] | undefined;
  lineCount = 0;
  /** `timeMs.toFixed(3)` of the latest line's time, reused while lines come at the same instant. */
  #timeMs = -1;
  #timeText = "";

  constructor(options: { keepAll?: boolean } = {}) {
    if (options.keepAll) this.#all = [];
  }

  record(timeMs: number, text: string): void {
    if (timeMs !== this.#timeMs) {
      this.#timeMs = timeMs;
      this.#timeText = timeMs.toFixed(3) + " ";
    }
    const line = this.#timeText + text;
    this.lineCount++;
    this.#chunk.push(line);
    if (this.#chunk.length >= HASH_CHUNK_LINES) this.#flushChunk();
    if (this.#recent.length < RECENT_LINES_MAX) this.#recent.push(line);
    else {
      this.#recent[this.#recentStart] = line;
      this.#recentStart = (this.#recentStart + 1) % RECENT_LINES_MAX;
    }
    this.#all?.push(line);
  }

  /** The last lines recorded, oldest first. */
  recent(count = RECENT_LINES_MAX): string[] {
    const ordered = [...this.#recent.slice(this.#recentStart), ...this.#recent.slice(0, this.#recentStart)];
    return ordered.slice(-count);
  }

  lines(): string[] | undefined {
    return this.#all;
  }

  /** Hex SHA-256 of every line so far, each followed by a newline. Finishes the trace. */
  digest(): string {
    this.#flushChunk();
    return this.#hash.digest("hex");
  }

  #flushChunk(): void {
    if (this.#chunk.length === 0) return;
    this.#hash.update(this.#chunk.join("\n") + "\n");
    this.#chunk = [];
  }
}
