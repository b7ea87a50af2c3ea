// The PostgreSQL command endpoint (src/postgres/wire-server.ts), spoken to by the clients that will use it:
// node-postgres, the real psql binary, and dblink inside a real PostgreSQL 15; then by hand over raw
// sockets for the corners (encryption requests, cancel, protocol versions, pipelined queries), and by a
// seeded fuzzer that throws thousands of random, truncated and oversized byte sequences at it and then
// requires a good client to be served as before. Every server listens on 127.0.0.1, port 0.
import test, { type ExecutionContext } from "ava";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import seedrandom from "seedrandom";
import { startWireServer, WireError, type RunningWireServer, type WireQueryResult, type WireServerOptions, type WireSession } from "../../src/postgres/wire-server.ts";

const PASSWORD = "s3cret-pässword";

/** Answers "fail" with a WireError, "boom" with a plain Error, anything else with one typed row echoing it. */
async function echo(sql: string): Promise<WireQueryResult> {
  if (sql === "fail") throw new WireError("22023", "Cannot put key \"a\": the value is too large", "The value has 9 bytes; the limit is 4.", "Store a smaller value.");
  if (sql === "boom") throw new Error("an internal bug");
  return {
    columns: [
      { name: "text", typeOid: 25 },
      { name: "yes", typeOid: 16 },
      { name: "no", typeOid: 16 },
      { name: "big", typeOid: 20 },
      { name: "small", typeOid: 23 },
      { name: "nothing", typeOid: 25 },
    ],
    rows: [[`echo: ${sql}`, "t", "f", "9007199254740993", "-7", null]],
    command: "SELECT 1",
  };
}

async function startServer(t: ExecutionContext, options: Partial<WireServerOptions> = {}): Promise<RunningWireServer> {
  const server = await startWireServer({ host: "127.0.0.1", port: 0, password: PASSWORD, onQuery: echo, ...options });
  t.teardown(() => server.close());
  return server;
}

async function connectPg(t: ExecutionContext, server: RunningWireServer, config: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ host: "127.0.0.1", port: server.port, user: "alice", database: "pgraft", password: PASSWORD, ...config });
  client.on("error", () => {}); // asserted where expected, through queries and the "end" event
  t.teardown(() => client.end().catch(() => {}));
  await client.connect();
  return client;
}

async function pgError(promise: Promise<unknown>): Promise<pg.DatabaseError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof pg.DatabaseError) return error;
    throw error;
  }
  throw new Error("Expected a DatabaseError, the call succeeded");
}

// ---- node-postgres ----

test("node-postgres connects with the password and gets typed rows, and the session reaches onQuery", async (t) => {
  const sessions: WireSession[] = [];
  const server = await startServer(t, {
    onQuery: async (sql, session) => {
      sessions.push(session);
      return echo(sql);
    },
  });
  const client = await connectPg(t, server, { application_name: "wire-test" });
  const result = await client.query("pgraft kv get 'ключ'");
  t.deepEqual(result.rows, [{ text: "echo: pgraft kv get 'ключ'", yes: true, no: false, big: "9007199254740993", small: -7, nothing: null }]);
  t.deepEqual(
    result.fields.map((field) => [field.name, field.dataTypeID]),
    [["text", 25], ["yes", 16], ["no", 16], ["big", 20], ["small", 23], ["nothing", 25]],
  );
  t.is(result.command, "SELECT");
  t.is(result.rowCount, 1);
  t.deepEqual(sessions, [{ user: "alice", database: "pgraft", applicationName: "wire-test" }]);
});

test("node-postgres gets a WireError as a DatabaseError with its SQLSTATE, message, detail and hint, and the connection goes on", async (t) => {
  const server = await startServer(t);
  const client = await connectPg(t, server);
  const error = await pgError(client.query("fail"));
  t.is(error.code, "22023");
  t.is(error.severity, "ERROR");
  t.is(error.message, 'Cannot put key "a": the value is too large');
  t.is(error.detail, "The value has 9 bytes; the limit is 4.");
  t.is(error.hint, "Store a smaller value.");
  t.is((await client.query("again")).rows[0].text, "echo: again");
});

test("any other error from onQuery becomes XX000 with a generic message, and is logged", async (t) => {
  const lines: string[] = [];
  const server = await startServer(t, { logger: { warn: (line) => lines.push(line) } });
  const client = await connectPg(t, server);
  const error = await pgError(client.query("boom"));
  t.is(error.code, "XX000");
  t.false(error.message.includes("an internal bug"), "the client does not see internals");
  t.is(lines.length, 1);
  t.true(lines[0]!.includes("an internal bug"), lines[0]);
  t.is((await client.query("still")).rows[0].text, "echo: still");
});

test("a malformed result from onQuery becomes XX000 instead of a broken message", async (t) => {
  const lines: string[] = [];
  const server = await startServer(t, {
    logger: { warn: (line) => lines.push(line) },
    onQuery: async () => ({ columns: [{ name: "a", typeOid: 25 }], rows: [["one", "two"]], command: "SELECT 1" }),
  });
  const client = await connectPg(t, server);
  t.is((await pgError(client.query("x"))).code, "XX000");
  t.true(lines[0]?.includes("2 values for 1 columns"), lines[0]);
});

test("a wrong password is refused with 28P01", async (t) => {
  const server = await startServer(t);
  const error = await pgError(connectPg(t, server, { password: "wrong" }));
  t.is(error.code, "28P01");
  t.is(error.severity, "FATAL");
  t.is(error.message, 'password authentication failed for user "alice"');
});

test("the extended protocol (a parameterized query) gets 0A000 and the connection still works after", async (t) => {
  const queries: string[] = [];
  const server = await startServer(t, {
    onQuery: async (sql) => {
      queries.push(sql);
      return echo(sql);
    },
  });
  const client = await connectPg(t, server);
  const error = await pgError(client.query("select $1::text", ["x"]));
  t.is(error.code, "0A000");
  t.is(error.message, "pgraft's command endpoint takes simple queries only");
  t.is((await client.query("simple")).rows[0].text, "echo: simple");
  t.is((await pgError(client.query({ text: "named", name: "prepared", values: [] }))).code, "0A000");
  t.is((await client.query("simple again")).rows[0].text, "echo: simple again");
  t.deepEqual(queries, ["simple", "simple again"]);
});

test("an empty query gets EmptyQueryResponse without reaching onQuery", async (t) => {
  let calls = 0;
  const server = await startServer(t, {
    onQuery: async (sql) => {
      calls += 1;
      return echo(sql);
    },
  });
  const client = await connectPg(t, server);
  const result = await client.query("   ");
  t.deepEqual(result.rows, []);
  t.is(calls, 0);
});

test("a message larger than messageBytesMax is a protocol violation (08P01) that closes the connection", async (t) => {
  const server = await startServer(t, { messageBytesMax: 4096 });
  const client = await connectPg(t, server);
  const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
  t.is((await client.query("x".repeat(4000))).rows.length, 1);
  const error = await pgError(client.query("x".repeat(5000)));
  t.is(error.code, "08P01");
  t.is(error.severity, "FATAL");
  t.regex(error.message, /more than the limit of 4096/);
  await ended;
});

test("connections beyond connectionsMax get FATAL 53300, and a freed slot is usable again", async (t) => {
  const server = await startServer(t, { connectionsMax: 2 });
  const first = await connectPg(t, server);
  await connectPg(t, server);
  const error = await pgError(connectPg(t, server));
  t.is(error.code, "53300");
  t.is(error.severity, "FATAL");
  await first.end();
  // The server sees the close a moment after the client: retry, a bounded number of times.
  let client: pg.Client | undefined;
  for (let attempt = 0; attempt < 50 && client === undefined; attempt++) {
    client = await connectPg(t, server).catch(async (refusal: unknown) => {
      t.is((refusal as pg.DatabaseError).code, "53300");
      await new Promise((resolve) => setTimeout(resolve, 100));
      return undefined;
    });
  }
  t.truthy(client, "a slot freed by a closed connection can be used");
  t.is((await client!.query("third")).rows[0].text, "echo: third");
});

test("close() ends every open connection, telling clients why", async (t) => {
  const server = await startServer(t);
  const clients = [await connectPg(t, server), await connectPg(t, server)];
  const outcomes = clients.map(
    (client) =>
      new Promise<string | undefined>((resolve) => {
        let code: string | undefined;
        // node-postgres reports the server's FATAL error, then "Connection terminated unexpectedly".
        client.on("error", (error: Error) => (code ??= (error as pg.DatabaseError).code));
        client.once("end", () => resolve(code));
      }),
  );
  await server.close();
  t.deepEqual(await Promise.all(outcomes), ["57P01", "57P01"]);
  await t.throwsAsync(connectPg(t, server), { code: "ECONNREFUSED" });
});

test("an idle connection is closed after idleTimeoutMs with FATAL 57P05", async (t) => {
  const server = await startServer(t, { idleTimeoutMs: 200 });
  // A client that connects and says nothing: the server speaks first, then closes.
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(server.port, "127.0.0.1");
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks)));
  });
  const messages = parseBackend(answer).messages;
  t.is(messages.length, 1);
  t.like(errorFields(messages[0]!), { S: "FATAL", C: "57P05", M: "terminating connection due to idle-session timeout" });
});

test("startWireServer() refuses an empty password and bad limits, naming them", async (t) => {
  const base = { host: "127.0.0.1", port: 0, password: PASSWORD, onQuery: echo };
  await t.throwsAsync(startWireServer({ ...base, password: "" }), { message: /the password is empty/ });
  await t.throwsAsync(startWireServer({ ...base, connectionsMax: 0 }), { message: /"connectionsMax" must be a positive integer, received 0/ });
  t.throws(() => new WireError("bad", "message"), { message: /SQLSTATE/ });
});

// ---- psql ----

interface ProcessResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runProcess(file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ProcessResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr });
    });
  });
}

function psql(server: RunningWireServer, connectionSuffix: string, ...args: string[]): Promise<ProcessResult> {
  return runProcess("/usr/bin/psql", [`host=127.0.0.1 port=${server.port} user=x dbname=y${connectionSuffix}`, "-v", "VERBOSITY=verbose", "-At", ...args], { PGPASSWORD: PASSWORD });
}

const psqlMissing = existsSync("/usr/bin/psql") ? undefined : "/usr/bin/psql is not installed";

for (const connectionSuffix of [" sslmode=prefer", ""]) {
  const title = connectionSuffix === "" ? "default gssencmode and sslmode" : connectionSuffix.trim();
  (psqlMissing ? test.skip : test)(`psql (${title}) gets the rows, and an error with its SQLSTATE, detail and hint${psqlMissing ? ` (skipped: ${psqlMissing})` : ""}`, async (t) => {
    const server = await startServer(t);
    const rows = await psql(server, connectionSuffix, "-c", "hello");
    t.is(rows.code, 0, rows.stderr);
    t.is(rows.stdout, "echo: hello|t|f|9007199254740993|-7|\n");
    const failure = await psql(server, connectionSuffix, "-c", "fail");
    t.is(failure.code, 1);
    t.is(
      failure.stderr,
      'ERROR:  22023: Cannot put key "a": the value is too large\nDETAIL:  The value has 9 bytes; the limit is 4.\nHINT:  Store a smaller value.\n',
    );
  });
}

(psqlMissing ? test.skip : test)("psql with a wrong password is refused with 28P01", async (t) => {
  const server = await startServer(t);
  const result = await runProcess("/usr/bin/psql", [`host=127.0.0.1 port=${server.port} user=x dbname=y`, "-v", "VERBOSITY=verbose", "-Atc", "hello"], { PGPASSWORD: "wrong" });
  t.is(result.code, 2);
  // psql applies VERBOSITY only once connected, so a connection failure shows no SQLSTATE.
  t.regex(result.stderr, /FATAL: {2}password authentication failed for user "x"/);
});

// ---- raw sockets ----

function int32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32BE(value);
  return bytes;
}

function untyped(body: Buffer): Buffer {
  return Buffer.concat([int32(body.length + 4), body]);
}

function typed(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type, "latin1"), int32(body.length + 4), body]);
}

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, "utf8");
}

function startup(parameters: Record<string, string>, version = 196608): Buffer {
  return untyped(Buffer.concat([int32(version), ...Object.entries(parameters).flatMap(([name, value]) => [cString(name), cString(value)]), Buffer.alloc(1)]));
}

const SSL_REQUEST = untyped(int32(80877103));
const GSSENC_REQUEST = untyped(int32(80877104));
const CANCEL_REQUEST = untyped(Buffer.concat([int32(80877102), int32(1), int32(2)]));
const LOGIN = Buffer.concat([startup({ user: "raw", database: "db" }), typed("p", cString(PASSWORD))]);
const TERMINATE = typed("X", Buffer.alloc(0));
const query = (sql: string) => typed("Q", cString(sql));

/**
 * Sends the bytes, half-closes, and returns everything the server sent until it closed. With `reset`,
 * aborts the connection (TCP RST) once the server first answers, or right after sending when
 * `reset` is "at once".
 */
function exchange(server: RunningWireServer, bytes: Buffer, reset?: "at once" | "on answer"): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(server.port, "127.0.0.1", () => {
      if (reset === "at once") socket.write(bytes, () => socket.resetAndDestroy());
      else socket.end(bytes);
    });
    if (reset === "on answer") socket.once("data", () => socket.resetAndDestroy());
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNRESET" || error.code === "EPIPE" ? undefined : reject(error)));
    socket.on("close", () => resolve(Buffer.concat(chunks)));
  });
}

interface BackendMessage {
  readonly type: string;
  readonly body: Buffer;
}

/** Splits a server's answer into messages, after any single-byte answers to encryption requests; throws when malformed. */
function parseBackend(bytes: Buffer): { readonly declined: number; readonly messages: BackendMessage[] } {
  let offset = 0;
  while (bytes[offset] === 0x4e /* N */) offset += 1;
  const declined = offset;
  const messages: BackendMessage[] = [];
  while (offset < bytes.length) {
    if (bytes.length - offset < 5) throw new Error(`A truncated message header at byte ${offset}`);
    const length = bytes.readInt32BE(offset + 1);
    if (length < 4 || offset + 1 + length > bytes.length) throw new Error(`A bad message length ${length} at byte ${offset}`);
    messages.push({ type: String.fromCharCode(bytes[offset]!), body: bytes.subarray(offset + 5, offset + 1 + length) });
    offset += 1 + length;
  }
  return { declined, messages };
}

function errorFields(message: BackendMessage): Record<string, string> {
  const fields: Record<string, string> = {};
  let offset = 0;
  while (message.body[offset] !== 0) {
    const end = message.body.indexOf(0, offset + 1);
    fields[String.fromCharCode(message.body[offset]!)] = message.body.toString("utf8", offset + 1, end);
    offset = end + 1;
  }
  return fields;
}

test("GSS and SSL encryption requests are declined with 'N' and the client goes on in clear", async (t) => {
  const server = await startServer(t);
  const answer = parseBackend(await exchange(server, Buffer.concat([GSSENC_REQUEST, SSL_REQUEST, LOGIN, query("hi"), TERMINATE])));
  t.is(answer.declined, 2);
  t.deepEqual(
    answer.messages.map((message) => message.type).join(""),
    "RRSSSSSSSKZTDCZ", // cleartext password, ok, 7 parameters, key data, ready; row description, row, complete, ready
  );
  t.deepEqual(answer.messages[0]!.body, int32(3));
});

test("a cancel request closes the connection without an answer", async (t) => {
  const server = await startServer(t);
  t.is((await exchange(server, CANCEL_REQUEST)).length, 0);
});

test("protocol 2.0 gets FATAL 0A000; protocol 3.2 with a _pq_ option is told the server speaks 3.0 without it", async (t) => {
  const server = await startServer(t);
  const old = parseBackend(await exchange(server, startup({ user: "raw" }, 0x0002_0000))).messages;
  t.is(old.length, 1);
  t.like(errorFields(old[0]!), { S: "FATAL", C: "0A000", M: "unsupported frontend protocol 2.0: server supports 3.0 to 3.0" });
  const newer = parseBackend(await exchange(server, Buffer.concat([startup({ user: "raw", "_pq_.future": "1" }, 0x0003_0002), typed("p", cString(PASSWORD)), query("hi"), TERMINATE]))).messages;
  t.is(newer[0]!.type, "v");
  t.deepEqual(newer[0]!.body, Buffer.concat([int32(0), int32(1), cString("_pq_.future")]));
  t.is(newer.at(-2)!.type, "C");
});

test("queries on one connection are answered in order: the second waits for the first", async (t) => {
  const events: string[] = [];
  const server = await startServer(t, {
    onQuery: async (sql) => {
      events.push(`start ${sql}`);
      await new Promise((resolve) => setTimeout(resolve, sql === "slow" ? 100 : 0));
      events.push(`end ${sql}`);
      return echo(sql);
    },
  });
  const answer = parseBackend(await exchange(server, Buffer.concat([LOGIN, query("slow"), query("fast"), TERMINATE]))).messages;
  t.deepEqual(events, ["start slow", "end slow", "start fast", "end fast"]);
  const rows = answer.filter((message) => message.type === "D").map((message) => message.body.toString("utf8", 6, 6 + message.body.readInt32BE(2)));
  t.deepEqual(rows, ["echo: slow", "echo: fast"]);
});

test("an unknown message type after login is FATAL 08P01 and closes the connection", async (t) => {
  const server = await startServer(t);
  const answer = parseBackend(await exchange(server, Buffer.concat([LOGIN, typed("?", Buffer.alloc(0)), query("never")]))).messages;
  t.like(errorFields(answer.at(-1)!), { S: "FATAL", C: "08P01", M: 'invalid frontend message type "?"' });
  t.false(answer.some((message) => message.type === "D"), "nothing after the violation is answered");
});

test("query text that is not UTF-8 gets 22021 and the connection goes on", async (t) => {
  const server = await startServer(t);
  const bad = typed("Q", Buffer.from([0x66, 0xff, 0xfe, 0x00]));
  const answer = parseBackend(await exchange(server, Buffer.concat([LOGIN, bad, query("ok"), TERMINATE]))).messages;
  const error = answer.find((message) => message.type === "E");
  t.like(errorFields(error!), { S: "ERROR", C: "22021" });
  t.is(answer.filter((message) => message.type === "D").length, 1);
});

// ---- fuzz ----

const FUZZ_SEED = process.env.PGRAFT_WIRE_FUZZ_SEED ?? "wire-fuzz-1";
const FUZZ_CASES = 3000;
const FUZZ_PARALLEL = 16;

/** One hostile byte sequence: random bytes, a good conversation cut short or with bytes flipped, lies about lengths. */
function fuzzCase(random: () => number, messageBytesMax: number): Buffer {
  const int = (below: number) => Math.floor(random() * below);
  const randomBytes = (count: number) => Buffer.from(Array.from({ length: count }, () => int(256)));
  const good = Buffer.concat([int(2) === 0 ? SSL_REQUEST : Buffer.alloc(0), LOGIN, query("hello"), typed("P", cString("")), typed("S", Buffer.alloc(0)), query(""), TERMINATE]);
  switch (int(7)) {
    case 0:
      return randomBytes(int(64));
    case 1:
      return good.subarray(0, int(good.length));
    case 2: {
      const mutated = Buffer.from(good);
      for (let flips = 1 + int(4); flips > 0; flips--) mutated[int(mutated.length)] = int(256);
      return mutated;
    }
    case 3: // a startup packet or a message that claims to be huge, negative, or just over the limit
      return Buffer.concat([int(2) === 0 ? Buffer.alloc(0) : LOGIN, Buffer.from("Qp?X\0".charAt(int(5)), "latin1"), int32([0x7fff_ffff, -1, -5, 3, messageBytesMax + 1][int(5)]!), randomBytes(int(32))]);
    case 4:
      return Buffer.concat([LOGIN, typed(String.fromCharCode(int(256)), randomBytes(int(32)))]);
    case 5:
      return Buffer.concat([startup({ user: "raw" }).subarray(0, 8), randomBytes(int(64))]);
    default:
      return Buffer.concat([LOGIN, randomBytes(int(128))]);
  }
}

test(`the server survives ${FUZZ_CASES} hostile byte sequences and still serves a good client (seed ${FUZZ_SEED})`, async (t) => {
  const messageBytesMax = 4096;
  const connectionsMax = FUZZ_PARALLEL;
  const server = await startServer(t, { messageBytesMax, connectionsMax });
  const random = seedrandom(FUZZ_SEED);
  const inputs = Array.from({ length: FUZZ_CASES }, () => fuzzCase(random, messageBytesMax));
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < inputs.length; index = next++) {
      // Whatever the server answered must be well-framed backend messages.
      // Every fifth client aborts its connection (TCP RST) instead of closing it.
      const reset = index % 5 === 0 ? (index % 10 === 0 ? "at once" : "on answer") : undefined;
      parseBackend(await exchange(server, inputs[index]!, reset));
    }
  };
  await Promise.all(Array.from({ length: FUZZ_PARALLEL }, worker));
  t.is(next, FUZZ_CASES + FUZZ_PARALLEL);
  // Every fuzz connection was released: connectionsMax good clients fit at once (retry while the last closes land).
  const clients: pg.Client[] = [];
  for (let attempt = 0; attempt < 100 && clients.length < connectionsMax; attempt++) {
    const client = await connectPg(t, server).catch(() => undefined);
    if (client) clients.push(client);
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.is(clients.length, connectionsMax);
  t.is((await clients[0]!.query("after the storm")).rows[0].text, "echo: after the storm");
});

// ---- dblink in a real PostgreSQL 15 ----

const POSTGRES_BIN = "/usr/lib/postgresql/15/bin";

function postgresMissing(): string | undefined {
  if (!existsSync(join(POSTGRES_BIN, "postgres"))) return `${POSTGRES_BIN}/postgres is not installed`;
  if (!existsSync("/usr/share/postgresql/15/extension/dblink.control")) return "contrib's dblink is not installed";
  if (process.getuid?.() !== 0) return "starting PostgreSQL as the postgres OS user needs root";
  return undefined;
}

interface LocalPostgres {
  psql(sql: string): Promise<ProcessResult>;
}

/** initdb and start a throwaway PostgreSQL 15 on a Unix socket in its own temporary directory; stopped in teardown. */
async function startPostgres(t: ExecutionContext): Promise<LocalPostgres> {
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  const directory = await mkdtemp(join(tmpdir(), "pgraft-wire-"));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  await chown(directory, uid, gid);
  const data = join(directory, "data");
  const asPostgres = { uid, gid, env: { ...process.env, LC_ALL: "C" } };
  const initdb = await new Promise<ProcessResult>((resolve) =>
    execFile(join(POSTGRES_BIN, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], { ...asPostgres, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? 1 : 0, stdout, stderr }),
    ),
  );
  if (initdb.code !== 0) throw new Error(`initdb failed: ${initdb.stderr}`);
  const server: ChildProcess = spawn(join(POSTGRES_BIN, "postgres"), ["-D", data, "-k", directory, "-p", "5432", "-c", "listen_addresses=", "-c", "fsync=off"], { ...asPostgres, stdio: "ignore" });
  const kill = () => server.kill("SIGQUIT");
  process.once("exit", kill);
  t.teardown(async () => {
    process.off("exit", kill);
    if (server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGINT"); // fast shutdown
    await exited;
  });
  const local: LocalPostgres = {
    psql: (sql) => runProcess("/usr/bin/psql", ["-h", directory, "-p", "5432", "-U", "postgres", "-d", "postgres", "-v", "VERBOSITY=verbose", "-v", "ON_ERROR_STOP=1", "-Atc", sql]),
  };
  for (let attempt = 0; ; attempt++) {
    if ((await local.psql("select 1")).code === 0) return local;
    if (attempt === 120 || server.exitCode !== null) throw new Error("PostgreSQL did not start");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const postgresSkip = postgresMissing();
(postgresSkip ? test.skip : test)(`dblink in PostgreSQL 15 gets the rows, and re-raises a WireError with its SQLSTATE, message, detail and hint${postgresSkip ? ` (skipped: ${postgresSkip})` : ""}`, async (t) => {
  const sessions: WireSession[] = [];
  const server = await startServer(t, {
    onQuery: async (sql, session) => {
      sessions.push(session);
      return echo(sql);
    },
  });
  const postgres = await startPostgres(t);
  t.is((await postgres.psql("CREATE EXTENSION dblink")).code, 0);
  const remote = `host=127.0.0.1 port=${server.port} user=u dbname=d password=${PASSWORD} sslmode=disable`;
  const call = (sql: string) => `SELECT * FROM dblink('${remote}', '${sql}') AS t(text text, yes bool, no bool, big bigint, small int, nothing text)`;
  const rows = await postgres.psql(call("pgraft kv get a"));
  t.is(rows.code, 0, rows.stderr);
  t.is(rows.stdout, "echo: pgraft kv get a|t|f|9007199254740993|-7|\n");
  t.like(sessions[0], { user: "u", database: "d" });
  const failure = await postgres.psql(call("fail"));
  t.is(failure.code, 1);
  t.true(failure.stderr.startsWith('ERROR:  22023: Cannot put key "a": the value is too large\nDETAIL:  The value has 9 bytes; the limit is 4.\nHINT:  Store a smaller value.\nCONTEXT:  while executing query on unnamed dblink connection\n'), failure.stderr);
  // The same fields, read by PL/pgSQL itself, as pgraft's SQL functions will see them.
  const perform = call("fail").replace(/^SELECT/, "PERFORM");
  const caught = await postgres.psql(
    `DO $$ DECLARE s text; m text; d text; h text; BEGIN ${perform}; EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT; RAISE NOTICE '%|%|%|%', s, m, d, h; END $$`,
  );
  t.is(caught.code, 0, caught.stderr);
  t.true(caught.stderr.includes('NOTICE:  00000: 22023|Cannot put key "a": the value is too large|The value has 9 bytes; the limit is 4.|Store a smaller value.\n'), caught.stderr);
});
