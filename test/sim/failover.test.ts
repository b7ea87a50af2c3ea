// When a leader's process dies, its peers see its connections close at once; they drop its lease and
// campaign after a short random delay instead of waiting out the election timeout. Without that signal
// (a silent partition) failover takes about one election timeout, as the thesis says.
import test from "ava";
import { startedCluster } from "./fixtures.ts";

function failoverMs(seed: number, connectionResetOnCrash: boolean): number {
  const cluster = startedCluster(seed, { connectionResetOnCrash, network: { latencyMs: 1, jitterMs: 0, lossRate: 0, duplicateRate: 0 } });
  const old = cluster.leader()!;
  cluster.crash(old);
  const startMs = cluster.clock.nowMs;
  cluster.runForMs(10_000, () => {
    const leader = cluster.leader();
    return leader !== undefined && leader !== old;
  });
  return cluster.clock.nowMs - startMs;
}

test("a crashed leader is replaced within a few heartbeats when its connections close", (t) => {
  for (let seed = 1; seed <= 10; seed++) {
    const fast = failoverMs(seed, true);
    t.true(fast < 400, `seed ${seed}: failover took ${fast} ms`);
  }
});

test("without the connection signal, failover waits out an election timeout", (t) => {
  for (let seed = 1; seed <= 10; seed++) {
    const slow = failoverMs(seed, false);
    t.true(slow >= 800, `seed ${seed}: failover took ${slow} ms`);
    t.true(slow < 3_500, `seed ${seed}: failover took ${slow} ms`);
  }
});
