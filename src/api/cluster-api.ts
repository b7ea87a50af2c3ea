/**
 * Membership through etcd's JSON gateway (the Cluster service), so that `etcdctl member list|add|remove`
 * habits and scripts carry over:
 *
 *   POST /v3/cluster/member/list    {}                                  -> {header, members}
 *   POST /v3/cluster/member/add     {peerURLs: ["http://host:port"], clientURLs?, name?, ID?} -> {header, member, members}
 *   POST /v3/cluster/member/remove  {ID: "3"}                           -> {header, members}
 *   POST /v3/maintenance/transfer-leadership {targetID: "2"}            -> {header}   (etcd's MoveLeader)
 *
 * Differences from etcd, each for a reason:
 * - Member ids are pgraft's node ids (small integers, as strings like etcd's uint64 ids). `add` takes
 *   an optional `ID` so that the new node's `pgraft.node_id` (or its position in its own
 *   pgraft.initial_cluster) can be chosen up front; without one, the next free id is used and returned.
 * - `add` also takes the new node's client URL (`clientURLs`, one "http://host:port") and its `name`
 *   (pgraft.name), so that other nodes can forward to it and name it before it has started; a node
 *   publishes both itself when it starts, replacing what `add` recorded.
 * - `add` answers once the node is a voter: it joins as a learner, catches up from the leader (start it
 *   first, with `pgraft.initial_cluster_state = existing`), and is promoted. `isLearner: true` is refused,
 *   since pgraft promotes learners itself.
 * - Only the leader changes membership; a follower answers 503 with the leader's id, like every write,
 *   and a change while another is still uncommitted answers 409 (retry once it settles).
 *   `list` answers on any node, from the configuration it has (the leader's is the newest).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { isMemberAddress, isMemberClientUrl, isMemberName, MEMBER_ADDRESS_LENGTH_MAX, memberAddress, memberClientUrl, memberName } from "../core/membership.ts";
import type { Membership, NodeId } from "../core/types.ts";
import { InvalidRequestError } from "../errors.ts";
import type { AdminResult, MembershipChange } from "../node/raft-node.ts";
import { MemberNotFoundError, RouteError } from "./errors.ts";
import { parseJsonBody, readBody, sendError, sendJson, type HttpRoute } from "./http-server.ts";
import { encodeHeader } from "./kv-json.ts";
import type { ResponseHeader } from "./kv-types.ts";

/** What the cluster API needs of a node. */
export interface ClusterBackend {
  /** The configuration this node has: the latest configuration entry in its log. */
  membership(): Membership;
  changeMembership(change: MembershipChange, callback: (result: AdminResult) => void): void;
  /** Hands leadership to `target` (leader only); answers once it leads. */
  transferLeadership(target: NodeId, callback: (result: AdminResult) => void): void;
  header(): ResponseHeader;
}

export interface ClusterApiOptions {
  readonly backend: ClusterBackend;
  /** Name and "host:port" of the founding members (pgraft.initial_cluster), by node id. */
  readonly initialMember: (nodeId: NodeId) => { readonly name: string; readonly address: string } | undefined;
  /** Base URL of a member's client API, when known (pgraft.client_urls). */
  readonly clientUrl?: (nodeId: NodeId) => string | undefined;
}

const BODY_BYTES_MAX = 64 * 1024;
/** Node ids the API hands out or accepts: far above any Raft cluster, below the transport's checks. */
const NODE_ID_MAX = 1_000_000;
const PATHS = ["list", "add", "remove"] as const;
type ClusterOperation = (typeof PATHS)[number] | "transfer-leadership";
const TRANSFER_PATH = "/v3/maintenance/transfer-leadership";

export class ClusterApi {
  readonly #options: ClusterApiOptions;

  constructor(options: ClusterApiOptions) {
    this.#options = options;
  }

  /** The route for startHttpServer(): serves /v3/cluster/member/* and MoveLeader; put it before the KV route. */
  readonly route: HttpRoute = (request, response, url) => {
    if (!url.pathname.startsWith("/v3/cluster/") && url.pathname !== TRANSFER_PATH) return false;
    void this.#serve(request, response, url.pathname);
    return true;
  };

  async #serve(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    try {
      const operation: ClusterOperation | undefined = path === TRANSFER_PATH ? "transfer-leadership" : PATHS.find((candidate) => path === `/v3/cluster/member/${candidate}`);
      if (operation === undefined) {
        throw new RouteError(404, `Cannot serve ${path}: pgraft's cluster API serves POST /v3/cluster/member/list, /v3/cluster/member/add and /v3/cluster/member/remove`);
      }
      if (request.method !== "POST") throw new RouteError(405, `Cannot serve ${request.method} ${path}: send a POST with a JSON body`);
      const body = parseBody(await readBody(request, BODY_BYTES_MAX));
      sendJson(request, response, 200, await this.#run(operation, body));
    } catch (error) {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      sendError(request, response, error);
    }
  }

  async #run(operation: ClusterOperation, body: Record<string, unknown>): Promise<unknown> {
    const backend = this.#options.backend;
    switch (operation) {
      case "list":
        return { header: encodeHeader(backend.header()), members: this.#members(backend.membership()) };
      case "add": {
        const peerUrl = readPeerUrl(body);
        if (body.isLearner === true) throw new InvalidRequestError("Cannot add a learner: pgraft adds every node as a learner and promotes it once it has caught up; leave out isLearner");
        const current = backend.membership();
        const nodeId = body.ID === undefined ? nextFreeId(current) : readNodeId(body.ID, "ID");
        const clientUrl = readClientUrl(body);
        const name = readName(body);
        const membership = await this.#change({ type: "add", nodeId, address: peerUrl.address, ...(clientUrl === undefined ? {} : { clientUrl }), ...(name === undefined ? {} : { name }) });
        return { header: encodeHeader(backend.header()), member: this.#member(membership, nodeId), members: this.#members(membership) };
      }
      case "remove": {
        if (body.ID === undefined) throw new InvalidRequestError('Cannot remove a member without its id: send {"ID": "3"}');
        const nodeId = readNodeId(body.ID, "ID");
        const membership = await this.#change({ type: "remove", nodeId }).catch((error: unknown) => {
          // The leader refused the change against its own configuration: an id it does not have is
          // etcd's NOT_FOUND ("member not found"), which etcdctl and clientv3 recognise.
          throw error instanceof InvalidRequestError && !isMember(backend.membership(), nodeId) ? new MemberNotFoundError(nodeId) : error;
        });
        return { header: encodeHeader(backend.header()), members: this.#members(membership) };
      }
      case "transfer-leadership": {
        if (body.targetID === undefined) throw new InvalidRequestError('Cannot transfer leadership without a target: send {"targetID": "2"}');
        const target = readNodeId(body.targetID, "targetID");
        await new Promise<Membership>((resolve, reject) => backend.transferLeadership(target, (result) => (result.ok ? resolve(result.membership) : reject(result.error))));
        return { header: encodeHeader(backend.header()) };
      }
    }
  }

  #change(change: MembershipChange): Promise<Membership> {
    return new Promise((resolve, reject) => {
      this.#options.backend.changeMembership(change, (result) => (result.ok ? resolve(result.membership) : reject(result.error)));
    });
  }

  #members(membership: Membership): Record<string, unknown>[] {
    return [...membership.voters, ...membership.learners].sort((a, b) => a - b).map((id) => this.#member(membership, id));
  }

  #member(membership: Membership, nodeId: NodeId): Record<string, unknown> {
    const initial = this.#options.initialMember(nodeId);
    const address = memberAddress(membership, nodeId) ?? initial?.address;
    const clientUrl = memberClientUrl(membership, nodeId) ?? this.#options.clientUrl?.(nodeId);
    return {
      ID: String(nodeId),
      name: memberName(membership, nodeId) ?? initial?.name ?? `node${nodeId}`,
      peerURLs: address === undefined ? [] : [`http://${address}`],
      clientURLs: clientUrl === undefined ? [] : [clientUrl],
      isLearner: membership.learners.includes(nodeId),
    };
  }
}

function isMember(membership: Membership, nodeId: NodeId): boolean {
  return membership.voters.includes(nodeId) || membership.learners.includes(nodeId);
}

function parseBody(body: Buffer): Record<string, unknown> {
  const value = parseJsonBody(body, '{"ID": "3"}');
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidRequestError("Cannot use the request body: send a JSON object");
  return value as Record<string, unknown>;
}

/** etcd sends ids as strings (uint64 in JSON); numbers are accepted too. */
function readNodeId(value: unknown, field: string): NodeId {
  const text = typeof value === "number" ? String(value) : value;
  if (typeof text !== "string" || !/^[1-9]\d*$/.test(text) || Number(text) > NODE_ID_MAX) {
    throw new InvalidRequestError(`Cannot use ${field} ${JSON.stringify(value)}: a member id is a positive integer up to ${NODE_ID_MAX}, as a string like "4"`);
  }
  return Number(text);
}

/**
 * The one peer URL, "http://host:port" (or https): where the other nodes reach the new one's Raft port.
 * Read by hand rather than with URL, which drops a scheme's default port ("http://h:80" has port "")
 * and quietly accepts credentials and fragments; an explicit port is required, as nothing else is.
 */
function readPeerUrl(body: Record<string, unknown>): { address: string } {
  const urls = body.peerURLs;
  if (!Array.isArray(urls) || urls.length !== 1 || typeof urls[0] !== "string") {
    throw new InvalidRequestError('Cannot add a member without its peer address: send {"peerURLs": ["http://host:port"]} with exactly one URL, the new node\'s pgraft.listen_address');
  }
  const text = urls[0];
  const match = /^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d+)\/?$/.exec(text);
  const address = match === null ? undefined : `${match[1]}:${match[2]}`;
  if (address === undefined || !isMemberAddress(address)) {
    throw new InvalidRequestError(
      `Cannot use peer URL ${JSON.stringify(text.slice(0, 300))}: write it as http://host:port, with a port from 1 to 65535 and nothing after it (no path, query, fragment or credentials), at most ${MEMBER_ADDRESS_LENGTH_MAX} characters for host:port`,
    );
  }
  return { address };
}

/** The optional client URL of `add`: at most one "http://host:port" (a trailing "/" is dropped). */
function readClientUrl(body: Record<string, unknown>): string | undefined {
  const urls = body.clientURLs;
  if (urls === undefined || (Array.isArray(urls) && urls.length === 0)) return undefined;
  if (!Array.isArray(urls) || urls.length !== 1 || typeof urls[0] !== "string") {
    throw new InvalidRequestError('Cannot use clientURLs: send {"clientURLs": ["http://host:port"]} with one URL, the new node\'s client API (pgraft.client_address), or leave it out');
  }
  const text = urls[0].replace(/\/$/, "");
  if (!isMemberClientUrl(text)) {
    throw new InvalidRequestError(`Cannot use client URL ${JSON.stringify(urls[0].slice(0, 300))}: write it as http://host:port, with a port from 1 to 65535 and nothing after it`);
  }
  return text;
}

/** The optional name of `add`: the new node's pgraft.name. */
function readName(body: Record<string, unknown>): string | undefined {
  const name = body.name;
  if (name === undefined || name === "") return undefined;
  if (typeof name !== "string" || !isMemberName(name)) {
    throw new InvalidRequestError(`Cannot use name ${JSON.stringify(name).slice(0, 100)}: a member's name is its pgraft.name, 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit`);
  }
  return name;
}

/**
 * The next id above every current member. An id of a member removed earlier may come back; its old
 * data directory must be wiped before a node joins under it, as for any new member.
 */
function nextFreeId(membership: Membership): NodeId {
  return Math.max(0, ...membership.voters, ...membership.learners) + 1;
}

