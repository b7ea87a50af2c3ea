/**
 * Requests for what pgraft does not implement get etcd's answer (HTTP 501 / gRPC UNIMPLEMENTED, code
 * 12) and a warning in the log naming the endpoint: once per endpoint per interval, with the number of
 * requests since the last warning, so a client retrying in a loop is visible without flooding the log.
 */
import { UnimplementedError } from "./errors.ts";
import type { ApiLogger } from "./http-server.ts";

export const UNIMPLEMENTED_WARN_INTERVAL_MS = 60_000;
/** Distinct endpoints remembered; past it, the oldest is forgotten (a client probing random paths). */
const ENDPOINTS_MAX = 256;

export class UnimplementedLog {
  readonly #logger: ApiLogger | undefined;
  readonly #intervalMs: number;
  readonly #nowMs: () => number;
  readonly #endpoints = new Map<string, { warnedAtMs: number; suppressed: number }>();

  constructor(options: { logger?: ApiLogger; intervalMs?: number; nowMs?: () => number }) {
    this.#logger = options.logger;
    this.#intervalMs = options.intervalMs ?? UNIMPLEMENTED_WARN_INTERVAL_MS;
    this.#nowMs = options.nowMs ?? (() => performance.now());
  }

  /** Logs (rate-limited) that `endpoint` was asked for and returns the error to answer with. */
  refuse(endpoint: string, transport: "HTTP" | "gRPC", detail?: string): UnimplementedError {
    const message = detail ?? `Cannot serve ${endpoint}: pgraft does not implement it (see src/api/README.md for what it serves)`;
    this.note(endpoint, transport, message);
    return new UnimplementedError(endpoint, message);
  }

  /** Logs (rate-limited) a refusal that already has its error. */
  note(endpoint: string, transport: "HTTP" | "gRPC", message: string): void {
    const nowMs = this.#nowMs();
    const seen = this.#endpoints.get(endpoint);
    if (seen !== undefined && nowMs - seen.warnedAtMs < this.#intervalMs) {
      seen.suppressed++;
      return;
    }
    const repeats = seen !== undefined && seen.suppressed > 0 ? ` (${seen.suppressed} more requests for it since the last warning)` : "";
    this.#endpoints.delete(endpoint);
    this.#endpoints.set(endpoint, { warnedAtMs: nowMs, suppressed: 0 });
    if (this.#endpoints.size > ENDPOINTS_MAX) this.#endpoints.delete(this.#endpoints.keys().next().value!);
    this.#logger?.warn(`unimplemented ${transport} endpoint ${endpoint} requested${repeats}: ${message}`);
  }
}
