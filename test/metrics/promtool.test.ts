/**
 * Every /metrics exposition passes Prometheus's own linter, `promtool check metrics` (Debian's
 * prometheus package; .ci/run installs it). Two endpoints are checked: one served in this process with
 * every pgraft series filled (leader and transport views, every histogram observed, process metrics
 * on), and a real `pgraft start` node with pgraft.metrics_enabled on. promtool prints each lint problem
 * and exits non-zero; any output or a non-zero exit fails the test with promtool's words. A missing
 * promtool fails the test too: it never skips.
 */
import test from "ava";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startHttpServer } from "../../src/api/http-server.ts";
import { createMetricsRoute, DROPPED_DEFAULT_METRICS, NodeMetrics } from "../../src/metrics/metrics.ts";
import { fakeStatus } from "../api/fixtures.ts";

const PROMTOOL_MISSING =
  "promtool is not installed: install Debian's prometheus package (apt-get install -y prometheus), which .ci/run does, then run this test again";

/** The promtool version line, or undefined when the binary cannot be run. */
function promtoolVersion(): string | undefined {
  const result = spawnSync("promtool", ["--version"], { encoding: "utf8", timeout: 30_000 });
  if (result.error !== undefined || result.status !== 0) return undefined;
  return `${result.stdout}${result.stderr}`.split("\n")[0];
}

/** Runs `promtool check metrics` on `text`: its exit code and everything it printed. */
function promtoolCheck(text: string): { status: number | null; output: string } {
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8", timeout: 60_000 });
  if (result.error !== undefined) throw new Error(`Cannot run promtool check metrics: ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

/** A TCP port the OS says is free on 127.0.0.1 now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function scrape(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, text: await response.text() };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test("promtool is installed (the lint tests below need it)", (t) => {
  const version = promtoolVersion();
  t.truthy(version, PROMTOOL_MISSING);
  t.log(version);
});

test("the promtool check catches a gauge named like a counter", (t) => {
  if (promtoolVersion() === undefined) return t.fail(PROMTOOL_MISSING);
  const bad = "# HELP demo_things_total Things now.\n# TYPE demo_things_total gauge\ndemo_things_total 3\n";
  const result = promtoolCheck(bad);
  t.not(result.status, 0);
  t.regex(result.output, /demo_things_total non-counter metrics should not have "_total" suffix/);
});

test("the Node.js gauges named like counters are left out, and their per-type gauges stay", async (t) => {
  const metrics = new NodeMetrics({ status: () => fakeStatus({ id: 1 }), electionTimeoutTicks: 10, processMetrics: true });
  const text = await metrics.metrics();
  for (const name of DROPPED_DEFAULT_METRICS) t.false(text.includes(`# TYPE ${name} `), `${name} is still exported`);
  t.true(text.includes("# TYPE nodejs_active_handles gauge"), "sum(nodejs_active_handles) replaces nodejs_active_handles_total");
  t.true(text.includes("# TYPE nodejs_active_requests gauge"));
  t.true(text.includes("# TYPE process_cpu_seconds_total counter"));
});

test("a /metrics endpoint with every pgraft series and the process metrics passes promtool check metrics", async (t) => {
  if (promtoolVersion() === undefined) return t.fail(PROMTOOL_MISSING);
  const metrics = new NodeMetrics({
    status: () =>
      fakeStatus({
        id: 1,
        role: "leader",
        term: 4,
        leaderId: 1,
        quorumActive: true,
        commit: 20,
        applied: 20,
        lastIndex: 22,
        firstIndex: 1,
        peers: [
          { id: 2, match: 22, next: 23, state: "replicate", ticksSinceResponse: 1 },
          { id: 3, match: 10, next: 11, state: "probe", ticksSinceResponse: 30 },
        ],
      }),
    transport: () => ({
      counters: {
        bytesSent: 10,
        bytesReceived: 20,
        messagesSent: 1,
        messagesReceived: 2,
        messagesDropped: 0,
        connectionAttempts: 1,
        connectionsOutbound: 1,
        connectionsInbound: 1,
        refusalsSent: 0,
        refusalsReceived: 0,
        decodeErrors: 0,
        tlsErrors: 0,
      },
      peers: [
        { nodeId: 2, name: "n2", address: "127.0.0.1:7002", up: true, queuedMessages: 0 },
        { nodeId: 3, name: "n3", address: "127.0.0.1:7003", up: false, queuedMessages: 4 },
      ],
    }),
    electionTimeoutTicks: 10,
    info: { nodeId: 1, name: "n1", clusterId: "lint", version: "0.1.0" },
    processMetrics: true,
  });
  metrics.observeCommitLatency(0.004);
  metrics.observeFsync(0.002);
  metrics.recordSnapshot("taken");
  metrics.observeRequest("put", "ok", 0.003);
  const server = await startHttpServer({ routes: [createMetricsRoute(metrics)] });
  t.teardown(() => server.close());
  const { status, text } = await scrape(`${server.url}/metrics`);
  t.is(status, 200);
  t.true(text.includes("pgraft_peer_reachable{"), "the scrape carries the labelled peer series");
  t.true(text.includes("nodejs_"), "the scrape carries the Node.js runtime series");
  const result = promtoolCheck(text);
  t.is(result.output, "", `promtool check metrics complained:\n${result.output}`);
  t.is(result.status, 0, `promtool check metrics exited ${result.status}:\n${result.output}`);
});

test("a real pgraft start node's /metrics passes promtool check metrics", async (t) => {
  if (promtoolVersion() === undefined) return t.fail(PROMTOOL_MISSING);
  const directory = mkdtempSync(join(tmpdir(), "pgraft-promtool-"));
  const secretFile = join(directory, "secret");
  writeFileSync(secretFile, "promtool lint test secret\n");
  const [peerPort, clientPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [
      "bin/pgraft.js",
      "start",
      "pgraft.cluster_id=lint",
      "pgraft.name=n1",
      `pgraft.initial_cluster=n1=127.0.0.1:${peerPort}`,
      `pgraft.client_address=127.0.0.1:${clientPort}`,
      `pgraft.data_dir=${join(directory, "n1")}`,
      `pgraft.auth_secret_file=${secretFile}`,
      "pgraft.metrics_enabled=on",
      `pgraft.metrics_port=${metricsPort}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, PGRAFT_LOG_LEVEL: "info" } },
  );
  let log = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    log = (log + chunk.toString("utf8")).slice(-100_000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    rmSync(directory, { recursive: true, force: true });
  });

  // Bounded wait for the node to serve metrics as leader, so the scrape holds a running node's series.
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  let text: string | undefined;
  for (let attempt = 0; attempt < 300 && child.exitCode === null; attempt++) {
    const answer = await scrape(url).catch(() => undefined);
    if (answer?.status === 200 && /^pgraft_is_leader 1$/m.test(answer.text)) {
      text = answer.text;
      break;
    }
    await sleep(100);
  }
  if (text === undefined) return t.fail(`the node never served /metrics as leader on ${url}; its log:\n${log}`);
  t.true(text.includes("pgraft_term"));
  t.true(text.includes("process_cpu_seconds_total"), "the node exports the process metrics");
  const result = promtoolCheck(text);
  t.is(result.output, "", `promtool check metrics complained about the node's /metrics:\n${result.output}`);
  t.is(result.status, 0, `promtool check metrics exited ${result.status}:\n${result.output}`);
});
