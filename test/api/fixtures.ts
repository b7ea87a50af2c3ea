/**
 * Shared helpers for the client API, health and metrics tests: servers on 127.0.0.1 with ephemeral
 * ports, a JSON POST that never throws on an HTTP error, base64 helpers, real timers for a RaftNode,
 * and RaftStatus values built by hand.
 */
import { request as httpRequest } from "node:http";
import { ClientApi, type ClientApiOptions } from "../../src/api/client-api.ts";
import { startHttpServer, type HttpRoute, type RunningHttpServer } from "../../src/api/http-server.ts";
import type { RaftStatus } from "../../src/core/raft.ts";
import type { Timers } from "../../src/node/environment.ts";

export function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

export function unb64(text: string): string {
  return Buffer.from(text, "base64").toString("utf8");
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The parsed body, or undefined when it is not JSON. */
  readonly json: any;
}

/** One HTTP exchange; `body` is sent as is when a string or Buffer, else as JSON. Bounded by 10 s. */
export function call(baseUrl: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const payload = body === undefined ? undefined : typeof body === "string" || Buffer.isBuffer(body) ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const request = httpRequest(new URL(path, baseUrl), {
      method,
      headers: { ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": payload.length }), ...headers },
      agent: false,
    });
    const timer = setTimeout(() => request.destroy(new Error(`${method} ${path}: no answer within 10 s`)), 10_000);
    request.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
      });
    });
    request.end(payload);
  });
}

export function post(baseUrl: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return call(baseUrl, "POST", path, body, headers);
}

export interface ApiServer {
  readonly api: ClientApi;
  readonly server: RunningHttpServer;
  readonly url: string;
  close(): Promise<void>;
}

export async function startApi(options: ClientApiOptions, extraRoutes: readonly HttpRoute[] = []): Promise<ApiServer> {
  const api = new ClientApi(options);
  const server = await startHttpServer({ routes: [api.route, ...extraRoutes] });
  return {
    api,
    server,
    url: server.url,
    close: async () => {
      api.close();
      await server.close();
    },
  };
}

/** Real timers that keep the process alive while they are pending (tests await them). */
export const TEST_TIMERS: Timers = {
  nowMs: () => performance.now(),
  after(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

/** Polls `condition` every 5 ms for at most `timeoutMs`; true when it held. */
export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return condition();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A RaftStatus for node `id` with sensible defaults; override what the test is about. */
export function fakeStatus(overrides: Partial<RaftStatus> & { id: number }): RaftStatus {
  return {
    role: "follower",
    term: 1,
    vote: 0,
    leaderId: 0,
    commit: 0,
    applied: 0,
    lastIndex: 0,
    lastTerm: 0,
    firstIndex: 1,
    membership: { voters: [1, 2, 3], learners: [] },
    configIndex: 0,
    leadTransferee: 0,
    snapshotIndex: 0,
    quorumActive: false,
    peers: [],
    counters: {
      messagesReceived: 0,
      messagesSent: 0,
      heartbeatsSent: 0,
      preVotesStarted: 0,
      electionsStarted: 0,
      electionsWon: 0,
      leaderChanges: 0,
      proposalsAccepted: 0,
      proposalsRejected: 0,
    },
    ...overrides,
  };
}
