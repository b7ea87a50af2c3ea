/**
 * What a node reports into pgraft.node_status, computed from its Raft status: the numbers behind
 * pgraft_get_cluster_status(), pgraft_get_nodes(), pgraft_log_get_stats() and
 * pgraft_log_get_replication_status(). Pure, so it is tested without a server.
 */
import type { RaftStatus } from "../core/raft.ts";
import type { NodeId } from "../core/types.ts";
import type { NodeStatusRow } from "./postgres-bridge.ts";

export interface StatusRowInput {
  readonly status: RaftStatus;
  readonly clusterId: string;
  readonly name: string;
  /** Election timeout in ticks: a follower that has not answered the leader within it is unreachable. */
  readonly electionTimeoutTicks: number;
  readonly tickMs: number;
  readonly memberName: (id: NodeId) => string | undefined;
  /** A member's Raft peer address. */
  readonly peerAddress: (id: NodeId) => { readonly host: string; readonly port: number } | undefined;
  readonly clientUrl: (id: NodeId) => string | undefined;
  /** Whether this node's transport holds a live connection to the member. */
  readonly connected: (id: NodeId) => boolean;
  /** pgraft.kv's applied index on this node (0 while unknown). */
  readonly tableApplied: number;
  /**
   * Whether the node learned that it was removed from the cluster and stopped taking part (it idles
   * with pgraft.on_removed = idle). Left out: false.
   */
  readonly removed?: boolean;
}

/**
 * pgraft_get_worker_state(): RUNNING for a member; STARTING for a node waiting to be added (started with
 * initial_cluster_state = existing, outside the configuration); STOPPED for a node that was removed and
 * no longer votes, campaigns or serves (what /health says of it too: 503, "stopped"). A removed node is
 * outside its configuration like a joining one, so only `removed` tells them apart.
 */
export function workerState(isMember: boolean, removed: boolean): NodeStatusRow["worker_state"] {
  if (removed) return "STOPPED";
  return isMember ? "RUNNING" : "STARTING";
}

export function buildStatusRow(input: StatusRowInput): NodeStatusRow {
  const { status } = input;
  const members = [...status.membership.voters, ...status.membership.learners].sort((a, b) => a - b);
  const isMember = members.includes(status.id);
  const removed = input.removed === true;
  // A removed node leads nothing and follows no one, whatever its frozen Raft state last said.
  const leading = status.role === "leader" && !removed;
  const leaderId = removed ? 0 : status.leaderId;
  const peers = new Map(status.peers.map((peer) => [peer.id, peer]));
  const reachable = (id: NodeId): boolean => {
    if (id === status.id) return true;
    const peer = peers.get(id);
    if (leading && peer !== undefined) return peer.ticksSinceResponse < input.electionTimeoutTicks;
    return input.connected(id);
  };
  const nodes = members.map((id) => {
    const address = input.peerAddress(id);
    return {
      node_id: id,
      name: input.memberName(id) ?? `node${id}`,
      address: address?.host ?? null,
      port: address?.port ?? null,
      is_leader: id === leaderId,
      is_learner: status.membership.learners.includes(id),
      reachable: reachable(id),
      client_url: input.clientUrl(id) ?? null,
    };
  });
  const replication = leading
    ? status.peers
        .filter((peer) => peer.id !== status.id)
        .map((peer) => ({
          node_id: peer.id,
          match_index: peer.match,
          next_index: peer.next,
          lag: Math.max(0, status.lastIndex - peer.match),
          state: peer.state,
          ms_since_contact: peer.ticksSinceResponse * input.tickMs,
        }))
    : [];
  return {
    node_id: status.id,
    name: input.name,
    cluster_id: input.clusterId,
    worker_state: workerState(isMember, removed),
    state: removed && status.role === "leader" ? "follower" : status.role,
    current_term: status.term,
    leader_id: leaderId,
    quorum: leading && status.quorumActive,
    num_nodes: members.length,
    messages_processed: status.counters.messagesReceived,
    heartbeats_sent: status.counters.heartbeatsSent,
    elections_triggered: status.counters.electionsStarted,
    log_size: Math.max(0, status.lastIndex - status.firstIndex + 1),
    last_index: status.lastIndex,
    commit_index: status.commit,
    last_applied: status.applied,
    replicated: leading ? quorumMatch(status) : status.lastIndex,
    committed: status.commit,
    applied: input.tableApplied,
    errors: status.counters.proposalsRejected,
    nodes,
    replication,
  };
}

/** On a leader: the highest index a majority of voters holds (the leader's own log counts). */
function quorumMatch(status: RaftStatus): number {
  const voters = status.membership.voters;
  const matches = voters.map((id) => (id === status.id ? status.lastIndex : (status.peers.find((peer) => peer.id === id)?.match ?? 0))).sort((a, b) => b - a);
  if (matches.length === 0) return 0;
  return matches[Math.floor(voters.length / 2)]!;
}
