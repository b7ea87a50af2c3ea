/**
 * The client side of a chaos run: one key-value operation over etcd's v3 JSON gateway (what any etcd
 * client sends), classified the way the linearizability checker needs it.
 *
 * Each operation of the simulator's model maps onto one request whose answer carries what the model
 * returns:
 * - put(k, v): a txn without compares, success [put k, range k] (the range gives the new version);
 * - get(k): a linearizable range;
 * - delete(k): deleterange of one key (`deleted` says whether it existed);
 * - cas(k, n, v): a txn comparing VERSION(k) = n, success [put k, range k], failure [range k].
 *
 * Outcomes: `ok` with the output; `failed` when the node says the request did not happen (pgraft's
 * `outcome: "failed"`, or a connection refused before anything was sent); `unknown` otherwise (a
 * timeout, a reset connection, a 5xx with `outcome: "unknown"`): the write may still take effect.
 */
import { request as httpRequest } from "node:http";
import type { KvInput, KvOutput } from "../../sim/history.ts";

export type RefusalCode = "no_quorum" | "not_leader" | "other";

export type ClientOutcome =
  | { readonly kind: "ok"; readonly output: KvOutput }
  | { readonly kind: "failed"; readonly code: RefusalCode; readonly message: string; readonly leaderId: number | undefined; readonly status: number }
  | { readonly kind: "unknown"; readonly message: string };

export const BODY_BYTES_MAX = 1024 * 1024;

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

function unb64(text: string | undefined): string | null {
  return text === undefined ? null : Buffer.from(text, "base64").toString("utf8");
}

interface HttpReply {
  readonly status: number;
  readonly body: string;
}

/** An error before the request left (connection refused): the operation certainly did not happen. */
class NotSentError extends Error {}

/** POSTs `body` to `url`; rejects with NotSentError when the connection was refused. */
export function postJson(url: string, body: unknown, timeoutMs: number): Promise<HttpReply> {
  return new Promise<HttpReply>((resolve, reject) => {
    const target = new URL(url);
    const text = JSON.stringify(body);
    let connected = false;
    let settled = false;
    const finish = (error: Error | undefined, reply?: HttpReply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error !== undefined) reject(error);
      else resolve(reply!);
    };
    const request = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) },
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > BODY_BYTES_MAX) request.destroy(new Error(`answer from ${url} is larger than ${BODY_BYTES_MAX} bytes`));
          else chunks.push(chunk);
        });
        response.on("end", () => finish(undefined, { status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", (error) => finish(error));
      },
    );
    request.on("socket", (socket) => socket.once("connect", () => (connected = true)));
    const timer = setTimeout(() => request.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
    request.on("error", (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === "ECONNREFUSED" || error.code === "ENOTFOUND")) finish(new NotSentError(`${url}: ${error.message}`));
      else finish(error);
    });
    request.end(text);
  });
}

/** The answer to an error reply: failed (with its code) or unknown. */
export function classifyError(status: number, text: string): ClientOutcome {
  let body: { message?: string; error?: string; outcome?: string; leader_id?: string } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON
  }
  const message = body.message ?? body.error ?? text.slice(0, 300);
  if (body.outcome === "failed") {
    const code: RefusalCode = /read-only without a quorum/.test(message) ? "no_quorum" : /it is a follower/.test(message) ? "not_leader" : "other";
    const leaderId = body.leader_id !== undefined ? Number(body.leader_id) : undefined;
    return { kind: "failed", code, message, leaderId: Number.isInteger(leaderId) && leaderId! > 0 ? leaderId : undefined, status };
  }
  return { kind: "unknown", message: `HTTP ${status}: ${message}` };
}

/** Sends one operation to the node at `clientUrl`. */
export async function runOperation(clientUrl: string, input: KvInput, timeoutMs: number): Promise<ClientOutcome> {
  let reply: HttpReply;
  try {
    reply = await postJson(`${clientUrl}${pathOf(input)}`, requestOf(input), timeoutMs);
  } catch (error) {
    if (error instanceof NotSentError) return { kind: "failed", code: "other", message: error.message, leaderId: undefined, status: 0 };
    return { kind: "unknown", message: (error as Error).message };
  }
  if (reply.status !== 200) return classifyError(reply.status, reply.body);
  try {
    return { kind: "ok", output: outputOf(input, JSON.parse(reply.body) as Record<string, unknown>) };
  } catch (error) {
    return { kind: "unknown", message: `cannot read the answer: ${(error as Error).message}: ${reply.body.slice(0, 200)}` };
  }
}

function pathOf(input: KvInput): string {
  switch (input.op) {
    case "get":
      return "/v3/kv/range";
    case "delete":
      return "/v3/kv/deleterange";
    default:
      return "/v3/kv/txn";
  }
}

function requestOf(input: KvInput): unknown {
  const key = b64(input.key);
  switch (input.op) {
    case "get":
      return { key };
    case "delete":
      return { key };
    case "put":
      return { success: [{ request_put: { key, value: b64(input.value) } }, { request_range: { key } }] };
    case "cas":
      return {
        compare: [{ key, target: "VERSION", result: "EQUAL", version: String(input.expectedVersion) }],
        success: [{ request_put: { key, value: b64(input.value) } }, { request_range: { key } }],
        failure: [{ request_range: { key } }],
      };
  }
}

interface KvJson {
  value?: string;
  version?: string;
}

function firstKv(range: unknown): KvJson | undefined {
  const kvs = (range as { kvs?: KvJson[] } | undefined)?.kvs;
  return kvs?.[0];
}

function rangeOfResponse(body: Record<string, unknown>, index: number): unknown {
  const responses = body.responses as { response_range?: unknown }[] | undefined;
  const range = responses?.[index]?.response_range;
  if (range === undefined) throw new Error(`the txn answer has no response_range at ${index}`);
  return range;
}

function versionOf(kv: KvJson | undefined): number {
  if (kv === undefined) return 0;
  const version = Number(kv.version ?? "0");
  if (!Number.isInteger(version) || version < 0) throw new Error(`bad version ${String(kv.version)}`);
  return version;
}

export function outputOf(input: KvInput, body: Record<string, unknown>): KvOutput {
  switch (input.op) {
    case "get": {
      const kv = firstKv(body);
      return { op: "get", value: kv === undefined ? null : unb64(kv.value ?? ""), version: versionOf(kv) };
    }
    case "delete":
      return { op: "delete", deleted: Number(body.deleted ?? "0") > 0 };
    case "put":
      return { op: "put", version: versionOf(firstKv(rangeOfResponse(body, 1))) };
    case "cas": {
      const succeeded = body.succeeded === true;
      return { op: "cas", succeeded, version: versionOf(firstKv(rangeOfResponse(body, succeeded ? 1 : 0))) };
    }
  }
}
