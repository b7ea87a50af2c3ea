/**
 * Membership steps on real PostgreSQL nodes (local provider) go through the operations guide's SQL
 * functions: add-node (pgraft_add_node on the leader's PostgreSQL, the new node catching up from a
 * snapshot) and remove-node (pgraft_remove_node). Each scenario must pass, and its recording must show
 * the SQL statement run on the `via` node, with no HTTP membership request.
 *
 * Timed phase (ava.timed.config.js): the scenarios check "within" windows on real nodes, about
 * 2 minutes in all.
 */
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadScenarioFile } from "../../sim/scenario/index.ts";
import { LocalProvider } from "../../chaos/providers/local.ts";
import { runChaosScenario } from "../../chaos/runner/run.ts";
import type { Recording } from "../../chaos/runner/recording.ts";

const projectRoot = resolve(".");
const timelines = mkdtempSync(join(tmpdir(), "pgraft-chaos-membership-"));
test.after.always(() => rmSync(timelines, { recursive: true, force: true }));

const CASES = [
  { name: "add-node", verb: "add_node", statement: /^SELECT pgraft_add_node\(4, '127\.0\.0\.1', \d+\)$/ },
  { name: "remove-node", verb: "remove_node", statement: /^SELECT pgraft_remove_node\(3\)$/ },
] as const;

for (const { name, verb, statement } of CASES) {
  test.serial(`${name} on PostgreSQL nodes runs ${verb} through SQL and passes`, async (t) => {
    t.timeout(240_000);
    const provider = new LocalProvider({ projectRoot, label: `sql-${name}`, note: (line) => t.log(line) });
    t.teardown(() => provider.destroy());
    const timelineFile = join(timelines, `${name}.json`);
    const result = await runChaosScenario({ scenario: loadScenarioFile(`scenarios/${name}.yaml`), provider, seed: 1, postgres: true, timelineFile, note: (line) => t.log(line) });
    t.log(`${name}: ${result.status}; ${JSON.stringify({ ...result, notes: undefined, timelineFile: undefined })}`);
    const recording = JSON.parse(readFileSync(timelineFile, "utf8")) as Recording;
    const step = recording.steps.find((entry) => entry.verb === verb);
    t.truthy(step, `the recording has the ${verb} step`);
    t.is(step!.outcome, "ok");
    t.regex(step!.sql ?? "", statement, "the recording names the SQL statement");
    t.true(step!.actions.some((action) => action.startsWith(`SQL on n${step!.via}'s PostgreSQL: SELECT pgraft_`)), step!.actions.join("; "));
    t.false(step!.actions.some((action) => action.includes("/v3/cluster/member")), "no HTTP membership request");
    t.true(recording.events.some((event) => new RegExp(`${verb} n\\d via n${step!.via} \\(SQL\\): accepted`).test(event.what)), "the reply came back through SQL");
    t.is(result.status, "passed", result.reasons.join("\n"));
    t.is(result.acknowledgedLost, 0);
  });
}
