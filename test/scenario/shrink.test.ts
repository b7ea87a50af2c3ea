// Shrinking: a documented scenario with one planted expectation that cannot hold is shrunk at a seed;
// the file written fails on its own (parsed from its text, run as the command line runs it, with the
// seed it carries) with the same expectation, and is smaller than the original in every measure. A
// swarm seed turned into a scenario replays the seed's run: the same operations, acknowledgements and
// leaders, because the recorded fault schedule and the seed's world are all there is.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseScenario } from "../../sim/scenario/parse-scenario.ts";
import { runScenario } from "../../sim/scenario/run-scenario.ts";
import type { Scenario } from "../../sim/scenario/index.ts";
import { scenarioSize, ShrinkError, shrinkScenario, swarmScenario } from "../../sim/shrink.ts";
import { RaftNode, type ClientCallback } from "../../src/node/raft-node.ts";

const run = promisify(execFile);
const SWARM_SEEDS_MAX = 30;

/** lost-quorum with an extra expectation that fails at every seed: nobody leads in the first seconds. */
function plantedText(): string {
  const original = readFileSync("scenarios/lost-quorum.yaml", "utf8").replace("name: lost-quorum", "name: planted");
  return `${original}  - leader: none\n    from: 5s\n    until: 8s\n    why: planted; a leader was elected at about 1s\n`;
}

function parsed(text: string, file: string) {
  const result = parseScenario(text, file);
  if (!result.ok) throw new Error(result.issues.map((issue) => issue.message).join("\n"));
  return result.value;
}

test("shrinkScenario() shrinks a planted failing expectation to a smaller file that fails on its own", (t) => {
  const original = parsed(plantedText(), "planted.yaml");
  const before = runScenario(original, { seed: 4, traceMessages: false });
  t.false(before.ok);
  t.true(before.violations.some((v) => v.startsWith('Expectation: planted.yaml:46 "leader: none"')), before.violations.join("\n"));

  const result = shrinkScenario(original, { seed: 4, runsMax: 80, file: "planted-small.yaml" });
  // The written text, parsed afresh and run with the seed it carries, fails with the planted expectation.
  const written = parsed(result.text, "planted-small.yaml");
  t.is(written.seed, 4);
  const after = runScenario(written, { seed: written.seed! });
  t.false(after.ok);
  t.true(after.violations.some((v) => /^Expectation: planted-small\.yaml:\d+ "leader: none" from 5s until 8s: at 5s n\d was still leader/.test(v)), after.violations.join("\n"));
  // Smaller in every measure, strictly in steps, expectations and duration.
  const small = scenarioSize(written);
  const large = scenarioSize(original);
  t.true(small.steps < large.steps, `${small.steps} steps`);
  t.true(small.expectations < large.expectations);
  t.true(small.durationMs < large.durationMs);
  t.true(small.clients <= large.clients && small.nodes <= large.nodes);
  t.true(result.text.length < plantedText().length);
  t.regex(result.text, /^# Shrunk from planted\.yaml \(planted\) at seed 4 in \d+ runs:/);
  t.true(result.runs <= 81);
});

test("shrinkScenario() refuses a seed that passes: there is nothing to keep", (t) => {
  const scenario = parsed(readFileSync("scenarios/bridge.yaml", "utf8"), "bridge.yaml");
  t.throws(() => shrinkScenario(scenario, { seed: 1, runsMax: 5 }), { instanceOf: ShrinkError, message: /it passes, so there is no failure to keep/ });
});

test("npm run sim -- --shrink writes a scenario that npm run sim -- --scenario then fails with", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-shrink-"));
  const planted = join(directory, "planted.yaml");
  const out = join(directory, "small.yaml");
  await import("node:fs").then((fs) => fs.writeFileSync(planted, plantedText()));
  const shrink = await t.throwsAsync(run("npx", ["tsx", "sim/cli.ts", "--scenario", planted, "--seed", "2", "--shrink", out, "--shrink-runs", "40"]));
  t.is((shrink as unknown as { code: number }).code, 4, "the seed itself failed");
  t.regex((shrink as unknown as { stderr: string }).stderr, /shrink: wrote .*small\.yaml/);
  const replay = await t.throwsAsync(run("npx", ["tsx", "sim/cli.ts", "--scenario", out, "--json"]));
  const lines = (replay as unknown as { stdout: string }).stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
  t.like(lines[0], { seed: 2, ok: false });
  t.regex(JSON.stringify(lines[0]!.violations), /leader: none/);
});

// Seed 7, and seed 26: CheckQuorum off, with the learner-partition and leader-leaves-partitioned faults.
for (const seed of [7, 26]) {
  test(`swarmScenario() turns swarm seed ${seed} into a scenario that replays the seed's run`, (t) => {
    const { scenario, result } = swarmScenario({ seed, durationMs: 15_000 });
    t.true(scenario.timeline.length > 0, "the seed's faults became steps");
    const replay = runScenario(scenario, { seed, traceMessages: false });
    t.is(replay.ok, result.ok);
    t.is(replay.operations, result.operations);
    t.is(replay.acknowledgedWrites, result.acknowledgedWrites);
    t.is(replay.elections, result.elections);
  });
}

test("a failing swarm seed is shrunk to a scenario file that fails on its own (a planted bug: reads without ReadIndex)", (t) => {
  const original = RaftNode.prototype.read;
  // The bug: every node answers reads from its own applied state, as a careless follower read would.
  RaftNode.prototype.read = function (this: RaftNode, key: string, callback: ClientCallback) {
    callback({ ok: true, output: this.readLocal(key), index: 0 });
  };
  let text: string;
  try {
    // The first of a few swarm seeds with faults that the bug makes fail (the swarm mix decides which).
    let found: { seed: number; scenario: Scenario } | undefined;
    for (let seed = 1; seed <= SWARM_SEEDS_MAX && found === undefined; seed++) {
      const { scenario, result } = swarmScenario({ seed, nodeCount: 3, durationMs: 15_000 });
      if (!result.ok && scenario.timeline.length >= 3) {
        t.regex(result.violations[0]!, /^Linearizability: /);
        found = { seed, scenario };
      }
    }
    t.truthy(found, `no swarm seed of ${SWARM_SEEDS_MAX} caught reads without ReadIndex`);
    const { seed, scenario } = found!;
    const shrunk = shrinkScenario(scenario, { seed, runsMax: 60, file: "swarm-small.yaml" });
    text = shrunk.text;
    const written = parsed(text, "swarm-small.yaml");
    const replay = runScenario(written, { seed: written.seed! });
    t.regex(replay.violations.join("\n"), /^Linearizability: /);
    t.true(scenarioSize(written).steps < scenario.timeline.length);
    t.true(written.durationMs < scenario.durationMs);
  } finally {
    RaftNode.prototype.read = original;
  }
  // Without the bug the same file passes: what it shows is the bug.
  const written = parsed(text, "swarm-small.yaml");
  t.deepEqual(runScenario(written, { seed: written.seed! }).violations, []);
});
