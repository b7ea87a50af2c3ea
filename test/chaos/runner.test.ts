/**
 * The chaos runner's pieces without real nodes: refusals of steps without a real counterpart (naming
 * file:line), the timing slack, failover and election measurement from samples, the etcd answer
 * decoding, the command line, and a run through a fake provider that fails at set-up (status "error",
 * everything torn down).
 */
import test from "ava";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadScenarioFile } from "../../sim/scenario/index.ts";
import type { ClusterProvider, NodeEndpoints, ProviderCapabilities } from "../../chaos/providers/provider.ts";
import { checkSupport } from "../../chaos/runner/support.ts";
import { countElections, measureFailovers, runChaosScenario, withSlack } from "../../chaos/runner/run.ts";
import { classifyError, outputOf } from "../../chaos/runner/etcd-client.ts";
import { parseChaosArguments, ChaosUsageError } from "../../chaos/runner/arguments.ts";
import { exitCodeOf, type ChaosRunResult } from "../../chaos/runner/result.ts";
import type { Sample } from "../../chaos/runner/observer.ts";
import type { RecordedStep } from "../../chaos/runner/recording.ts";
import { replayScenario } from "../../sim/replay.ts";

const ALL: ProviderCapabilities = { crash: true, restart: true, pause: true, postgres: false, corruptData: true, description: "test" };

test("slow disks and clock drift are refused, each naming the step's file and line", (t) => {
  const report = checkSupport(loadScenarioFile("scenarios/slow-disk.yaml"), ALL);
  t.true(report.refusals.some((refusal) => refusal.what === "slow_disk" && refusal.line > 1));
  t.true(report.refusals.some((refusal) => refusal.what === "disk.fsync"));
  const drift = checkSupport(loadScenarioFile("scenarios/clock-drift.yaml"), ALL);
  t.deepEqual([...new Set(drift.refusals.map((refusal) => refusal.what))].sort(), ["clock.drift", "clock_drift"]);
});

test("a provider without pause refuses a scenario that pauses, and accepts one that does not", (t) => {
  const withoutPause = { ...ALL, pause: false };
  const paused = checkSupport(loadScenarioFile("scenarios/leader-paused.yaml"), withoutPause);
  t.is(paused.refusals.length, 2);
  t.regex(paused.refusals[0]!.reason, /cannot pause/);
  t.deepEqual(checkSupport(loadScenarioFile("scenarios/lost-quorum.yaml"), withoutPause).refusals, []);
});

test("link loss is an approximation noted with the run, not a refusal", (t) => {
  const report = checkSupport(loadScenarioFile("scenarios/degraded-link.yaml"), ALL);
  t.deepEqual(report.refusals, []);
  t.true(report.notes.some((note) => /loss 0.3/.test(note)));
});

test("the timing slack delays windows that must hold throughout and extends those that must happen", (t) => {
  const adjusted = withSlack(loadScenarioFile("scenarios/lost-quorum.yaml"), 500);
  const windows = adjusted.expectations.map((expectation) => [expectation.check.check, expectation.window.fromMs, expectation.window.untilMs]);
  t.deepEqual(windows[1], ["leader", 11_700, 20_000]); // leader: none
  t.deepEqual(windows[4], ["leader", 20_000, 30_500]); // leader: elected within 10s
  t.deepEqual(windows[6], ["acknowledged_writes", 37_000, 37_000]);
  const readOnly = adjusted.expectations[2]!.check;
  t.true(readOnly.check === "writes" && readOnly.fastMs === 550);
  t.is(withSlack(adjusted, 0), adjusted);
});

function sample(timeMs: number, leader: number | undefined, termMax: number): Sample {
  return { timeMs, leader, leaderRoles: leader === undefined ? [] : [{ id: leader, term: termMax }], terms: new Map(), termMax, views: new Map(), stale: new Set() };
}

function step(verb: string, atMs: number, nodes: number[]): RecordedStep {
  return { atMs, plannedAtMs: atMs, line: 1, verb, description: verb, nodes, actions: [], outcome: "ok", tookMs: 1 };
}

test("failover is measured from a fault on the leader to the next leader, and only then", (t) => {
  const samples = [sample(0, undefined, 0), sample(100, 1, 1), sample(1000, 1, 1), sample(1100, undefined, 1), sample(2600, 2, 2), sample(5000, 2, 2)];
  t.deepEqual(measureFailovers([step("crash", 1050, [1])], samples), [1550]);
  t.deepEqual(measureFailovers([step("crash", 1050, [3])], samples), [], "a follower's crash is no failover");
  t.is(countElections(samples), 1);
});

test("etcd answers decode into the history's outputs; errors into failed or unknown", (t) => {
  const kv = (value: string, version: number): unknown => ({ kvs: [{ value: Buffer.from(value).toString("base64"), version: String(version) }] });
  t.deepEqual(outputOf({ op: "get", key: "k" }, kv("v", 3) as Record<string, unknown>), { op: "get", value: "v", version: 3 });
  t.deepEqual(outputOf({ op: "get", key: "k" }, {}), { op: "get", value: null, version: 0 });
  t.deepEqual(outputOf({ op: "put", key: "k", value: "v" }, { responses: [{ response_put: {} }, { response_range: kv("v", 4) }] }), { op: "put", version: 4 });
  t.deepEqual(outputOf({ op: "cas", key: "k", expectedVersion: 1, value: "v" }, { responses: [{ response_range: kv("w", 2) }] }), { op: "cas", succeeded: false, version: 2 });
  t.deepEqual(outputOf({ op: "delete", key: "k" }, { deleted: "1" }), { op: "delete", deleted: true });
  const noQuorum = classifyError(503, JSON.stringify({ message: "Cannot write: the cluster is read-only without a quorum: x", outcome: "failed" }));
  t.like(noQuorum, { kind: "failed", code: "no_quorum" });
  const follower = classifyError(503, JSON.stringify({ message: "Cannot write on this node: it is a follower; ...", outcome: "failed", leader_id: "2" }));
  t.like(follower, { kind: "failed", code: "not_leader", leaderId: 2 });
  t.like(classifyError(504, JSON.stringify({ message: "Cannot confirm", outcome: "unknown" })), { kind: "unknown" });
});

test("the command line refuses bad flags with what they take", (t) => {
  t.like(parseChaosArguments(["--scenario", "scenarios", "--seed", "7", "--repeat", "3", "--json"]), { scenarioPath: "scenarios", seed: 7, repeat: 3, json: true, provider: "local" });
  t.throws(() => parseChaosArguments([]), { instanceOf: ChaosUsageError, message: /Missing --scenario/ });
  t.throws(() => parseChaosArguments(["--scenario", "x", "--provider", "docker"]), { message: /use one of local, testcontainers/ });
  t.throws(() => parseChaosArguments(["--scenario", "x", "--repeat", "0"]), { message: /--repeat: "0" must be an integer from 1/ });
  t.throws(() => parseChaosArguments(["--scenario", "x", "--toxiproxy-url", "http://10.0.0.1:8474"]), { message: /not on loopback/ });
  t.is(parseChaosArguments(["--scenario", "x", "--toxiproxy-url", "http://127.0.0.1:8474/"]).toxiproxyUrl, "http://127.0.0.1:8474");
  t.true(parseChaosArguments(["--setup", "--provider", "testcontainers"]).setup);
  t.true(parseChaosArguments(["--scenario", "x"]).postgres, "PostgreSQL nodes by default");
  t.false(parseChaosArguments(["--scenario", "x", "--no-postgres"]).postgres);
});

test("exit codes follow the simulator's; a simulator-only file named alone cannot run (5)", (t) => {
  const result = (status: ChaosRunResult["status"]): ChaosRunResult => ({ status }) as ChaosRunResult;
  t.is(exitCodeOf([result("passed"), result("simulator-only")], false), 0);
  t.is(exitCodeOf([result("simulator-only")], true), 5);
  t.is(exitCodeOf([result("passed"), result("liveness")], false), 3);
  t.is(exitCodeOf([result("liveness"), result("correctness")], false), 4);
  t.is(exitCodeOf([result("correctness"), result("error")], false), 5);
});

/** A provider that records calls; reserveNode fails on the node given. */
function fakeProvider(failOn: number): ClusterProvider & { calls: string[] } {
  const calls: string[] = [];
  const endpoints = (id: number): NodeEndpoints => ({ id, name: `n${id}`, host: "127.0.0.1", peerPort: 1, clientPort: 2, clientUrl: "http://127.0.0.1:2", metricsPort: 3, metricsUrl: "http://127.0.0.1:3/metrics", postgresPort: 4, postgresUrl: undefined });
  return {
    name: "fake",
    capabilities: ALL,
    calls,
    cleanStale: async () => ({ killed: [], removed: [] }),
    reserveNode: async (id) => {
      calls.push(`reserve ${id}`);
      if (id === failOn) throw new Error(`no ports left for n${id}`);
      return endpoints(id);
    },
    endpoints,
    startNode: async (spec) => void calls.push(`start ${spec.id}`),
    crashNode: async (id) => void calls.push(`crash ${id}`),
    restartNode: async (id) => void calls.push(`restart ${id}`),
    pauseNode: async (id) => void calls.push(`pause ${id}`),
    resumeNode: async (id) => void calls.push(`resume ${id}`),
    corruptNodeData: async (id) => void calls.push(`corrupt ${id}`),
    nodeState: () => "running",
    sql: async () => ({ rows: [] }),
    logTail: () => "",
    destroy: async () => void calls.push("destroy"),
  };
}

test("a failure at set-up is an error result naming it, and the provider is destroyed", async (t) => {
  const provider = fakeProvider(2);
  const result = await runChaosScenario({ scenario: loadScenarioFile("scenarios/lost-quorum.yaml"), provider, seed: 1 });
  t.is(result.status, "error");
  t.regex(result.reasons[0]!, /Cannot run scenarios\/lost-quorum.yaml: no ports left for n2/);
  t.deepEqual(provider.calls, ["reserve 1", "reserve 2", "destroy"]);
});

test("a simulator-only scenario starts nothing and lists every refused step", async (t) => {
  const provider = fakeProvider(0);
  const result = await runChaosScenario({ scenario: loadScenarioFile("scenarios/failing-disk.yaml"), provider, seed: 1 });
  t.is(result.status, "simulator-only");
  t.deepEqual(provider.calls, []);
  t.true(result.reasons.every((reason) => reason.startsWith("scenarios/failing-disk.yaml:")));
  t.true(result.reasons.some((reason) => /fail_disk/.test(reason)) && result.reasons.some((reason) => /repair_disk/.test(reason)));
});

test("a recorded timeline replays as the file's scenario with the steps at their real times and nodes", (t) => {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-replay-test-"));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const file = join(directory, "run.json");
  const text = readFileSync("scenarios/leader-isolated.yaml", "utf8");
  const steps: RecordedStep[] = [
    { atMs: 10_012.4, plannedAtMs: 10_000, line: 10, verb: "isolate", description: "isolate leader", nodes: [3], bind: "old-leader", actions: [], outcome: "ok", tookMs: 20 },
    { atMs: 20_031, plannedAtMs: 20_000, line: 13, verb: "heal", description: "heal", actions: [], outcome: "failed", error: "toxiproxy went away", tookMs: 1 },
  ];
  writeFileSync(file, JSON.stringify({ format: "pgraft-chaos-timeline/1", scenario: { name: "leader-isolated", file: "scenarios/leader-isolated.yaml", text }, seed: 42, steps }));
  const replay = replayScenario(file);
  t.is(replay.scenario.seed, 42);
  t.is(replay.scenario.timeline.length, 1);
  const first = replay.scenario.timeline[0]!;
  t.is(first.atMs, 10_012);
  t.deepEqual(first.action, { verb: "isolate", nodes: [{ kind: "node", id: 3 }] });
  t.is(first.bind, "old-leader");
  t.is(replay.skipped.length, 1);
  t.regex(readFileSync(replay.file, "utf8"), /left out \(failed in the chaos run\): line 13/);
  t.is(replay.scenario.expectations.length, loadScenarioFile("scenarios/leader-isolated.yaml").expectations.length);
  writeFileSync(file, JSON.stringify({ format: "something-else" }));
  t.throws(() => replayScenario(file), { message: /expected "pgraft-chaos-timeline\/1"/ });
});
