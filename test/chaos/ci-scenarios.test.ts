/**
 * The chaos scenarios CI runs on every push, with the local provider on real PostgreSQL nodes
 * (`pgraft start --pgdata`): lost-quorum, complete-cluster-failure, leader-isolated and
 * high-latency-low, one after the other (runs side by side would steal each other's CPU on a 2-core
 * machine and blur the timing the expectations check).
 *
 * Each must pass for the right reasons: every expectation of its file (with the runner's documented
 * 500 ms slack), a linearizable history of etcd and SQL clients, no acknowledged write lost (read back
 * through the etcd API and pgraft_kv_get), the SQL functions agreeing with /health. And each run's
 * teardown must leave nothing: its directory gone, no process (node or PostgreSQL) naming it, no
 * postmaster of its data directories alive, its run-registry entry removed.
 *
 * About 4 minutes in all: the scenarios last 40 + 40 + 40 + 60 s, plus start-up and teardown.
 */
import test from "ava";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadScenarioFile } from "../../sim/scenario/index.ts";
import { LocalProvider } from "../../chaos/providers/local.ts";
import { registryDirectory } from "../../chaos/providers/run-registry.ts";
import { runChaosScenario } from "../../chaos/runner/run.ts";
import type { Recording } from "../../chaos/runner/recording.ts";

const projectRoot = resolve(".");
export const CI_SCENARIOS = ["lost-quorum", "complete-cluster-failure", "leader-isolated", "high-latency-low"];

const timelines = mkdtempSync(join(tmpdir(), "pgraft-chaos-ci-"));
test.after.always(() => rmSync(timelines, { recursive: true, force: true }));

for (const name of CI_SCENARIOS) {
  test.serial(`${name} passes on PostgreSQL nodes, and its teardown leaves nothing behind`, async (t) => {
    t.timeout(240_000);
    const provider = new LocalProvider({ projectRoot, label: `ci-${name}`, note: (line) => t.log(line) });
    t.teardown(() => provider.destroy());
    const timelineFile = join(timelines, `${name}.json`);
    const started = performance.now();
    const result = await runChaosScenario({ scenario: loadScenarioFile(`scenarios/${name}.yaml`), provider, seed: 1, postgres: true, timelineFile, note: (line) => t.log(line) });
    t.log(`${name}: ${result.status} in ${((performance.now() - started) / 1000).toFixed(1)} s; ${JSON.stringify({ ...result, notes: undefined, timelineFile: undefined })}`);
    t.is(result.status, "passed", result.reasons.join("\n"));
    t.is(result.linearizable, "yes");
    t.is(result.acknowledgedLost, 0);
    t.true(result.writesAcknowledged > 0, "the workload wrote");
    t.true(result.sql !== undefined && result.sql.samples > 0 && result.sql.writesAcknowledged > 0, "the SQL view was sampled and SQL writes were acknowledged");
    t.true(result.sql!.readBack > 0, "acknowledged writes were read back through pgraft_kv_get");
    t.is(result.sql!.agreedAtEnd, true, "after recovery the SQL functions named the /leader node on every node");
    const recording = JSON.parse(readFileSync(timelineFile, "utf8")) as Recording;
    t.true(recording.postgres);
    t.true(recording.events.some((event) => /SQL says RUNNING: time 0/.test(event.what)));

    // Teardown: nothing of the run is left.
    const runDirectory = provider.runDirectory!;
    t.false(existsSync(runDirectory), "the run directory is removed");
    t.deepEqual(processesMentioning(runDirectory), [], "no node or postmaster names the run directory");
    t.deepEqual(postmastersUnder(runDirectory), [], "no postmaster of the run's data directories is alive");
    const entries = readdirSync(registryDirectory()).filter((file) => file.includes(`local-${process.pid}-`));
    t.deepEqual(entries, [], "the run-registry entry is removed");
  });
}

/** Pids of processes whose command line mentions `text` (from /proc). */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(text)) found.push(Number(name));
    } catch {
      // gone
    }
  }
  return found;
}

/** PostgreSQL processes whose working directory (their data directory) lies under `directory`. */
function postmastersUnder(directory: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/comm`, "utf8").startsWith("postgres")) continue;
      if (readlinkSync(`/proc/${name}/cwd`).startsWith(directory)) found.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}
