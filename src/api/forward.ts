/**
 * A follower hands a client request to the leader's client API, one hop, bounded by a timeout, and
 * passes the leader's answer back unchanged. The request carries FORWARDED_BY_HEADER, and a node that
 * receives a forwarded request it cannot serve answers with an error instead of forwarding again, so a
 * request never travels more than one hop (no loops while leadership moves).
 *
 * Outcome of a failure: a read changed nothing, so it always "failed". A write that could not be sent
 * (connection refused) "failed"; a write sent but not answered (timeout, connection reset) is "unknown":
 * the leader may still apply it.
 */
import { request as httpRequest, Agent as HttpAgent } from "node:http";
import { request as httpsRequest } from "node:https";
import type { NodeId } from "../core/types.ts";
import { ForwardError } from "./errors.ts";

export const FORWARDED_BY_HEADER = "x-pgraft-forwarded-by";

export interface ForwardOptions {
  readonly leaderId: NodeId;
  /** The leader's client API base URL, such as http://10.0.0.2:2379. */
  readonly baseUrl: string;
  readonly path: string;
  readonly body: Buffer;
  /** This node's id, sent in FORWARDED_BY_HEADER. */
  readonly fromMemberId: string;
  readonly isWrite: boolean;
  readonly timeoutMs: number;
  readonly responseBytesMax: number;
  readonly agent?: HttpAgent;
}

export interface ForwardedResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

export function forwardToLeader(options: ForwardOptions): Promise<ForwardedResponse> {
  return new Promise<ForwardedResponse>((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(options.path, options.baseUrl);
    } catch {
      reject(
        new ForwardError(
          options.leaderId,
          false,
          "failed",
          `Cannot forward the request to the leader, node ${options.leaderId}: its client URL "${options.baseUrl}" is not a valid URL; fix the node's peer client URLs`,
        ),
      );
      return;
    }
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    let settled = false;
    let sent = false;
    const fail = (timedOut: boolean, detail: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const outcome = options.isWrite && sent ? "unknown" : "failed";
      const advice =
        outcome === "unknown" ? "it may still take effect: read the key before retrying" : "it did not take effect: retry it";
      request.destroy();
      reject(
        new ForwardError(
          options.leaderId,
          timedOut,
          outcome,
          `Cannot forward the request to the leader, node ${options.leaderId} at ${options.baseUrl}: ${detail}; ${advice}`,
        ),
      );
    };
    const request = send(target, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": options.body.length,
        [FORWARDED_BY_HEADER]: options.fromMemberId,
      },
      ...(target.protocol === "http:" && options.agent !== undefined ? { agent: options.agent } : {}),
    });
    const timer = setTimeout(() => fail(true, `no answer within ${options.timeoutMs} ms`), options.timeoutMs);
    request.on("finish", () => {
      sent = true;
    });
    request.on("error", (error) => fail(false, error.message));
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > options.responseBytesMax) {
          fail(false, `its answer is larger than ${options.responseBytesMax} bytes`);
          return;
        }
        chunks.push(chunk);
      });
      response.on("error", (error) => fail(false, error.message));
      response.on("end", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({
          status: response.statusCode ?? 502,
          contentType: String(response.headers["content-type"] ?? "application/json"),
          body: Buffer.concat(chunks),
        });
      });
    });
    request.end(options.body);
  });
}
