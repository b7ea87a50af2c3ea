// Startup preflight and the data-directory lock, on real `pgraft start` processes: each failure is
// one named error that says what to do, with the documented exit code (2: settings, 1: environment),
// and no stack trace; a second node on a live node's data directory is refused naming its pid; a
// stale lock of a dead process is taken over.
import test from "ava";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts, holdPort } from "./free-ports.ts";

interface Started {
  readonly child: ChildProcess;
  readonly exit: Promise<{ code: number | null; stderr: string }>;
  stderr: string;
}

const children = new Set<ChildProcess>();
test.after.always(() => {
  for (const child of children) child.kill("SIGKILL");
});

function startNode(settings: string[], options: { uid?: number; gid?: number; env?: Record<string, string> } = {}): Started {
  const child = spawn(process.execPath, ["bin/pgraft.js", "start", ...settings], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, PGRAFT_LOG_LEVEL: "info", ...options.env },
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid }),
  });
  children.add(child);
  const started: Started = {
    child,
    stderr: "",
    exit: new Promise((resolve) => child.once("exit", (code) => resolve({ code, stderr: started.stderr }))),
  };
  child.stderr!.on("data", (chunk: Buffer) => (started.stderr += chunk.toString("utf8")));
  void started.exit.then(() => children.delete(child));
  return started;
}

async function settingsFor(directory: string, overrides: string[] = []): Promise<{ settings: string[]; peer: number; client: number; metrics: number }> {
  const [peer, client, metrics] = (await freePorts(3)) as [number, number, number];
  const secret = join(directory, "secret");
  writeFileSync(secret, "correct horse battery staple\n", { mode: 0o644 });
  return {
    peer,
    client,
    metrics,
    settings: [
      "pgraft.cluster_id=preflight",
      "pgraft.name=n1",
      `pgraft.initial_cluster=n1=127.0.0.1:${peer}`,
      `pgraft.client_address=127.0.0.1:${client}`,
      `pgraft.data_dir=${join(directory, "data")}`,
      `pgraft.auth_secret_file=${secret}`,
      "pgraft.metrics_enabled=on",
      `pgraft.metrics_port=${metrics}`,
      ...overrides,
    ],
  };
}

function tempDirectory(t: { teardown: (fn: () => void) => void }): string {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-preflight-"));
  chmodSync(directory, 0o755);
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

async function healthy(port: number, deadlineMs = 90_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    const status = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(500) }).then((r) => r.status, () => undefined);
    if (status === 200) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

const NO_STACK = /^\s+at /m;

test("a data_dir that is a file: exit 2, a named error, no stack trace", async (t) => {
  const directory = tempDirectory(t);
  writeFileSync(join(directory, "data"), "not a directory");
  const { settings } = await settingsFor(directory);
  const { code, stderr } = await startNode(settings).exit;
  t.is(code, 2, stderr);
  t.regex(stderr, /data_dir_not_directory/);
  t.regex(stderr, /Cannot use pgraft\.data_dir .*data: it exists and is not a directory; point pgraft\.data_dir at a directory/);
  t.notRegex(stderr, NO_STACK);
});

test("a data directory the node's user cannot write: exit 1 before the node starts", async (t) => {
  const postgres = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  if (postgres.status !== 0 || process.getuid?.() !== 0) return t.pass("needs root and a postgres user to run the node as another user");
  const uid = Number(postgres.stdout.trim());
  const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
  const directory = tempDirectory(t);
  mkdirSync(join(directory, "data"), { mode: 0o755 }); // root's: others cannot write
  const { settings } = await settingsFor(directory);
  chownSync(join(directory, "secret"), uid, gid);
  const { code, stderr } = await startNode(settings, { uid, gid }).exit;
  t.is(code, 1, stderr);
  t.regex(stderr, /data_dir_not_writable/);
  t.regex(stderr, /Cannot write to the data directory .*: permission denied; give the user running pgraft \(uid \d+\) write access/);
  t.notRegex(stderr, /became leader|is now leader/, "refused before it joined a cluster");
  t.notRegex(stderr, NO_STACK);
});

for (const which of ["peer", "client", "metrics"] as const) {
  test(`the ${which} port held by another process: exit 1, naming the port and the setting`, async (t) => {
    const directory = tempDirectory(t);
    const ports = await settingsFor(directory);
    const release = await holdPort(ports[which]);
    t.teardown(release);
    const { code, stderr } = await startNode(ports.settings).exit;
    t.is(code, 1, stderr);
    t.regex(stderr, /port_in_use/);
    const setting = { peer: "pgraft.listen_address", client: "pgraft.client_address", metrics: "pgraft.metrics_port" }[which];
    t.regex(stderr, new RegExp(`Cannot listen for ${which} connections on 127\\.0\\.0\\.1:${ports[which]}: another process holds the port.*change ${setting.replace(".", "\\.")}`));
    t.notRegex(stderr, NO_STACK);
    t.notRegex(stderr, /TransportError/);
  });
}

test("a second node on a live node's data directory is refused naming its pid; a dead holder's lock is taken over", async (t) => {
  const directory = tempDirectory(t);
  const first = await settingsFor(directory);
  const running = startNode(first.settings);
  t.teardown(() => running.child.kill("SIGKILL"));
  t.true(await healthy(first.client), running.stderr);

  // The README's old recipe: "the same settings, with another name and ports" but the same data_dir.
  const [peer, client, metrics] = (await freePorts(3)) as [number, number, number];
  const second = startNode([...first.settings, `pgraft.listen_address=127.0.0.1:${peer}`, `pgraft.client_address=127.0.0.1:${client}`, `pgraft.metrics_port=${metrics}`]);
  const refused = await second.exit;
  t.is(refused.code, 1, refused.stderr);
  t.regex(refused.stderr, /data_dir_locked/);
  t.regex(refused.stderr, new RegExp(`Cannot lock the data directory .*: process ${running.child.pid} holds it .*Stop that node, or give this one its own pgraft\\.data_dir`));

  // kill -9 leaves the lock file behind; the next start takes it over.
  running.child.kill("SIGKILL");
  await running.exit;
  const again = startNode(first.settings);
  t.teardown(() => again.child.kill("SIGKILL"));
  t.true(await healthy(first.client), again.stderr);
  t.regex(again.stderr, new RegExp(`took over the lock of .* from process ${running.child.pid}, which no longer runs`));
  again.child.kill("SIGTERM");
  t.is((await again.exit).code, 0);
});

test("an unreadable secret file is a settings error (exit 2), without a stack trace", async (t) => {
  const directory = tempDirectory(t);
  const { settings } = await settingsFor(directory, [`pgraft.auth_secret_file=${join(directory, "missing-secret")}`]);
  const { code, stderr } = await startNode(settings).exit;
  t.is(code, 2, stderr);
  t.regex(stderr, /pgraft\.auth_secret_file/);
  t.notRegex(stderr, NO_STACK);
});

test("a data directory holding a removed member's mark: exit 3, what happened and what to do; a mark cut short still counts", async (t) => {
  const directory = tempDirectory(t);
  const { settings } = await settingsFor(directory);
  mkdirSync(join(directory, "data"), { mode: 0o700 });
  const mark = { clusterId: "preflight", nodeId: 1, name: "n1", removedAt: "2026-12-06T03:00:00.000Z", how: "the configuration committed at log index 12 no longer lists it" };
  writeFileSync(join(directory, "data", "REMOVED"), `${JSON.stringify(mark)}\n`);
  const { code, stderr } = await startNode(settings).exit;
  t.is(code, 3, stderr);
  t.regex(stderr, /removed_member/);
  t.regex(stderr, /Cannot start n1 \(node 1\): it was removed from cluster preflight on 2026-12-06T03:00:00\.000Z \(the configuration committed at log index 12 no longer lists it\), as .*REMOVED records\. Do not start it again as it is: .*wipe its data directory/);
  t.notRegex(stderr, NO_STACK);
  t.notRegex(stderr, /listening for peers/, "refused before it opened its peer port");

  // Cut short (a crash while writing it, an edit): still a removed member's directory.
  writeFileSync(join(directory, "data", "REMOVED"), '{"clusterId":"pre');
  const cut = await startNode(settings).exit;
  t.is(cut.code, 3, cut.stderr);
  t.regex(cut.stderr, /Cannot start n1 \(node 1\): it was removed from cluster preflight \(its mark reads .*clusterId.*pre.*\), as .*REMOVED records/);

  // Without the mark the same directory starts (the refusal released its lock).
  rmSync(join(directory, "data", "REMOVED"));
  const started = startNode(settings);
  t.teardown(() => started.child.kill("SIGKILL"));
  const client = Number(settings.find((setting) => setting.startsWith("pgraft.client_address="))!.split(":").at(-1));
  t.true(await healthy(client), started.stderr);
  started.child.kill("SIGTERM");
  t.is((await started.exit).code, 0);
});

test("a removed member's mark cut short before its rename (only REMOVED.tmp) still refuses the start", async (t) => {
  const directory = tempDirectory(t);
  const { settings } = await settingsFor(directory);
  mkdirSync(join(directory, "data"), { mode: 0o700 });
  writeFileSync(join(directory, "data", "REMOVED.tmp"), '{"clusterId":"preflight","nodeId":1');
  const { code, stderr } = await startNode(settings).exit;
  t.is(code, 3, stderr);
  t.regex(stderr, /Cannot start n1 \(node 1\): it was removed from cluster preflight \(a mark whose write was cut short\), as .*REMOVED\.tmp records/);
});
