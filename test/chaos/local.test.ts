/**
 * The local provider against real `pgraft start` processes without PostgreSQL (the quick
 * `--no-postgres` mode; test/chaos/ci-scenarios.test.ts runs PostgreSQL nodes): a real chaos run of
 * scenarios/lost-quorum.yaml (about a minute), after which no process of the run is left and its
 * directory is gone; and the clean-up of a run that was killed before its teardown.
 *
 * No timing is asserted (the machine is shared): the run must complete, its history must be
 * linearizable, no acknowledged write may be lost, and the timeline must hold the two steps.
 */
import test from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadScenarioFile } from "../../sim/scenario/index.ts";
import { LocalProvider } from "../../chaos/providers/local.ts";
import { cleanStaleRuns, isSameProcessAlive, processStartTime, registryDirectory } from "../../chaos/providers/run-registry.ts";
import { runChaosScenario } from "../../chaos/runner/run.ts";
import type { Recording } from "../../chaos/runner/recording.ts";

const projectRoot = resolve(".");

test("lost-quorum runs against real nodes, and teardown leaves no process or directory behind", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-chaos-test-"));
  const provider = new LocalProvider({ projectRoot, label: "test-lost-quorum" });
  t.teardown(async () => {
    await provider.destroy();
    rmSync(directory, { recursive: true, force: true });
  });
  const timelineFile = join(directory, "timeline.json");
  const result = await runChaosScenario({ scenario: loadScenarioFile("scenarios/lost-quorum.yaml"), provider, seed: 5, postgres: false, timelineFile, note: (line) => t.log(line) });
  t.log(JSON.stringify({ ...result, notes: undefined }));
  t.not(result.status, "error", result.reasons.join("\n"));
  t.not(result.linearizable, "no", result.reasons.join("\n"));
  t.is(result.acknowledgedLost, 0);
  t.true(result.writesAcknowledged > 0);
  const recording = JSON.parse(readFileSync(timelineFile, "utf8")) as Recording;
  t.deepEqual(recording.steps.map((step) => [step.verb, step.outcome, step.nodes?.length]), [["crash", "ok", 2], ["restart", "ok", 2]]);
  t.is(recording.toxiproxy.seed, 5);
  t.deepEqual(Object.keys(recording.logTails).sort(), ["n1", "n2", "n3"]);
  // Teardown: no process mentions the run's directory (every node had its data and log there), and it is gone.
  t.false(existsSync(provider.runDirectory!), "the run directory is removed");
  const stray = await listProcesses(provider.runDirectory!);
  t.deepEqual(stray, [], "no process mentions the run directory");
});

test("a killed run's processes and directory are cleaned up by the next run, a live run's are not", async (t) => {
  const base = mkdtempSync(join(tmpdir(), "pgraft-registry-test-"));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const leftover = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  t.teardown(() => void leftover.kill("SIGKILL"));
  await new Promise((done) => leftover.once("spawn", done));
  const deadOwner = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((done) => deadOwner.once("exit", done));
  const staleDirectory = mkdtempSync(join(base, "run-"));
  const { mkdirSync } = await import("node:fs");
  mkdirSync(registryDirectory(base), { recursive: true });
  const record = (ownerPid: number, ownerStartTime: number | undefined): string =>
    JSON.stringify({ ownerPid, ownerStartTime, provider: "local", createdAt: "", processes: [{ pid: leftover.pid, startTime: processStartTime(leftover.pid!), what: "leftover" }], directories: [staleDirectory], ports: [], pidFiles: [] });
  writeFileSync(join(registryDirectory(base), "live.json"), record(process.pid, processStartTime(process.pid)));
  t.deepEqual(cleanStaleRuns("local", base), { killed: [], removed: [] }, "a live owner's run is left alone");
  writeFileSync(join(registryDirectory(base), "live.json"), record(deadOwner.pid!, undefined));
  const cleaned = cleanStaleRuns("local", base);
  t.is(cleaned.killed.length, 1);
  await new Promise((done) => (leftover.exitCode !== null || leftover.signalCode !== null ? done(undefined) : leftover.once("exit", done)));
  t.false(isSameProcessAlive(leftover.pid!, undefined));
  t.false(existsSync(staleDirectory));
  t.false(existsSync(join(registryDirectory(base), "live.json")));
});

/** Pids of processes whose command line mentions `text` (from /proc). */
async function listProcesses(text: string): Promise<number[]> {
  const { readdirSync } = await import("node:fs");
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
