/**
 * etcd's streaming calls over the JSON gateway, as grpc-gateway serves them: the request body is a
 * sequence of JSON messages (one is the common case; more may follow while the connection is open),
 * and the answer is a chunked 200 whose body is one `{"result": ...}` line per response message, or
 * `{"error": {grpc_code, http_code, message, http_status}}` when the stream fails.
 *
 *   POST /v3/watch            WatchRequest*  -> WatchResponse*   (open until the client goes away)
 *   POST /v3/lease/keepalive  LeaseKeepAliveRequest* -> LeaseKeepAliveResponse* (ends with the body)
 *
 * A keep-alive reaching a follower is handed to the leader one message at a time (the leader keeps
 * the lease clock); watches are served by whichever node the client reached.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { InvalidRequestError, NotLeaderError } from "../errors.ts";
import { RouteError, toGatewayError } from "./errors.ts";
import type { LeaseBackend } from "./etcd-service.ts";
import { forwardToLeader, FORWARDED_BY_HEADER } from "./forward.ts";
import type { ApiLogger, HttpRoute } from "./http-server.ts";
import { encodeHeader, Fields } from "./kv-json.ts";
import type { NodeId } from "../core/types.ts";
import type { WatchHub } from "./watch.ts";

/** One message in a stream body may be at most this large. */
const MESSAGE_BYTES_MAX = 64 * 1024;
const FORWARD_TIMEOUT_MS = 5000;

/**
 * Splits a byte stream into top-level JSON values (objects), tolerating whitespace or nothing between
 * them. Returns the complete ones; keeps the rest for the next chunk.
 */
export class JsonMessageSplitter {
  #buffer = "";

  push(chunk: string): unknown[] {
    this.#buffer += chunk;
    const messages: unknown[] = [];
    let depth = 0;
    let inString = false;
    let escaped = false;
    let start = -1;
    let consumed = 0;
    for (let i = 0; i < this.#buffer.length; i++) {
      const c = this.#buffer[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === "\\") escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === "{") {
        if (depth === 0) start = i;
        depth++;
      } else if (c === "}") {
        depth--;
        if (depth < 0) throw new InvalidRequestError("Cannot parse the stream's messages: a '}' closes nothing; send JSON objects one after another");
        if (depth === 0) {
          messages.push(parseMessage(this.#buffer.slice(start, i + 1)));
          consumed = i + 1;
        }
      } else if (depth === 0 && !/\s/.test(c)) {
        throw new InvalidRequestError(`Cannot parse the stream's messages: unexpected ${JSON.stringify(c)} between messages; send JSON objects one after another`);
      }
    }
    this.#buffer = this.#buffer.slice(consumed);
    if (this.#buffer.length > MESSAGE_BYTES_MAX) throw new InvalidRequestError(`Cannot accept the stream's message: it is larger than ${MESSAGE_BYTES_MAX} bytes`);
    return messages;
  }

  /** True when a message was started and not finished. */
  get pending(): boolean {
    return this.#buffer.trim().length > 0;
  }
}

function parseMessage(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidRequestError(`Cannot parse a stream message as JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The stream error line grpc-gateway writes. */
export function streamError(error: unknown): Record<string, unknown> {
  const { httpStatus, body } = toGatewayError(error);
  return { error: { grpc_code: body.code, http_code: httpStatus, message: body.error, http_status: String(httpStatus), ...(body.hint ? { hint: body.hint } : {}) } };
}

export interface StreamRoutesOptions {
  readonly watches?: WatchHub;
  readonly leases?: LeaseBackend;
  /** The leader's client URL, for keep-alives that reach a follower. */
  readonly peerClientUrls?: (nodeId: NodeId) => string | undefined;
  readonly memberId?: string;
  readonly logger?: ApiLogger;
}

/** The route for startHttpServer(): put it before the ClientApi route. */
export function createStreamRoute(options: StreamRoutesOptions): HttpRoute {
  return (request, response, url) => {
    const path = url.pathname.replace(/^\/v3(beta|alpha)\//, "/v3/");
    if (path === "/v3/watch" && options.watches !== undefined) {
      serveWatch(request, response, options.watches);
      return true;
    }
    if ((path === "/v3/lease/keepalive" || path === "/v3/kv/lease/keepalive") && options.leases !== undefined) {
      serveKeepAlive(request, response, options.leases, options);
      return true;
    }
    return false;
  };
}

function startStream(request: IncomingMessage, response: ServerResponse): boolean {
  if (request.method !== "POST") {
    const { httpStatus, body } = toGatewayError(new RouteError(405, `Cannot serve ${request.method} ${request.url}: send a POST with JSON messages`));
    response.writeHead(httpStatus, { "content-type": "application/json", allow: "POST" });
    response.end(JSON.stringify(body));
    request.resume();
    return false;
  }
  response.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
  response.flushHeaders();
  return true;
}

function serveWatch(request: IncomingMessage, response: ServerResponse, hub: WatchHub): void {
  if (!startStream(request, response)) return;
  const stream = hub.open((message) => {
    if (!response.writableEnded) response.write(`${JSON.stringify({ result: message })}\n`);
  });
  const splitter = new JsonMessageSplitter();
  const fail = (error: unknown): void => {
    if (!response.writableEnded) response.end(`${JSON.stringify(streamError(error))}\n`);
    stream.close();
    request.resume();
  };
  request.setEncoding("utf8");
  request.on("data", (chunk: string) => {
    try {
      for (const message of splitter.push(chunk)) stream.request(message);
    } catch (error) {
      fail(error);
    }
  });
  // The body ending is the client closing its sending side: the watches go on until it disconnects.
  response.on("close", () => stream.close());
  request.on("error", () => stream.close());
}

function serveKeepAlive(request: IncomingMessage, response: ServerResponse, leases: LeaseBackend, routeOptions: StreamRoutesOptions): void {
  if (!startStream(request, response)) return;
  // One hop at most: a keep-alive another node forwarded here is not forwarded again.
  const options = request.headers[FORWARDED_BY_HEADER] === undefined ? routeOptions : { ...routeOptions, peerClientUrls: undefined };
  const splitter = new JsonMessageSplitter();
  let chain = Promise.resolve();
  let failed = false;
  const fail = (error: unknown): void => {
    if (failed) return;
    failed = true;
    if (!response.writableEnded) response.end(`${JSON.stringify(streamError(error))}\n`);
    request.resume();
  };
  request.setEncoding("utf8");
  request.on("data", (chunk: string) => {
    let messages: unknown[];
    try {
      messages = splitter.push(chunk);
    } catch (error) {
      fail(error);
      return;
    }
    for (const message of messages) {
      chain = chain.then(async () => {
        if (failed) return;
        try {
          const id = new Fields(message, "lease keep-alive request", ["ID"]).integer("ID");
          const answer = await keepAliveOnce(leases, id, options);
          if (!response.writableEnded) response.write(`${JSON.stringify({ result: answer })}\n`);
        } catch (error) {
          fail(error);
        }
      });
    }
  });
  request.on("end", () => {
    void chain.then(() => {
      if (!response.writableEnded) response.end();
    });
  });
}

async function keepAliveOnce(leases: LeaseBackend, id: number, options: StreamRoutesOptions): Promise<Record<string, unknown>> {
  try {
    const answer = await leases.keepAlive(id);
    return { header: encodeHeader(answer.header), ID: String(answer.id), TTL: String(answer.ttlSec) };
  } catch (error) {
    const baseUrl = error instanceof NotLeaderError ? options.peerClientUrls?.(error.leaderId) : undefined;
    if (!(error instanceof NotLeaderError) || baseUrl === undefined || options.memberId === undefined) throw error;
    const forwarded = await forwardToLeader({
      leaderId: error.leaderId,
      baseUrl,
      path: "/v3/lease/keepalive",
      body: Buffer.from(JSON.stringify({ ID: String(id) })),
      fromMemberId: options.memberId,
      isWrite: false,
      timeoutMs: FORWARD_TIMEOUT_MS,
      responseBytesMax: MESSAGE_BYTES_MAX,
    });
    const line = JSON.parse(forwarded.body.toString("utf8").split("\n")[0] ?? "{}") as { result?: Record<string, unknown>; error?: { message?: string } };
    if (line.result === undefined) throw error;
    return line.result;
  }
}
