/**
 * `npm run bench:snapshot`: how long a node's own snapshot blocks the event loop, saved in one piece
 * (save() on the loop, as before) and in the background (RaftStorage.beginSnapshot over FileDisk, a
 * part per turn), side by side in one run, on the production code: a single-voter RaftNode with real
 * timers and a real data directory, a store of N keys, and a client writing one key at a time while the
 * snapshot is taken and for half a second after. Prints, for each way: the longest event-loop stall
 * (monitorEventLoopDelay), the longest wait of a write, the writes answered while it was being saved,
 * and how long it took from the entry that triggered it to its compaction. Figures only: nothing here asserts a speed (the machine is shared).
 *
 *   npm run bench:snapshot -- [--keys 100000] [--value-bytes 300] [--json]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { RaftNode } from "../src/node/raft-node.ts";
import { RealTimers } from "../src/node/real-timers.ts";
import { FileDisk } from "../src/storage/file-disk.ts";
import { RaftStorage } from "../src/storage/raft-storage.ts";

interface Row {
  readonly way: "one piece" | "background";
  readonly keys: number;
  readonly imageBytes: number;
  readonly stallMaxMs: number;
  readonly writeWaitMaxMs: number;
  readonly writesDuringSnapshot: number;
  readonly snapshotMs: number;
}

const USAGE = "usage: npm run bench:snapshot -- [--keys N] [--value-bytes N] [--json]";

function parseArguments(argv: string[]): { keys: number; valueBytes: number; json: boolean } {
  let keys = 100_000;
  let valueBytes = 300;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const number = (name: string, min: number, max: number): number => {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < min || value > max) throw new Error(`Invalid value for ${name}: "${argv[i]}" must be an integer from ${min} to ${max}\n${USAGE}`);
      return value;
    };
    if (flag === "--keys") keys = number("--keys", 1_000, 2_000_000);
    else if (flag === "--value-bytes") valueBytes = number("--value-bytes", 1, 100_000);
    else if (flag === "--json") json = true;
    else throw new Error(`Unknown argument "${flag}"\n${USAGE}`);
  }
  return { keys, valueBytes, json };
}

async function measure(way: Row["way"], keys: number, valueBytes: number): Promise<Row> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "pgraft-bench-snapshot-"));
  const disk = new FileDisk(directory);
  const storage = RaftStorage.open(disk);
  const value = "v".repeat(valueBytes);
  const interval = keys + 1_000; // the first snapshot comes once every key is in the store
  let snapshotStartMs: number | undefined;
  let snapshotDoneMs: number | undefined;
  let imageBytes = 0;
  const node = new RaftNode({
    id: 1,
    membership: { voters: [1], learners: [] },
    tickMs: 10,
    electionTimeoutMs: 100,
    heartbeatIntervalMs: 10,
    preVote: false,
    checkQuorum: false,
    entriesPerAppendMax: 1_000,
    maxBatchDelayMs: 1,
    requestTimeoutMs: 600_000,
    snapshotIntervalEntries: interval,
    logEntriesMax: 1_000,
    restored: storage.state(),
    persistence: {
      save: (batch) => storage.save(batch),
      compact: (through) => storage.compact(through),
      ...(way === "background" ? { beginSnapshot: (metadata) => storage.beginSnapshot(metadata) } : {}),
    },
    transport: { send: () => undefined },
    timers: new RealTimers(),
    random: () => 0,
    observer: {
      snapshotTaken: (_node, snapshot) => {
        snapshotDoneMs = performance.now();
        imageBytes = snapshot.data.length;
      },
    },
  });
  node.start();
  try {
    while (node.status().role !== "leader") await new Promise((resolve) => setTimeout(resolve, 10));
    const write = (key: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const sentMs = performance.now();
        node.write({ op: "put", key, value }, (result) => (result.ok ? resolve(performance.now() - sentMs) : reject(result.error)));
      });
    // Fill the store in batches (not measured), stopping short of the snapshot's trigger.
    const applied = (): number => node.store.appliedIndex;
    for (let key = 0; key < keys; key += 1_000) {
      const batch: Promise<number>[] = [];
      for (let i = key; i < Math.min(keys, key + 1_000); i++) batch.push(write(`key-${i}`));
      await Promise.all(batch);
    }
    // Then one client writes one key at a time across the snapshot, which the entry at `interval` triggers.
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    let writeWaitMaxMs = 0;
    let writesDuringSnapshot = 0;
    let sequence = 0;
    histogram.enable();
    const deadlineMs = performance.now() + 120_000;
    // Until the snapshot is done, and 500 ms more: a stall shows in the next write and the next sample.
    while ((snapshotDoneMs === undefined || performance.now() < snapshotDoneMs + 500) && performance.now() < deadlineMs) {
      if (snapshotStartMs === undefined && applied() >= interval - 1) snapshotStartMs = performance.now();
      const waitedMs = await write(`hot-${sequence++ % 100}`);
      if (snapshotStartMs !== undefined) {
        writeWaitMaxMs = Math.max(writeWaitMaxMs, waitedMs);
        if (snapshotDoneMs === undefined) writesDuringSnapshot++;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    histogram.disable();
    if (snapshotDoneMs === undefined) throw new Error(`the snapshot did not complete within 120 s (${way})`);
    return {
      way,
      keys,
      imageBytes,
      stallMaxMs: histogram.max / 1e6,
      writeWaitMaxMs,
      writesDuringSnapshot,
      snapshotMs: snapshotDoneMs - (snapshotStartMs ?? snapshotDoneMs),
    };
  } finally {
    node.stop();
    disk.close();
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let options: ReturnType<typeof parseArguments>;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  const rows: Row[] = [];
  for (const way of ["one piece", "background"] as const) {
    process.stderr.write(`bench:snapshot: ${way}: filling a store of ${options.keys} keys, then a snapshot under one writing client\n`);
    rows.push(await measure(way, options.keys, options.valueBytes));
  }
  if (options.json) {
    for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  const header = ["way", "keys", "image MB", "longest stall ms", "longest write ms", "writes during", "snapshot ms"];
  const lines = rows.map((row) => [row.way, String(row.keys), (row.imageBytes / 1e6).toFixed(1), row.stallMaxMs.toFixed(1), row.writeWaitMaxMs.toFixed(1), String(row.writesDuringSnapshot), row.snapshotMs.toFixed(0)]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column]!.length)));
  const format = (cells: string[]): string => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ");
  process.stdout.write(`${format(header)}\n${format(widths.map((width) => "-".repeat(width)))}\n${lines.map(format).join("\n")}\n`);
}

await main();
