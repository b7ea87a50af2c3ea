/**
 * What a chaos run started, written down as it starts it, so the next run can clean up after one that
 * was killed before its teardown (SIGKILL, a machine under memory pressure, a crashed runner).
 *
 * One JSON file per run in `<os temp dir>/pgraft-chaos-runs/`: the runner's pid and its start time (so a
 * reused pid is not mistaken for the owner), the processes it started (pid and start time each, so a
 * reused pid is never killed), the directories it made and the ports it reserved. A file whose owner is
 * gone is stale: its processes are killed, its directories removed, and the file deleted. Ports of live
 * runs are avoided by the next run's port choice, so two runs side by side never clash.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childProcessIds } from "../../src/postgres/data-directory.ts";

export const REGISTRY_DIR_NAME = "pgraft-chaos-runs";
/** More files than this in the registry directory means something is wrong; refuse to go on. */
export const REGISTRY_FILES_MAX = 1000;

export interface RegisteredProcess {
  readonly pid: number;
  /** /proc/<pid>/stat's start time (clock ticks since boot); undefined where /proc is missing. */
  readonly startTime: number | undefined;
  readonly what: string;
}

export interface RegistryRecord {
  readonly ownerPid: number;
  readonly ownerStartTime: number | undefined;
  readonly provider: string;
  readonly createdAt: string;
  readonly processes: RegisteredProcess[];
  readonly directories: string[];
  readonly ports: number[];
  /** Files holding a pid to kill too, read at clean-up time (postmaster.pid). */
  readonly pidFiles: string[];
}

export function registryDirectory(base = tmpdir()): string {
  return join(base, REGISTRY_DIR_NAME);
}

/** The start time of `pid` from /proc, or undefined when it does not exist (or /proc is missing). */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const value = Number(fields[19]);
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and (when known) the same process that started at `startTime`. */
export function isSameProcessAlive(pid: number, startTime: number | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (startTime === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === startTime;
}

/** The registry entry of one run; every change is written through at once. */
export class RunRegistry {
  readonly file: string;
  readonly #record: RegistryRecord;

  constructor(provider: string, base = tmpdir()) {
    const directory = registryDirectory(base);
    mkdirSync(directory, { recursive: true });
    this.file = join(directory, `${provider}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.json`);
    this.#record = {
      ownerPid: process.pid,
      ownerStartTime: processStartTime(process.pid),
      provider,
      createdAt: new Date().toISOString(),
      processes: [],
      directories: [],
      ports: [],
      pidFiles: [],
    };
    this.#write();
  }

  addProcess(pid: number, what: string): void {
    this.#record.processes.push({ pid, startTime: processStartTime(pid), what });
    this.#write();
  }

  addDirectory(directory: string): void {
    this.#record.directories.push(directory);
    this.#write();
  }

  addPorts(ports: readonly number[]): void {
    this.#record.ports.push(...ports);
    this.#write();
  }

  addPidFile(file: string): void {
    this.#record.pidFiles.push(file);
    this.#write();
  }

  /** The run ended cleanly: its entry goes. */
  remove(): void {
    rmSync(this.file, { force: true });
  }

  #write(): void {
    const temporary = `${this.file}.tmp`;
    writeFileSync(temporary, JSON.stringify(this.#record, null, 1));
    renameSync(temporary, this.file);
  }
}

function readRecords(base: string): { file: string; record: RegistryRecord | undefined }[] {
  const directory = registryDirectory(base);
  let names: string[];
  try {
    names = readdirSync(directory).filter((name) => name.endsWith(".json"));
  } catch {
    return [];
  }
  if (names.length > REGISTRY_FILES_MAX) {
    throw new Error(`Cannot read the chaos run registry: ${directory} holds ${names.length} files (at most ${REGISTRY_FILES_MAX} expected); remove the stale ones by hand`);
  }
  return names.map((name) => {
    const file = join(directory, name);
    try {
      return { file, record: JSON.parse(readFileSync(file, "utf8")) as RegistryRecord };
    } catch {
      return { file, record: undefined };
    }
  });
}

/** Ports reserved by runs whose owner is still alive (to be avoided). */
export function livePorts(base = tmpdir()): Set<number> {
  const ports = new Set<number>();
  for (const { record } of readRecords(base)) {
    if (record === undefined || !isSameProcessAlive(record.ownerPid, record.ownerStartTime)) continue;
    for (const port of record.ports) ports.add(port);
  }
  return ports;
}

/**
 * Kills the processes and removes the directories of every run of `provider` whose owner is gone.
 * Returns what it killed (pids) and removed (paths).
 */
export function cleanStaleRuns(provider: string, base = tmpdir()): { killed: string[]; removed: string[] } {
  const killed: string[] = [];
  const removed: string[] = [];
  for (const { file, record } of readRecords(base)) {
    if (record !== undefined && record.provider !== provider) continue;
    if (record !== undefined && isSameProcessAlive(record.ownerPid, record.ownerStartTime)) continue;
    if (record !== undefined) {
      const victims: RegisteredProcess[] = [...record.processes];
      for (const pidFile of record.pidFiles) {
        const pid = readPidFile(pidFile);
        if (pid === undefined || !looksLikeOurs(pid)) continue;
        victims.push({ pid, startTime: undefined, what: `pid of ${pidFile}` });
        // A postmaster's children (backends) go with it: listed now, before it dies and they are orphaned.
        for (const child of childProcessIds(pid)) victims.push({ pid: child, startTime: processStartTime(child), what: `child of postmaster ${pid}` });
      }
      for (const victim of victims) {
        if (!isSameProcessAlive(victim.pid, victim.startTime)) continue;
        if (victim.startTime === undefined && !looksLikeOurs(victim.pid)) continue;
        try {
          process.kill(victim.pid, "SIGCONT");
          process.kill(victim.pid, "SIGKILL");
          killed.push(`${victim.pid} (${victim.what})`);
        } catch {
          // gone meanwhile
        }
      }
      for (const directory of record.directories) {
        rmSync(directory, { recursive: true, force: true });
        removed.push(directory);
      }
    }
    rmSync(file, { force: true });
    removed.push(file);
  }
  return { killed, removed };
}

/** The first line of a pid file (postmaster.pid), or undefined. */
export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A pid without a recorded start time is killed only when it is a pgraft or postgres process. */
function looksLikeOurs(pid: number): boolean {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return /pgraft|postgres/.test(command);
  } catch {
    return false;
  }
}
