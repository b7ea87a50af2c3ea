/**
 * RaftStorage over both disks: what is saved comes back (round trip, tail replacement, segment
 * rollover, compaction, snapshots); a crash anywhere inside a save, with torn writes, recovers to a
 * state between the last completed save and the interrupted one, over hundreds of seeds; and damage to
 * synced data stops open() with a StorageCorruptionError that names the file and the byte.
 *
 * Method: the directed tests run once per disk (FileDisk in a temporary directory, SimDisk in memory).
 * The crash test drives a reference model (plain arrays, obviously right) beside the real storage and
 * compares them after every save and every recovery.
 */
import test from "ava";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import seedrandom from "seedrandom";
import { AssertionError } from "../../src/assert.ts";
import type { Entry, HardState, Snapshot } from "../../src/core/types.ts";
import { HARD_STATE_EMPTY } from "../../src/core/types.ts";
import { crc32, crc32PrefixLength } from "../../src/storage/crc32.ts";
import type { Disk } from "../../src/storage/disk.ts";
import { FileDisk } from "../../src/storage/file-disk.ts";
import { RaftStorage, StorageCorruptionError, type RaftStorageState, type SaveBatch } from "../../src/storage/raft-storage.ts";
import { SimDisk, SimulatedCrash } from "../../sim/disk.ts";

// ---------------------------------------------------------------------------------------------------
// Backends and helpers

interface Harness {
  readonly disk: Disk;
  /** The disk as a restarted process finds it (after a clean stop: nothing unsynced is pending). */
  reopen(): Disk;
  cleanup(): void;
}

interface Backend {
  readonly name: string;
  create(): Harness;
}

const backends: Backend[] = [
  {
    name: "SimDisk",
    create: () => {
      const disk = new SimDisk({ random: seedrandom("raft-storage"), tornWrites: true });
      return {
        disk,
        reopen: () => {
          disk.crash();
          return disk;
        },
        cleanup: () => {},
      };
    },
  },
  {
    name: "FileDisk",
    create: () => {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "pgraft-raft-storage-"));
      let disk = new FileDisk(directory);
      return {
        get disk() {
          return disk;
        },
        reopen: () => {
          disk.close();
          disk = new FileDisk(directory);
          return disk;
        },
        cleanup: () => {
          disk.close();
          fs.rmSync(directory, { recursive: true, force: true });
        },
      };
    },
  },
];

/** Declares one test per backend, with a fresh harness that is always cleaned up. */
function eachBackend(title: string, body: (t: import("ava").ExecutionContext, harness: Harness) => void): void {
  for (const backend of backends) {
    test(`${backend.name}: ${title}`, (t) => {
      const harness = backend.create();
      try {
        body(t, harness);
      } finally {
        harness.cleanup();
      }
    });
  }
}

function entry(index: number, term: number): Entry {
  return { index, term, kind: index % 7 === 0 ? "noop" : "command", data: index % 7 === 0 ? "" : `set k${index} "v${index}@${term}" ✓` };
}

function entries(first: number, last: number, term: number): Entry[] {
  const result: Entry[] = [];
  for (let index = first; index <= last; index++) result.push(entry(index, term));
  return result;
}

function snapshotAt(index: number, term: number): Snapshot {
  return { metadata: { index, term, membership: { voters: [1, 2, 3], learners: [] } }, data: `image@${index}` };
}

function segmentNames(disk: Disk): string[] {
  return disk.list().filter((name) => /^log-\d+\.seg$/.test(name));
}

/** Record start offsets of a segment file, from its framing. */
function recordStarts(bytes: Uint8Array): number[] {
  const starts: number[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 0; offset < bytes.length; offset += 8 + view.getUint32(offset, true)) starts.push(offset);
  return starts;
}

/** Rewrites one byte of a file through the Disk interface, so it works on both backends. */
function flipByte(disk: Disk, name: string, offset: number): void {
  const bytes = disk.read(name)!;
  bytes[offset] = bytes[offset]! ^ 0x20;
  disk.writeAtomic(name, bytes);
}

function openExpectingCorruption(t: import("ava").ExecutionContext, disk: Disk, options?: { segmentEntriesMax?: number }): StorageCorruptionError {
  const error = t.throws(() => RaftStorage.open(disk, options), { instanceOf: StorageCorruptionError });
  if (error === undefined) throw new Error("open() did not throw");
  t.is(error.name, "StorageCorruptionError");
  t.regex(error.message, /^Cannot start node: /);
  t.true(error.message.includes(`"${error.file}" at byte ${error.offset}`), error.message);
  t.regex(error.message, /restore this node from a healthy member/);
  return error;
}

// ---------------------------------------------------------------------------------------------------
// CRC-32

test("crc32() matches the IEEE check value and node:zlib", (t) => {
  const bytes = new TextEncoder().encode("123456789");
  t.is(crc32(bytes), 0xcbf43926);
  t.is(crc32(new Uint8Array(0)), 0);
  t.is(crc32(bytes, 2, 5), crc32(bytes.subarray(2, 5)));
  const zlibCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array) => number }).crc32;
  const random = seedrandom("crc");
  for (let round = 0; round < 50; round++) {
    const data = new Uint8Array(Math.floor(random() * 3000));
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
    if (zlibCrc32 !== undefined) t.is(crc32(data), zlibCrc32(data) >>> 0);
    t.is(crc32PrefixLength(data, 0, data.length, crc32(data, 0, Math.floor(data.length / 2))), data.length >= 2 ? Math.floor(data.length / 2) : -1);
  }
  t.is(crc32PrefixLength(bytes, 0, 9, 0x12345678), -1);
});

// ---------------------------------------------------------------------------------------------------
// Round trips

eachBackend("open() on an empty disk yields the empty state", (t, harness) => {
  const storage = RaftStorage.open(harness.disk);
  t.deepEqual(storage.state(), { hardState: HARD_STATE_EMPTY, snapshot: undefined, entries: [] });
  t.is(storage.lastIndex(), 0);
  t.is(storage.firstIndex(), 1);
  t.deepEqual(segmentNames(harness.disk), []);
});

eachBackend("save() then open() returns the same hard state and entries", (t, harness) => {
  const storage = RaftStorage.open(harness.disk);
  storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entries(1, 3, 1) });
  storage.save({ hardState: { term: 2, vote: 2, commit: 3 }, entries: entries(4, 5, 2) });
  storage.save({ entries: [] });
  const expected: RaftStorageState = { hardState: { term: 2, vote: 2, commit: 3 }, snapshot: undefined, entries: [...entries(1, 3, 1), ...entries(4, 5, 2)] };
  t.deepEqual(storage.state(), expected, "state() reflects saves without a restart");
  const reopened = RaftStorage.open(harness.reopen());
  t.deepEqual(reopened.state(), expected);
  t.is(reopened.lastIndex(), 5);
  t.is(reopened.firstIndex(), 1);
  t.is(reopened.term(4), 2);
  t.is(reopened.term(6), undefined);
  t.is(reopened.tornBytesTruncated, 0);
});

eachBackend("save() replaces the stored tail from entries[0].index on, inside one segment", (t, harness) => {
  const storage = RaftStorage.open(harness.disk);
  storage.save({ hardState: { term: 1, vote: 1, commit: 2 }, entries: entries(1, 10, 1) });
  storage.save({ hardState: { term: 2, vote: 3, commit: 2 }, entries: entries(6, 8, 2) });
  const expected = [...entries(1, 5, 1), ...entries(6, 8, 2)];
  t.deepEqual(storage.state().entries, expected);
  t.is(storage.lastIndex(), 8);
  storage.save({ entries: entries(9, 9, 2) });
  expected.push(entry(9, 2));
  t.deepEqual(RaftStorage.open(harness.reopen()).state().entries, expected);
});

eachBackend("save() replaces a tail that spans segments: newer segments go, one truncate cuts the rest", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 4 });
  storage.save({ entries: entries(1, 14, 1) });
  t.deepEqual(segmentNames(harness.disk), ["log-000001.seg", "log-000002.seg", "log-000003.seg", "log-000004.seg"]);
  storage.save({ entries: entries(6, 7, 2) });
  t.deepEqual(segmentNames(harness.disk), ["log-000001.seg", "log-000002.seg"]);
  const expected = [...entries(1, 5, 1), ...entries(6, 7, 2)];
  t.deepEqual(storage.state().entries, expected);
  // Replacing from a segment's first entry leaves it empty but in place, and appends refill it.
  storage.save({ entries: entries(5, 9, 3) });
  const expectedAfter = [...entries(1, 4, 1), ...entries(5, 9, 3)];
  t.deepEqual(storage.state().entries, expectedAfter);
  t.deepEqual(segmentNames(harness.disk), ["log-000001.seg", "log-000002.seg", "log-000005.seg"], "sequence numbers only grow");
  t.deepEqual(RaftStorage.open(harness.reopen(), { segmentEntriesMax: 4 }).state().entries, expectedAfter);
});

eachBackend("save() starts a new segment every segmentEntriesMax entries, within one batch or across many", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 3 });
  storage.save({ entries: entries(1, 10, 1) });
  for (let index = 11; index <= 14; index++) storage.save({ entries: [entry(index, 2)] });
  t.deepEqual(segmentNames(harness.disk), ["log-000001.seg", "log-000002.seg", "log-000003.seg", "log-000004.seg", "log-000005.seg"]);
  const expected = [...entries(1, 10, 1), ...entries(11, 14, 2)];
  // A different segmentEntriesMax on reopen is fine: it only decides where new segments start.
  const reopened = RaftStorage.open(harness.reopen(), { segmentEntriesMax: 100 });
  t.deepEqual(reopened.state().entries, expected);
  reopened.save({ entries: [entry(15, 2)] });
  t.is(segmentNames(harness.disk).length, 5, "the newest segment had room under the new bound");
  t.deepEqual(RaftStorage.open(harness.reopen()).state().entries, [...expected, entry(15, 2)]);
});

eachBackend("save() syncs the log once per batch (group commit) and once more per segment it fills", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 1000 });
  storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entries(1, 500, 1) });
  t.is(storage.syncCount, 2, "one log sync and one atomic hard state write");
  storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entries(501, 1500, 1) });
  t.is(storage.syncCount, 4, "the full segment is synced before the next starts, then the new one once");
  storage.save({ hardState: { term: 1, vote: 1, commit: 1500 }, entries: [] });
  t.is(storage.syncCount, 4, "a new commit index alone is not written: Raft does not need it durable");
  storage.save({ hardState: { term: 2, vote: 3, commit: 1500 }, entries: [] });
  t.is(storage.syncCount, 5, "a new term or vote is written at once");
  t.true(storage.bytesWritten > 1500 * 8);
});

test("SimDisk: save() never reads the disk back", (t) => {
  const disk = new SimDisk({ random: seedrandom("no-reads") });
  const storage = RaftStorage.open(disk, { segmentEntriesMax: 50 });
  const bytesRead = disk.bytesRead;
  let commit = 0;
  for (let index = 1; index <= 2000; index += 4) {
    storage.save({ hardState: { term: 1, vote: 1, commit }, entries: entries(index, index + 3, 1) });
    commit = index;
    if (index % 40 === 1) storage.save({ entries: entries(index + 2, index + 3, 1) });
  }
  t.is(disk.bytesRead, bytesRead);
  t.is(storage.lastIndex(), 2000);
});

// ---------------------------------------------------------------------------------------------------
// Snapshots and compaction

eachBackend("compact() drops whole segments covered by the snapshot and keeps the newest", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 3 });
  storage.save({ hardState: { term: 1, vote: 1, commit: 10 }, entries: entries(1, 10, 1) });
  t.throws(() => storage.compact(5), { instanceOf: AssertionError, message: /no snapshot/ });
  storage.save({ snapshot: snapshotAt(7, 1), entries: [] });
  t.throws(() => storage.compact(8), { instanceOf: AssertionError, message: /beyond the snapshot/ });
  t.deepEqual(storage.state().entries, entries(8, 10, 1), "a snapshot that agrees with the log keeps the entries after it");
  storage.compact(7);
  t.deepEqual(segmentNames(harness.disk), ["log-000003.seg", "log-000004.seg"], "entries 1-6 are gone; 7-9 share a segment with 8 and 9");
  t.is(storage.firstIndex(), 7);
  t.is(storage.lastIndex(), 10);
  const reopened = RaftStorage.open(harness.reopen(), { segmentEntriesMax: 3 });
  t.deepEqual(reopened.state(), { hardState: { term: 1, vote: 1, commit: 10 }, snapshot: snapshotAt(7, 1), entries: entries(8, 10, 1) });
  reopened.save({ snapshot: snapshotAt(10, 1), entries: [] });
  reopened.compact(10);
  t.deepEqual(segmentNames(harness.disk), ["log-000004.seg"], "the newest segment stays even when covered");
  t.deepEqual(reopened.state().entries, []);
  reopened.save({ entries: entries(11, 12, 2) });
  t.deepEqual(RaftStorage.open(harness.reopen(), { segmentEntriesMax: 3 }).state().entries, entries(11, 12, 2));
});

eachBackend("a snapshot that contradicts or outruns the log replaces it", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 4 });
  storage.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: entries(1, 10, 1) });
  // A leader at term 3 sends a snapshot at 12: this node lacks entry 12, so its log is stale.
  storage.save({ snapshot: snapshotAt(12, 3), hardState: { term: 3, vote: 0, commit: 12 }, entries: entries(13, 14, 3) });
  t.deepEqual(storage.state(), { hardState: { term: 3, vote: 0, commit: 12 }, snapshot: snapshotAt(12, 3), entries: entries(13, 14, 3) });
  t.is(storage.lastIndex(), 14);
  t.is(storage.firstIndex(), 13);
  t.is(segmentNames(harness.disk).length, 1);
  const reopened = RaftStorage.open(harness.reopen(), { segmentEntriesMax: 4 });
  t.deepEqual(reopened.state().entries, entries(13, 14, 3));
  // Same index, other term: the log contradicts the snapshot.
  reopened.save({ entries: entries(15, 16, 3) });
  reopened.save({ snapshot: snapshotAt(15, 4), hardState: { term: 4, vote: 0, commit: 15 }, entries: [] });
  t.deepEqual(reopened.state().entries, []);
  t.is(reopened.lastIndex(), 15);
  t.deepEqual(RaftStorage.open(harness.reopen()).state(), { hardState: { term: 4, vote: 0, commit: 15 }, snapshot: snapshotAt(15, 4), entries: [] });
});

eachBackend("open() raises the commit index to the snapshot's index when the hard state is older", (t, harness) => {
  const storage = RaftStorage.open(harness.disk);
  storage.save({ hardState: { term: 1, vote: 1, commit: 2 }, entries: entries(1, 5, 1) });
  storage.save({ snapshot: snapshotAt(9, 2), entries: [] });
  t.is(storage.state().hardState.commit, 9);
  t.deepEqual(RaftStorage.open(harness.reopen()).state().hardState, { term: 1, vote: 1, commit: 9 });
});

// ---------------------------------------------------------------------------------------------------
// Programmer errors are assertions

eachBackend("save() asserts its preconditions: no gaps, no replacing committed entries, no decreasing terms", (t, harness) => {
  const storage = RaftStorage.open(harness.disk);
  storage.save({ hardState: { term: 2, vote: 1, commit: 3 }, entries: entries(1, 5, 2) });
  t.throws(() => storage.save({ entries: entries(7, 8, 2) }), { instanceOf: AssertionError, message: /gap/ });
  t.throws(() => storage.save({ entries: entries(3, 4, 3) }), { instanceOf: AssertionError, message: /at or below commit/ });
  t.throws(() => storage.save({ entries: [entry(6, 2), entry(8, 2)] }), { instanceOf: AssertionError, message: /not contiguous/ });
  t.throws(() => storage.save({ entries: [entry(6, 1)] }), { instanceOf: AssertionError, message: /term decreases/ });
  t.throws(() => storage.save({ hardState: { term: 2, vote: 1, commit: 9 }, entries: [] }), { instanceOf: AssertionError, message: /past the last entry/ });
  t.throws(() => storage.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: [] }), { instanceOf: AssertionError, message: /below the stored/ });
  t.deepEqual(RaftStorage.open(harness.reopen()).state().entries, entries(1, 5, 2), "refused saves changed nothing");
});

// ---------------------------------------------------------------------------------------------------
// Torn tails are repaired; everything else is refused

eachBackend("open() cuts a torn record off the end of the newest segment and keeps going", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 4 });
  storage.save({ hardState: { term: 1, vote: 1, commit: 5 }, entries: entries(1, 6, 1) });
  const newest = segmentNames(harness.disk).at(-1)!;
  const sizeBefore = harness.disk.read(newest)!.length;
  // Half of a record header, then a whole header whose payload never arrived: both are torn writes.
  for (const torn of [new Uint8Array([0x20, 0x00]), new Uint8Array([0x40, 0, 0, 0, 1, 2, 3, 4, 0x7b, 0x22])]) {
    harness.disk.append(newest, torn);
    harness.disk.sync(newest);
    const reopened = RaftStorage.open(harness.reopen(), { segmentEntriesMax: 4 });
    t.is(reopened.tornBytesTruncated, torn.length);
    t.is(harness.disk.read(newest)!.length, sizeBefore, "the torn bytes are truncated away on disk");
    t.deepEqual(reopened.state().entries, entries(1, 6, 1));
  }
  const reopened = RaftStorage.open(harness.disk, { segmentEntriesMax: 4 });
  reopened.save({ entries: entries(7, 9, 1) });
  t.deepEqual(RaftStorage.open(harness.reopen()).state().entries, entries(1, 9, 1));
});

eachBackend("open() refuses a torn-looking record in an older segment: it was synced", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 4 });
  storage.save({ entries: entries(1, 6, 1) });
  const [oldest] = segmentNames(harness.disk);
  const size = harness.disk.read(oldest!)!.length;
  harness.disk.append(oldest!, new Uint8Array([0x20, 0x00]));
  harness.disk.sync(oldest!);
  const error = openExpectingCorruption(t, harness.reopen());
  t.is(error.file, "log-000001.seg");
  t.is(error.offset, size);
  t.is(error.code, "record_truncated");
});

eachBackend("a flipped byte inside synced log data stops open() with the file and the record's byte offset", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 5 });
  storage.save({ hardState: { term: 1, vote: 1, commit: 12 }, entries: entries(1, 15, 1) });
  const name = "log-000002.seg";
  const starts = recordStarts(harness.disk.read(name)!);
  t.is(starts.length, 5);
  flipByte(harness.disk, name, starts[2]! + 20);
  const error = openExpectingCorruption(t, harness.reopen());
  t.is(error.file, name);
  t.is(error.offset, starts[2]!);
  t.is(error.code, "checksum_mismatch");
  t.true(error.message.startsWith(`Cannot start node: checksum mismatch in synced Raft log file "${name}" at byte ${starts[2]}:`), error.message);
});

eachBackend("a damaged length field is corruption, even in the newest segment's last records", (t, harness) => {
  const storage = RaftStorage.open(harness.disk);
  storage.save({ hardState: { term: 1, vote: 1, commit: 1 }, entries: entries(1, 4, 1) });
  const name = "log-000001.seg";
  const starts = recordStarts(harness.disk.read(name)!);
  // The second-to-last record claims to be longer, running to or past the end of the file.
  const bytes = harness.disk.read(name)!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(starts[2]!, bytes.length - starts[2]! - 8 + 3, true);
  harness.disk.writeAtomic(name, bytes);
  const past = openExpectingCorruption(t, harness.reopen());
  t.is(past.offset, starts[2]!);
  view.setUint32(starts[2]!, bytes.length - starts[2]! - 8, true);
  harness.disk.writeAtomic(name, bytes);
  const toEnd = openExpectingCorruption(t, harness.reopen());
  t.is(toEnd.offset, starts[2]!);
  t.is(toEnd.file, name);
});

eachBackend("a missing segment in the middle, or at the start without a snapshot, is refused", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 5 });
  storage.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: entries(1, 15, 1) });
  harness.disk.remove("log-000002.seg");
  const gap = openExpectingCorruption(t, harness.reopen());
  t.is(gap.file, "log-000003.seg");
  t.is(gap.offset, 0);
  t.is(gap.code, "entries_not_contiguous");
  t.regex(gap.message, /entry 11 where entry 6 was expected/);
  harness.disk.remove("log-000001.seg");
  const start = openExpectingCorruption(t, harness.reopen());
  t.is(start.file, "log-000003.seg");
  t.regex(start.message, /starts at entry 11 without a snapshot/);
});

eachBackend("a hard state whose commit is past the recovered log is refused", (t, harness) => {
  const storage = RaftStorage.open(harness.disk, { segmentEntriesMax: 5 });
  storage.save({ hardState: { term: 1, vote: 1, commit: 9 }, entries: entries(1, 10, 1) });
  harness.disk.remove("log-000002.seg");
  const error = openExpectingCorruption(t, harness.reopen());
  t.is(error.file, "hardstate.json");
  t.is(error.code, "commit_past_log");
  t.regex(error.message, /commit index 9 is past the last log entry 5/);
});

for (const file of ["hardstate.json", "snapshot.json"]) {
  eachBackend(`a truncated or flipped ${file} is refused, naming the file`, (t, harness) => {
    const storage = RaftStorage.open(harness.disk);
    storage.save({ snapshot: snapshotAt(3, 1), hardState: { term: 1, vote: 1, commit: 3 }, entries: entries(4, 5, 1) });
    const original = harness.disk.read(file)!;
    for (const cut of [0, 5, original.length - 1]) {
      harness.disk.writeAtomic(file, original.slice(0, cut));
      const error = openExpectingCorruption(t, harness.reopen());
      t.is(error.file, file);
      t.is(error.code, "record_truncated");
    }
    harness.disk.writeAtomic(file, original);
    t.notThrows(() => RaftStorage.open(harness.reopen()));
    flipByte(harness.disk, file, original.length - 3);
    const flipped = openExpectingCorruption(t, harness.reopen());
    t.is(flipped.file, file);
    t.is(flipped.code, "checksum_mismatch");
  });
}

eachBackend("open() ignores files that are not its own", (t, harness) => {
  harness.disk.writeAtomic("kv-state.json", new TextEncoder().encode("{}"));
  harness.disk.writeAtomic("log-1.seg", new Uint8Array([1, 2, 3]));
  const storage = RaftStorage.open(harness.disk);
  storage.save({ entries: entries(1, 2, 1) });
  t.deepEqual(RaftStorage.open(harness.reopen()).state().entries, entries(1, 2, 1));
});

test("SimDisk: a random flipped byte in synced log data is refused at its record, except in the newest segment's last record", (t) => {
  let refused = 0;
  let droppedAsTorn = 0;
  for (let seed = 0; seed < 200; seed++) {
    const random = seedrandom(`corrupt-${seed}`);
    const disk = new SimDisk({ random });
    const segmentEntriesMax = 2 + Math.floor(random() * 6);
    const storage = RaftStorage.open(disk, { segmentEntriesMax });
    const last = 1 + Math.floor(random() * 30);
    const commit = random() < 0.5 ? last : Math.floor(random() * last);
    storage.save({ hardState: { term: 1, vote: 1, commit }, entries: entries(1, last, 1) });
    const segments = segmentNames(disk);
    const corruption = disk.corruptSynced()!;
    t.truthy(corruption);
    const original = disk.read(corruption.name)!;
    original[corruption.offset] = corruption.before;
    const starts = recordStarts(original);
    const recordStart = starts.filter((start) => start <= corruption.offset).at(-1)!;
    const inNewestFinalRecord = corruption.name === segments.at(-1) && recordStart === starts.at(-1);
    const outsideLength = corruption.offset >= recordStart + 4;
    let outcome: RaftStorage | StorageCorruptionError;
    try {
      outcome = RaftStorage.open(disk);
    } catch (error) {
      if (!(error instanceof StorageCorruptionError)) throw error;
      outcome = error;
    }
    const context = `seed ${seed}: ${JSON.stringify(corruption)}, record at ${recordStart}`;
    if (inNewestFinalRecord && outsideLength) {
      // Indistinguishable from a torn write: the last entry is dropped, and the commit check catches
      // it when that entry was known committed.
      if (commit === last) {
        t.true(outcome instanceof StorageCorruptionError && outcome.code === "commit_past_log", context);
      } else {
        t.true(outcome instanceof RaftStorage, context);
        if (outcome instanceof RaftStorage) t.deepEqual(outcome.state().entries, entries(1, last - 1, 1), context);
      }
      droppedAsTorn++;
    } else {
      t.true(outcome instanceof StorageCorruptionError, context);
      if (outcome instanceof StorageCorruptionError) {
        t.is(outcome.file, corruption.name, context);
        t.is(outcome.offset, recordStart, context);
      }
      refused++;
    }
  }
  t.true(refused > 100, `refused ${refused}`);
  t.true(droppedAsTorn > 0, `dropped ${droppedAsTorn}`);
});

// ---------------------------------------------------------------------------------------------------
// Crash recovery against a reference model

interface Model {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | undefined;
  /** Entries after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
}

const MODEL_EMPTY: Model = { hardState: HARD_STATE_EMPTY, snapshot: undefined, entries: [] };

function modelLastIndex(model: Model): number {
  return model.entries.at(-1)?.index ?? model.snapshot?.metadata.index ?? 0;
}

function modelTerm(model: Model, index: number): number | undefined {
  if (index === (model.snapshot?.metadata.index ?? 0)) return model.snapshot?.metadata.term ?? 0;
  return model.entries.find((candidate) => candidate.index === index)?.term;
}

/** What RaftStorage promises for a completed save, written as plainly as possible. */
function modelApply(model: Model, batch: SaveBatch): Model {
  let { hardState, snapshot, entries: log } = model;
  if (batch.snapshot !== undefined) {
    const { index, term } = batch.snapshot.metadata;
    const agrees = index === (snapshot?.metadata.index ?? 0) || modelTerm(model, index) === term;
    log = agrees ? log.filter((candidate) => candidate.index > index) : [];
    snapshot = batch.snapshot;
    hardState = { ...hardState, commit: Math.max(hardState.commit, index) };
  }
  if (batch.entries.length > 0) log = [...log.filter((candidate) => candidate.index < batch.entries[0]!.index), ...batch.entries];
  // Storage writes the hard state only when term or vote change: a new commit index alone waits.
  const hard = batch.hardState;
  if (hard !== undefined && (hard.term !== hardState.term || hard.vote !== hardState.vote)) hardState = hard;
  return { hardState, snapshot, entries: log };
}

/** A random Ready-like batch that a correct Raft core could produce from `model`. */
function randomBatch(model: Model, random: () => number): { batch: SaveBatch; compactThrough?: number } {
  const snapshotIndex = model.snapshot?.metadata.index ?? 0;
  const last = modelLastIndex(model);
  const lastTerm = modelTerm(model, last) ?? 0;
  const commit = model.hardState.commit;
  const term = Math.max(model.hardState.term, lastTerm, 1);
  const count = (max: number): number => 1 + Math.floor(random() * max);
  const hardStateFor = (newTerm: number, newLast: number, commitMin = commit): HardState | undefined =>
    random() < 0.3 && newTerm === model.hardState.term && commitMin === commit
      ? undefined
      : { term: newTerm, vote: newTerm === model.hardState.term ? model.hardState.vote : count(3), commit: commitMin + Math.floor(random() * (newLast - commitMin + 1)) };
  const choice = random();
  if (choice < 0.1 && commit > snapshotIndex) {
    // The node's own snapshot of applied entries, usually followed by compaction.
    const index = snapshotIndex + count(commit - snapshotIndex);
    const batch = { snapshot: snapshotAt(index, modelTerm(model, index)!), entries: [] };
    return random() < 0.7 ? { batch, compactThrough: index } : { batch };
  }
  if (choice < 0.15) {
    // A leader's snapshot beyond this node's log, with the entries after it.
    const index = last + count(3);
    const newTerm = term + (random() < 0.5 ? 1 : 0);
    const newEntries = entries(index + 1, index + Math.floor(random() * 4), newTerm);
    const newLast = newEntries.at(-1)?.index ?? index;
    return { batch: { snapshot: snapshotAt(index, newTerm), entries: newEntries, hardState: hardStateFor(newTerm, newLast, index) ?? { term: newTerm, vote: 0, commit: index } } };
  }
  const replaceFrom = Math.max(commit, snapshotIndex) + 1;
  if (choice < 0.35 && replaceFrom <= last) {
    // A new leader overwrites this follower's uncommitted tail.
    const first = replaceFrom + Math.floor(random() * (last - replaceFrom + 1));
    const newEntries = entries(first, first + count(8) - 1, term + 1);
    return { batch: { entries: newEntries, hardState: hardStateFor(term + 1, newEntries.at(-1)!.index) } };
  }
  const newTerm = random() < 0.1 ? term + 1 : term;
  const newEntries = entries(last + 1, last + count(12), newTerm);
  return { batch: { entries: newEntries, hardState: hardStateFor(newTerm, newEntries.at(-1)!.index) } };
}

/** A Disk that arms SimDisk.failNextSync on its n-th durable operation, to crash inside a save. */
class CrashingDisk implements Disk {
  /** Durable operations left before the crash; Infinity when disarmed. */
  countdown = Number.POSITIVE_INFINITY;
  constructor(readonly sim: SimDisk) {}
  list(): string[] {
    return this.sim.list();
  }
  read(name: string): Uint8Array | undefined {
    return this.sim.read(name);
  }
  append(name: string, data: Uint8Array): void {
    this.sim.append(name, data);
  }
  sync(name: string): void {
    this.arm();
    this.sim.sync(name);
  }
  writeAtomic(name: string, data: Uint8Array): void {
    this.arm();
    this.sim.writeAtomic(name, data);
  }
  truncate(name: string, size: number): void {
    this.arm();
    this.sim.truncate(name, size);
  }
  remove(name: string): void {
    this.arm();
    this.sim.remove(name);
  }
  private arm(): void {
    this.countdown--;
    if (this.countdown === 0) this.sim.failNextSync = true;
  }
}

/**
 * After a crash inside the save from `before` to `after`: every recovered piece is from one or the
 * other, nothing the two share is lost, and a recovered new hard state implies the whole new log.
 */
function checkRecovered(t: import("ava").ExecutionContext, recovered: RaftStorageState, before: Model, after: Model, context: string): void {
  const snapshotIndex = recovered.snapshot?.metadata.index ?? 0;
  t.true(sameJson(recovered.snapshot, before.snapshot) || sameJson(recovered.snapshot, after.snapshot), `${context}: snapshot invented`);
  const raise = (hardState: HardState): HardState => ({ ...hardState, commit: Math.max(hardState.commit, snapshotIndex) });
  const hardStateIsAfter = sameJson(recovered.hardState, raise(after.hardState));
  const hardStateIsBefore = sameJson(recovered.hardState, raise(before.hardState));
  t.true(hardStateIsAfter || hardStateIsBefore, `${context}: hard state invented`);
  recovered.entries.forEach((candidate, i) => {
    t.is(candidate.index, snapshotIndex + 1 + i, `${context}: entries not contiguous`);
    const known = [before, after].some((model) => sameJson(model.entries.find((other) => other.index === candidate.index), candidate));
    t.true(known, `${context}: entry ${candidate.index} invented`);
  });
  for (const shared of before.entries) {
    if (shared.index <= snapshotIndex) continue;
    if (!sameJson(after.entries.find((other) => other.index === shared.index), shared)) continue;
    t.true(
      recovered.entries.some((other) => sameJson(other, shared)),
      `${context}: entry ${shared.index}, saved before and kept by the batch, was lost`,
    );
  }
  // Only a hard state that the old one cannot explain proves the new one was written, after the log sync.
  if (hardStateIsAfter && !hardStateIsBefore) {
    const expected = after.entries.filter((candidate) => candidate.index > snapshotIndex);
    t.deepEqual(recovered.entries, expected, `${context}: the new hard state was recovered without the log synced before it`);
  }
  const lastIndex = recovered.entries.at(-1)?.index ?? snapshotIndex;
  t.true(recovered.hardState.commit <= lastIndex, `${context}: commit past the log`);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function checkEqual(t: import("ava").ExecutionContext, state: RaftStorageState, model: Model, context: string): void {
  if (!sameJson(state, { hardState: model.hardState, snapshot: model.snapshot, entries: model.entries })) {
    t.deepEqual(state, { hardState: model.hardState, snapshot: model.snapshot, entries: [...model.entries] }, context);
  }
}

test("SimDisk: crashes inside saves, with torn writes, recover to a state between the two saves (200 seeds)", (t) => {
  const seeds = 200;
  const stepsPerSeed = 60;
  let crashesInside = 0;
  let tornRecoveries = 0;
  let partialBatches = 0;
  let resets = 0;
  for (let seed = 0; seed < seeds; seed++) {
    const random = seedrandom(`crash-${seed}`);
    const sim = new SimDisk({ random: seedrandom(`crash-disk-${seed}`), tornWrites: true });
    const disk = new CrashingDisk(sim);
    const options = { segmentEntriesMax: 1 + Math.floor(random() * 8) };
    let storage = RaftStorage.open(disk, options);
    let model: Model = MODEL_EMPTY;
    for (let step = 0; step < stepsPerSeed; step++) {
      const context = `seed ${seed} step ${step}`;
      const { batch, compactThrough } = randomBatch(model, random);
      const after = modelApply(model, batch);
      if (batch.snapshot !== undefined && batch.snapshot.metadata.index > modelLastIndex(model) && model.entries.length > 0) resets++;
      if (random() < 0.25) disk.countdown = 1 + Math.floor(random() * 5);
      try {
        storage.save(batch);
        disk.countdown = Number.POSITIVE_INFINITY;
        model = after;
        checkEqual(t, storage.state(), model, `${context}: after save`);
        if (compactThrough !== undefined) {
          if (random() < 0.3) disk.countdown = 1 + Math.floor(random() * 3);
          storage.compact(compactThrough);
          disk.countdown = Number.POSITIVE_INFINITY;
          checkEqual(t, storage.state(), model, `${context}: after compact`);
        }
        if (random() < 0.1) {
          sim.crash();
          storage = RaftStorage.open(disk, options);
          checkEqual(t, storage.state(), model, `${context}: after a crash between saves`);
        }
      } catch (error) {
        if (!(error instanceof SimulatedCrash)) throw error;
        disk.countdown = Number.POSITIVE_INFINITY;
        crashesInside++;
        sim.crash();
        storage = RaftStorage.open(disk, options);
        if (storage.tornBytesTruncated > 0) tornRecoveries++;
        const recovered = storage.state();
        checkRecovered(t, recovered, model, after, `${context}: crash inside a write`);
        if (!sameJson(recovered.entries, model.entries) && !sameJson(recovered.entries, after.entries)) partialBatches++;
        model = { hardState: recovered.hardState, snapshot: recovered.snapshot, entries: recovered.entries };
        t.is(storage.lastIndex(), modelLastIndex(model), `${context}: lastIndex() after recovery`);
      }
    }
  }
  t.log(`crashes inside writes ${crashesInside}, torn tails cut ${tornRecoveries}, batches partly recovered ${partialBatches}, log resets ${resets}`);
  // The test must have exercised what it claims to.
  t.true(crashesInside > seeds, `only ${crashesInside} crashes inside writes`);
  t.true(tornRecoveries > 20, `only ${tornRecoveries} torn tails`);
  t.true(partialBatches > 10, `only ${partialBatches} partly recovered batches`);
  t.true(resets > 20, `only ${resets} snapshot resets`);
});

eachBackend("a snapshot image with newlines, quotes and non-ASCII text comes back exactly, metadata and all", (t, harness) => {
  const storage = RaftStorage.open(harness.disk);
  storage.save({ entries: entries(1, 5, 1) });
  const image = `{"records":[["a\\nb","line one\nline two"],["ü","✓ \\"quoted\\""]]}\n\nend`;
  const snapshot: Snapshot = { metadata: { index: 5, term: 1, membership: { voters: [1, 2, 3], learners: [4] } }, data: image };
  storage.save({ snapshot, entries: [] });
  const recovered = RaftStorage.open(harness.reopen()).state();
  t.deepEqual(recovered.snapshot, snapshot);
});

eachBackend("a snapshot file in the older format (the whole snapshot as one JSON value) is still read", (t, harness) => {
  const snapshot = snapshotAt(9, 2);
  const payload = new TextEncoder().encode(JSON.stringify(snapshot));
  const record = new Uint8Array(8 + payload.length);
  new DataView(record.buffer).setUint32(0, payload.length, true);
  new DataView(record.buffer).setUint32(4, crc32(payload), true);
  record.set(payload, 8);
  harness.disk.writeAtomic("snapshot.json", record);
  t.deepEqual(RaftStorage.open(harness.reopen()).state().snapshot, snapshot);
});

eachBackend("a snapshot whose metadata line is damaged but whose checksum holds is refused as invalid", (t, harness) => {
  const payload = new TextEncoder().encode(`{"index":0,"term":1}\nimage`);
  const record = new Uint8Array(8 + payload.length);
  new DataView(record.buffer).setUint32(0, payload.length, true);
  new DataView(record.buffer).setUint32(4, crc32(payload), true);
  record.set(payload, 8);
  harness.disk.writeAtomic("snapshot.json", record);
  const error = openExpectingCorruption(t, harness.reopen());
  t.is(error.code, "record_invalid");
});
