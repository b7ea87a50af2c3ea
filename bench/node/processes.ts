/**
 * The server processes the benchmark starts, and the guarantee that none outlives it: every child is
 * registered, and exit, SIGINT, SIGTERM, SIGHUP, an uncaught exception or an unhandled rejection kills
 * every registered child by its pid (SIGKILL) before the benchmark exits.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { createServer } from "node:net";

export interface ServerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code or signal once the process has exited. */
  readonly exited: Promise<string>;
  exitedAlready: boolean;
  /** Set when the benchmark itself kills or stops the process. */
  expectingExit: boolean;
}

const running = new Set<ServerProcess>();
let handlersInstalled = false;
/** Synchronous clean-ups run after the kills when a signal ends the run (e.g. removing the temp dir). */
const onSignal: (() => void)[] = [];

export function cleanupOnSignal(action: () => void): void {
  onSignal.push(action);
}

function killAllNow(): void {
  for (const server of running) {
    if (server.exitedAlready) continue;
    server.expectingExit = true;
    try {
      process.kill(server.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Installs the exit and signal handlers once. */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench:node: received ${signal}: killing ${running.size} server process(es)\n`);
      killAllNow();
      for (const action of onSignal) {
        try {
          action();
        } catch (error) {
          process.stderr.write(`bench:node: clean-up failed: ${(error as Error).message}\n`);
        }
      }
      process.exit(130);
    });
  }
  process.on("uncaughtException", (error) => {
    process.stderr.write(`bench:node: uncaught exception: ${error.stack ?? error.message}\n`);
    killAllNow();
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    process.stderr.write(`bench:node: unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
    killAllNow();
    process.exit(1);
  });
}

/** Starts a server with its stdout and stderr appended to `logFile`. */
export function startProcess(name: string, command: string, args: readonly string[], options: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv }): ServerProcess {
  const log = fs.openSync(options.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", log, log] });
  } finally {
    fs.closeSync(log);
  }
  if (child.pid === undefined) {
    throw new Error(`Cannot start ${name}: spawning ${command} failed (is it installed and executable?)`);
  }
  let markExited: (how: string) => void = () => {};
  const exited = new Promise<string>((resolve) => (markExited = resolve));
  const server: ServerProcess = { name, child, pid: child.pid, exited, exitedAlready: false, expectingExit: false };
  child.on("exit", (code, signal) => {
    if (!server.expectingExit) {
      process.stderr.write(`bench:node: ${name} (pid ${server.pid}) exited on its own: ${signal ?? `exit code ${code}`}; see ${options.logFile}\n`);
    }
    server.exitedAlready = true;
    running.delete(server);
    markExited(signal ?? `exit code ${code}`);
  });
  child.on("error", (error) => process.stderr.write(`bench:node: ${name}: ${error.message}\n`));
  running.add(server);
  return server;
}

/** SIGKILLs the process and waits until it has exited. */
export async function killProcess(server: ServerProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (server.exitedAlready) return;
  server.expectingExit = true;
  try {
    process.kill(server.pid, signal);
  } catch {
    // already gone
  }
  await server.exited;
}

/** Stops the process with SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(server: ServerProcess, graceMs = 3000): Promise<void> {
  if (server.exitedAlready) return;
  server.expectingExit = true;
  try {
    process.kill(server.pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      if (!server.exitedAlready) process.kill(server.pid, "SIGKILL");
    } catch {
      // gone
    }
  }, graceMs);
  await server.exited;
  clearTimeout(timer);
}

/** `count` distinct free TCP ports on 127.0.0.1 (held open together so they differ, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("Cannot allocate a port: no address");
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the process has used so far, from /proc; undefined when it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which is in parentheses and may contain spaces).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
