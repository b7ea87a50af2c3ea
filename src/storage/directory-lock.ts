/**
 * An exclusive lock on a data directory, so that two nodes never write one log: a lock file holding the
 * holder's pid and host, created with O_EXCL. A lock whose holder is gone (a process killed with -9
 * leaves its file behind) is taken over: on the same host the pid is checked for liveness; a lock from
 * another host (a shared or copied directory) is never taken over, since its holder cannot be checked.
 *
 * Limits: two processes that find the same stale lock at the same instant may both take it over (the
 * window is between one unlink and the next create); pgraft starts one node per directory, and the
 * second such node would still be refused by the first's ports.
 */
import * as fs from "node:fs";
import { hostname } from "node:os";
import * as path from "node:path";

export const LOCK_FILE = "pgraft.lock";
const LOCK_BYTES_MAX = 4096;

/** Another live process holds the data directory. */
export class DataDirectoryLockedError extends Error {
  override name = "DataDirectoryLockedError";
  constructor(
    readonly directory: string,
    readonly holderPid: number,
    readonly holderHost: string,
  ) {
    super(
      holderHost === hostname()
        ? `Cannot lock the data directory ${directory}: process ${holderPid} holds it (its lock file is ${path.join(directory, LOCK_FILE)}); ` +
            "another node runs on this directory. Stop that node, or give this one its own pgraft.data_dir"
        : `Cannot lock the data directory ${directory}: process ${holderPid} on host ${holderHost} holds it; ` +
            `give this node its own pgraft.data_dir, or, if no node runs there any more, delete ${path.join(directory, LOCK_FILE)}`,
    );
  }
}

interface LockContent {
  readonly pid: number;
  readonly host: string;
}

/** Lock files this process holds now (a lock naming our pid but not listed here is stale). */
const HELD = new Set<string>();

export class DirectoryLock {
  #released = false;
  private constructor(
    readonly file: string,
    /** The pid of a dead holder whose lock was taken over, if any. */
    readonly takenOverFromPid: number | undefined,
  ) {}

  /**
   * Takes the lock on `directory` (which must exist), or throws DataDirectoryLockedError naming the
   * live holder. Other failures (permissions, a read-only file system) are thrown as they are.
   */
  static acquire(directory: string): DirectoryLock {
    const file = path.join(directory, LOCK_FILE);
    const own: LockContent = { pid: process.pid, host: hostname() };
    let takenOver: number | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const descriptor = fs.openSync(file, "wx", 0o644);
        try {
          fs.writeSync(descriptor, `${JSON.stringify(own)}\n`);
          fs.fsyncSync(descriptor);
        } finally {
          fs.closeSync(descriptor);
        }
        HELD.add(file);
        return new DirectoryLock(file, takenOver);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const holder = readLock(file);
      if (holder === "missing") continue; // Released between our create and our read.
      if (holder !== "unreadable") {
        if (holder.host !== own.host) throw new DataDirectoryLockedError(directory, holder.pid, holder.host);
        // Our own pid on a lock this process does not hold is a previous incarnation's: a node that is
        // pid 1 of a container it restarted, say. Only a lock this very process holds refuses it.
        const ours = holder.pid === process.pid;
        if (ours ? HELD.has(file) : isAlive(holder.pid)) throw new DataDirectoryLockedError(directory, holder.pid, holder.host);
        takenOver = holder.pid;
      }
      // A dead holder's lock, or a torn one (a crash between create and write): take it over.
      fs.rmSync(file, { force: true });
    }
    throw new Error(`Cannot lock the data directory ${directory}: its lock file ${file} kept changing; check that no other node starts on it`);
  }

  /** Removes the lock file; safe to call twice. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    HELD.delete(this.file);
    const holder = readLock(this.file);
    if (holder !== "missing" && holder !== "unreadable" && holder.pid === process.pid) fs.rmSync(this.file, { force: true });
  }
}

function readLock(file: string): LockContent | "missing" | "unreadable" {
  let text: string;
  try {
    const bytes = fs.readFileSync(file);
    if (bytes.length > LOCK_BYTES_MAX) return "unreadable";
    text = bytes.toString("utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<LockContent>;
    if (Number.isSafeInteger(value.pid) && value.pid! > 0 && typeof value.host === "string") return { pid: value.pid!, host: value.host };
  } catch {
    // Fall through: a torn write.
  }
  return "unreadable";
}

/** Whether a process with `pid` exists (EPERM: it exists but belongs to another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
