/**
 * What the supervisor needs to know about a data directory before touching it: is it missing, empty, a
 * PostgreSQL data directory (and of which major version), or something else; and does a live postmaster
 * own it, read from postmaster.pid the way pg_ctl reads it. Also creates a data directory for the OS
 * user: mode 0700, owned by that user, with any missing parents made searchable (0755).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert } from "../assert.ts";
import { checkReachable, type OsUser } from "./os-user.ts";
import { PostgresSupervisorError } from "./supervisor-error.ts";

export type DataDirectoryState =
  | { readonly kind: "missing" }
  | { readonly kind: "empty" }
  | { readonly kind: "initialized"; readonly majorVersion: number }
  | { readonly kind: "foreign"; readonly entries: readonly string[] };

/** Entries a fresh file system puts in an otherwise empty directory; initdb accepts only these too. */
const IGNORED_ENTRIES = new Set(["lost+found"]);

export function inspectDataDirectory(pgdata: string): DataDirectoryState {
  let entries: string[];
  try {
    entries = fs.readdirSync(pgdata);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    if ((error as NodeJS.ErrnoException).code === "ENOTDIR") {
      throw new PostgresSupervisorError(
        "not_a_data_directory",
        `Cannot use ${pgdata} as a PostgreSQL data directory: it is a file, not a directory; pass a directory (missing or empty ones are initialized)`,
      );
    }
    throw error;
  }
  if (entries.includes("PG_VERSION")) {
    const text = fs.readFileSync(path.join(pgdata, "PG_VERSION"), "utf8").trim();
    const majorVersion = Number(text);
    if (!Number.isInteger(majorVersion)) {
      throw new PostgresSupervisorError(
        "not_a_data_directory",
        `Cannot use ${pgdata} as a PostgreSQL data directory: its PG_VERSION file holds ${JSON.stringify(text)}, not a version; restore the file or initialize another directory`,
      );
    }
    return { kind: "initialized", majorVersion };
  }
  const visible = entries.filter((entry) => !IGNORED_ENTRIES.has(entry)).sort();
  if (visible.length === 0) return { kind: "empty" };
  return { kind: "foreign", entries: visible };
}

/** The message for a directory that is neither empty nor a data directory. */
export function foreignDirectoryError(pgdata: string, entries: readonly string[]): PostgresSupervisorError {
  const shown = entries.slice(0, 5).map((entry) => JSON.stringify(entry)).join(", ") + (entries.length > 5 ? ", ..." : "");
  return new PostgresSupervisorError(
    "not_a_data_directory",
    `Cannot use ${pgdata} as a PostgreSQL data directory: it is not empty (${shown}) and has no PG_VERSION file, so it is not one; ` +
      "pass an existing data directory, or an empty or missing directory to initialize",
  );
}

/** Creates `pgdata` (mode 0700, owned by `user`) if missing, or claims it if it exists and is empty. */
export function prepareDataDirectory(pgdata: string, user: OsUser): void {
  assert(path.isAbsolute(pgdata), `prepareDataDirectory wants an absolute path, got ${pgdata}`);
  const parent = path.dirname(pgdata);
  fs.mkdirSync(parent, { recursive: true, mode: 0o755 });
  checkReachable(pgdata, user, "data directory");
  fs.mkdirSync(pgdata, { recursive: true, mode: 0o700 });
  if (user.switchUser) fs.chownSync(pgdata, user.uid, user.gid);
  fs.chmodSync(pgdata, 0o700);
}

/** postmaster.pid, line by line (see PostgreSQL's miscadmin.h, LOCK_FILE_LINE_*). */
export interface PostmasterPidFile {
  readonly pid: number;
  readonly dataDirectory: string;
  readonly port: number | undefined;
  /** The first unix socket directory, or undefined when there is none. */
  readonly socketDirectory: string | undefined;
  readonly listenAddress: string | undefined;
  /** "starting", "stopping", "ready" or "standby" (empty while the line is not written yet). */
  readonly status: string;
}

export function readPostmasterPid(pgdata: string): PostmasterPidFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(pgdata, "postmaster.pid"), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined; // Being written: treat as absent.
  const port = Number(lines[3]);
  return {
    pid,
    dataDirectory: lines[1] ?? "",
    port: Number.isInteger(port) && port > 0 ? port : undefined,
    socketDirectory: lines[4] ? lines[4] : undefined,
    listenAddress: lines[5] ? lines[5] : undefined,
    status: (lines[7] ?? "").trim(),
  };
}

/** Whether `pid` names a live process; a zombie (dead, not yet reaped by its parent) counts as dead. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 3, after the parenthesized command name (which may itself hold spaces and parentheses).
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch (error) {
    // Gone since kill(pid, 0), or no /proc at all (then kill(pid, 0) decides).
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return !fs.existsSync("/proc/self");
    return true;
  }
}

/**
 * The postmaster that owns `pgdata` right now, if one is alive: postmaster.pid names a live process whose
 * working directory is `pgdata` (a postmaster chdirs into its data directory), which rules out an
 * unrelated process that reused the pid of a crashed postmaster. Where /proc cannot tell, the pid file's
 * data directory line decides.
 */
export function findRunningPostmaster(pgdata: string): PostmasterPidFile | undefined {
  const pidFile = readPostmasterPid(pgdata);
  if (pidFile === undefined || !isProcessAlive(pidFile.pid)) return undefined;
  const own = fs.realpathSync(pgdata);
  try {
    return fs.readlinkSync(`/proc/${pidFile.pid}/cwd`) === own ? pidFile : undefined;
  } catch {
    return pidFile.dataDirectory === own || pidFile.dataDirectory === pgdata ? pidFile : undefined;
  }
}

/** The pids whose parent is `pid`, from /proc (empty where there is no /proc). */
export function childProcessIds(pid: number): number[] {
  const children: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return children;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // After the parenthesized command name: state, then the parent pid.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return children;
}
