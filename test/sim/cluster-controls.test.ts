// The simulator's disk and clock controls behave as the failures they model: a slow disk blocks its
// node and delays what depends on its writes, a failed disk stops the node at its next write and keeps
// it down until repaired, and a fast clock makes a node's timers fire early.
import test from "ava";
import type { SimCluster } from "../../sim/cluster.ts";
import { startedCluster } from "./fixtures.ts";
import type { ClientResult } from "../../src/node/raft-node.ts";

function started(seed: number): SimCluster {
  return startedCluster(seed, { maxBatchDelayMs: 0, requestTimeoutMs: 5_000, network: { latencyMs: 1, jitterMs: 0, lossRate: 0, duplicateRate: 0 } });
}

function writeLatencyMs(cluster: SimCluster, leader: number, key: string): number {
  const startMs = cluster.clock.nowMs;
  let result: ClientResult | undefined;
  cluster.submitWrite(leader, { op: "put", key, value: "v" }, 0, (r) => (result = r));
  cluster.runForMs(5_000, () => result !== undefined);
  if (!result?.ok) throw new Error("write failed");
  return cluster.clock.nowMs - startMs;
}

test("a slow disk on the leader delays every commit by about its write time", (t) => {
  const cluster = started(1);
  const leader = cluster.leader()!;
  const fast = writeLatencyMs(cluster, leader, "a");
  cluster.setDiskLatency(leader, 50);
  const slow = writeLatencyMs(cluster, leader, "b");
  t.true(fast < 10, `fast write took ${fast} ms`);
  t.true(slow >= 50 && slow < 200, `slow write took ${slow} ms`);
});

test("a failed disk stops its node at the next write and keeps it down until repaired", (t) => {
  const cluster = started(2);
  const leader = cluster.leader()!;
  const follower = cluster.ids.find((id) => id !== leader)!;
  cluster.failDisk(follower);
  writeLatencyMs(cluster, leader, "x");
  cluster.runForMs(100);
  t.is(cluster.state(follower), "down");
  cluster.restart(follower);
  t.is(cluster.state(follower), "down");
  cluster.repairDisk(follower);
  cluster.restart(follower);
  t.is(cluster.state(follower), "up");
});

test("a node whose clock runs fast times out first when the leader goes silent", (t) => {
  const cluster = started(3);
  const leader = cluster.leader()!;
  const [fast, slow] = cluster.ids.filter((id) => id !== leader) as [number, number];
  cluster.setClockRate(fast, 1.4);
  cluster.setClockRate(slow, 0.7);
  const term = cluster.node(leader)!.status().term;
  cluster.crash(leader);
  const crashLine = cluster.trace.lines()!.length;
  cluster.runForMs(5_000, () => cluster.leader() !== undefined);
  // The fast node's timer fires first (its pre-vote may still be refused by the slow node's lease).
  const firstCampaign = cluster.trace.lines()!.slice(crashLine).find((line) => / became pre-candidate /.test(line));
  t.regex(firstCampaign ?? "", new RegExp(` n${fast} became pre-candidate at term ${term}$`));
  t.not(cluster.leader(), undefined);
});
