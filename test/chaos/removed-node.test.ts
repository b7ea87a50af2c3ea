/**
 * A node removed from the cluster (issue 10, leader-leaves-partitioned): the runner does not start it
 * again when it exited on learning its removal (exit code 3), a removal request whose session broke is
 * an unknown outcome rather than a refusal, and the SQL status row of a removed node that idles says
 * STOPPED (not STARTING, which is a joining node's) and names no leader.
 */
import test from "ava";
import type { RaftStatus } from "../../src/core/raft.ts";
import { buildStatusRow, workerState } from "../../src/postgres/status-row.ts";
import { REMOVED_EXIT_CODE } from "../../src/server/node-server.ts";
import type { NodeProcessState } from "../../chaos/providers/provider.ts";
import { classifyMembershipFailure } from "../../chaos/runner/membership-sql.ts";
import { leftTheCluster } from "../../chaos/runner/run.ts";
import { SqlFailure } from "../../chaos/runner/sql-connections.ts";

function provider(state: NodeProcessState, code: number | undefined, withExitCode = true) {
  return { nodeState: () => state, ...(withExitCode ? { exitCode: () => code } : {}) };
}

test("a node that exited with the removed code left the cluster; crashed, failed or unknown ones did not", (t) => {
  t.is(REMOVED_EXIT_CODE, 3);
  t.true(leftTheCluster(provider("exited", 3), 1));
  t.false(leftTheCluster(provider("exited", 1), 1), "a node that failed to start is restarted as before");
  t.false(leftTheCluster(provider("crashed", undefined), 1), "a node the runner killed is restarted");
  t.false(leftTheCluster(provider("running", undefined), 1));
  t.false(leftTheCluster(provider("exited", 3, false), 1), "a provider that cannot tell exit codes keeps the old behaviour");
});

test("a removal whose session broke (the removed node stopped its PostgreSQL) has an unknown outcome", (t) => {
  for (const sqlState of ["08006", "08003", "57P01", "57P02", "57P03"]) {
    const outcome = classifyMembershipFailure(new SqlFailure("n1: server closed the connection unexpectedly", true, sqlState));
    t.is(outcome.kind, "no_answer", sqlState);
    t.regex(outcome.kind === "no_answer" ? outcome.message : "", new RegExp(`SQLSTATE ${sqlState}`));
  }
  // A real refusal stays one.
  t.is(classifyMembershipFailure(new SqlFailure("x", true, "PR005")).kind, "refused");
  t.is(classifyMembershipFailure(new SqlFailure("x", true, "XX000")).kind, "refused");
});

const LEADER = {
  id: 1,
  role: "leader",
  term: 2,
  vote: 1,
  leaderId: 1,
  commit: 10,
  applied: 10,
  lastIndex: 10,
  lastTerm: 2,
  firstIndex: 1,
  // Its own removal is in the configuration: n1 is no longer listed.
  membership: { voters: [2, 3, 4], learners: [] },
  configIndex: 9,
  leadTransferee: 0,
  snapshotIndex: 0,
  quorumActive: true,
  peers: [],
  counters: { messagesReceived: 0, messagesSent: 0, heartbeatsSent: 0, preVotesStarted: 0, electionsStarted: 0, electionsWon: 0, leaderChanges: 0, proposalsAccepted: 0, proposalsRejected: 0 },
} as unknown as RaftStatus;

function row(status: RaftStatus, removed: boolean | undefined) {
  return buildStatusRow({
    status,
    clusterId: "c",
    name: `n${status.id}`,
    electionTimeoutTicks: 100,
    tickMs: 10,
    memberName: (id) => `n${id}`,
    peerAddress: (id) => ({ host: "127.0.0.1", port: 7000 + id }),
    clientUrl: () => undefined,
    connected: () => true,
    tableApplied: 10,
    ...(removed === undefined ? {} : { removed }),
  });
}

test("a removed node reports STOPPED, no leader and no quorum; a joining one STARTING; a member RUNNING", (t) => {
  const removed = row(LEADER, true);
  t.like(removed, { worker_state: "STOPPED", state: "follower", leader_id: 0, quorum: false });
  t.false(removed.nodes.some((node) => node.is_leader === true));
  t.deepEqual(removed.replication, []);
  // Without the flag the same frozen status reads as a node waiting to be added: what the fix changes.
  t.is(row(LEADER, undefined).worker_state, "STARTING");
  t.is(row({ ...LEADER, membership: { voters: [1, 2, 3], learners: [] } } as RaftStatus, false).worker_state, "RUNNING");
  t.deepEqual([workerState(true, false), workerState(false, false), workerState(false, true), workerState(true, true)], ["RUNNING", "STARTING", "STOPPED", "STOPPED"]);
});
