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
  | { readonly type: "add"; readonly nodeId: NodeId; readonly address?: string }
  | { readonly type: "promote"; readonly nodeId: NodeId }
  | { readonly type: "remove"; readonly nodeId: NodeId };

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
      next = withAddresses({ voters: current.voters, learners: sorted([...current.learners, nodeId]) }, addresses);
      break;
    }
    case "promote":
      if (!isLearner) return { ok: false, reason: `node ${nodeId} is not a learner` };
      next = withAddresses({ voters: sorted([...current.voters, nodeId]), learners: current.learners.filter((id) => id !== nodeId) }, current.addresses);
      break;
    case "remove": {
      if (!isVoter && !isLearner) return { ok: false, reason: `node ${nodeId} is not a member` };
      if (isVoter && current.voters.length === 1) return { ok: false, reason: `node ${nodeId} is the last voting member` };
      const addresses = { ...current.addresses };
      delete addresses[String(nodeId)];
      next = withAddresses({ voters: current.voters.filter((id) => id !== nodeId), learners: current.learners.filter((id) => id !== nodeId) }, addresses);
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
  for (const id of Object.keys(membership.addresses ?? {})) {
    assert(all.includes(Number(id)), `membership has an address for node ${id}, which is not a member`);
  }
}

/** The membership with `addresses`, or without the field when there are none (older entries had none). */
function withAddresses(membership: Membership, addresses: Readonly<Record<string, string>> | undefined): Membership {
  if (addresses === undefined || Object.keys(addresses).length === 0) return { voters: membership.voters, learners: membership.learners };
  return { voters: membership.voters, learners: membership.learners, addresses };
}

export function encodeMembership(membership: Membership): string {
  const addresses = membership.addresses;
  if (addresses === undefined || Object.keys(addresses).length === 0) return JSON.stringify({ voters: membership.voters, learners: membership.learners });
  return JSON.stringify({ voters: membership.voters, learners: membership.learners, addresses });
}

/** Decodes a configuration entry; only the core writes them, so a malformed one is a bug. */
export function decodeMembership(data: string): Membership {
  const parsed = JSON.parse(data) as Membership;
  assert(Array.isArray(parsed.voters) && Array.isArray(parsed.learners), `malformed configuration entry: ${data}`);
  const addresses = parsed.addresses;
  // Structure only: an address the current rules refuse (written by an older version) must not stop a
  // node from starting; whoever dials it checks it and says so (NodeServer logs and skips it).
  assert(
    addresses === undefined ||
      (typeof addresses === "object" && addresses !== null && !Array.isArray(addresses) && Object.values(addresses).every((value) => typeof value === "string")),
    `malformed addresses in configuration entry: ${data}`,
  );
  return withAddresses({ voters: parsed.voters, learners: parsed.learners }, addresses);
}

/** The address a configuration gives for `nodeId`, if it was added at run time. */
export function memberAddress(membership: Membership, nodeId: NodeId): string | undefined {
  return membership.addresses?.[String(nodeId)];
}

function sorted(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => a - b);
}

function symmetricDifference(a: readonly NodeId[], b: readonly NodeId[]): number {
  return a.filter((id) => !b.includes(id)).length + b.filter((id) => !a.includes(id)).length;
}
