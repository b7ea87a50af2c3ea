// Scenario files: every file in scenarios/ parses and writes back to the same scenario, and a
// malformed file is refused with every problem named by file, line, column, field, what was received
// and what was expected, with "did you mean" for misspellings. Each refusal below is a small file with
// one mistake; the test checks the exact position and the words of the message.
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseScenario } from "../../sim/scenario/parse-scenario.ts";
import type { Scenario } from "../../sim/scenario/scenario.ts";
import type { ScenarioIssue } from "../../sim/scenario/scenario-issue.ts";
import { writeScenario } from "../../sim/scenario/write-scenario.ts";

const SCENARIOS_DIRECTORY = "scenarios";
const REQUIRED_SCENARIOS = [
  "lost-quorum",
  "complete-cluster-failure",
  "minority-partition",
  "leader-isolated",
  "one-way-cut",
  "bridge",
  "flapping-link",
  "high-latency-low",
  "high-latency-medium",
  "high-latency-high",
  "frequent-elections",
  "frequent-elections-fixed",
  "add-node",
  "add-node-on-follower",
  "remove-node",
  "replace-failed-node",
  "rolling-restart",
  "slow-disk",
];

const files = readdirSync(SCENARIOS_DIRECTORY).filter((name) => name.endsWith(".yaml"));

/** The scenario without positions, for comparing a file with its rewritten self. */
function withoutPositions(scenario: Scenario): unknown {
  return JSON.parse(JSON.stringify(scenario, (key, value: unknown) => (key === "line" || key === "file" ? undefined : value)));
}

function parseOk(text: string, file = "t.yaml"): Scenario {
  const result = parseScenario(text, file);
  if (!result.ok) throw new Error(result.issues.map((issue) => issue.message).join("\n"));
  return result.value;
}

function issuesOf(text: string, file = "bad.yaml"): readonly ScenarioIssue[] {
  const result = parseScenario(text, file);
  if (result.ok) throw new Error("expected the scenario to be refused");
  return result.issues;
}

const MINIMAL = "name: t\nnodes: 3\nduration: 20s\n";

test("scenarios/ holds a file for every documented failure the issue lists", (t) => {
  for (const name of REQUIRED_SCENARIOS) t.true(files.includes(`${name}.yaml`), `${name}.yaml is missing`);
});

for (const file of files) {
  test(`parseScenario() reads ${file}, and writeScenario() writes it back to the same scenario`, (t) => {
    const path = join(SCENARIOS_DIRECTORY, file);
    const scenario = parseOk(readFileSync(path, "utf8"), path);
    t.is(`${scenario.name}.yaml`, file, "the name matches the file name");
    t.true(scenario.expectations.length > 0, "a scenario checks something");
    const rewritten = parseOk(writeScenario(scenario), path);
    t.deepEqual(withoutPositions(rewritten), withoutPositions(scenario));
  });
}

test("parseScenario() maps pgraft settings through the settings layer, profile included", (t) => {
  const scenario = parseOk(`${MINIMAL}settings:\n  pgraft.profile: high\n  pgraft.pre_vote: off\n  pgraft.batch_size: 7\ntimeline: []\n`);
  t.like(scenario.timing, { profile: "high", electionTimeoutMs: 5_000, heartbeatIntervalMs: 500, preVote: false, checkQuorum: true, entriesPerAppendMax: 7 });
  const defaults = parseOk(`${MINIMAL}timeline: []\n`);
  t.like(defaults.timing, { electionTimeoutMs: 1_000, heartbeatIntervalMs: 100, preVote: true, snapshotIntervalEntries: 10_000 });
});

test("parseScenario() reads repeated steps, bindings, selectors and windows", (t) => {
  const scenario = parseOk(
    `${MINIMAL}timeline:\n  - at: 2s\n    every: 500ms\n    until: 4s\n    partition: [[n1], [n2, n3]]\n` +
      `  - at: 5s\n    isolate: leader\n    as: old\n  - at: 6s\n    heal: all\n  - at: 7s\n    crash: $old\n` +
      `expectations:\n  - leader: elected\n    not: $old\n    from: 5s\n    within: 3s\n  - members: [n1, n2, n3]\n`,
  );
  t.deepEqual(scenario.timeline[0]!.action, { verb: "partition", groups: [[{ kind: "node", id: 1 }], [{ kind: "node", id: 2 }, { kind: "node", id: 3 }]] });
  t.is(scenario.timeline[0]!.everyMs, 500);
  t.is(scenario.timeline[1]!.bind, "old");
  t.deepEqual(scenario.timeline[3]!.action, { verb: "crash", nodes: [{ kind: "bound", name: "old" }], duringWrite: false });
  t.deepEqual(scenario.expectations[0]!.window, { fromMs: 5_000, untilMs: 8_000 });
  t.deepEqual(scenario.expectations[1]!.window, { fromMs: 20_000, untilMs: 20_000 }, "members defaults to the end");
});

interface Refusal {
  readonly title: string;
  readonly text: string;
  readonly code: ScenarioIssue["code"];
  readonly line: number;
  readonly column?: number;
  readonly path: string;
  readonly message: RegExp[];
}

const REFUSALS: Refusal[] = [
  {
    title: "a misspelt top-level key, suggesting the right one",
    text: `${MINIMAL}timeline: []\nexpectatoins: []\n`,
    code: "unknown_field",
    line: 5,
    column: 1,
    path: "expectatoins",
    message: [/^bad\.yaml:5:1: /, /unknown key "expectatoins"/, /expected one of name, description/, /did you mean "expectations"\?/],
  },
  {
    title: "a misspelt verb, suggesting the right one",
    text: `${MINIMAL}timeline:\n  - at: 10s\n    crsh: n2\n`,
    code: "unknown_verb",
    line: 6,
    column: 5,
    path: "timeline,0,crsh",
    message: [/^bad\.yaml:6:5: timeline\[0\]\.crsh: /, /expected a verb \(crash, restart/, /did you mean "crash"\?/],
  },
  {
    title: "a duration without its unit",
    text: `${MINIMAL}timeline:\n  - at: 10\n    crash: n2\n`,
    code: "invalid_value",
    line: 5,
    column: 9,
    path: "timeline,0,at",
    message: [/timeline\[0\]\.at: received 10; expected when the step runs/, /a duration with its unit/, /did you mean "10s"\?/],
  },
  {
    title: "a node the cluster does not have",
    text: `${MINIMAL}timeline:\n  - at: 10s\n    crash: [n1, n7]\n`,
    code: "unknown_node",
    line: 6,
    column: 17,
    path: "timeline,0,crash,1",
    message: [/received "n7"; expected a node of this scenario: n1\.\.n3/],
  },
  {
    title: "a misspelt pgraft setting, suggesting the right one",
    text: `name: t\nnodes: 3\nduration: 20s\nsettings:\n  pgraft.election_timout: 2s\ntimeline: []\n`,
    code: "invalid_setting",
    line: 5,
    column: 3,
    path: "settings,pgraft.election_timout",
    message: [/unknown setting "pgraft\.election_timout"/, /did you mean "pgraft\.election_timeout"\?/],
  },
  {
    title: "settings that pgraft's validator refuses together",
    text: `name: t\nnodes: 3\nduration: 20s\nsettings:\n  pgraft.election_timeout: 100ms\n  pgraft.heartbeat_interval: 100ms\ntimeline: []\n`,
    code: "invalid_setting",
    line: 5,
    path: "settings,pgraft.election_timeout",
    message: [/pgraft\.election_timeout must exceed pgraft\.heartbeat_interval/],
  },
  {
    title: "a per-node setting a scenario may not set",
    text: `name: t\nnodes: 3\nduration: 20s\nsettings:\n  pgraft.listen_address: "127.0.0.1:7001"\ntimeline: []\n`,
    code: "invalid_setting",
    line: 5,
    path: "settings,pgraft.listen_address",
    message: [/cannot be set in a scenario/, /expected one of pgraft\.profile/],
  },
  {
    title: "a $name no step binds, suggesting the one that is bound",
    text: `${MINIMAL}timeline:\n  - at: 5s\n    isolate: leader\n    as: old-leader\n  - at: 9s\n    heal: all\n  - at: 10s\n    crash: $old-leadr\n`,
    code: "unknown_node",
    line: 11,
    path: "timeline,2,crash",
    message: [/received "\$old-leadr"; expected one of \$old-leader/, /did you mean "\$old-leader"\?/],
  },
  {
    title: "a window that closes before it opens",
    text: `${MINIMAL}timeline: []\nexpectations:\n  - leader: elected\n    from: 10s\n    until: 5s\n`,
    code: "inconsistent",
    line: 8,
    column: 12,
    path: "expectations,0,until",
    message: [/received "5s"; expected a window that closes after it opens \(from 10s\)/],
  },
  {
    title: "a misspelt check value",
    text: `${MINIMAL}timeline: []\nexpectations:\n  - writes: suceed\n`,
    code: "invalid_value",
    line: 6,
    column: 13,
    path: "expectations,0,writes",
    message: [/received "suceed"; expected the writes check: one of succeed, read-only; did you mean "succeed"\?/],
  },
  {
    title: "a step with two verbs",
    text: `${MINIMAL}timeline:\n  - at: 10s\n    crash: n1\n    heal: all\n`,
    code: "inconsistent",
    line: 5,
    path: "timeline,0",
    message: [/a step has one verb: found crash and heal/],
  },
  {
    title: "text that is not YAML",
    text: `${MINIMAL}timeline:\n  - at: 10s\n    why: the term climbs: a lot\n    crash: n1\n`,
    code: "syntax_error",
    line: 6,
    path: "",
    message: [/^bad\.yaml:6:\d+: /, /not valid YAML/, /put a value that contains ": " in quotes/],
  },
  {
    title: "a request expectation naming no step",
    text: `${MINIMAL}timeline:\n  - at: 5s\n    id: add-n4\n    add_node: n4\nexpectations:\n  - request: add-4\n    result: accepted\n`,
    code: "invalid_value",
    line: 9,
    path: "expectations,0,request",
    message: [/received "add-4"; expected the id of a request step: "add-n4"; did you mean "add-n4"\?/],
  },
];

for (const refusal of REFUSALS) {
  test(`parseScenario() refuses ${refusal.title}, naming file, line, field, received and expected`, (t) => {
    const issues = issuesOf(refusal.text);
    const issue = issues.find((candidate) => candidate.code === refusal.code);
    t.truthy(issue, `no ${refusal.code} issue among: ${issues.map((i) => i.message).join(" | ")}`);
    t.is(issue!.line, refusal.line, issue!.message);
    if (refusal.column !== undefined) t.is(issue!.column, refusal.column, issue!.message);
    t.is(issue!.path.join(","), refusal.path);
    t.true(issue!.message.startsWith(`bad.yaml:${refusal.line}:`), issue!.message);
    for (const pattern of refusal.message) t.regex(issue!.message, pattern);
  });
}

test("parseScenario() reports every problem of a file at once, in line order", (t) => {
  const issues = issuesOf(`name: Bad Name\nnodes: 12\nduration: 40\ntimeline:\n  - at: 5s\n    crash: n9\n`);
  t.deepEqual(
    issues.map((issue) => [issue.line, issue.code]),
    [
      [1, "invalid_value"],
      [2, "out_of_range"],
      [3, "invalid_value"],
    ],
    issues.map((issue) => issue.message).join("\n"),
  );
});
