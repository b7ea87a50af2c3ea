/**
 * Child processes of the stack: spawned with their output appended to a log file, killed with kill -9
 * by their own pid, and waited for. PostgreSQL's postmaster is not our child (Patroni starts it in a
 * session of its own), so it is found by the pid in its data directory's postmaster.pid.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from "node:fs";

export interface Managed {
  readonly name: string;
  readonly logFile: string;
  child: ChildProcess | undefined;
}

export function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Spawns `command` with stdout and stderr appended to `logFile`. */
export function spawnLogged(command: string, args: readonly string[], logFile: string, options: SpawnOptions = {}): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(command, args, { ...options, stdio: ["ignore", fd, fd] });
    child.on("error", () => undefined); // reported through exitCode and the log; never an unhandled event
    // Every exit is written to the log, so a process that vanished (killed from outside) shows how.
    child.once("exit", (code, signal) => {
      try {
        appendFileSync(logFile, `\n[stack] ${command} (pid ${child.pid}) exited at ${new Date().toISOString()}: code ${code}, signal ${signal}\n`);
      } catch {
        // the directory is being removed
      }
    });
    return child;
  } finally {
    closeSync(fd);
  }
}

/** kill -9 and wait for the exit (a no-op when the child has exited). */
export async function killChild(child: ChildProcess | undefined): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  await exited;
}

/** SIGTERM, then SIGKILL after `graceMs` if the child is still running. */
export async function stopChild(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** The postmaster's pid from `dataDir`/postmaster.pid, when the file names a live process. */
export function postmasterPid(dataDir: string): number | undefined {
  const file = `${dataDir}/postmaster.pid`;
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isPidAlive(pid) ? pid : undefined;
}

export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** kill -9 of the postmaster in `dataDir` (its backends exit by themselves when it is gone). */
export function killPostmaster(dataDir: string): number | undefined {
  const pid = postmasterPid(dataDir);
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  return pid;
}

/** The last `chars` characters of a log file ("" when it does not exist). */
export function tail(file: string, chars = 3000): string {
  if (!existsSync(file)) return "";
  const text = readFileSync(file, "utf8");
  return text.slice(-chars);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
