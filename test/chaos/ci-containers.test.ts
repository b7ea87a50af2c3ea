/**
 * The chaos scenario CI runs with the testcontainers provider: lost-quorum on PostgreSQL nodes, each
 * node a container of the locally built chaos image (pgraft start and its PostgreSQL, host network on
 * 127.0.0.1), crashes being `docker kill` and restarts `docker restart` of the same container.
 *
 * It sets up what is missing itself, as CI starts from a clean machine (as root, with the Debian
 * packages test/machine-packages.sh installs): the Docker engine is started when none answers, and
 * the image is made from the cached Debian root, or, the first time, debootstrapped (minutes; the
 * progress lines go to t.log). It never skips: without an engine it fails saying what to install.
 *
 * The run must pass for the right reasons (every expectation, a linearizable history, no acknowledged
 * write lost, the SQL functions agreeing with /health), and its teardown must leave no container of
 * the run (by its label), no run directory and no run-registry entry.
 *
 * It runs in the second, timed phase of `npm test` (ava.timed.config.js), alone, after the rest. It
 * failed while restarted containers received heartbeats their old leader had queued before the crash
 * and so ignored the pre-votes of the election that had to replace it; the transport now drops queued
 * messages older than an election timeout (src/transport/outbound-queue.ts).
 */
import test from "ava";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadScenarioFile } from "../../sim/scenario/index.ts";
import { run, stopDockerEngine } from "../../chaos/containers/engine.ts";
import { PROJECT_PATHS_IN_IMAGE } from "../../chaos/containers/image.ts";
import { setupContainers } from "../../chaos/containers/setup.ts";
import { registryDirectory } from "../../chaos/providers/run-registry.ts";
import { RUN_LABEL, TestcontainersProvider } from "../../chaos/providers/testcontainers.ts";
import { runChaosScenario } from "../../chaos/runner/run.ts";
import type { Recording } from "../../chaos/runner/recording.ts";

const checkoutRoot = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

/**
 * The files the image holds, copied once: the image is named by their hash, so a snapshot keeps the
 * set-up's image and the run's the same even while someone edits the checkout.
 */
function snapshotProject(): string {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-ci-containers-"));
  for (const name of [...PROJECT_PATHS_IN_IMAGE, "package-lock.json"]) {
    if (existsSync(join(checkoutRoot, name))) cpSync(join(checkoutRoot, name), join(directory, name), { recursive: true });
  }
  symlinkSync(join(checkoutRoot, "node_modules"), join(directory, "node_modules"));
  return directory;
}

const projectRoot = snapshotProject();
const timelines = mkdtempSync(join(tmpdir(), "pgraft-chaos-ci-containers-"));
test.after.always(() => {
  rmSync(projectRoot, { recursive: true, force: true });
  rmSync(timelines, { recursive: true, force: true });
});

test.serial("lost-quorum passes in containers on PostgreSQL nodes, and its teardown leaves no container", async (t) => {
  // A first image build debootstraps a Debian root: allow it, then the 40 s scenario and 3 container starts.
  t.timeout(40 * 60_000);
  const started = performance.now();
  const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  const setup = await setupContainers((line) => t.log(`[${elapsed()}] setup: ${line}`), projectRoot);
  // An engine this test started (CI's clean machine) is stopped again; one found running is left alone.
  if (setup.engine.startedHere) t.teardown(() => stopDockerEngine(setup.engine));
  t.log(`[${elapsed()}] engine ${setup.engine.serverVersion} (${setup.engine.storageDriver}), image ${setup.image.name} (${setup.image.how})`);

  const provider = new TestcontainersProvider({ projectRoot, label: "ci-lost-quorum", note: (line) => t.log(`[${elapsed()}] ${line}`) });
  t.teardown(() => provider.destroy());
  t.is(await provider.image(), setup.image.name, "the run uses the image just set up");
  const timelineFile = join(timelines, "lost-quorum.json");
  const result = await runChaosScenario({
    scenario: loadScenarioFile(join(checkoutRoot, "scenarios/lost-quorum.yaml")),
    provider,
    seed: 1,
    postgres: true,
    timelineFile,
    note: (line) => t.log(`[${elapsed()}] ${line}`),
  });
  t.log(`[${elapsed()}] lost-quorum: ${result.status}; ${JSON.stringify({ ...result, notes: undefined, timelineFile: undefined })}`);
  t.is(result.provider, "testcontainers");
  t.is(result.status, "passed", result.reasons.join("\n"));
  t.is(result.linearizable, "yes");
  t.is(result.acknowledgedLost, 0);
  t.true(result.writesAcknowledged > 0, "the workload wrote");
  t.true(result.sql !== undefined && result.sql.samples > 0 && result.sql.writesAcknowledged > 0, "the SQL view was sampled and SQL writes were acknowledged");
  t.is(result.sql!.agreedAtEnd, true, "after recovery the SQL functions named the /leader node on every node");
  const recording = JSON.parse(readFileSync(timelineFile, "utf8")) as Recording;
  t.is(recording.provider, "testcontainers");
  t.true(recording.postgres);
  const crash = recording.steps.find((step) => step.verb === "crash");
  t.true(crash !== undefined && crash.outcome === "ok" && crash.nodes?.length === 2, "two followers were crashed");

  // Teardown: nothing of the run is left (runChaosScenario destroys the provider itself).
  const containers = await run("docker", ["ps", "--all", "--quiet", "--filter", `label=${RUN_LABEL}=${provider.runId}`], { timeoutMs: 60_000 });
  t.is(containers.trim(), "", "no container of the run is left");
  const runDirectory = provider.runDirectory;
  t.true(runDirectory !== undefined && !existsSync(runDirectory), "the run directory is removed");
  const entries = readdirSync(registryDirectory()).filter((file) => file.includes(`testcontainers-${process.pid}-`));
  t.deepEqual(entries, [], "the run-registry entry is removed");
});
