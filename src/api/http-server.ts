/**
 * A small HTTP server (node:http, no framework) that hands each request to a list of routes, and the
 * helpers the routes share: JSON responses, bounded body reading. The client API, the health endpoints
 * and /metrics are routes, so one port can serve any mix of them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
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
