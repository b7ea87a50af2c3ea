/**
 * The mark a removed member leaves in its data directory. A node learns it was removed from the
 * configuration its log commits, or from a peer that refuses it; once it has stopped, nothing in its
 * own log says so reliably (the removal may never have reached it, and a restarted node does not know
 * it had been a member). etcd keeps removed member ids in its backend and refuses to start a removed
 * member; the mark does the same here: `pgraft start` on a directory holding it refuses to start, with
 * exit code 3, instead of pre-campaigning against a cluster that no longer counts it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { PgraftConfig } from "../config/index.ts";
import { formatHostAndPort } from "../config/index.ts";

export const REMOVED_MARKER_FILE = "REMOVED";
/** A mark larger than this is not ours: it is read only this far. */
const REMOVED_MARKER_BYTES_MAX = 64 * 1024;

export interface RemovedMark {
  readonly clusterId: string;
  readonly nodeId: number;
  readonly name: string;
  /** ISO 8601, when the node learned it. */
  readonly removedAt: string;
  /** How it learned it ("the configuration committed at log index 12 no longer lists it"). */
  readonly how: string;
}

/** Writes the mark durably (write, fsync, rename, fsync of the directory). */
export function writeRemovedMark(dataDir: string, mark: RemovedMark): void {
  const target = path.join(dataDir, REMOVED_MARKER_FILE);
  const temporary = `${target}.tmp`;
  const descriptor = fs.openSync(temporary, "w", 0o600);
  try {
    fs.writeSync(descriptor, `${JSON.stringify(mark)}\n`);
    fs.fsyncSync(descriptor);
  } finally {
    fs.closeSync(descriptor);
  }
  fs.renameSync(temporary, target);
  const directory = fs.openSync(dataDir, "r");
  try {
    fs.fsyncSync(directory);
  } finally {
    fs.closeSync(directory);
  }
}

/**
 * The mark in `dataDir`, or undefined when there is none. A mark that cannot be parsed (cut short, edited
 * by hand) still means the node was removed: its text is returned as `how`.
 */
export function readRemovedMark(dataDir: string): (Partial<RemovedMark> & { readonly file: string }) | undefined {
  const file = path.join(dataDir, REMOVED_MARKER_FILE);
  let text: string;
  try {
    const descriptor = fs.openSync(file, "r");
    try {
      const buffer = Buffer.alloc(REMOVED_MARKER_BYTES_MAX);
      const length = fs.readSync(descriptor, buffer, 0, buffer.length, 0);
      text = buffer.subarray(0, length).toString("utf8");
    } finally {
      fs.closeSync(descriptor);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    // A crash between writing the mark and renaming it into place: the node had decided it was removed.
    const temporary = `${file}.tmp`;
    if (fs.existsSync(temporary)) return { file: temporary, how: "a mark whose write was cut short" };
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<RemovedMark>;
    if (parsed !== null && typeof parsed === "object") return { ...parsed, file };
  } catch {
    // Fall through: an unreadable mark is still a mark.
  }
  return { file, how: `its mark reads ${JSON.stringify(text.trim().slice(0, 200))}` };
}

/** What an operator does with a removed member's machine; `clientUrl` is the one it advertised. */
export function rejoinAdvice(config: PgraftConfig, clientUrl: string | undefined): string {
  const peerUrl = `http://${formatHostAndPort({ host: config.listenHost, port: config.listenPort })}`;
  return (
    `Do not start it again as it is: to bring this machine back as a new member, wipe its data directory ${config.dataDir}, ` +
    "start it with pgraft.initial_cluster_state = existing, and add it on the leader " +
    `(pgraft member add --peer-url ${peerUrl}${clientUrl === undefined ? "" : ` --client-url ${clientUrl}`} --name ${config.name})`
  );
}

/** The refusal `pgraft start` gives on a data directory that holds the mark. */
export function removedStartMessage(config: PgraftConfig, mark: Partial<RemovedMark> & { readonly file: string }): string {
  const configured = config.clientUrls[config.name];
  const when = mark.removedAt === undefined ? "" : ` on ${mark.removedAt}`;
  return (
    `Cannot start ${config.name} (node ${config.nodeId}): it was removed from cluster ${mark.clusterId ?? config.clusterId}${when}` +
    `${mark.how === undefined ? "" : ` (${mark.how})`}, as ${mark.file} records. ` +
    rejoinAdvice(config, configured === undefined ? undefined : `http://${configured}`)
  );
}
