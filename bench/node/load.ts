/**
 * The closed-loop load generator, the same for both systems: `concurrency` workers, each sending one
 * POST /v3/kv/put {"key", "value"} (base64, etcd's JSON gateway), waiting for its answer, and sending
 * the next, over keep-alive connections (an http.Agent with one socket per worker). Keys are 16 bytes
 * drawn uniformly from a fixed key space, values 256 bytes. Only answers that complete inside the
 * measured window (after the warm-up) count; a worker stops sending at the window's end, and the run
 * waits for the requests still in flight (each bounded by its timeout).
 */
import { Agent, request as httpRequest } from "node:http";
import { performance } from "node:perf_hooks";

export const KEY_BYTES = 16;
export const VALUE_BYTES = 256;

export interface LoadOptions {
  /** http://127.0.0.1:PORT of the member that receives every write. */
  readonly url: string;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly requestTimeoutMs: number;
  /** A hard cap on requests sent per run (a safety bound besides the time bound). */
  readonly requestsMax: number;
  readonly workload: Workload;
}

export interface LoadResult {
  readonly concurrency: number;
  /** Writes answered 200 inside the window. */
  readonly ops: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly windowMs: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Latencies (ms) of the counted writes, sorted ascending. */
  readonly latenciesMs: Float64Array;
  /** CPU seconds the generator's own process used during the run. */
  readonly generatorCpuSeconds: number;
  /** Wall time of the whole run: warm-up, window and the drain of requests in flight. */
  readonly elapsedMs: number;
}

/** Precomputed request bodies: a key space of 16-byte keys and one 256-byte value. */
export class Workload {
  readonly #bodies: string[];

  constructor(keySpace: number) {
    const value = Buffer.alloc(VALUE_BYTES);
    const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (let i = 0; i < VALUE_BYTES; i++) value[i] = alphabet.charCodeAt((i * 7919 + 13) % alphabet.length);
    const valueBase64 = value.toString("base64");
    this.#bodies = [];
    for (let i = 0; i < keySpace; i++) {
      // "key-" and 12 digits: 16 bytes of ASCII (pgraft stores keys as text, so they must be UTF-8).
      const key = `key-${String(i).padStart(KEY_BYTES - 4, "0")}`;
      if (Buffer.byteLength(key) !== KEY_BYTES) throw new Error(`key space ${keySpace} is too large for ${KEY_BYTES}-byte keys`);
      this.#bodies.push(`{"key":"${Buffer.from(key).toString("base64")}","value":"${valueBase64}"}`);
    }
  }

  randomBody(): string {
    return this.#bodies[Math.floor(Math.random() * this.#bodies.length)]!;
  }

  /** One fixed body (for failover probes). */
  body(index: number): string {
    return this.#bodies[index % this.#bodies.length]!;
  }
}

/** One put over `agent`; resolves with the HTTP status (0 on a connection error or timeout) and an error text. */
export function put(agent: Agent | false, url: URL, body: string, timeoutMs: number): Promise<{ status: number; error?: string }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ status, error });
    };
    const request = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: "/v3/kv/put",
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          if (status !== 200 && text.length < 500) text += chunk;
        });
        response.on("end", () => finish(status, status === 200 ? undefined : `HTTP ${status}: ${text.slice(0, 300)}`));
        response.on("error", (error) => finish(0, error.message));
      },
    );
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    request.on("error", (error) => finish(0, error.message));
    request.end(body);
  });
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  // Nearest rank.
  const rank = Math.max(1, Math.ceil(fraction * sorted.length));
  return sorted[rank - 1]!;
}

export function summarizeLatencies(sorted: Float64Array): { p50Ms: number; p99Ms: number } {
  return { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  const agent = new Agent({ keepAlive: true, maxSockets: Math.max(256, options.concurrency), maxFreeSockets: Math.max(256, options.concurrency) });
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let sent = 0;
  const cpuBefore = process.cpuUsage();
  const startMs = performance.now();
  const windowStartMs = startMs + options.warmupMs;
  const endMs = windowStartMs + options.durationMs;
  const worker = async (): Promise<void> => {
    while (sent < options.requestsMax) {
      const sentAt = performance.now();
      if (sentAt >= endMs) return;
      sent++;
      const answer = await put(agent, url, options.workload.randomBody(), options.requestTimeoutMs);
      const doneAt = performance.now();
      const counted = doneAt >= windowStartMs && doneAt <= endMs;
      if (answer.status === 200) {
        if (counted) latencies.push(doneAt - sentAt);
      } else {
        if (counted) errors++;
        firstError ??= answer.error;
        // Do not spin on a failing member (no leader, refused connection): back off a little.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
  } finally {
    agent.destroy();
  }
  const cpu = process.cpuUsage(cpuBefore);
  const sorted = Float64Array.from(latencies).sort();
  const windowMs = options.durationMs;
  return {
    concurrency: options.concurrency,
    ops: sorted.length,
    errors,
    firstError,
    windowMs,
    opsPerSec: sorted.length / (windowMs / 1000),
    ...summarizeLatencies(sorted),
    latenciesMs: sorted,
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
    elapsedMs: performance.now() - startMs,
  };
}
