/**
 * The unprivileged OS user PostgreSQL runs as. PostgreSQL refuses to run as root, so a root process runs
 * initdb and postgres as `postgres` (the user Debian's package creates) through spawn's uid/gid options;
 * any other process runs them as itself. Also answers whether that user can reach and write a
 * directory, from the mode bits, before PostgreSQL fails with a less helpful message. Node's spawn drops
 * supplementary groups when it switches users, so only the primary group counts.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PostgresSupervisorError } from "./supervisor-error.ts";

export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** True when this process is root and children must switch to uid/gid; false: they run as we do. */
  readonly switchUser: boolean;
}

export const ROOT_DEFAULT_OS_USER = "postgres";

function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** `osUser`, or "postgres" when root, or the current user; checked to exist and to be usable. */
export function resolveOsUser(osUser?: string): OsUser {
  const current = os.userInfo();
  if (!isRoot()) {
    if (osUser !== undefined && osUser !== current.username) {
      throw new PostgresSupervisorError(
        "os_user",
        `Cannot run PostgreSQL as OS user ${JSON.stringify(osUser)}: only root can switch users and this process runs as ${JSON.stringify(current.username)}; run as ${JSON.stringify(osUser)} or leave the OS user unset`,
      );
    }
    return { name: current.username, uid: current.uid, gid: current.gid, home: current.homedir, switchUser: false };
  }
  const name = osUser ?? ROOT_DEFAULT_OS_USER;
  const entry = lookUpUser(name);
  if (entry === undefined) {
    throw new PostgresSupervisorError(
      "os_user",
      `Cannot run PostgreSQL as OS user ${JSON.stringify(name)}: no such user exists, and PostgreSQL refuses to run as root; ` +
        "create it (`apt-get install postgresql-15` creates \"postgres\"; or `useradd --system postgres`) or name another user",
    );
  }
  if (entry.uid === 0) {
    throw new PostgresSupervisorError(
      "os_user",
      `Cannot run PostgreSQL as OS user ${JSON.stringify(name)}: it has uid 0, and PostgreSQL refuses to run as root; name an unprivileged user`,
    );
  }
  return { ...entry, name, switchUser: true };
}

function lookUpUser(name: string): { uid: number; gid: number; home: string } | undefined {
  try {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields[0] === name && fields.length >= 7) {
        return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5]! };
      }
    }
  } catch {
    // No readable /etc/passwd: ask id(1) below, which also sees NSS users.
  }
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid, home: "/" };
  } catch {
    // Not found.
  }
  return undefined;
}

/** Whether `user` has the permission bits `bits` (4 read, 2 write, 1 search) on `stats`. */
function permits(stats: fs.Stats, user: OsUser, bits: number): boolean {
  if (user.uid === 0) return true;
  const mode = stats.mode;
  if (stats.uid === user.uid) return ((mode >> 6) & bits) === bits;
  if (stats.gid === user.gid) return ((mode >> 3) & bits) === bits;
  return (mode & bits) === bits;
}

/**
 * Throws unless `user` can search every existing ancestor of `target` (so it can reach `target`). When
 * this process runs as that user there is nothing to check: the kernel will say.
 */
export function checkReachable(target: string, user: OsUser, purpose: string): void {
  if (!user.switchUser) return;
  let directory = path.dirname(path.resolve(target));
  const ancestors: string[] = [];
  for (;;) {
    ancestors.unshift(directory);
    const parent = path.dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  for (const ancestor of ancestors) {
    let stats: fs.Stats;
    try {
      stats = fs.statSync(ancestor);
    } catch {
      return; // Missing from here on: whoever creates it decides its mode.
    }
    if (!permits(stats, user, 1)) {
      throw new PostgresSupervisorError(
        "permission",
        `Cannot use ${target} as the ${purpose}: OS user ${JSON.stringify(user.name)} cannot reach it because ${ancestor} is mode ${modeText(stats)} owned by uid ${stats.uid}; ` +
          `choose a directory under a path ${user.name} can search (such as /var/lib/pgraft), or allow it with \`chmod o+x ${ancestor}\``,
      );
    }
  }
}

/** Throws unless `user` can create files in the existing directory `directory`. */
export function checkWritable(directory: string, user: OsUser, purpose: string): void {
  if (!user.switchUser) return;
  const stats = fs.statSync(directory);
  if (!permits(stats, user, 3)) {
    throw new PostgresSupervisorError(
      "permission",
      `Cannot use ${directory} as the ${purpose}: OS user ${JSON.stringify(user.name)} cannot write it (mode ${modeText(stats)}, owned by uid ${stats.uid}); ` +
        `run \`chown ${user.name} ${directory}\` or choose another directory`,
    );
  }
}

function modeText(stats: fs.Stats): string {
  return (stats.mode & 0o7777).toString(8).padStart(4, "0");
}

/** Spawn options that run a child as `user` (nothing when no switch is needed). */
export function spawnIdentity(user: OsUser): { uid?: number; gid?: number } {
  return user.switchUser ? { uid: user.uid, gid: user.gid } : {};
}

/** The environment for a child running as `user`: ours, with HOME and USER pointing at it. */
export function childEnvironment(user: OsUser): NodeJS.ProcessEnv {
  if (!user.switchUser) return { ...process.env };
  return { ...process.env, HOME: user.home, USER: user.name, LOGNAME: user.name };
}
