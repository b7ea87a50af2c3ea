/**
 * How a node publishes its own name and client URL to the cluster, like etcd's member attribute
 * update: a replicated configuration change, proposed by the leader. A leader proposes its own; a
 * follower sends its attributes to the leader's client API:
 *
 *   POST /pgraft/member/attributes  {"ID": "4", "name": "n4", "clientURLs": ["http://host:port"]}
 *
 * The route answers once the change is committed (200 with the members' ids), 503 on a follower
 * (naming the leader), 400 for a malformed body. It is pgraft's own, outside etcd's /v3 namespace.
 */
import { isMemberClientUrl, isMemberName } from "../core/membership.ts";
import type { NodeId } from "../core/types.ts";
import { InvalidRequestError } from "../errors.ts";
import { readBody, sendError, sendJson, type HttpRoute } from "../api/index.ts";
import type { AdminResult, MembershipChange } from "../node/raft-node.ts";

export const MEMBER_ATTRIBUTES_PATH = "/pgraft/member/attributes";
const BODY_BYTES_MAX = 4 * 1024;
const NODE_ID_MAX = 1_000_000;

export interface MemberAttributes {
  readonly nodeId: NodeId;
  readonly name: string;
  readonly clientUrl: string;
}

export interface MemberAttributesRouteOptions {
  readonly changeMembership: (change: MembershipChange, callback: (result: AdminResult) => void) => void;
}

export function createMemberAttributesRoute(options: MemberAttributesRouteOptions): HttpRoute {
  return (request, response, url) => {
    if (url.pathname !== MEMBER_ATTRIBUTES_PATH) return false;
    void (async () => {
      try {
        if (request.method !== "POST") throw new InvalidRequestError(`Cannot serve ${request.method} ${MEMBER_ATTRIBUTES_PATH}: send a POST with a JSON body`);
        const attributes = parseMemberAttributes(await readBody(request, BODY_BYTES_MAX));
        const result = await new Promise<AdminResult>((resolve) =>
          options.changeMembership({ type: "attributes", nodeId: attributes.nodeId, name: attributes.name, clientUrl: attributes.clientUrl }, resolve),
        );
        if (!result.ok) throw result.error;
        sendJson(request, response, 200, { members: [...result.membership.voters, ...result.membership.learners].map(String) });
      } catch (error) {
        if (response.headersSent) response.destroy();
        else sendError(request, response, error);
      }
    })();
    return true;
  };
}

/** Reads and checks a publish body; throws InvalidRequestError naming what is wrong. */
export function parseMemberAttributes(body: Buffer): MemberAttributes {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    throw new InvalidRequestError(`Cannot read the body of ${MEMBER_ATTRIBUTES_PATH}: send JSON like {"ID": "4", "name": "n4", "clientURLs": ["http://127.0.0.1:2379"]}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidRequestError("Cannot use the request body: send a JSON object");
  const { ID, name, clientURLs } = value as Record<string, unknown>;
  if (typeof ID !== "string" || !/^[1-9]\d*$/.test(ID) || Number(ID) > NODE_ID_MAX) {
    throw new InvalidRequestError(`Cannot use ID ${JSON.stringify(ID)}: a member id is a positive integer up to ${NODE_ID_MAX}, as a string like "4"`);
  }
  if (typeof name !== "string" || !isMemberName(name)) throw new InvalidRequestError(`Cannot use name ${String(JSON.stringify(name)).slice(0, 100)}: send the node's pgraft.name`);
  if (!Array.isArray(clientURLs) || clientURLs.length !== 1 || typeof clientURLs[0] !== "string" || !isMemberClientUrl(clientURLs[0])) {
    throw new InvalidRequestError(`Cannot use clientURLs ${String(JSON.stringify(clientURLs)).slice(0, 300)}: send one URL, http://host:port`);
  }
  return { nodeId: Number(ID), name, clientUrl: clientURLs[0] };
}
