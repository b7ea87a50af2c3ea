/**
 * What every provider does the same way to a node's files and its PostgreSQL, whatever runs the node:
 * SQL over a fresh connection (containers share the host's network, so their servers listen on
 * 127.0.0.1 like local ones), the tail of the node's log, and a corrupted Raft data file.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import type { SqlResult } from "./provider.ts";

/** One statement on a new connection to `postgresUrl`, bounded by `timeoutMs` end to end. */
export async function runSql(postgresUrl: string, text: string, params: readonly unknown[], timeoutMs: number): Promise<SqlResult> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: timeoutMs, statement_timeout: timeoutMs, query_timeout: timeoutMs });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const result = await client.query(text, [...params]);
    return { rows: result.rows as Record<string, unknown>[] };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The last `chars` bytes of `file` as text, or "" when it cannot be read. */
export function readTail(file: string, chars: number): string {
  try {
    const fd = openSync(file, "r");
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, chars);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      return buffer.toString("utf8");
    } finally {
      closeSync(fd);
    }
  } catch {
    return "";
  }
}

/** Flips one byte in the middle of the first non-empty file of a stopped node's Raft directory. */
export function corruptRaftData(raftDirectory: string, nodeName: string): void {
  const files = listFiles(raftDirectory).filter((file) => statSync(file).size > 0);
  if (files.length === 0) throw new Error(`Cannot corrupt ${nodeName}'s data: ${raftDirectory} holds no data yet`);
  const fd = openSync(files.sort()[0]!, "r+");
  try {
    const offset = Math.floor(fstatSync(fd).size / 2);
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

function listFiles(directory: string): string[] {
  if (!existsSync(directory)) return [];
  const files: string[] = [];
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) files.push(...listFiles(path));
    else files.push(path);
  }
  return files;
}
