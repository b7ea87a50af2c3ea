// Running scenarios on the simulator: documented scenarios pass for a few seeds, a seed replays bit for
// bit, an expectation that does not hold fails the run naming its file, line, check and the time it
// broke, a step that cannot run fails it too, and `npm run sim -- --scenario` wires it all up (workers,
// --json, a malformed file refused with exit code 2).
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { SimCluster } from "../../sim/cluster.ts";
import { loadScenarioFile, parseScenario } from "../../sim/scenario/parse-scenario.ts";
import { runScenario } from "../../sim/scenario/run-scenario.ts";
import type { Scenario } from "../../sim/scenario/scenario.ts";

const run = promisify(execFile);

function scenario(text: string, file = "inline.yaml"): Scenario {
  const result = parseScenario(text, file);
  if (!result.ok) throw new Error(result.issues.map((issue) => issue.message).join("\n"));
  return result.value;
}

for (const [file, seeds] of [
  ["scenarios/lost-quorum.yaml", [1, 2]],
  ["scenarios/leader-isolated.yaml", [3]],
  ["scenarios/add-node-on-follower.yaml", [4]],
] as const) {
  test(`runScenario() passes ${file} for seeds ${seeds.join(", ")}`, (t) => {
    const loaded = loadScenarioFile(file);
    for (const seed of seeds) {
      const result = runScenario(loaded, { seed, traceMessages: false });
      t.deepEqual(result.violations, [], `seed ${seed}`);
      t.true(result.acknowledgedWrites > 0);
      t.is(result.faultActions, loaded.timeline.length);
      t.regex(result.replay, new RegExp(`--scenario ${file} --seed ${seed}`));
    }
  });
}

test("runScenario() replays a seed bit for bit: the same traceHash twice, another for another seed", (t) => {
  const loaded = loadScenarioFile("scenarios/lost-quorum.yaml");
  const first = runScenario(loaded, { seed: 5 });
  const again = runScenario(loaded, { seed: 5 });
  const other = runScenario(loaded, { seed: 6 });
  t.is(first.traceHash, again.traceHash);
  t.not(first.traceHash, other.traceHash);
});

test("runScenario() fails an expectation that does not hold, naming file, line, check and the moment it broke", (t) => {
  const text = [
    "name: wrong",
    "nodes: 3",
    "duration: 12s",
    "timeline:",
    "  - at: 6s",
    "    crash: followers",
    "expectations:",
    "  - leader: none",
    "    from: 3s",
    "    until: 5s",
    "  - writes: read-only",
    "    from: 4s",
    "    until: 5s",
    "  - writes: succeed",
    "    from: 8s",
    "    until: 10s",
    "  - elections: { min: 2 }",
    "  - leader: stable",
    "    from: 3s",
    "    until: 5s",
    "",
  ].join("\n");
  const result = runScenario(scenario(text, "wrong.yaml"), { seed: 1, traceMessages: false });
  t.false(result.ok);
  const expectations = result.violations.filter((v) => v.startsWith("Expectation: "));
  t.is(expectations.length, 4, result.violations.join("\n"));
  t.regex(expectations[0]!, /^Expectation: wrong\.yaml:8 "leader: none" from 3s until 5s: at 3s n\d was still leader of term 1$/);
  t.regex(expectations[1]!, /^Expectation: wrong\.yaml:11 "writes: read-only" from 4s until 5s: \d+ of \d+ write probes were not refused as read-only/);
  t.regex(expectations[2]!, /^Expectation: wrong\.yaml:14 "writes: succeed" from 8s until 10s: \d+ of \d+ write probes failed .* refused with no_quorum/);
  t.regex(expectations[3]!, /^Expectation: wrong\.yaml:17 "elections: min 2" from 0s until 12s: the term went from 0 to 1: 1 election, expected at least 2$/);
  t.deepEqual(
    result.failures.filter((f) => f.kind === "expectation").map((f) => (f as { index: number }).index),
    [0, 1, 2, 3],
  );
});

test("runScenario() fails a step that cannot run, naming its line and time", (t) => {
  const text = "name: no-leader\nnodes: 3\nduration: 5s\nliveness: off\ntimeline:\n  - at: 100ms\n    crash: leader\nexpectations:\n  - term: stable\n    from: 0s\n    until: 50ms\n";
  const result = runScenario(scenario(text, "early.yaml"), { seed: 1, traceMessages: false });
  t.false(result.ok);
  t.deepEqual(result.violations, ["Step: early.yaml:6 at 100ms: crash leader: no node leads with a live quorum at 100ms"]);
});

test("runScenario() runs a clock_drift step where the cluster can change clock rates, and says plainly where it cannot", (t) => {
  const text = "name: drift\nnodes: 3\nduration: 6s\ntimeline:\n  - at: 3s\n    clock_drift: { nodes: follower, rate: 1.2 }\nexpectations:\n  - term: stable\n    from: 2s\n";
  const result = runScenario(scenario(text, "drift.yaml"), { seed: 1, traceMessages: false });
  const supported = typeof (SimCluster.prototype as unknown as { setClockRate?: unknown }).setClockRate === "function";
  if (supported) t.deepEqual(result.violations, []);
  else {
    t.deepEqual(result.violations, [
      "Unsupported: drift.yaml:5 at 3s: clock_drift follower rate 1.2: Cannot change a node's clock rate: not supported by this cluster (SimCluster needs setClockRate(id, rate))",
    ]);
  }
});

test("npm run sim -- --scenario runs seeds in worker processes and prints one JSON line per seed", async (t) => {
  const { stdout } = await run("npx", ["tsx", "sim/cli.ts", "--scenario", "scenarios/bridge.yaml", "--seeds", "1..2", "--workers", "2", "--json"], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const lines = stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
  t.is(lines.length, 3);
  t.like(lines[0], { seed: 1, ok: true, scenario: "bridge", violations: [] });
  t.like(lines[1], { seed: 2, ok: true });
  t.like(lines[2], { summary: { seeds: 2, failed: 0 } });
  t.regex(String(lines[0]!.traceHash), /^[0-9a-f]{64}$/);
});

test("npm run sim -- --scenario FOLDER runs every scenario file in it for every seed", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-scenarios-"));
  for (const name of ["alpha", "beta"]) {
    writeFileSync(join(directory, `${name}.yaml`), `name: ${name}\nnodes: 1\nduration: 3s\ntimeline: []\nexpectations:\n  - leader: elected\n`);
  }
  writeFileSync(join(directory, "notes.txt"), "not a scenario");
  const { stdout } = await run("npx", ["tsx", "sim/cli.ts", "--scenario", directory, "--seeds", "1..2", "--workers", "2", "--json"]);
  const lines = stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
  t.deepEqual(
    lines.slice(0, 4).map((line) => [line.scenario, line.seed, line.ok]),
    [
      ["alpha", 1, true],
      ["alpha", 2, true],
      ["beta", 1, true],
      ["beta", 2, true],
    ],
  );
  t.like(lines[4], { summary: { seeds: 4, failed: 0, scenarios: 2 } });
});

test("npm run sim -- --scenario refuses a malformed file with exit code 2 and every problem named", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-scenario-"));
  const file = join(directory, "bad.yaml");
  writeFileSync(file, readFileSync("scenarios/lost-quorum.yaml", "utf8").replace("crash: followers", "crsh: followers").replace("duration: 40s", "duration: 40"));
  const error = await t.throwsAsync(run("npx", ["tsx", "sim/cli.ts", "--scenario", file, "--seed", "1"]));
  const failed = error as unknown as { code: number; stderr: string };
  t.is(failed.code, 2);
  t.regex(failed.stderr, /Cannot load scenario .*bad\.yaml: 2 problems found/);
  t.regex(failed.stderr, /bad\.yaml:8:11: duration: received 40; expected .*did you mean "40s"\?/);
  t.regex(failed.stderr, /bad\.yaml:\d+:5: timeline\[0\]\.crsh: unknown key "crsh".*did you mean "crash"\?/);
});
