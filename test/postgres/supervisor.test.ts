/**
 * PostgresSupervisor against real PostgreSQL servers (the machine's /usr/lib/postgresql/<N>/bin): it
 * initializes and starts a server that answers node-postgres and psql, stops it without leaving a
 * process, restarts a postmaster killed with SIGKILL, adopts the postmaster of a supervisor that was
 * itself killed with SIGKILL, refuses bad directories and options with clear errors, and runs servers
 * side by side. Every wait polls with a generous bound; nothing asserts on durations.
 */
import test from "ava";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { childProcessIds, isProcessAlive, readPostmasterPid } from "../../src/postgres/data-directory.ts";
import { PostgresSupervisor, PostgresSupervisorError, type PostgresState } from "../../src/postgres/supervisor.ts";
import { freePort, freePorts, killPostmasterOf, startTestPostgres, TEMPLATE_CACHE_DIRECTORY, testDataDirectory, waitFor } from "./harness.ts";


function quietLogger(lines: string[]) {
  const record = (line: string): void => void lines.push(line);
  return { info: record, warn: record, error: record };
}

test("start() initializes a missing data directory with initdb, and the server answers node-postgres and psql", async (t) => {
  const server = await startTestPostgres(t, { template: false, settings: { "pgraft.name": "n1", work_mem: "8MB" } });
  t.is(fs.readFileSync(path.join(server.pgdata, "PG_VERSION"), "utf8").trim(), String(server.supervisor.binaries.majorVersion));
  t.is(server.supervisor.state, "running");
  const stats = fs.statSync(server.pgdata);
  t.is(stats.mode & 0o777, 0o700);
  t.is(stats.uid, server.supervisor.osUser.uid);

  const rows = await server.query<{ user: string; port: number; shared_buffers: string; name: string }>(
    "SELECT current_user AS user, current_setting('port')::int AS port, current_setting('shared_buffers') AS shared_buffers, current_setting('pgraft.name') AS name",
  );
  t.deepEqual(rows, [{ user: server.supervisor.osUser.name, port: server.port, shared_buffers: "16MB", name: "n1" }]);

  const result = await server.psql("CREATE TABLE t (k int PRIMARY KEY, v text);\nINSERT INTO t VALUES (1, 'one'), (2, 'two');\nSELECT k, v FROM t ORDER BY k;");
  t.is(result.code, 0);
  t.is(result.stdout, "1|one\n2|two\n");
  t.deepEqual(await server.query("SELECT v FROM t WHERE k = $1", [2]), [{ v: "two" }]);

  const failed = await server.psql("SELECT * FROM missing_table;", { allowError: true });
  t.not(failed.code, 0);
  t.regex(failed.stderr, /relation "missing_table" does not exist/);
  await t.throwsAsync(server.psql("SELECT * FROM missing_table;"), { message: /psql failed.*missing_table/s });
  t.is((await server.psql("SELECT current_database();", { database: "template1" })).stdout, "template1\n");
});

test("stop() ends the postmaster and all its children, and disables restarts", async (t) => {
  const states: PostgresState[] = [];
  const server = await startTestPostgres(t, { supervisor: { onStateChange: (state) => states.push(state) } });
  const pid = server.supervisor.pid!;
  await server.query("SELECT 1");
  const members = [pid, ...childProcessIds(pid)];
  t.true(members.length >= 4, `the postmaster and its auxiliary processes: ${members.join(", ")}`);

  await server.stop();
  t.is(server.supervisor.state, "stopped");
  t.is(server.supervisor.pid, undefined);
  t.deepEqual(members.filter(isProcessAlive), []);
  t.is(readPostmasterPid(server.pgdata), undefined);
  t.deepEqual(states, ["starting", "running", "stopped"]);
  t.throws(() => server.supervisor.kill("SIGKILL"), { message: /no postmaster is running/ });
});

test("a postmaster killed with SIGKILL is restarted with backoff and serves queries again", async (t) => {
  const states: PostgresState[] = [];
  const server = await startTestPostgres(t, { supervisor: { onStateChange: (state) => states.push(state) } });
  await server.query("CREATE TABLE survivors (v text); INSERT INTO survivors VALUES ('kept')");
  await server.query("CHECKPOINT");
  const killed = server.supervisor.pid!;

  server.supervisor.kill("SIGKILL");
  const rows = await waitFor("the restarted server to answer", async () => {
    if (server.supervisor.state !== "running" || server.supervisor.pid === killed) return undefined;
    return server.query<{ v: string }>("SELECT v FROM survivors");
  });
  t.deepEqual(rows, [{ v: "kept" }]);
  t.not(server.supervisor.pid, killed);
  t.false(isProcessAlive(killed));
  t.deepEqual(states.slice(0, 5), ["starting", "running", "down", "starting", "running"]);
  t.true(server.logLines.some((line) => /was killed by SIGKILL unexpectedly; restarting it in 1 s \(attempt 1\)/.test(line)), server.logLines.join("\n"));
});

test("with restartOnExit off, a killed postmaster stays down", async (t) => {
  const server = await startTestPostgres(t, { restartOnExit: false });
  server.supervisor.kill("SIGKILL");
  await waitFor("the supervisor to see the postmaster die", () => (server.supervisor.state === "down" ? true : undefined));
  t.is(server.supervisor.pid, undefined);
  t.true(server.logLines.some((line) => line.includes("not restarting it (restartOnExit is off)")), server.logLines.join("\n"));
});

test("release() leaves the server running for another supervisor to adopt", async (t) => {
  const first = await startTestPostgres(t);
  const pid = first.supervisor.pid!;
  first.supervisor.release();
  t.is(first.supervisor.state, "stopped");
  await first.supervisor.stop(); // A no-op after release().
  t.true(isProcessAlive(pid));

  const second = await startTestPostgres(t, { pgdata: first.pgdata, port: first.port });
  t.true(second.supervisor.adopted);
  t.is(second.supervisor.pid, pid);
  t.is((await second.psql("SELECT 'adopted';")).stdout, "adopted\n");
  await second.stop();
  t.false(isProcessAlive(pid));
});

test("a paused (SIGSTOP) server still stops", async (t) => {
  const server = await startTestPostgres(t);
  const pid = server.supervisor.pid!;
  server.supervisor.kill("SIGSTOP");
  await server.stop();
  t.false(isProcessAlive(pid));
  t.is(server.supervisor.state, "stopped");
});

test("start() adopts the running postmaster of a supervisor that was killed with SIGKILL, and restarts it when it dies", async (t) => {
  const pgdata = testDataDirectory();
  const port = await freePort();
  t.teardown(() => killPostmasterOf(pgdata));
  // The first supervisor runs in a separate node process, which we then kill like a crashed pgraft node.
  const script = `
    import { PostgresSupervisor } from ${JSON.stringify(path.resolve("src/postgres/supervisor.ts"))};
    const supervisor = await PostgresSupervisor.start(${JSON.stringify({ pgdata, port, initdbNoSync: true, templateCacheDirectory: TEMPLATE_CACHE_DIRECTORY })});
    process.stdout.write(supervisor.pid + "\\n");
    setInterval(() => undefined, 1000);
  `;
  const node = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void node.kill("SIGKILL"));
  let stderr = "";
  node.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const postmaster = await new Promise<number>((resolve, reject) => {
    let stdout = "";
    node.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes("\n")) resolve(Number(stdout.trim()));
    });
    node.on("exit", (code) => reject(new Error(`the first supervisor exited with ${code}: ${stderr}`)));
  });
  node.kill("SIGKILL");
  await waitFor("the first supervisor's process to die", () => (node.exitCode !== null || node.signalCode !== null ? true : undefined));
  t.true(isProcessAlive(postmaster), "the postmaster outlives its supervisor");

  const lines: string[] = [];
  const supervisor = await PostgresSupervisor.start({ pgdata, port, logger: quietLogger(lines) });
  t.teardown(() => supervisor.stop());
  t.true(supervisor.adopted);
  t.is(supervisor.pid, postmaster);
  const client = await startClientQuery(supervisor, "SELECT 41 + 1 AS answer");
  t.deepEqual(client, [{ answer: 42 }]);

  // Not our child: its death is seen by polling, and a child of ours replaces it.
  supervisor.kill("SIGKILL");
  await waitFor("a replacement postmaster", () => (supervisor.state === "running" && supervisor.pid !== postmaster ? true : undefined));
  t.false(supervisor.adopted);
  t.deepEqual(await startClientQuery(supervisor, "SELECT 1 AS one"), [{ one: 1 }]);
  t.true(lines.some((line) => line.includes("exited (it was adopted")), lines.join("\n"));

  await supervisor.stop();
  t.is(readPostmasterPid(pgdata), undefined);
});

async function startClientQuery(supervisor: PostgresSupervisor, sql: string): Promise<unknown[]> {
  const { default: pg } = await import("pg");
  const client = new pg.Client(supervisor.connectionConfig());
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

test("start() refuses bad binaries, directories and options with errors that say what to do", async (t) => {
  const port = await freePort();
  const refuse = async (options: Parameters<typeof PostgresSupervisor.start>[0], code: string, message: RegExp): Promise<void> => {
    const error = await t.throwsAsync(PostgresSupervisor.start({ logger: quietLogger([]), ...options }), { instanceOf: PostgresSupervisorError, message });
    t.is(error?.code, code as PostgresSupervisorError["code"]);
  };

  await refuse({ pgdata: testDataDirectory(), port, binDirectory: "/nonexistent/pg/bin" }, "binaries_missing", /^Cannot use the PostgreSQL binaries in the given bin directory "\/nonexistent\/pg\/bin": it has no executable postgres; .*apt-get install postgresql-15/);

  const foreign = testDataDirectory();
  fs.mkdirSync(foreign, { recursive: true });
  fs.writeFileSync(path.join(foreign, "notes.txt"), "not a database\n");
  await refuse({ pgdata: foreign, port }, "not_a_data_directory", /^Cannot use .* as a PostgreSQL data directory: it is not empty \("notes.txt"\) and has no PG_VERSION file.*; pass an existing data directory, or an empty or missing directory/);
  t.deepEqual(fs.readdirSync(foreign), ["notes.txt"], "a refused directory is left untouched");

  const older = testDataDirectory();
  fs.mkdirSync(older, { recursive: true });
  fs.writeFileSync(path.join(older, "PG_VERSION"), "9\n");
  await refuse({ pgdata: older, port }, "not_a_data_directory", /it is a PostgreSQL 9 data directory; pass the 9 binaries/);

  await refuse({ pgdata: "relative/pgdata", port }, "invalid_option", /the data directory must be an absolute path, received "relative\/pgdata"/);
  await refuse({ pgdata: testDataDirectory(), port: 70_000 }, "invalid_option", /the port must be an integer from 1 to 65535, received 70000/);
  await refuse({ pgdata: testDataDirectory(), port, socketDirectory: `/tmp/${"s".repeat(100)}` }, "invalid_option", /over the 107-byte limit of unix sockets; pass a shorter socketDirectory/);
});

test("start() reports a taken port as port_in_use, names the log file, and leaves no process", async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as net.AddressInfo).port;
  const pgdata = testDataDirectory();
  t.teardown(() => killPostmasterOf(pgdata));

  const error = await t.throwsAsync(
    PostgresSupervisor.start({ pgdata, port, initdbNoSync: true, templateCacheDirectory: TEMPLATE_CACHE_DIRECTORY, logger: quietLogger([]) }),
    { instanceOf: PostgresSupervisorError, message: new RegExp(`port ${port} on 127.0.0.1 is taken by another process \\(.*could not bind IPv4 address "127.0.0.1": Address already in use\\); choose another port`) },
  );
  t.is(error?.code, "port_in_use");
  t.is(error?.logFile, path.join(pgdata, "log", "postgresql-server.log"));
  t.true(fs.readFileSync(error!.logFile!, "utf8").includes("could not bind IPv4 address"));
  t.is(readPostmasterPid(pgdata), undefined);
});

test("two servers run side by side on different ports with their own data", async (t) => {
  const [first, second] = await Promise.all([startTestPostgres(t), startTestPostgres(t)]);
  t.not(first!.port, second!.port);
  t.not(first!.supervisor.pid, second!.supervisor.pid);
  await first!.psql("CREATE TABLE who (name text); INSERT INTO who VALUES ('first');");
  await second!.psql("CREATE TABLE who (name text); INSERT INTO who VALUES ('second');");
  t.is((await first!.psql("SELECT name FROM who;")).stdout, "first\n");
  t.is((await second!.psql("SELECT name FROM who;")).stdout, "second\n");
  t.deepEqual(await second!.query("SELECT current_setting('port')::int AS port"), [{ port: second!.port }]);
});

test("freePorts() hands out distinct ports, never one it handed out before", async (t) => {
  const ports = await freePorts(5);
  t.is(new Set(ports).size, 5);
  const more = await freePorts(5);
  t.deepEqual(more.filter((port) => ports.includes(port)), []);
  await t.throwsAsync(freePorts(0), { instanceOf: RangeError });
});
