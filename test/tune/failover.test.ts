// Profile experiments on the real RaftNode: a failover with the low profile on a fast network elects a
// new leader no sooner than the timeout allows and commits a write after it; a quiet stretch has no
// election; the guide's failures recover, and a cut-off leader steps down within about a timeout.
import test from "ava";
import { runFailoverTrial, runFailure, runQuietRun, type ExperimentCell } from "../../sim/tune/failover.ts";
import { networkForLatency } from "../../sim/tune/profiles.ts";

const LOW: ExperimentCell = {
  timing: { name: "low", electionTimeoutMs: 1000, heartbeatIntervalMs: 100 },
  network: networkForLatency(5),
  nodeCount: 3,
};

test("a leader crash is followed by an election after at least T minus a heartbeat, then a commit", (t) => {
  for (let seed = 0; seed < 10; seed++) {
    const trial = runFailoverTrial(LOW, `test-${seed}`);
    t.true(trial.started);
    t.false(trial.censored);
    // Followers heard the leader at most one heartbeat (100 ms) before the crash; T is 1000 ms.
    t.true(trial.electedMs >= 900 - 10, `elected after ${trial.electedMs} ms`);
    t.true(trial.electedMs < 3 * 2000, `elected after ${trial.electedMs} ms`);
    t.true(trial.writableMs > trial.electedMs, "a write commits only after the election");
  }
});

test("ten quiet simulated minutes on a fast network see no election at all", (t) => {
  const run = runQuietRun(LOW, "quiet-test", 600_000);
  t.true(run.started);
  t.is(run.elections, 0);
  t.is(run.preVotes, 0);
  t.is(run.durationMs, 600_000);
});

test("the guide's failures recover, and an isolated leader steps down", (t) => {
  const isolated = runFailure("leader-isolated", LOW, "iso");
  t.false(isolated.censored);
  t.true(isolated.outageMs > 900);
  t.true(isolated.stepDownMs! <= 1000 + 20, `stepped down after ${isolated.stepDownMs} ms`);
  t.is(isolated.electionsAfterHeal, 0, "with PreVote the returning node disturbs nobody");
  const follower = runFailure("follower-crash", LOW, "follower");
  t.true(follower.outageMs < 100, "a follower crash costs about one commit");
  for (const kind of ["quorum-lost", "full-restart"] as const) {
    const trial = runFailure(kind, LOW, kind);
    t.false(trial.censored, kind);
    t.true(trial.outageMs >= 1000 && trial.outageMs < 6000, `${kind}: ${trial.outageMs} ms`);
  }
});

test("a latency far beyond the timeout leaves no stable leader", (t) => {
  const broken = runQuietRun({ ...LOW, network: networkForLatency(1500) }, "far", 600_000);
  t.true(!broken.started || broken.elections > 0);
});
