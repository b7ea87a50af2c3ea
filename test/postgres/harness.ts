/**
 * Throwaway real PostgreSQL servers for tests: `startTestPostgres(t)` gives a running server on a free
 * port, in a fresh data directory copied from a cached initdb template (a quarter of a second instead of
 * seconds), with small-server settings, stopped and deleted by the test's teardown.
 *
 * Nothing outlives the test process: every server this file started is SIGKILLed (with its child
 * processes) from a process 'exit' handler and on SIGINT, SIGTERM and SIGHUP; and servers left behind by an
 * earlier test process that was itself killed with SIGKILL are swept away the first time this file is
 * used (their run directory names a pid that no longer lives).
 *
 * Layout: <tmpdir>/pgraft-test-pg/run-<pid>-<random>/<n>/ is a data directory (and its socket
 * directory: the paths stay far below the 107-byte limit of unix sockets); templates live in
 * <tmpdir>/pgraft-test-pg/templates. Set PGRAFT_TEST_KEEP_PGDATA=1 to keep data directories for a look.
 */
import type { ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import pg from "pg";
import { childProcessIds, findRunningPostmaster, isProcessAlive } from "../../src/postgres/data-directory.ts";
import {
  NO_DURABILITY_SETTINGS,
  PostgresSupervisor,
  PostgresSupervisorError,
  SMALL_SERVER_SETTINGS,
  type PostgresSupervisorOptions,
  type SupervisorLogger,
} from "../../src/postgres/supervisor.ts";

export const TEST_POSTGRES_ROOT = path.join(os.tmpdir(), "pgraft-test-pg");
export const TEMPLATE_CACHE_DIRECTORY = path.join(TEST_POSTGRES_ROOT, "templates");
/** The bound on waitFor() by default; a healthy run never comes near it. */
export const WAIT_MS_MAX = 60_000;
/** How often startTestPostgres picks another port when the one it chose was taken meanwhile. */
const PORT_ATTEMPTS_MAX = 5;
const PSQL_TIMEOUT_MS = 60_000;

export interface PsqlOptions {
  readonly user?: string;
  readonly database?: string;
  /** Resolve with the exit code instead of rejecting when psql fails. */
  readonly allowError?: boolean;
}

export interface PsqlResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface TestPostgres {
  readonly supervisor: PostgresSupervisor;
  readonly port: number;
  readonly pgdata: string;
  /** Every line the supervisor logged, in order. */
  readonly logLines: readonly string[];
  connectionString(database?: string): string;
  /** Runs SQL (from stdin) through the real psql: -X -q -A -t -v ON_ERROR_STOP=1 (rows only, no command tags); rejects on failure unless allowError. */
  psql(sql: string, options?: PsqlOptions): Promise<PsqlResult>;
  /** Runs one query through node-postgres on a fresh connection and returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Stops the server (fast shutdown); the data directory stays, so a test can start it again. */
  stop(): Promise<void>;
  /** Stops the server and deletes the data directory (what the teardown does). */
  destroy(): Promise<void>;
}

export interface TestPostgresOptions {
  /** Start on this data directory (say, one a stopped TestPostgres left) instead of a fresh one. */
  readonly pgdata?: string;
  /** Default: a free port. A given port is not retried when taken. */
  readonly port?: number;
  /** Merged over SMALL_SERVER_SETTINGS; written to postgresql.conf when the directory is created. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Default true. False adds fsync, synchronous_commit and full_page_writes = off. */
  readonly fsync?: boolean;
  /** Default true: copy a cached initdb template. False runs initdb (a distinct system identifier). */
  readonly template?: boolean;
  /** Default true, as in production. */
  readonly restartOnExit?: boolean;
  /** Anything else the supervisor takes (listenAddress, osUser, startTimeoutMs, ...). */
  readonly supervisor?: Partial<Omit<PostgresSupervisorOptions, "pgdata" | "port" | "settings" | "restartOnExit" | "logger">>;
}

/** Servers this process started and has not stopped: killed by the exit and signal handlers. */
const live = new Set<PostgresSupervisor>();
let runDirectory: string | undefined;
let serverCount = 0;

/** Starts a server; with `t`, its teardown stops it and deletes its data directory. */
export async function startTestPostgres(t?: ExecutionContext, options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const pgdata = options.pgdata ?? testDataDirectory();
  const logLines: string[] = [];
  const logger = testLogger(logLines, t);
  const settings = { ...SMALL_SERVER_SETTINGS, ...(options.fsync === false ? NO_DURABILITY_SETTINGS : {}), ...options.settings };
  let supervisor: PostgresSupervisor | undefined;
  for (let attempt = 1; supervisor === undefined; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      supervisor = await PostgresSupervisor.start({
        initdbNoSync: true,
        ...(options.template === false ? {} : { templateCacheDirectory: TEMPLATE_CACHE_DIRECTORY }),
        ...options.supervisor,
        pgdata,
        port,
        settings,
        restartOnExit: options.restartOnExit ?? true,
        logger,
      });
    } catch (error) {
      const retry = error instanceof PostgresSupervisorError && error.code === "port_in_use" && options.port === undefined && attempt < PORT_ATTEMPTS_MAX;
      if (!retry) throw error;
      logger.warn(`port ${port} was taken before PostgreSQL bound it; trying another`);
    }
  }
  live.add(supervisor);
  const started = supervisor;
  const server: TestPostgres = {
    supervisor: started,
    port: started.port,
    pgdata,
    logLines,
    connectionString: (database) => started.connectionString(database),
    psql: (sql, psqlOptions) => runPsql(started, sql, psqlOptions),
    query: (sql, params) => runQuery(started, sql, params),
    async stop() {
      try {
        await started.stop();
      } finally {
        if (started.pid === undefined) live.delete(started);
      }
    },
    async destroy() {
      await server.stop();
      if (process.env.PGRAFT_TEST_KEEP_PGDATA !== "1") fs.rmSync(pgdata, { recursive: true, force: true });
    },
  };
  t?.teardown(() => server.destroy());
  return server;
}

/** A fresh, not yet existing data directory path in this process's run directory (deleted at exit). */
export function testDataDirectory(): string {
  return path.join(ensureRunDirectory(), String(++serverCount));
}

/**
 * SIGKILLs the postmaster running on `pgdata` and its process group, if one runs: for teardowns of tests
 * whose server another process started.
 */
export function killPostmasterOf(pgdata: string): void {
  const running = fs.existsSync(pgdata) ? findRunningPostmaster(pgdata) : undefined;
  if (running !== undefined) killTree(running.pid);
}

/** A TCP port on 127.0.0.1 that was free a moment ago, never one this process handed out before. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

const portsHandedOut = new Set<number>();

/** `count` distinct free ports, held open together while chosen so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  if (!Number.isInteger(count) || count < 1 || count > 100) throw new RangeError(`Cannot choose free ports: "count" must be an integer from 1 to 100, received ${count}`);
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count; attempt++) {
      if (attempt >= count * 10) throw new Error(`Cannot choose ${count} free ports: the OS kept offering ports this process already used`);
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", resolve);
      });
      const port = (server.address() as net.AddressInfo).port;
      if (portsHandedOut.has(port)) continue;
      portsHandedOut.add(port);
      ports.push(port);
    }
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
  return ports;
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined (or stops throwing),
 * and returns it; gives up after `timeoutMs` with the last error. A bound against hangs, not a timing
 * assertion: pick it generously.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS_MAX;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError === undefined ? "" : `: last error: ${(lastError as Error).message}`;
      throw new Error(`Gave up waiting for ${what} after ${timeoutMs} ms${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

function runPsql(supervisor: PostgresSupervisor, sql: string, options: PsqlOptions = {}): Promise<PsqlResult> {
  let connection = supervisor.connectionString(options.database);
  if (options.user !== undefined) connection = connection.replace(/ user=\S+/, ` user='${options.user.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`);
  const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PG")));
  return new Promise((resolve, reject) => {
    const child = spawn(supervisor.binaries.psql, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", connection, "-f", "-"], {
      env: environment,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: PSQL_TIMEOUT_MS,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const exitCode = code ?? 128;
      if (exitCode !== 0 && options.allowError !== true) {
        reject(new Error(`psql failed (${signal ?? `exit code ${exitCode}`}) on ${connection}: ${stderr.trim()}`));
        return;
      }
      resolve({ stdout, stderr, code: exitCode });
    });
    child.stdin.on("error", () => undefined); // psql may exit before reading all of stdin.
    child.stdin.end(sql.endsWith("\n") ? sql : `${sql}\n`);
  });
}

async function runQuery<T>(supervisor: PostgresSupervisor, sql: string, params?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ ...supervisor.connectionConfig(), connectionTimeoutMillis: 10_000 });
  client.on("error", () => undefined); // A server killed under an idle client: the query below reports it.
  await client.connect();
  try {
    const result = await client.query(sql, params);
    return result.rows as T[];
  } finally {
    await client.end().catch(() => undefined);
  }
}

function testLogger(lines: string[], t: ExecutionContext | undefined): SupervisorLogger {
  const record = (level: string, line: string): void => {
    lines.push(`${level}: ${line}`);
    try {
      t?.log(`postgres ${level}: ${line}`);
    } catch {
      // The test has finished (a restart logged during teardown): the line stays in logLines.
    }
  };
  return { info: (line) => record("info", line), warn: (line) => record("warn", line), error: (line) => record("error", line) };
}

/** This process's run directory, created (and leftovers of dead runs swept) on first use. */
function ensureRunDirectory(): string {
  if (runDirectory !== undefined) return runDirectory;
  for (const directory of [TEST_POSTGRES_ROOT, TEMPLATE_CACHE_DIRECTORY]) {
    if (!fs.existsSync(directory)) {
      fs.mkdirSync(directory, { recursive: true });
      // Shared by every user's test runs, like /tmp; the server's OS user must be able to search it.
      fs.chmodSync(directory, 0o1777);
    }
  }
  sweepDeadRuns();
  const created = path.join(TEST_POSTGRES_ROOT, `run-${process.pid}-${randomBytes(4).toString("hex")}`);
  fs.mkdirSync(created, { mode: 0o755 });
  fs.chmodSync(created, 0o755);
  installExitHandlers();
  runDirectory = created;
  return created;
}

/** Kills the servers of, and deletes, run directories whose test process no longer lives. */
function sweepDeadRuns(): void {
  for (const name of fs.readdirSync(TEST_POSTGRES_ROOT)) {
    const match = /^run-(\d+)-[0-9a-f]+$/.exec(name);
    if (match === null || isProcessAlive(Number(match[1]))) continue;
    const directory = path.join(TEST_POSTGRES_ROOT, name);
    try {
      if (fs.statSync(directory).uid !== process.getuid?.()) continue;
      for (const server of fs.readdirSync(directory)) {
        const running = findRunningPostmaster(path.join(directory, server));
        if (running !== undefined) killTree(running.pid);
      }
      fs.rmSync(directory, { recursive: true, force: true });
    } catch {
      // Another process sweeps it at the same time, or it is not ours: leave it.
    }
  }
}

/** SIGKILLs a postmaster and its children (each PostgreSQL child leads its own process group). */
function killTree(pid: number): void {
  for (const target of [pid, ...childProcessIds(pid)]) {
    try {
      process.kill(target, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
}

/** Synchronous, best effort: SIGKILL what is left and delete this run's directory. */
function killLeftovers(): void {
  for (const supervisor of live) {
    if (supervisor.pid !== undefined) killTree(supervisor.pid);
  }
  live.clear();
  if (runDirectory !== undefined && process.env.PGRAFT_TEST_KEEP_PGDATA !== "1") {
    try {
      fs.rmSync(runDirectory, { recursive: true, force: true });
    } catch {
      // Best effort.
    }
  }
}

function installExitHandlers(): void {
  process.once("exit", killLeftovers);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = (): void => {
      killLeftovers();
      process.removeListener(signal, handler);
      // Nobody else handles it: die of the signal as we would have without this handler.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}
