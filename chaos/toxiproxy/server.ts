/**
 * The HTTP API of Toxiproxy (the real server's api.go), on node:http, so that toxiproxy-node-client and
 * any other Toxiproxy client drive this server unchanged: the same routes, success statuses (201 for
 * POST /proxies and /populate, 200 for POST toxics, 204 for DELETE and /reset), JSON shapes, error bodies
 * (`{"error": msg, "status": code}` and a newline, sent as text/plain as Go's http.Error sends it), a 403
 * for browsers (a User-Agent starting with "Mozilla/"), and an X-Toxiproxy-Request-Id on every response.
 *
 * Requests are read with a bounded body, then run one at a time through a bounded queue, so no operation
 * sees another half done (the real server holds locks for the same reason).
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { assert } from "../../src/assert.ts";
import { formatHostPort, isLoopbackHost } from "./address.ts";
import { ApiError, badRequestBody, limitReached } from "./api-error.ts";
import { ProxyCollection } from "./proxy-collection.ts";
import { ToxicRandom } from "./random.ts";
import type { StageEnvironment } from "./stage.ts";
import { toxicJson } from "./toxic-spec.ts";

/** The Toxiproxy API version this server follows; the suffix says which server answers. */
export const TOXIPROXY_VERSION = "2.12.0-pgraft";
/** Request bodies; a populate of the most proxies allowed fits many times over. */
export const BODY_BYTES_MAX = 1024 * 1024;
/** Requests waiting for their turn; more get a 503. */
export const REQUESTS_QUEUED_MAX = 256;
export const REQUEST_ID_HEADER = "X-Toxiproxy-Request-Id";

export interface ToxiproxyLogger {
  info(line: string): void;
  warn(line: string): void;
}

export interface ToxiproxyServerOptions {
  /** Default 127.0.0.1. A non-loopback host needs `allowNonLoopback`. */
  readonly host?: string;
  /** Default 0: an ephemeral port (the CLI defaults to Toxiproxy's 8474). */
  readonly port?: number;
  /** Makes toxicity, jitter and slicer draws reproducible; drawn at random when omitted. */
  readonly seed?: number;
  /** Lets the API and proxies bind to addresses other than loopback ones. */
  readonly allowNonLoopback?: boolean;
  readonly logger?: ToxiproxyLogger;
}

interface Reply {
  readonly status: number;
  readonly body?: unknown;
  /** Text sent as is instead of JSON (version, populate errors). */
  readonly text?: string;
  readonly contentType?: string;
}

type Handler = (parameters: readonly string[], body: unknown) => Reply | Promise<Reply>;

interface Route {
  /** Path segments; ":" marks a parameter. */
  readonly pattern: readonly string[];
  readonly methods: Readonly<Record<string, Handler>>;
}

export class ToxiproxyServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port, no trailing slash. */
  readonly url: string;
  readonly random: ToxicRandom;
  readonly proxies: ProxyCollection;
  readonly #http: Server;
  readonly #routes: readonly Route[];
  readonly #logger: ToxiproxyLogger | undefined;
  #queueTail: Promise<unknown> = Promise.resolve();
  #queued = 0;
  #closed = false;

  private constructor(http: Server, host: string, port: number, random: ToxicRandom, proxies: ProxyCollection, logger: ToxiproxyLogger | undefined) {
    this.#http = http;
    this.host = host;
    this.port = port;
    this.url = `http://${formatHostPort({ host, port })}`;
    this.random = random;
    this.proxies = proxies;
    this.#logger = logger;
    this.#routes = this.#createRoutes();
  }

  get seed(): number {
    return this.random.seed;
  }

  static async start(options: ToxiproxyServerOptions = {}): Promise<ToxiproxyServer> {
    const host = options.host ?? "127.0.0.1";
    if (options.allowNonLoopback !== true && !isLoopbackHost(host)) {
      throw new Error(`Cannot start the Toxiproxy server on ${host}: it is not a loopback address; pass --allow-non-loopback to bind it anyway`);
    }
    const random = new ToxicRandom(options.seed);
    const environment: StageEnvironment = { random, now: () => performance.now() };
    const logger = options.logger;
    const proxies = new ProxyCollection({
      environment,
      allowNonLoopback: options.allowNonLoopback === true,
      ...(logger === undefined ? {} : { onLog: (line: string) => logger.info(line) }),
    });
    let server: ToxiproxyServer | undefined;
    const http = createServer((request, response) => {
      assert(server !== undefined, "ToxiproxyServer: a request arrived before the server was ready");
      void server.#serve(request, response);
    });
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(options.port ?? 0, host, () => {
        http.off("error", reject);
        resolve();
      });
    });
    const address = http.address() as AddressInfo;
    server = new ToxiproxyServer(http, host, address.port, random, proxies, logger);
    return server;
  }

  /** Stops every proxy (listeners, connections, timers) and the HTTP server. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.proxies.close();
    await new Promise<void>((resolve) => {
      this.#http.close(() => resolve());
      this.#http.closeAllConnections();
    });
  }

  #createRoutes(): Route[] {
    const proxies = this.proxies;
    const json = (status: number, body: unknown): Reply => ({ status, body });
    const proxyUpdate: Handler = async ([name], body) => json(200, await proxies.update(name!, body));
    const toxicUpdate: Handler = ([name, toxic], body) => json(200, toxicJson(proxies.get(name!).toxics.update(toxic!, body)));
    return [
      { pattern: ["reset"], methods: { POST: async () => (await proxies.reset(), { status: 204 }) } },
      {
        pattern: ["proxies"],
        methods: {
          GET: () => json(200, Object.fromEntries(proxies.list().map((proxy) => [proxy.name, proxy]))),
          POST: async (_, body) => json(201, await proxies.create(body)),
        },
      },
      { pattern: ["populate"], methods: { POST: (_, body) => this.#populate(body) } },
      {
        pattern: ["proxies", ":proxy"],
        methods: {
          GET: ([name]) => json(200, proxies.get(name!)),
          POST: proxyUpdate,
          PATCH: proxyUpdate,
          DELETE: ([name]) => (proxies.delete(name!), { status: 204 }),
        },
      },
      {
        pattern: ["proxies", ":proxy", "toxics"],
        methods: {
          GET: ([name]) => json(200, proxies.get(name!).toxics.list().map(toxicJson)),
          POST: ([name], body) => json(200, toxicJson(proxies.get(name!).toxics.add(body))),
        },
      },
      {
        pattern: ["proxies", ":proxy", "toxics", ":toxic"],
        methods: {
          GET: ([name, toxic]) => json(200, toxicJson(proxies.get(name!).toxics.get(toxic!))),
          POST: toxicUpdate,
          PATCH: toxicUpdate,
          DELETE: ([name, toxic]) => (proxies.get(name!).toxics.remove(toxic!), { status: 204 }),
        },
      },
      {
        pattern: ["version"],
        methods: { GET: () => ({ status: 200, text: `{"version": "${TOXIPROXY_VERSION}"}\n`, contentType: "application/json;charset=utf-8" }) },
      },
    ];
  }

  /** The real Populate answers errors in its own shape: JSON with `error`, `status` and `proxies`. */
  async #populate(body: unknown): Promise<Reply> {
    try {
      return { status: 201, body: { proxies: await this.proxies.populate(body) } };
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return { status: error.status, text: JSON.stringify({ error: error.message, status: error.status, proxies: null }), contentType: "application/json" };
    }
  }

  async #serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    response.setHeader(REQUEST_ID_HEADER, randomBytes(10).toString("hex"));
    try {
      if ((request.headers["user-agent"] ?? "").startsWith("Mozilla/")) {
        request.resume();
        return sendText(response, 403, "User agent not allowed\n");
      }
      const match = this.#match(request.method ?? "GET", request.url ?? "/");
      if (match === "not found") {
        request.resume();
        return sendText(response, 404, "404 page not found\n");
      }
      if (match === "method not allowed") {
        request.resume();
        return sendText(response, 405, "");
      }
      const body = await readJsonBody(request);
      const reply = await this.#runInTurn(() => match.handler(match.parameters, body));
      sendReply(response, reply);
    } catch (error) {
      this.#sendError(request, response, error);
    }
  }

  #sendError(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    const apiError = error instanceof ApiError ? error : new ApiError(`internal error: ${error instanceof Error ? error.message : String(error)}`, 500);
    if (apiError.status >= 500) this.#logger?.warn(`${request.method} ${request.url} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.setHeader("X-Content-Type-Options", "nosniff");
    if (apiError.status === 413) {
      response.setHeader("Connection", "close");
      response.once("finish", () => request.destroy());
    }
    sendText(response, apiError.status, `${JSON.stringify(apiError.toJSON())}\n`);
  }

  /** Runs API operations one at a time, in arrival order. */
  async #runInTurn(operation: () => Reply | Promise<Reply>): Promise<Reply> {
    if (this.#queued >= REQUESTS_QUEUED_MAX) throw limitReached(`server busy: ${REQUESTS_QUEUED_MAX} requests are waiting; retry later`, 503);
    this.#queued += 1;
    const turn = this.#queueTail.then(operation);
    this.#queueTail = turn.catch(() => undefined);
    try {
      return await turn;
    } finally {
      this.#queued -= 1;
    }
  }

  #match(method: string, rawUrl: string): { handler: Handler; parameters: string[] } | "not found" | "method not allowed" {
    const pathname = new URL(rawUrl, "http://toxiproxy").pathname;
    let segments: string[];
    try {
      segments = pathname.split("/").slice(1).map((segment) => decodeURIComponent(segment));
    } catch {
      return "not found";
    }
    for (const route of this.#routes) {
      const parameters = matchPattern(route.pattern, segments);
      if (parameters === undefined) continue;
      const handler = route.methods[method];
      return handler === undefined ? "method not allowed" : { handler, parameters };
    }
    return "not found";
  }
}

function matchPattern(pattern: readonly string[], segments: readonly string[]): string[] | undefined {
  if (pattern.length !== segments.length) return undefined;
  const parameters: string[] = [];
  for (const [index, part] of pattern.entries()) {
    const segment = segments[index]!;
    if (part.startsWith(":")) {
      if (segment === "") return undefined;
      parameters.push(segment);
    } else if (part !== segment) {
      return undefined;
    }
  }
  return parameters;
}

/**
 * Reads at most BODY_BYTES_MAX bytes and parses them as JSON; an empty body is `undefined`. Past the bound
 * the request is paused and refused (the connection closes after the answer).
 */
async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= BODY_BYTES_MAX) {
        chunks.push(chunk);
        return;
      }
      request.pause();
      request.removeAllListeners("data");
      reject(limitReached(`bad request body: larger than ${BODY_BYTES_MAX} bytes, the most this server reads`, 413));
    });
    request.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.once("error", reject);
  });
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw badRequestBody(`not valid JSON: ${(error as Error).message}`);
  }
}

function sendReply(response: ServerResponse, reply: Reply): void {
  if (reply.body === undefined && reply.text === undefined) {
    response.writeHead(reply.status);
    response.end();
    return;
  }
  const text = reply.text ?? JSON.stringify(reply.body);
  response.writeHead(reply.status, { "Content-Type": reply.contentType ?? "application/json", "Content-Length": Buffer.byteLength(text) });
  response.end(text);
}

/** As Go's http.Error writes it. */
function sendText(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
  response.end(text);
}
