/**
 * The runnable server (chaos/toxiproxy/cli.ts) as a child process: it prints where it listens and its
 * seed, loads proxies from --config, and on SIGTERM closes everything and exits 0 by itself. Because the
 * process can only exit once no timer or socket is left, an exit within seconds while toxics with
 * one-minute timers hold open connections proves that deleting, disabling and closing clean up.
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Toxiproxy, type Latency, type Timeout } from "toxiproxy-node-client";
import { portOf, startEcho, TestClient, toxic, waitFor, WAIT_MS, withTimeout } from "./toxiproxy-harness.ts";

const CLI = fileURLToPath(new URL("../../chaos/toxiproxy/cli.ts", import.meta.url));
/** Long enough for tsx to start on a slow machine. */
const START_MS_MAX = 30_000;

interface RunningCli {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

function runCli(t: Parameters<typeof startEcho>[0], args: readonly string[]): RunningCli {
  const child = spawn(process.execPath, ["--import=tsx", CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (data: Buffer) => (stdout += data.toString()));
  child.stderr!.on("data", (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

test("the CLI prints its URL and seed, loads --config, and exits 0 on SIGTERM while toxics hold connections open", async (t) => {
  const echo = await startEcho(t);
  const folder = mkdtempSync(join(tmpdir(), "toxiproxy-cli-"));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const config = join(folder, "proxies.json");
  writeFileSync(config, JSON.stringify(["deleted", "disabled", "running"].map((name) => ({ name, listen: "127.0.0.1:0", upstream: echo.address }))));

  const cli = runCli(t, ["--port", "0", "--seed", "99", "--config", config]);
  await waitFor(() => /listening on/.test(cli.stdout()) || cli.child.exitCode !== null, START_MS_MAX, "the CLI to listen");
  const match = /^toxiproxy: listening on (http:\/\/127\.0\.0\.1:\d+) seed 99 version \S+\n$/.exec(cli.stdout());
  t.truthy(match, `stdout: ${cli.stdout()}\nstderr: ${cli.stderr()}`);
  const client = new Toxiproxy(match![1]!);
  const proxies = await client.getAll();
  t.deepEqual(Object.keys(proxies), ["deleted", "disabled", "running"]);

  const sockets: TestClient[] = [];
  for (const proxy of Object.values(proxies)) {
    await proxy.addToxic(toxic<Latency>("latency", { latency: 60_000, jitter: 1000 }));
    await proxy.addToxic(toxic<Timeout>("timeout", { timeout: 60_000 }, { stream: "upstream" }));
    const socket = await TestClient.connect(t, portOf(proxy));
    socket.socket.write("held for a minute");
    sockets.push(socket);
  }
  await waitFor(() => echo.sockets.length === 3, WAIT_MS, "three upstream connections");
  await proxies["deleted"]!.remove();
  const disabled = proxies["disabled"]!;
  await disabled.update({ enabled: false, listen: disabled.listen, upstream: disabled.upstream });
  await sockets[0]!.waitForClose();
  await sockets[1]!.waitForClose();

  cli.child.kill("SIGTERM");
  const code = await withTimeout(cli.exited, WAIT_MS * 2, "the CLI to exit after SIGTERM");
  t.is(code, 0, cli.stderr());
  await sockets[2]!.waitForClose();
});

test("the CLI refuses bad arguments with exit code 2 and the usage, and a bad --config with exit code 1", async (t) => {
  const badPort = runCli(t, ["--port", "http"]);
  t.is(await withTimeout(badPort.exited, START_MS_MAX, "the CLI to exit"), 2);
  t.regex(badPort.stderr(), /--port must be an integer from 0 to 65535, got "http"\nusage:/);

  const badConfig = runCli(t, ["--port", "0", "--config", "/nonexistent/proxies.json"]);
  t.is(await withTimeout(badConfig.exited, START_MS_MAX, "the CLI to exit"), 1);
  t.regex(badConfig.stderr(), /Cannot start the Toxiproxy server: cannot read --config \/nonexistent\/proxies.json/);
});
