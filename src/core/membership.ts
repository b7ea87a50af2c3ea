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
  | { readonly type: "add"; readonly nodeId: NodeId }
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
    case "add":
      if (isVoter) return { ok: false, reason: `node ${nodeId} is already a voting member` };
      if (isLearner) return { ok: false, reason: `node ${nodeId} is already joining as a learner` };
      next = { voters: current.voters, learners: sorted([...current.learners, nodeId]) };
      break;
    case "promote":
      if (!isLearner) return { ok: false, reason: `node ${nodeId} is not a learner` };
      next = { voters: sorted([...current.voters, nodeId]), learners: current.learners.filter((id) => id !== nodeId) };
      break;
    case "remove":
      if (!isVoter && !isLearner) return { ok: false, reason: `node ${nodeId} is not a member` };
      if (isVoter && current.voters.length === 1) return { ok: false, reason: `node ${nodeId} is the last voting member` };
      next = { voters: current.voters.filter((id) => id !== nodeId), learners: current.learners.filter((id) => id !== nodeId) };
      break;
  }
  checkMembership(next);
  assert(symmetricDifference(current.voters, next.voters) <= 1, "a membership change moved more than one voter");
  return { ok: true, membership: next };
}

export function checkMembership(membership: Membership): void {
  const all = [...membership.voters, ...membership.learners];
  assert(new Set(all).size === all.length, `membership lists a node twice: ${JSON.stringify(membership)}`);
  assert(membership.voters.length > 0, "membership without voters");
}

export function encodeMembership(membership: Membership): string {
  return JSON.stringify({ voters: membership.voters, learners: membership.learners });
}

/** Decodes a configuration entry; only the core writes them, so a malformed one is a bug. */
export function decodeMembership(data: string): Membership {
  const parsed = JSON.parse(data) as Membership;
  assert(Array.isArray(parsed.voters) && Array.isArray(parsed.learners), `malformed configuration entry: ${data}`);
  return { voters: parsed.voters, learners: parsed.learners };
}

function sorted(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => a - b);
}

function symmetricDifference(a: readonly NodeId[], b: readonly NodeId[]): number {
  return a.filter((id) => !b.includes(id)).length + b.filter((id) => !a.includes(id)).length;
}
