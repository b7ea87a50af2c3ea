// Membership changes, leadership transfer and snapshots, driven on a real simulated cluster: each test
// states the operator action, runs it through the node runtime, and checks the outcome an operator
// would see (the result, the error and its named leader, the new membership, the new leader).
import test from "ava";
import type { ClusterOptions, SimCluster } from "../../sim/cluster.ts";
import { Random } from "../../sim/random.ts";
import { startedCluster } from "./fixtures.ts";
import { Workload, WORKLOAD_DEFAULTS } from "../../sim/workload.ts";
import type { AdminResult } from "../../src/node/raft-node.ts";
import { LeadershipTransferError, MembershipChangeInProgressError, NotLeaderError } from "../../src/errors.ts";

const OPTIONS: Partial<ClusterOptions> = { snapshotIntervalEntries: 50, logEntriesMax: 0 };

function started(seed: number, options: Partial<ClusterOptions> = {}): SimCluster {
  return startedCluster(seed, { ...OPTIONS, ...options });
}

/** Runs an admin request to completion and returns its result. */
function admin(cluster: SimCluster, request: (callback: (result: AdminResult) => void) => void, waitMs = 15_000): AdminResult {
  let result: AdminResult | undefined;
  request((r) => (result = r));
  cluster.runForMs(waitMs, () => result !== undefined);
  if (!result) throw new Error("admin request never answered");
  return result;
}

function writeMany(cluster: SimCluster, count: number): void {
  const workload = new Workload(cluster, new Random(9), { ...WORKLOAD_DEFAULTS, readRatio: 0, casRatio: 0, deleteRatio: 0, thinkTimeMsMean: 5 });
  workload.start();
  cluster.runForMs(10_000, () => workload.acknowledgedWrites >= count);
  workload.stop();
  cluster.runForMs(500);
}

test("adding a node on the leader catches it up by snapshot and promotes it to voter", (t) => {
  const cluster = started(1);
  writeMany(cluster, 200);
  const added = cluster.addHost();
  const leader = cluster.leader()!;
  const result = admin(cluster, (done) => cluster.changeMembership(leader, { type: "add", nodeId: added }, 1, done));
  t.true(result.ok, result.ok ? "" : result.error.message);
  if (result.ok) t.deepEqual([...result.membership.voters], [1, 2, 3, 4]);
  cluster.runForMs(2_000);
  const lines = cluster.trace.lines()!;
  t.true(lines.some((line) => line.includes(`n${added} installed snapshot`)), "the new node must install a snapshot (the log was compacted)");
  t.true(lines.some((line) => line.includes(`promoted learner ${added} to voter`)));
  // The new node holds the same data as the leader.
  t.deepEqual(cluster.node(added)!.store.snapshot(), cluster.node(cluster.leader()!)!.store.snapshot());
});

test("adding a node on a follower is refused with an error naming the leader", (t) => {
  const cluster = started(2);
  const leader = cluster.leader()!;
  const follower = cluster.ids.find((id) => id !== leader)!;
  const result = admin(cluster, (done) => cluster.changeMembership(follower, { type: "add", nodeId: 9 }, 1, done));
  t.false(result.ok);
  if (!result.ok) {
    t.true(result.error instanceof NotLeaderError);
    t.is((result.error as NotLeaderError).leaderId, leader);
    t.regex(result.error.message, new RegExp(`send the request to the leader, node ${leader}`));
  }
});

test("a second membership change while one is uncommitted is refused as in progress", (t) => {
  const cluster = started(3);
  const leader = cluster.leader()!;
  const results: AdminResult[] = [];
  // Both requests reach the leader in the same millisecond: the first is still uncommitted.
  cluster.changeMembership(leader, { type: "add", nodeId: 4 }, 1, (r) => results.push(r));
  cluster.changeMembership(leader, { type: "add", nodeId: 5 }, 1, (r) => results.push(r));
  cluster.runForMs(50);
  t.is(results.length, 1);
  t.false(results[0]!.ok);
  if (!results[0]!.ok) t.true(results[0]!.error instanceof MembershipChangeInProgressError);
});

test("removing a follower shrinks the voters and the cluster keeps committing", (t) => {
  const cluster = started(4);
  const leader = cluster.leader()!;
  const follower = cluster.ids.find((id) => id !== leader)!;
  const result = admin(cluster, (done) => cluster.changeMembership(leader, { type: "remove", nodeId: follower }, 1, done));
  t.true(result.ok);
  if (result.ok) t.false(result.membership.voters.includes(follower));
  cluster.crash(follower);
  writeMany(cluster, 20);
  t.is(cluster.leader(), leader);
});

test("removing the leader makes it step down once the change commits, and another node leads", (t) => {
  const cluster = started(5);
  const leader = cluster.leader()!;
  const result = admin(cluster, (done) => cluster.changeMembership(leader, { type: "remove", nodeId: leader }, 1, done));
  t.true(result.ok);
  cluster.runForMs(5_000);
  const next = cluster.leader();
  t.not(next, undefined);
  t.not(next, leader);
  t.is(cluster.node(leader)!.status().role, "follower");
});

test("leadership transfer hands leadership to the named node within an election timeout", (t) => {
  const cluster = started(6);
  const leader = cluster.leader()!;
  const target = cluster.ids.find((id) => id !== leader)!;
  const startMs = cluster.clock.nowMs;
  const result = admin(cluster, (done) => cluster.transferLeadership(leader, target, 1, done));
  t.true(result.ok);
  t.true(cluster.clock.nowMs - startMs < 1_000, `took ${cluster.clock.nowMs - startMs} ms`);
  cluster.runForMs(500);
  t.is(cluster.leader(), target);
});

test("leadership transfer to an unreachable node is aborted after an election timeout and the leader stays", (t) => {
  const cluster = started(7);
  const leader = cluster.leader()!;
  const target = cluster.ids.find((id) => id !== leader)!;
  cluster.isolate(target);
  const result = admin(cluster, (done) => cluster.transferLeadership(leader, target, 1, done));
  t.false(result.ok);
  if (!result.ok) {
    t.true(result.error instanceof LeadershipTransferError);
    t.regex(result.error.message, /transfer was aborted; this node still leads/);
  }
  t.is(cluster.leader(), leader);
});

test("a node that was down while the log was compacted comes back through a snapshot", (t) => {
  const cluster = started(8);
  const leader = cluster.leader()!;
  const follower = cluster.ids.find((id) => id !== leader)!;
  cluster.crash(follower);
  writeMany(cluster, 300);
  cluster.restart(follower);
  cluster.runForMs(3_000);
  t.true(cluster.trace.lines()!.some((line) => line.includes(`n${follower} installed snapshot`)));
  t.deepEqual(cluster.node(follower)!.store.snapshot(), cluster.node(leader)!.store.snapshot());
});
