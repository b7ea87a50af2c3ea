// The simulator as a product: a seed replays bit for bit (in separate processes), a quiet cluster
// passes every check, and each kind of checker catches a real bug injected into a real cluster:
// a disk that lies about fsync, a lost vote, reads served without ReadIndex, and a lost majority.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { ClusterOptions, SimCluster } from "../../sim/cluster.ts";
import { checkLinearizable } from "../../sim/checkers/linearizability.ts";
import { checkLiveness } from "../../sim/checkers/liveness.ts";
import { SafetyViolation } from "../../sim/checkers/safety.ts";
import { Random } from "../../sim/random.ts";
import { runSeed } from "../../sim/run.ts";
import { startedCluster } from "./fixtures.ts";
import { Workload, WORKLOAD_DEFAULTS } from "../../sim/workload.ts";
import { RaftNode, type ClientCallback } from "../../src/node/raft-node.ts";

const run = promisify(execFile);

function cluster(seed: number, options: Partial<ClusterOptions> = {}): SimCluster {
  return startedCluster(seed, { traceMessages: true, ...options }, 0);
}

/** A read-heavy workload on two keys while the leader is isolated for 6 s, then healed. */
function readsAcrossLeaderIsolation() {
  const c = cluster(23);
  const workload = new Workload(c, new Random(2), { ...WORKLOAD_DEFAULTS, clients: 6, keys: 2, readRatio: 0.5 });
  workload.start();
  c.runForMs(3_000);
  c.isolate(c.leader()!);
  c.runForMs(6_000);
  c.heal();
  c.runForMs(3_000);
  workload.stop();
  c.runForMs(4_000);
  return workload.history.operations();
}

async function simJson(args: string[]): Promise<Record<string, unknown>[]> {
  const { stdout } = await run("npx", ["tsx", "sim/cli.ts", ...args, "--json"], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
}

test("npm run sim gives the same traceHash for a seed in two separate processes, and another for another seed", async (t) => {
  const args = ["--faults", "swarm", "--duration", "10s", "--workers", "1"];
  const [first, second, other] = await Promise.all([
    simJson(["--seed", "7", ...args]),
    simJson(["--seed", "7", ...args]),
    simJson(["--seed", "8", ...args]),
  ]);
  const hash = (lines: Record<string, unknown>[]): string => lines[0]!.traceHash as string;
  t.regex(hash(first!), /^[0-9a-f]{64}$/);
  t.is(hash(first!), hash(second!));
  t.not(hash(first!), hash(other!));
  t.deepEqual(Object.keys(first![1]!), ["summary"]);
  for (const field of ["seed", "ok", "violations", "traceHash", "simulatedMs", "wallMs", "events"]) t.true(field in first![0]!, field);
});

test("runSeed() passes a quiet cluster under client load and its history is linearizable", (t) => {
  const result = runSeed({ seed: 3, durationMs: 20_000, faults: "none" });
  t.deepEqual(result.violations, []);
  t.true(result.ok);
  t.true(result.acknowledgedWrites > 100, `${result.acknowledgedWrites} writes acknowledged`);
  t.true(result.simulatedMs >= 20_000);
});

test("runSeed() passes a swarm seed with faults and reports the faults it injected", (t) => {
  const result = runSeed({ seed: 11, durationMs: 30_000, faults: "swarm", nodeCount: 5 });
  t.deepEqual(result.violations, []);
  t.true(result.faultActions > 0);
  t.regex(result.replay, /--seed 11 --faults swarm --nodes 5/);
});

test("the simulator catches a disk that acknowledges fsync without syncing (Durability)", (t) => {
  const c = cluster(21);
  c.runForMs(3_000);
  const workload = new Workload(c, new Random(1), WORKLOAD_DEFAULTS);
  workload.start();
  // Node 2's disk now lies: sync() returns without making anything durable.
  c.disk(2).sync = () => {};
  c.runForMs(2_000);
  c.crash(2);
  // The entries it acknowledged to the leader are gone: the checker sees the log come back short.
  const error = t.throws(() => c.restart(2), { instanceOf: SafetyViolation }) as SafetyViolation;
  t.is(error.property, "Durability");
  t.regex(error.detail, /node 2 recovered a log ending at \d+; it had persisted up to \d+/);
});

test("the simulator catches a node that forgets its vote across a restart", (t) => {
  const c = cluster(22);
  c.runForMs(3_000);
  const leader = c.leader()!;
  const follower = c.ids.find((id) => id !== leader)!;
  // The hard state file write is silently dropped, as on a disk that loses renames.
  c.disk(follower).writeAtomic = () => {};
  c.isolate(leader);
  c.runForMs(5_000);
  c.crash(follower);
  const error = t.throws(() => c.restart(follower), { instanceOf: SafetyViolation }) as SafetyViolation;
  t.is(error.property, "Durability");
  t.regex(error.detail, /recovered hard state/);
});

test("the linearizability checker catches reads served from local state without ReadIndex", (t) => {
  const original = RaftNode.prototype.read;
  // The bug: every node answers reads from its own applied state, as a careless follower read would.
  RaftNode.prototype.read = function (this: RaftNode, key: string, callback: ClientCallback) {
    callback({ ok: true, output: this.readLocal(key), index: 0 });
  };
  try {
    t.is(checkLinearizable(readsAcrossLeaderIsolation()).ok, false);
  } finally {
    RaftNode.prototype.read = original;
  }
});

test("the same workload with ReadIndex reads is linearizable under the same partition", (t) => {
  t.is(checkLinearizable(readsAcrossLeaderIsolation()).ok, true);
});

test("checkLiveness() explains a cluster that lost its majority for good", (t) => {
  const c = cluster(24);
  c.runForMs(3_000);
  c.crash(1);
  c.crash(2);
  const result = checkLiveness(c, { boundMs: 5_000, probeKey: "probe" });
  t.false(result.ok);
  if (!result.ok) t.regex(result.reason, /only 1 of the 3 voters \(n1, n2, n3\) are up, a majority needs 2/);
});

test("checkLiveness() passes once a crashed majority restarts", (t) => {
  const c = cluster(25);
  c.runForMs(3_000);
  c.crash(1);
  c.crash(2);
  c.runForMs(2_000);
  c.restart(1);
  c.restart(2);
  const result = checkLiveness(c, { boundMs: 12_000, probeKey: "probe" });
  t.true(result.ok);
});
