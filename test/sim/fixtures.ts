/**
 * Test fixtures for simulated clusters: the settings most tests start from (3 nodes, pgraft's default
 * timing, a quiet 1-2 ms network) and a helper that starts a cluster and lets it elect a leader.
 */
import { SimCluster, type ClusterOptions } from "../../sim/cluster.ts";
import { Random } from "../../sim/random.ts";
import { Trace } from "../../sim/trace.ts";

export const CLUSTER_OPTIONS: ClusterOptions = {
  nodeCount: 3,
  tickMs: 10,
  electionTimeoutMs: 1_000,
  heartbeatIntervalMs: 100,
  preVote: true,
  checkQuorum: true,
  entriesPerAppendMax: 100,
  maxBatchDelayMs: 10,
  requestTimeoutMs: 2_500,
  network: { latencyMs: 2, jitterMs: 1, lossRate: 0, duplicateRate: 0 },
  driftMax: 0,
  tornWrites: false,
  traceMessages: false,
};

/** Starts a cluster with `overrides`, runs it `settleMs` so it has a leader, and returns it. */
export function startedCluster(seed: number, overrides: Partial<ClusterOptions> = {}, settleMs = 3_000): SimCluster {
  const cluster = new SimCluster({ ...CLUSTER_OPTIONS, ...overrides }, new Random(seed), new Trace({ keepAll: true }));
  cluster.start();
  cluster.runForMs(settleMs);
  return cluster;
}
