/**
 * The container part of chaos runs, against a real Docker engine: the engine is found (or started),
 * the chaos image is built (or found in the cache, and a second call is a cache hit), and one node in a
 * container of that image runs `pgraft start` with its PostgreSQL, answers on 127.0.0.1, keeps its data
 * (a Raft write and a SQL row) across docker kill and restart, freezes under docker pause, and leaves no
 * container or directory behind. A node's dials follow its dial redirects inside its container, and a
 * node that exits by itself is seen as exited with its exit code. A container left by a run whose
 * owner died is removed by the next run's cleanStale().
 *
 * This file needs a Docker engine and fails (never skips) when none can be had: the failure names the
 * fix (`apt-get install -y docker.io debootstrap`, then `npm run chaos -- --setup`). A first image
 * build debootstraps a Debian root and takes minutes; CI runs the setup before the tests.
 */
import test from "ava";
import { spawnSync } from "node:child_process";
import net from "node:net";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDockerEngine, run, stopDockerEngine, type DockerEngine } from "../../chaos/containers/engine.ts";
import { ensureChaosImage, PROJECT_PATHS_IN_IMAGE, type ChaosImage } from "../../chaos/containers/image.ts";
import { RUN_LABEL, TestcontainersProvider } from "../../chaos/providers/testcontainers.ts";
import { get, put, sleep } from "../server/process-cluster.ts";

const checkoutRoot = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

/**
 * A snapshot of the files the image holds, so that every call in this file sees the same project even
 * while someone edits the checkout (the image is named by a hash of these files: on an unchanged
 * checkout the snapshot's image is the checkout's, and `npm run chaos -- --setup` has built it).
 */
function snapshotProject(): string {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-containers-test-"));
  for (const name of [...PROJECT_PATHS_IN_IMAGE, "package-lock.json"]) {
    if (existsSync(join(checkoutRoot, name))) cpSync(join(checkoutRoot, name), join(directory, name), { recursive: true });
  }
  symlinkSync(join(checkoutRoot, "node_modules"), join(directory, "node_modules"));
  return directory;
}

const projectRoot = snapshotProject();
const progress = (line: string): void => {
  process.stderr.write(`containers.test: ${line}\n`);
};

let engine: DockerEngine | undefined;
let image: ChaosImage | undefined;
const providers: TestcontainersProvider[] = [];

test.after.always(async () => {
  for (const provider of providers) await provider.destroy();
  rmSync(projectRoot, { recursive: true, force: true });
  // An engine this file started is stopped again; one that was running stays.
  if (engine !== undefined) await stopDockerEngine(engine);
});

function ready(): { engine: DockerEngine; image: ChaosImage } {
  if (engine === undefined || image === undefined) throw new Error("Cannot run this test: the engine or the image could not be had (see the first test's failure)");
  return { engine, image };
}

async function labelled(runId: string): Promise<string[]> {
  const listed = await run("docker", ["ps", "--all", "--quiet", "--filter", `label=${RUN_LABEL}=${runId}`], { timeoutMs: 60_000 });
  return listed.split("\n").filter((line) => line.trim() !== "");
}

/** Bounded wait until `url` answers /health (any status): the node's process is up. */
async function waitForAnswer(url: string, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer /health within ${timeoutMs} ms; the node's log:\n${log()}`);
      await sleep(200);
    }
  }
}

/** Bounded wait until the node answers /leader with 200: the single node has elected itself. */
async function waitForLeader(url: string, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${url}/leader`, { signal: AbortSignal.timeout(1_000) }).then(
      async (response) => (await response.arrayBuffer(), response.status),
      () => undefined,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} did not lead within ${timeoutMs} ms (last /leader answer: ${status ?? "none"}); the node's log:\n${log()}`);
    await sleep(200);
  }
}

/** Bounded retry of a SQL statement while PostgreSQL starts (initdb runs on a first start). */
async function sqlEventually(provider: TestcontainersProvider, text: string, timeoutMs: number): Promise<readonly Record<string, unknown>[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await provider.sql(1, text)).rows;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`SQL ${JSON.stringify(text)} kept failing for ${timeoutMs} ms (${(error as Error).message}); the node's log:\n${provider.logTail(1)}`);
      await sleep(500);
    }
  }
}

test.serial("the engine runs and the chaos image is built or found; a second call is a cache hit", async (t) => {
  t.timeout(30 * 60_000, "a first image build debootstraps a Debian root");
  try {
    engine = await ensureDockerEngine({ progress });
  } catch (error) {
    t.fail(`No Docker engine for the testcontainers provider: ${(error as Error).message}`);
    return;
  }
  t.log(`engine: ${engine.serverVersion}, storage driver ${engine.storageDriver}, ${engine.startedHere ? "started by this test" : "found running"}`);
  try {
    image = await ensureChaosImage({ progress, projectRoot });
  } catch (error) {
    t.fail(`Cannot build the chaos image: ${(error as Error).message}`);
    return;
  }
  t.log(`first call: ${image.name} ${image.how} in ${(image.elapsedMs / 1000).toFixed(1)} s`);
  const again = await ensureChaosImage({ progress, projectRoot });
  t.log(`second call: ${again.how} in ${(again.elapsedMs / 1000).toFixed(1)} s`);
  t.is(again.name, image.name);
  t.is(again.how, "cached");
  const tag = (await run("docker", ["image", "inspect", "--format", "{{.Config.WorkingDir}}", image.name], { timeoutMs: 60_000 })).trim();
  t.is(tag, "/opt/pgraft");
});

test.serial("a node in a container answers on 127.0.0.1, keeps its data across kill and restart, pauses, and is removed", async (t) => {
  t.timeout(10 * 60_000);
  ready();
  const provider = new TestcontainersProvider({ projectRoot, note: progress, label: "containers-test" });
  providers.push(provider);
  await provider.cleanStale();
  const endpoints = await provider.reserveNode(1);
  t.is(endpoints.host, "127.0.0.1");
  const settings = [
    "pgraft.cluster_id=containers-test",
    "pgraft.name=n1",
    `pgraft.initial_cluster=n1=127.0.0.1:${endpoints.peerPort}`,
    `pgraft.client_urls=n1=127.0.0.1:${endpoints.clientPort}`,
  ];
  const startMs = Date.now();
  await provider.startNode({ id: 1, settings, postgres: true });
  t.log(`container started in ${Date.now() - startMs} ms`);
  t.is(provider.nodeState(1), "running");
  t.is((await labelled(provider.runId)).length, 1);
  await waitForAnswer(endpoints.clientUrl, 120_000, () => provider.logTail(1));
  t.log(`client API answering ${Date.now() - startMs} ms after the start`);
  t.is(provider.endpoints(1).postgresUrl, `postgresql://postgres@127.0.0.1:${endpoints.postgresPort}/postgres`);

  await waitForLeader(endpoints.clientUrl, 120_000, () => provider.logTail(1));
  const written = await put(endpoints.clientUrl, "kept-key", "kept-value", 10_000);
  t.is(written.status, 200, JSON.stringify(written.body));
  await sqlEventually(provider, "CREATE TABLE kept (value text); INSERT INTO kept VALUES ('row before the crash')", 120_000);

  await provider.crashNode(1);
  t.is(provider.nodeState(1), "crashed");
  t.is((await run("docker", ["inspect", "--format", "{{.State.Running}}", `pgraft-chaos-${provider.runId}-n1`], { timeoutMs: 60_000 })).trim(), "false");
  await t.throwsAsync(fetch(`${endpoints.clientUrl}/health`, { signal: AbortSignal.timeout(2_000) }), { any: true });
  t.true(readdirSync(join(provider.runDirectory!, "n1", "raft")).length > 0, "the Raft data stays on the host");

  const restartMs = Date.now();
  await provider.restartNode(1);
  t.is(provider.nodeState(1), "running");
  await waitForAnswer(endpoints.clientUrl, 120_000, () => provider.logTail(1));
  t.log(`restarted and answering in ${Date.now() - restartMs} ms`);
  t.is(await get(endpoints.clientUrl, "kept-key", 5_000, 60_000), "kept-value");
  const rows = await sqlEventually(provider, "SELECT value FROM kept", 120_000);
  t.deepEqual(rows, [{ value: "row before the crash" }]);

  await provider.pauseNode(1);
  t.is(provider.nodeState(1), "paused");
  // A frozen process cannot answer: the request times out.
  await t.throwsAsync(fetch(`${endpoints.clientUrl}/health`, { signal: AbortSignal.timeout(1_500) }), { any: true });
  await provider.resumeNode(1);
  await waitForAnswer(endpoints.clientUrl, 60_000, () => provider.logTail(1));

  const runDirectory = provider.runDirectory!;
  await provider.destroy();
  t.deepEqual(await labelled(provider.runId), [], "no container of the run is left");
  t.false(existsSync(runDirectory), "the run's directory is gone");
});

/** A listener on 127.0.0.1 that counts the connections it accepts (and closes each). */
async function countingListener(): Promise<{ server: net.Server; port: number; accepted: () => number }> {
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
}

test.serial("a node's dials follow its redirects inside the container; a node that exits by itself is exited with its code", async (t) => {
  t.timeout(10 * 60_000);
  ready();
  const provider = new TestcontainersProvider({ projectRoot, note: progress, label: "containers-redirect" });
  providers.push(provider);
  // n2's configured address: nothing listens there (a listener opened and closed gives a free port).
  const nowhere = await countingListener();
  await new Promise<void>((resolve) => nowhere.server.close(() => resolve()));
  const target = await countingListener();
  t.teardown(() => void target.server.close());
  const endpoints = await provider.reserveNode(1);
  await provider.startNode({
    id: 1,
    postgres: false,
    settings: [
      "pgraft.cluster_id=containers-redirect",
      "pgraft.name=n1",
      `pgraft.initial_cluster=n1=127.0.0.1:${endpoints.peerPort},n2=127.0.0.1:${nowhere.port}`,
      `pgraft.client_urls=n1=127.0.0.1:${endpoints.clientPort}`,
    ],
    dialRedirects: { [`127.0.0.1:${nowhere.port}`]: `127.0.0.1:${target.port}` },
  });
  await waitForAnswer(endpoints.clientUrl, 120_000, () => provider.logTail(1));
  // The node dials n2 at its configured address and keeps retrying; the redirect takes it to `target`.
  const deadline = Date.now() + 60_000;
  while (target.accepted() === 0 && Date.now() < deadline) await sleep(200);
  t.true(target.accepted() > 0, `n1 never reached the redirect target; its log:\n${provider.logTail(1)}`);
  // The node logs the failed dial after the target closed the connection, and its log reaches the file
  // a moment later: wait for the line rather than read once (CI caught a read that came too early).
  const namesConfigured = new RegExp(`peer n2 \\(127\\.0\\.0\\.1:${nowhere.port}\\)`);
  const logDeadline = Date.now() + 30_000;
  while (!namesConfigured.test(provider.logTail(1, 100_000)) && Date.now() < logDeadline) await sleep(200);
  t.regex(provider.logTail(1, 100_000), namesConfigured, "the node itself still names n2's configured address");

  // A crash is the runner's doing: the node is "crashed", not "exited", and has no exit code.
  await provider.crashNode(1);
  await sleep(1_000);
  t.is(provider.nodeState(1), "crashed");
  t.is(provider.exitCode(1), undefined);

  // A node that stops by itself (here: a setting pgraft start refuses) is noticed, with its exit code.
  const refusing = await provider.reserveNode(2);
  await provider.startNode({
    id: 2,
    postgres: false,
    settings: ["pgraft.cluster_id=containers-redirect", "pgraft.name=n2", `pgraft.initial_cluster=n2=127.0.0.1:${refusing.peerPort}`, "pgraft.election_timeout=soon"],
  });
  const exitDeadline = Date.now() + 120_000;
  while (provider.nodeState(2) === "running" && Date.now() < exitDeadline) await sleep(200);
  t.is(provider.nodeState(2), "exited", provider.logTail(2));
  const engineCode = Number((await run("docker", ["inspect", "--format", "{{.State.ExitCode}}", `pgraft-chaos-${provider.runId}-n2`], { timeoutMs: 60_000 })).trim());
  t.not(engineCode, 0, provider.logTail(2));
  t.is(provider.exitCode(2), engineCode);
  // A restart clears it.
  await provider.restartNode(1);
  t.is(provider.nodeState(1), "running");
  t.is(provider.exitCode(1), undefined);
  await provider.destroy();
  t.deepEqual(await labelled(provider.runId), [], "no container of the run is left");
});

test.serial("cleanStale removes the containers of a run whose owner died, and only those", async (t) => {
  t.timeout(5 * 60_000);
  ready();
  // A pid that surely ran and has exited: a finished child's.
  const deadPid = spawnSync("true").pid;
  t.truthy(deadPid);
  const provider = new TestcontainersProvider({ projectRoot, note: progress, label: "containers-stale" });
  providers.push(provider);
  const imageName = await provider.image();
  const create = (runId: string, ownerPid: number): Promise<string> =>
    run("docker", ["create", "--network", "host", "--label", `${RUN_LABEL}=${runId}`, "--label", `pgraft-chaos.owner-pid=${ownerPid}`, "--label", "pgraft-chaos.owner-start=", imageName, "/bin/true"], { timeoutMs: 120_000 });
  const staleRun = `stale-${process.pid}`;
  const liveRun = `live-${process.pid}`;
  try {
    await create(staleRun, deadPid!);
    await create(liveRun, process.pid);
    const cleanup = await provider.cleanStale();
    t.true(cleanup.killed.some((entry) => entry.includes(staleRun)), JSON.stringify(cleanup));
    t.deepEqual(await labelled(staleRun), []);
    t.is((await labelled(liveRun)).length, 1, "a live owner's container is left alone");
  } finally {
    const left = [...(await labelled(liveRun)), ...(await labelled(staleRun))];
    if (left.length > 0) await run("docker", ["rm", "--force", ...left], { timeoutMs: 120_000 });
    await provider.destroy();
  }
});
