/**
 * Liveness: once every fault is healed and a majority can talk, a leader must be elected and a write
 * must commit within a bound derived from the election timeout. When it does not happen, the report
 * says why, node by node, instead of a bare "timed out".
 */
import type { NodeId } from "../../src/core/types.ts";
import type { SimCluster } from "../cluster.ts";

/** Election timeouts allowed for recovery: randomized timeouts, pre-votes, a few split votes and a commit. */
export const LIVENESS_ELECTION_TIMEOUTS_MAX = 12;

/**
 * The recovery bound for a world whose network loses `lossRate` of all messages (a property of the
 * world, not a fault, so healing keeps it). An election round (pre-vote, then vote) needs a request
 * and an answer to and from each of the quorum's other members, 4 * (quorum - 1) messages; on a lossy
 * network a round succeeds with probability (1 - loss) ^ that at worst, so the expected number of
 * rounds, and the bound, grow by its inverse. Without loss the bound is LIVENESS_ELECTION_TIMEOUTS_MAX
 * timeouts. (Seed 2113 showed why: 2 of 5 voters lost, 9% loss, and the one node able to win needed
 * every other live vote; it won after 12 timeouts.)
 */
export function livenessBoundMs(electionTimeoutMs: number, lossRate: number, voterCount: number): number {
  const quorumOthers = Math.floor(Math.max(1, voterCount) / 2);
  const roundSuccess = (1 - lossRate) ** (4 * quorumOthers);
  return Math.ceil((LIVENESS_ELECTION_TIMEOUTS_MAX * electionTimeoutMs) / roundSuccess);
}

export type LivenessResult =
  | { readonly ok: true; readonly leaderId: NodeId; readonly recoveryMs: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Runs the healed cluster until a leader with a live quorum commits a probe write, or the bound passes.
 */
export function checkLiveness(cluster: SimCluster, options: { boundMs: number; probeKey: string }): LivenessResult {
  const startMs = cluster.clock.nowMs;
  let committedBy: NodeId | undefined;
  let probePending = false;
  let lastLeader: NodeId | undefined;
  const poll = (): void => {
    if (committedBy !== undefined) return;
    const leader = cluster.leader();
    lastLeader = leader;
    if (leader !== undefined && !probePending) {
      probePending = true;
      cluster.submitWrite(leader, { op: "put", key: options.probeKey, value: `${startMs}` }, 1, (result) => {
        probePending = false;
        if (result.ok) committedBy = leader;
      });
    }
    cluster.clock.schedule(cluster.options.heartbeatIntervalMs, poll);
  };
  poll();
  cluster.runForMs(options.boundMs, () => committedBy !== undefined);
  if (committedBy !== undefined) return { ok: true, leaderId: committedBy, recoveryMs: cluster.clock.nowMs - startMs };
  return { ok: false, reason: explain(cluster, options.boundMs, lastLeader) };
}

function explain(cluster: SimCluster, boundMs: number, lastLeader: NodeId | undefined): string {
  const states = cluster.ids.map((id) => {
    const node = cluster.node(id);
    if (!node) return `n${id} ${cluster.state(id)}${cluster.failure(id) ? " (refused to start)" : ""}`;
    const s = node.status();
    return `n${id} ${s.role} term ${s.term} leader ${s.leaderId} last ${s.lastIndex}/${s.lastTerm} commit ${s.commit}${s.role === "leader" ? ` quorumActive=${s.quorumActive}` : ""}`;
  });
  // The voters as the most up-to-date live node knows them (membership changes make cluster.ids a
  // list of every machine ever started, not of the members).
  const statuses = cluster.liveIds().map((id) => cluster.node(id)!.status());
  const newest = statuses.reduce<(typeof statuses)[number] | undefined>((best, s) => (!best || s.lastIndex > best.lastIndex ? s : best), undefined);
  const voters = newest?.membership.voters ?? cluster.ids;
  const live = voters.filter((id) => cluster.state(id) === "up").length;
  const majority = Math.floor(voters.length / 2) + 1;
  const why =
    live < majority
      ? `only ${live} of the ${voters.length} voters (${voters.map((id) => `n${id}`).join(", ")}) are up, a majority needs ${majority}`
      : lastLeader === undefined
        ? "no node became leader with a live quorum"
        : `leader n${lastLeader} did not commit the probe write`;
  return `No write committed within ${boundMs} ms after the faults healed: ${why}. Nodes: ${states.join("; ")}`;
}
