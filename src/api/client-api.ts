/**
 * The client API: etcd v3's JSON gateway for the key-value subset, so the clients and load generators
 * that speak to etcd over HTTP speak to pgraft.
 *
 *   POST /v3/kv/put          {key, value, prev_kv}                       -> {header, prev_kv}
 *   POST /v3/kv/range        {key, range_end, limit, serializable, ...}  -> {header, kvs, more, count}
 *   POST /v3/kv/deleterange  {key, range_end, prev_kv}                   -> {header, deleted, prev_kvs}
 *   POST /v3/kv/txn          {compare, success, failure}                 -> {header, succeeded, responses}
 *   and the rest of etcd-service.ts: /v3/kv/compaction, /v3/lease/*, /v3/maintenance/status
 *   (/v3beta/ and /v3alpha/ are served as /v3/, as etcd 3.4 does; anything else under /v3 is 501)
 *
 * Keys and values are base64; int64 fields are decimal strings; fields at their default value are left
 * out of responses, as etcd's gateway does (a missing "count" is 0, a missing "succeeded" is false).
 * Ranges are linearizable (a ReadIndex round on the leader) unless "serializable" is true.
 *
 * On a follower, a request that needs the leader (a write, a linearizable read) is forwarded to the
 * leader's client API, one hop, within `forwardTimeoutMs`, and the leader's answer is passed back
 * unchanged (its header names the leader as member_id). When the leader's URL is unknown the follower
 * answers 503 with the leader's id in "leader_id". Errors use the gateway shape
 * {"error", "code", "message"} plus "outcome" (src/api/errors.ts).
 */
import { Agent, type IncomingMessage, type ServerResponse } from "node:http";
import type { NodeId } from "../core/types.ts";
import { NotLeaderError } from "../errors.ts";
import { ForwardError, RouteError, toGatewayError, UnimplementedError } from "./errors.ts";
import { forwardToLeader, FORWARDED_BY_HEADER } from "./forward.ts";
import { parseJsonBody, readBody, sendError, sendJson, type ApiLogger, type HttpRoute } from "./http-server.ts";
import { prepareUnary, unaryPath, type EtcdBackends, type LeaseBackend, type MaintenanceBackend } from "./etcd-service.ts";
import type { KvBackend } from "./kv-types.ts";
import { UnimplementedLog } from "./unimplemented.ts";

export const CLIENT_OPERATIONS = ["put", "range", "deleterange", "txn"] as const;
export type ClientOperation = (typeof CLIENT_OPERATIONS)[number];
export type ClientOutcome = "ok" | "failed" | "unknown";

/** etcd's --max-request-bytes is 1.5 MiB; a 1 MiB value in base64 with its key needs a little more. */
export const BODY_BYTES_MAX_DEFAULT = 2 * 1024 * 1024;
export const FORWARD_TIMEOUT_MS_DEFAULT = 5000;
export const FORWARD_RESPONSE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

export interface ClientApiOptions {
  readonly backend: KvBackend;
  /** etcd's Lease service; without it lease calls answer 501. */
  readonly leases?: LeaseBackend;
  /** Compaction and Maintenance.Status; without it they answer 501. */
  readonly maintenance?: MaintenanceBackend;
  /** Where refusals of unimplemented endpoints are logged (shared with the gRPC server). */
  readonly unimplementedLog?: UnimplementedLog;
  /**
   * A node's client API base URL (pgraft.client_address as http://host:port), or undefined when it is
   * not known. Without it, followers answer 503 naming the leader instead of forwarding.
   */
  readonly peerClientUrls?: (nodeId: NodeId) => string | undefined;
  readonly forwardTimeoutMs?: number;
  readonly forwardResponseBytesMax?: number;
  readonly bodyBytesMax?: number;
  readonly logger?: ApiLogger;
  /** Called once per request with its outcome and duration (pgraft_client_requests_total and friends). */
  readonly observeRequest?: (operation: ClientOperation, outcome: ClientOutcome, seconds: number) => void;
}

/** etcd 3.4 serves the gateway under /v3beta and /v3alpha too (older clients pick those). */
function canonicalPath(path: string): string {
  for (const prefix of ["/v3beta/", "/v3alpha/"]) if (path.startsWith(prefix)) return `/v3/${path.slice(prefix.length)}`;
  return path;
}

const METRIC_OPERATIONS: ReadonlyMap<string, ClientOperation> = new Map(CLIENT_OPERATIONS.map((operation) => [`/kv/${operation}`, operation]));

export class ClientApi {
  readonly #options: ClientApiOptions;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });

  readonly #backends: EtcdBackends;
  readonly #unimplemented: UnimplementedLog;

  constructor(options: ClientApiOptions) {
    this.#options = options;
    this.#backends = { kv: options.backend, leases: options.leases, maintenance: options.maintenance };
    this.#unimplemented = options.unimplementedLog ?? new UnimplementedLog({ logger: options.logger });
  }

  /** The route for startHttpServer(): serves every path under /v3/. */
  readonly route: HttpRoute = (request, response, url) => {
    const path = canonicalPath(url.pathname);
    if (!path.startsWith("/v3/")) return false;
    void this.#serve(request, response, path);
    return true;
  };

  /** Closes the kept-alive connections to leaders. */
  close(): void {
    this.#agent.destroy();
  }

  async #serve(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    const startMs = performance.now();
    const unary = unaryPath(path.slice("/v3".length));
    const operation = unary === undefined ? undefined : METRIC_OPERATIONS.get(unary);
    let outcome: ClientOutcome = "failed";
    try {
      if (unary === undefined) {
        request.resume();
        throw this.#unimplemented.refuse(`POST ${path}`, "HTTP");
      }
      if (request.method !== "POST") throw new RouteError(405, `Cannot serve ${request.method} ${path}: send a POST with a JSON body`);
      const body = await readBody(request, this.#options.bodyBytesMax ?? BODY_BYTES_MAX_DEFAULT);
      let prepared;
      try {
        prepared = prepareUnary(this.#backends, unary, parseJsonBody(body, '{"key": "Zm9v"}'));
      } catch (error) {
        if (error instanceof UnimplementedError) this.#unimplemented.note(`POST ${path} (${error.feature})`, "HTTP", error.message);
        throw error;
      }
      let answer: unknown;
      try {
        answer = await prepared.run();
      } catch (error) {
        if (!(error instanceof NotLeaderError)) throw error;
        outcome = await this.#forward(request, response, error, path, body, prepared.isWrite);
        return;
      }
      sendJson(request, response, 200, answer);
      outcome = "ok";
    } catch (error) {
      const gateway = toGatewayError(error);
      outcome = gateway.body.outcome;
      if (gateway.httpStatus >= 500 && gateway.httpStatus !== 503 && gateway.httpStatus !== 501 && gateway.httpStatus !== 504) {
        this.#options.logger?.error(`Client API ${path} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      }
      if (response.headersSent) {
        response.destroy();
        return;
      }
      const tooLarge = gateway.httpStatus === 413;
      sendError(request, response, error, tooLarge ? { connection: "close" } : {});
    } finally {
      if (operation !== undefined) this.#options.observeRequest?.(operation, outcome, (performance.now() - startMs) / 1000);
    }
  }

  /** Forwards to the leader, or throws when it may not (already forwarded, leader URL unknown). */
  async #forward(
    request: IncomingMessage,
    response: ServerResponse,
    refusal: NotLeaderError,
    path: string,
    body: Buffer,
    isWrite: boolean,
  ): Promise<ClientOutcome> {
    const memberId = this.#options.backend.header().memberId;
    const forwardedBy = request.headers[FORWARDED_BY_HEADER];
    if (forwardedBy !== undefined) {
      throw new ForwardError(
        refusal.leaderId,
        false,
        "failed",
        `Cannot serve the request: node ${String(forwardedBy)} forwarded it here as to the leader, but node ${memberId} is a follower of node ${refusal.leaderId} (leadership moved); retry it`,
      );
    }
    const baseUrl = String(refusal.leaderId) === memberId ? undefined : this.#options.peerClientUrls?.(refusal.leaderId);
    if (baseUrl === undefined) throw refusal;
    let forwarded;
    try {
      forwarded = await forwardToLeader({
        leaderId: refusal.leaderId,
        baseUrl,
        path,
        body,
        fromMemberId: memberId,
        isWrite,
        timeoutMs: this.#options.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS_DEFAULT,
        responseBytesMax: this.#options.forwardResponseBytesMax ?? FORWARD_RESPONSE_BYTES_MAX_DEFAULT,
        agent: this.#agent,
      });
    } catch (error) {
      this.#options.logger?.warn(error instanceof Error ? error.message : String(error));
      throw error;
    }
    response.writeHead(forwarded.status, { "content-type": forwarded.contentType, "content-length": forwarded.body.length });
    response.end(forwarded.body);
    if (forwarded.status === 200) return "ok";
    return forwardedOutcome(forwarded.body);
  }
}

function forwardedOutcome(body: Buffer): ClientOutcome {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { outcome?: unknown };
    return parsed.outcome === "unknown" ? "unknown" : "failed";
  } catch {
    return "failed";
  }
}
