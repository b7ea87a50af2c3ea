/**
 * A small HTTP server (node:http, no framework) that hands each request to a list of routes, and the
 * helpers the routes share: JSON responses, bounded body reading. The client API, the health endpoints
 * and /metrics are routes, so one port can serve any mix of them.
 *
 * With `http2Connections`, the port also serves HTTP/2 the way etcd's cmux does: a connection whose
 * first bytes are the HTTP/2 client preface (gRPC) is handed to that function, every other connection
 * to the HTTP/1.1 server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { InvalidRequestError } from "../errors.ts";
import { RequestTooLargeError, RouteError, toGatewayError } from "./errors.ts";

/** Serves the request and returns true, or returns false to let the next route try. */
export type HttpRoute = (request: IncomingMessage, response: ServerResponse, url: URL) => boolean;

/** Where log lines go. A pino logger fits as is. */
export interface ApiLogger {
  warn(line: string): void;
  error(line: string): void;
}

export interface HttpServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: an ephemeral port. */
  readonly port?: number;
  readonly routes: readonly HttpRoute[];
  readonly logger?: ApiLogger;
  /** Takes the connections that open with the HTTP/2 preface (gRPC); without it all are HTTP/1.1. */
  readonly http2Connections?: (connection: Socket) => void;
}

export interface RunningHttpServer {
  readonly server: Server;
  readonly host: string;
  readonly port: number;
  /** http://host:port, without a trailing slash. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const host = options.host ?? "127.0.0.1";
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    try {
      for (const route of options.routes) if (route(request, response, url)) return;
      sendError(request, response, new RouteError(404, `Cannot serve ${url.pathname}: no such endpoint on this node`));
    } catch (error) {
      options.logger?.error(`HTTP ${request.method} ${url.pathname} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      if (!response.headersSent) sendError(request, response, error);
      else response.destroy();
    }
  });
  const http2 = options.http2Connections;
  if (http2 !== undefined) {
    // Node's HTTP server has one "connection" listener, its own: sniff first, then hand over.
    const [http1] = server.listeners("connection") as ((socket: Socket) => void)[];
    if (http1 === undefined || server.listenerCount("connection") !== 1) throw new Error("Cannot serve HTTP/2 beside HTTP/1.1: node:http's server has an unexpected set of connection listeners");
    server.removeAllListeners("connection");
    const sniffing = new Set<Socket>();
    server.on("connection", (socket: Socket) => {
      sniffing.add(socket);
      sniffConnection(socket, (isHttp2) => {
        sniffing.delete(socket);
        if (isHttp2) http2(socket);
        else http1.call(server, socket);
      });
    });
    server.on("close", () => {
      for (const socket of sniffing) socket.destroy();
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    server,
    host,
    port,
    url: `http://${urlHost}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function sendJson(request: IncomingMessage, response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  response.end(request.method === "HEAD" ? undefined : text);
}

/** Sends any error in etcd's gateway shape (see errors.ts). */
export function sendError(request: IncomingMessage, response: ServerResponse, error: unknown, headers: Record<string, string> = {}): void {
  const { httpStatus, body } = toGatewayError(error);
  if (error instanceof RouteError && error.httpStatus === 405) headers = { allow: "POST", ...headers };
  sendJson(request, response, httpStatus, body, headers);
}

/**
 * Reads the whole body, at most `bytesMax` bytes: a larger one (by its Content-Length, or as it
 * streams) rejects with RequestTooLargeError; the rest is then read and discarded so the client can
 * see the answer.
 */
export function readBody(request: IncomingMessage, bytesMax: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = Number(request.headers["content-length"] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > bytesMax) {
      request.resume();
      reject(new RequestTooLargeError(bytesMax));
      return;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    let failed = false;
    request.on("data", (chunk: Buffer) => {
      if (failed) return;
      bytes += chunk.length;
      if (bytes > bytesMax) {
        failed = true;
        chunks.length = 0;
        reject(new RequestTooLargeError(bytesMax));
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    request.on("error", (error) => {
      if (failed) return;
      failed = true;
      reject(error);
    });
  });
}

/** A request body as JSON (an empty body is `{}`); `example` shows the caller what to send instead. */
export function parseJsonBody(body: Buffer, example: string): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new InvalidRequestError(`Cannot parse the request body as JSON: ${detail}; send a JSON object such as ${example}`);
  }
}

/** The bytes every HTTP/2 client sends first (RFC 9113, 3.4). */
export const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** A connection that sends nothing for this long is closed (no client waits for the server to speak). */
export const SNIFF_TIMEOUT_MS = 30_000;

/**
 * Reads the first bytes of `socket` until they either differ from the HTTP/2 preface (HTTP/1.1: "POST",
 * "GET", ... differ by the second byte at the latest) or match all of it, puts them back, and calls
 * `decide`. A socket that closes or errs first is dropped; one silent for `timeoutMs` is closed.
 */
export function sniffConnection(socket: Socket, decide: (isHttp2: boolean) => void, timeoutMs = SNIFF_TIMEOUT_MS): void {
  let received: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  timer.unref();
  const finish = (isHttp2: boolean): void => {
    cleanup();
    socket.unshift(received);
    decide(isHttp2);
  };
  const onReadable = (): void => {
    for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const compared = Math.min(received.length, HTTP2_PREFACE.length);
      if (!received.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared))) return finish(false);
      if (received.length >= HTTP2_PREFACE.length) return finish(true);
    }
  };
  const onGone = (): void => {
    cleanup();
    socket.destroy();
  };
  const cleanup = (): void => {
    clearTimeout(timer);
    socket.off("readable", onReadable);
    socket.off("error", onGone);
    socket.off("end", onGone);
    socket.off("close", onGone);
  };
  socket.on("readable", onReadable);
  socket.on("error", onGone);
  socket.on("end", onGone);
  socket.on("close", onGone);
}
