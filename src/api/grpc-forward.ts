/**
 * The gRPC server's way to another node's JSON gateway: a gRPC call that reaches a follower but needs
 * the leader (a write, a linearizable read, a lease call) is sent to the leader's gateway as the same
 * JSON (one hop, forward.ts's rules: bounded in time and size, never forwarded again), and the leader's
 * answer, or its error, comes back to the gRPC client unchanged. Membership calls go to this node's
 * own gateway the same way (the cluster API lives there).
 */
import type { Agent } from "node:http";
import type { NodeId } from "../core/types.ts";
import type { GatewayErrorBody } from "./errors.ts";
import { forwardToLeader } from "./forward.ts";

type JsonObject = Record<string, unknown>;

/** Answers are JSON messages; a leader's answer larger than this is refused. */
export const GATEWAY_ANSWER_BYTES_MAX = 64 * 1024 * 1024;

/** A gateway answered with an error: its body, passed to the gRPC client as its status. */
export class GatewayAnswerError extends Error {
  override name = "GatewayAnswerError";
  constructor(
    readonly httpStatus: number,
    readonly body: GatewayErrorBody,
  ) {
    super(body.error);
  }
}

/** A gateway answer (status and body) as the JSON it carries, or a GatewayAnswerError. */
export function readGatewayAnswer(status: number, body: Buffer, from: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const isObject = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
  if (status === 200 && isObject) return parsed as JsonObject;
  const error = isObject ? (parsed as Partial<GatewayErrorBody>) : {};
  if (typeof error.error === "string" && typeof error.code === "number") throw new GatewayAnswerError(status, error as GatewayErrorBody);
  throw new GatewayAnswerError(status, {
    error: `Cannot use the answer of ${from}: HTTP ${status} with a body that is not etcd's JSON (${JSON.stringify(body.subarray(0, 120).toString("utf8"))}); check that node's log`,
    code: 13,
    message: "",
    outcome: "unknown",
  });
}

export interface ForwardJsonOptions {
  readonly leaderId: NodeId;
  readonly baseUrl: string;
  /** The gateway path, such as /v3/kv/put. */
  readonly path: string;
  readonly json: JsonObject;
  readonly fromMemberId: string;
  readonly isWrite: boolean;
  readonly timeoutMs: number;
  readonly agent?: Agent;
}

/** Sends `json` to the leader's gateway and returns its answer (GatewayAnswerError for an error answer). */
export async function forwardJson(options: ForwardJsonOptions): Promise<JsonObject> {
  const forwarded = await forwardToLeader({
    leaderId: options.leaderId,
    baseUrl: options.baseUrl,
    path: options.path,
    body: Buffer.from(JSON.stringify(options.json)),
    fromMemberId: options.fromMemberId,
    isWrite: options.isWrite,
    timeoutMs: options.timeoutMs,
    responseBytesMax: GATEWAY_ANSWER_BYTES_MAX,
    agent: options.agent,
  });
  return readGatewayAnswer(forwarded.status, forwarded.body, `the leader, node ${options.leaderId}`);
}

export interface GatewayCallerOptions {
  /** This node's gateway base URL (known once its port listens). */
  readonly ownUrl: () => string;
  /** A node's gateway base URL: a membership change refused by a follower goes to the leader once. */
  readonly peerClientUrls?: (nodeId: NodeId) => string | undefined;
  readonly fromMemberId: string;
  /** A membership change answers once the new member votes: give it time (default 30 s). */
  readonly timeoutMs?: number;
}

const GATEWAY_CALL_TIMEOUT_MS_DEFAULT = 30_000;

/**
 * Calls this node's gateway (the cluster API lives there), and, when this node is a follower that
 * refuses a membership change (503 naming the leader), the leader's gateway once.
 */
export function createGatewayCaller(options: GatewayCallerOptions): (path: string, json: JsonObject) => Promise<JsonObject> {
  const timeoutMs = options.timeoutMs ?? GATEWAY_CALL_TIMEOUT_MS_DEFAULT;
  const post = async (baseUrl: string, path: string, json: JsonObject): Promise<JsonObject> => {
    let response: Response;
    try {
      response = await fetch(new URL(path, baseUrl), {
        method: "POST",
        headers: { "content-type": "application/json", "x-pgraft-forwarded-by": options.fromMemberId },
        body: JSON.stringify(json),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new GatewayAnswerError(503, {
        error: `Cannot reach the gateway at ${baseUrl} for ${path}: ${detail}; a membership change may still take effect, check the member list before retrying`,
        code: 14,
        message: "",
        outcome: "unknown",
      });
    }
    const body = Buffer.from(await response.arrayBuffer());
    if (body.length > GATEWAY_ANSWER_BYTES_MAX) throw new Error(`the gateway at ${baseUrl} answered ${body.length} bytes for ${path}`);
    return readGatewayAnswer(response.status, body, `the gateway at ${baseUrl}`);
  };
  return async (path, json) => {
    try {
      return await post(options.ownUrl(), path, json);
    } catch (error) {
      const leaderId = error instanceof GatewayAnswerError && error.httpStatus === 503 ? Number(error.body.leader_id ?? 0) : 0;
      const leaderUrl = leaderId > 0 && String(leaderId) !== options.fromMemberId ? options.peerClientUrls?.(leaderId) : undefined;
      if (leaderUrl === undefined) throw error;
      return await post(leaderUrl, path, json);
    }
  };
}
