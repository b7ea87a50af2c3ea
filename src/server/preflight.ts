/**
 * Checks, before a node opens its log or joins its cluster, everything it needs from its machine: a
 * data directory it can create, write and lock, free ports for peers, clients and metrics, and a
 * readable secret file. Each failure is a StartupError with a code, a message that says what to do,
 * and the exit code `pgraft start` returns:
 *
 *   2  the settings point at something unusable (a file as pgraft.data_dir, an address that is not
 *      this machine's): correct the settings;
 *   1  the environment is in the way (permissions, a read-only file system, a port another process
 *      holds, a data directory another node has locked): fix the machine, the settings may be right;
 *   3  the data directory belongs to a member removed from the cluster (removed-marker.ts).
 */
import * as fs from "node:fs";
import { createServer } from "node:net";
import * as path from "node:path";
import type { PgraftConfig } from "../config/index.ts";
import { DataDirectoryLockedError, DirectoryLock } from "../storage/directory-lock.ts";
import { readRemovedMark, removedStartMessage } from "./removed-marker.ts";

export type StartupErrorCode =
  | "data_dir_not_directory"
  | "data_dir_not_creatable"
  | "data_dir_not_writable"
  | "data_dir_locked"
  | "port_in_use"
  | "port_not_permitted"
  | "address_not_local"
  | "secret_unreadable"
  | "removed_member";

export class StartupError extends Error {
  override name = "StartupError";
  constructor(
    readonly code: StartupErrorCode,
    message: string,
    /** What `pgraft start` exits with: 2 for settings to correct, 1 for the environment, 3 removed. */
    readonly exitCode: 1 | 2 | 3,
  ) {
    super(message);
  }
}

/** Runs every check; on success the data directory is locked (release the lock when the node stops). */
export async function preflight(config: PgraftConfig): Promise<DirectoryLock> {
  const directory = path.resolve(config.dataDir);
  checkDataDirectory(directory);
  let lock: DirectoryLock;
  try {
    lock = DirectoryLock.acquire(directory);
  } catch (error) {
    if (error instanceof DataDirectoryLockedError) throw new StartupError("data_dir_locked", error.message, 1);
    throw fileSystemError(directory, error, "lock");
  }
  try {
    // A member removed from the cluster left its mark: refuse before the node talks to any peer.
    const mark = readRemovedMark(directory);
    if (mark !== undefined) throw new StartupError("removed_member", removedStartMessage(config, mark), 3);
    await checkPorts(config);
    checkSecretFile(config);
  } catch (error) {
    lock.release();
    throw error;
  }
  return lock;
}

function who(): string {
  return typeof process.getuid === "function" ? `the user running pgraft (uid ${process.getuid()})` : "the user running pgraft";
}

function checkDataDirectory(directory: string): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(directory);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw fileSystemError(directory, error, "read");
  }
  if (stat !== undefined && !stat.isDirectory()) {
    throw new StartupError(
      "data_dir_not_directory",
      `Cannot use pgraft.data_dir ${directory}: it exists and is not a directory; point pgraft.data_dir at a directory (pgraft creates it when it is missing)`,
      2,
    );
  }
  if (stat === undefined) {
    try {
      fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw fileSystemError(directory, error, "create");
    }
  }
  // A write, a sync and a removal: what the log needs, checked before the node can win an election.
  const probe = path.join(directory, `.pgraft-preflight-${process.pid}`);
  try {
    const descriptor = fs.openSync(probe, "w", 0o600);
    try {
      fs.writeSync(descriptor, "pgraft write check\n");
      fs.fsyncSync(descriptor);
    } finally {
      fs.closeSync(descriptor);
    }
    fs.rmSync(probe);
  } catch (error) {
    fs.rmSync(probe, { force: true });
    throw fileSystemError(directory, error, "write");
  }
}

/** Turns a file-system failure on the data directory into a StartupError saying what to do. */
function fileSystemError(directory: string, error: unknown, action: "read" | "create" | "write" | "lock"): StartupError {
  const code = (error as NodeJS.ErrnoException).code;
  const detail = error instanceof Error ? error.message : String(error);
  const verb = action === "create" ? "create" : action === "read" ? "read" : "write to";
  switch (code) {
    case "EACCES":
    case "EPERM":
      return new StartupError(
        action === "create" ? "data_dir_not_creatable" : "data_dir_not_writable",
        `Cannot ${verb} the data directory ${directory}: permission denied; give ${who()} write access to it (or to its parent, for pgraft to create it), or choose another pgraft.data_dir`,
        1,
      );
    case "EROFS":
      return new StartupError("data_dir_not_writable", `Cannot ${verb} the data directory ${directory}: it is on a read-only file system; give pgraft.data_dir a writable file system`, 1);
    case "ENOSPC":
    case "EDQUOT":
      return new StartupError("data_dir_not_writable", `Cannot ${verb} the data directory ${directory}: the file system is full; free space, or choose another pgraft.data_dir`, 1);
    case "ENOTDIR":
    case "EEXIST":
      return new StartupError("data_dir_not_directory", `Cannot ${verb} the data directory ${directory}: a part of its path is a file, not a directory; correct pgraft.data_dir`, 2);
    default:
      return new StartupError(action === "create" ? "data_dir_not_creatable" : "data_dir_not_writable", `Cannot ${verb} the data directory ${directory}: ${detail}; check the directory and pgraft.data_dir`, 1);
  }
}

interface PortCheck {
  readonly what: string;
  readonly setting: string;
  readonly host: string;
  readonly port: number;
}

async function checkPorts(config: PgraftConfig): Promise<void> {
  const checks: PortCheck[] = [
    { what: "peer", setting: "pgraft.listen_address", host: config.listenHost, port: config.listenPort },
    { what: "client", setting: "pgraft.client_address", host: config.clientHost, port: config.clientPort },
  ];
  if (config.metricsEnabled) checks.push({ what: "metrics", setting: "pgraft.metrics_port", host: config.clientHost, port: config.metricsPort });
  for (const check of checks) {
    if (check.port === 0) continue; // The OS picks a free one.
    await checkPort(check);
  }
}

function checkPort(check: PortCheck): Promise<void> {
  const where = `${check.host.includes(":") ? `[${check.host}]` : check.host}:${check.port}`;
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      switch (error.code) {
        case "EADDRINUSE":
          reject(new StartupError("port_in_use", `Cannot listen for ${check.what} connections on ${where}: another process holds the port (another node, or a leftover process); stop it, or change ${check.setting}`, 1));
          break;
        case "EACCES":
          reject(new StartupError("port_not_permitted", `Cannot listen for ${check.what} connections on ${where}: ports below 1024 need privileges; choose a port from 1024 up in ${check.setting}`, 1));
          break;
        case "EADDRNOTAVAIL":
        case "ENOTFOUND":
          reject(new StartupError("address_not_local", `Cannot listen for ${check.what} connections on ${where}: ${check.host} is not an address of this machine; correct ${check.setting}`, 2));
          break;
        default:
          reject(new StartupError("port_in_use", `Cannot listen for ${check.what} connections on ${where}: ${error.message}; check ${check.setting}`, 1));
      }
    });
    server.listen({ port: check.port, host: check.host, exclusive: true }, () => server.close(() => resolve()));
  });
}

function checkSecretFile(config: PgraftConfig): void {
  const authentication = config.peerAuthentication;
  if (authentication.mode !== "shared_secret" || authentication.secretFile === undefined) return;
  try {
    fs.accessSync(authentication.secretFile, fs.constants.R_OK);
  } catch (error) {
    throw new StartupError(
      "secret_unreadable",
      `Cannot read pgraft.auth_secret_file ${authentication.secretFile}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}; make it readable by ${who()} (and by nobody else: chmod 600)`,
      1,
    );
  }
}
