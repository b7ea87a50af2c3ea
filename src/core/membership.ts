/**
 * Membership changes, one server at a time (thesis 4.1), computed on copies and checked before they
 * replace the live configuration (after etcd's confchange). A configuration entry in the log carries
 * the complete new membership, so any node can rebuild its configuration from its log alone: the
 * latest configuration entry wins, committed or not (thesis 4.1).
 *
 * An added node joins as a learner (it receives the log but does not vote or count toward the quorum)
 * and the leader promotes it to voter once it has caught up (thesis 4.2.1), so adding a node never
 * makes the cluster wait for a node with an empty log.
 */
import { assert } from "../assert.ts";
import type { Membership, NodeId } from "./types.ts";

export type MembershipRequest =
  | ({ readonly type: "add"; readonly nodeId: NodeId; readonly address?: string } & MemberAttributes)
  | { readonly type: "promote"; readonly nodeId: NodeId }
  | { readonly type: "remove"; readonly nodeId: NodeId }
  /** A member's own name and client URL (etcd's member attribute update): voters and learners stay. */
  | ({ readonly type: "attributes"; readonly nodeId: NodeId } & MemberAttributes);

/** What a member publishes about itself; each field left out stays as it is. */
export interface MemberAttributes {
  /** Its pgraft.name. */
  readonly name?: string;
  /** Base URL of its client API, "http://host:port". */
  readonly clientUrl?: string;
}

export type MembershipChangeResult =
  | { readonly ok: true; readonly membership: Membership }
  | { readonly ok: false; readonly reason: string };

/** Computes the membership after `request`, or says why the request cannot be applied. */
export function changeMembership(current: Membership, request: MembershipRequest): MembershipChangeResult {
  const { nodeId } = request;
  if (!Number.isInteger(nodeId) || nodeId <= 0) return { ok: false, reason: `node id must be a positive integer, received ${nodeId}` };
  const isVoter = current.voters.includes(nodeId);
  const isLearner = current.learners.includes(nodeId);
  let next: Membership;
  switch (request.type) {
    case "add": {
      if (isVoter) return { ok: false, reason: `node ${nodeId} is already a voting member` };
      if (isLearner) return { ok: false, reason: `node ${nodeId} is already joining as a learner` };
      if (current.voters.length + current.learners.length >= MEMBERS_MAX) {
        return { ok: false, reason: `the cluster already has ${MEMBERS_MAX} members, the most pgraft supports; remove one first` };
      }
      const addresses = { ...current.addresses };
      if (request.address !== undefined) {
        if (!isMemberAddress(request.address)) {
          return { ok: false, reason: `the address of node ${nodeId} must be host:port with a port from 1 to 65535, at most ${MEMBER_ADDRESS_LENGTH_MAX} characters; received "${request.address.slice(0, 300)}"` };
        }
        addresses[String(nodeId)] = request.address;
      }
      const attributes = withAttributes(current, nodeId, request);
      if (!attributes.ok) return attributes;
      next = normalized({ ...attributes.maps, voters: current.voters, learners: sorted([...current.learners, nodeId]), addresses });
      break;
    }
    case "promote":
      if (!isLearner) return { ok: false, reason: `node ${nodeId} is not a learner` };
      next = normalized({ ...current, voters: sorted([...current.voters, nodeId]), learners: current.learners.filter((id) => id !== nodeId) });
      break;
    case "remove": {
      if (!isVoter && !isLearner) return { ok: false, reason: `node ${nodeId} is not a member` };
      if (isVoter && current.voters.length === 1) return { ok: false, reason: `node ${nodeId} is the last voting member` };
      next = normalized({
        voters: current.voters.filter((id) => id !== nodeId),
        learners: current.learners.filter((id) => id !== nodeId),
        addresses: without(current.addresses, nodeId),
        names: without(current.names, nodeId),
        clientUrls: without(current.clientUrls, nodeId),
      });
      break;
    }
    case "attributes": {
      if (!isVoter && !isLearner) return { ok: false, reason: `node ${nodeId} is not a member` };
      if (request.name === undefined && request.clientUrl === undefined) return { ok: false, reason: `an attribute update of node ${nodeId} names neither a name nor a client URL` };
      const attributes = withAttributes(current, nodeId, request);
      if (!attributes.ok) return attributes;
      next = normalized({ ...current, ...attributes.maps });
      break;
    }
  }
  checkMembership(next);
  assert(symmetricDifference(current.voters, next.voters) <= 1, "a membership change moved more than one voter");
  return { ok: true, membership: next };
}

/**
 * Members (voters and learners) a configuration may have. Far above any sensible Raft cluster (every
 * write waits for a majority); it keeps each node's peer list bounded (TcpTransport allows 64 peers).
 */
export const MEMBERS_MAX = 64;

/** A member's peer address is at most this long: a DNS name (253) and ":65535", with room to spare. */
export const MEMBER_ADDRESS_LENGTH_MAX = 262;
const ADDRESS_PATTERN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/**
 * "host:port": a host name or address (IPv6 in brackets) and a port from 1 to 65535, at most
 * MEMBER_ADDRESS_LENGTH_MAX long. The one rule for every layer that handles member addresses (the
 * core, the wire codec, the cluster API), so that nothing one accepts is refused by another.
 */
export function isMemberAddress(text: string): boolean {
  if (text.length > MEMBER_ADDRESS_LENGTH_MAX) return false;
  const match = ADDRESS_PATTERN.exec(text);
  if (match === null) return false;
  const port = Number(match[2]);
  return port >= 1 && port <= 65_535;
}

export function checkMembership(membership: Membership): void {
  const all = [...membership.voters, ...membership.learners];
  assert(new Set(all).size === all.length, `membership lists a node twice: ${JSON.stringify(membership)}`);
  assert(membership.voters.length > 0, "membership without voters");
  for (const key of MEMBER_MAPS) {
    for (const id of Object.keys(membership[key] ?? {})) {
      const what = { addresses: "an address", names: "a name", clientUrls: "a client URL" }[key];
      assert(all.includes(Number(id)), `membership has ${what} for node ${id}, which is not a member`);
    }
  }
}

/** The per-member maps of a membership, by node id as a string. */
const MEMBER_MAPS = ["addresses", "names", "clientUrls"] as const;
type MemberMaps = { -readonly [K in (typeof MEMBER_MAPS)[number]]?: Readonly<Record<string, string>> };

/** `maps` with `request`'s name and client URL for `nodeId`, or why they cannot be used. */
function withAttributes(current: Membership, nodeId: NodeId, request: MemberAttributes): { ok: true; maps: MemberMaps } | { ok: false; reason: string } {
  const names = { ...current.names };
  const clientUrls = { ...current.clientUrls };
  if (request.name !== undefined) {
    if (!isMemberName(request.name)) return { ok: false, reason: `the name of node ${nodeId} must be 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit; received "${request.name.slice(0, 100)}"` };
    if (Object.entries(names).some(([id, name]) => name === request.name && id !== String(nodeId))) {
      return { ok: false, reason: `the name "${request.name}" is already that of another member; give every node its own pgraft.name` };
    }
    names[String(nodeId)] = request.name;
  }
  if (request.clientUrl !== undefined) {
    if (!isMemberClientUrl(request.clientUrl)) {
      return { ok: false, reason: `the client URL of node ${nodeId} must be http://host:port or https://host:port with a port from 1 to 65535 and nothing after it; received "${request.clientUrl.slice(0, 300)}"` };
    }
    clientUrls[String(nodeId)] = request.clientUrl;
  }
  return { ok: true, maps: { names, clientUrls } };
}

function without(map: Readonly<Record<string, string>> | undefined, nodeId: NodeId): Record<string, string> {
  const copy = { ...map };
  delete copy[String(nodeId)];
  return copy;
}

/**
 * The membership with its per-member maps, each left out when empty: an entry with no names or client
 * URLs encodes exactly as older versions wrote it.
 */
function normalized(membership: Membership): Membership {
  const result: { voters: readonly NodeId[]; learners: readonly NodeId[] } & MemberMaps = { voters: membership.voters, learners: membership.learners };
  for (const key of MEMBER_MAPS) {
    const map = membership[key];
    if (map !== undefined && Object.keys(map).length > 0) result[key] = map;
  }
  return result;
}

export function encodeMembership(membership: Membership): string {
  return JSON.stringify(normalized(membership));
}

/**
 * Decodes a configuration entry; only the core writes them, so a malformed one is a bug. Tolerant of
 * every version so far: entries written before names and client URLs existed have neither, and
 * fields this version does not know are ignored.
 */
export function decodeMembership(data: string): Membership {
  const parsed = JSON.parse(data) as Membership;
  assert(Array.isArray(parsed.voters) && Array.isArray(parsed.learners), `malformed configuration entry: ${data}`);
  // Structure only: a value the current rules refuse (written by an older version) must not stop a
  // node from starting; whoever uses it checks it and says so (NodeServer logs and skips it).
  for (const key of MEMBER_MAPS) {
    const map: unknown = parsed[key];
    assert(
      map === undefined || (typeof map === "object" && map !== null && !Array.isArray(map) && Object.values(map).every((value) => typeof value === "string")),
      `malformed ${key} in configuration entry: ${data}`,
    );
  }
  return normalized({ voters: parsed.voters, learners: parsed.learners, addresses: parsed.addresses, names: parsed.names, clientUrls: parsed.clientUrls });
}

/** The address a configuration gives for `nodeId`, if it was added at run time. */
export function memberAddress(membership: Membership, nodeId: NodeId): string | undefined {
  return membership.addresses?.[String(nodeId)];
}

/** The name a configuration gives for `nodeId`, once the member published it or was added with one. */
export function memberName(membership: Membership, nodeId: NodeId): string | undefined {
  return membership.names?.[String(nodeId)];
}

/** The client URL a configuration gives for `nodeId`, once the member published it or was added with one. */
export function memberClientUrl(membership: Membership, nodeId: NodeId): string | undefined {
  return membership.clientUrls?.[String(nodeId)];
}

/** A member's name: pgraft.name's rule. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function isMemberName(text: string): boolean {
  return NAME_PATTERN.test(text);
}

/**
 * A member's client URL: "http://" or "https://", then a member address (isMemberAddress), nothing
 * after it (the APIs drop a trailing "/" first). The one rule for the core, the wire codec and the APIs.
 */
export function isMemberClientUrl(text: string): boolean {
  const match = /^https?:\/\/(.*)$/.exec(text);
  return match !== null && isMemberAddress(match[1]!);
}

function sorted(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => a - b);
}

function symmetricDifference(a: readonly NodeId[], b: readonly NodeId[]): number {
  return a.filter((id) => !b.includes(id)).length + b.filter((id) => !a.includes(id)).length;
}
