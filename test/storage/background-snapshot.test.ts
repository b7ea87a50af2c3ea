/**
 * A node's own snapshot saved off the event loop: KvStore.snapshotParts() makes the image a part at a
 * time from a copy taken at once; RaftStorage.beginSnapshot() writes it to a temporary file through
 * FileDisk's background writes and puts it in place only on commit; RaftNode drives it a part per
 * turn, serving requests meanwhile, and compacts the log only once the snapshot is durable.
 */
import test from "ava";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Entry, Snapshot, SnapshotMetadata } from "../../src/core/types.ts";
import { HARD_STATE_EMPTY } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/kv-store.ts";
import type { TimerHandle, Timers } from "../../src/node/environment.ts";
import { RaftNode, type LogPersistence, type RaftNodeOptions } from "../../src/node/raft-node.ts";
import { FileDisk } from "../../src/storage/file-disk.ts";
import { RaftStorage, SNAPSHOT_FILE } from "../../src/storage/raft-storage.ts";

function storeWith(keys: number): KvStore {
  const store = new KvStore();
  let index = 0;
  store.apply(++index, { op: "lease_grant", id: 7, ttlSec: 30 });
  for (let i = 0; i < keys; i++) store.apply(++index, { op: "put", key: `key-${(i * 7919) % keys}`, value: `value ${i} "quoted" ✓` });
  store.apply(++index, { op: "delete", key: "key-3" });
  return store;
}

function directory(t: { teardown: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgraft-background-snapshot-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function entries(first: number, last: number, term: number): Entry[] {
  const result: Entry[] = [];
  for (let index = first; index <= last; index++) result.push({ index, term, kind: "command", data: `{"op":"put","key":"k${index}","value":"v"}` });
  return result;
}

const metadataAt = (index: number, term: number): SnapshotMetadata => ({ index, term, membership: { voters: [1, 2, 3], learners: [] } });

test("snapshotParts() joined is the same store as snapshot(), leases included, and later writes do not reach it", (t) => {
  const store = storeWith(5_000);
  const whole = store.snapshot();
  const { appliedIndex, parts } = store.snapshotParts(300);
  store.apply(appliedIndex + 1, { op: "put", key: "after", value: "not in the image" });
  store.apply(appliedIndex + 2, { op: "delete", key: "key-10" });
  const collected: string[] = [];
  for (let part = parts.next(); !part.done; part = parts.next()) collected.push(part.value);
  t.true(collected.length >= 5_000 / 300, `${collected.length} parts`);
  const restored = KvStore.restore(collected.join(""));
  t.is(restored.snapshot(), whole, "restored from the parts, the store's sorted image is the one taken before the writes");
  t.is(restored.appliedIndex, appliedIndex);
  t.deepEqual(restored.leases(), [{ id: 7, ttlSec: 30 }]);
  t.is(KvStore.restore(new KvStore().snapshotParts(10).parts.next().value + "]}").snapshot(), new KvStore().snapshot(), "an empty store");
});

test("a background snapshot is in place only after commit; reopened, the storage holds it and its log", async (t) => {
  const dir = directory(t);
  const disk = new FileDisk(dir);
  const storage = RaftStorage.open(disk, { segmentEntriesMax: 64 });
  storage.save({ hardState: { term: 2, vote: 1, commit: 200 }, entries: entries(1, 200, 2) });
  const store = storeWith(3_000);
  const image = [...iterate(store.snapshotParts(250).parts)];
  const write = storage.beginSnapshot(metadataAt(150, 2))!;
  t.truthy(write, "FileDisk writes in the background");
  for (const part of image.slice(0, 3)) await new Promise<void>((resolve) => write.append(part, () => resolve()));
  t.false(fs.existsSync(path.join(dir, SNAPSHOT_FILE)), "nothing under the snapshot's name before commit");
  t.true(fs.readdirSync(dir).some((name) => name.includes("background")), "the temporary file exists");
  for (const part of image.slice(3)) await new Promise<void>((resolve) => write.append(part, () => resolve()));
  await new Promise<void>((resolve, reject) => write.finish((error) => (error ? reject(error) : resolve())));
  const snapshot: Snapshot = { metadata: metadataAt(150, 2), data: image.join("") };
  t.true(write.commit(snapshot));
  storage.compact(100);
  disk.close();

  const reopened = RaftStorage.open(new FileDisk(dir), { segmentEntriesMax: 64 });
  const state = reopened.state();
  t.deepEqual(state.snapshot?.metadata, metadataAt(150, 2));
  t.is(KvStore.restore(state.snapshot!.data).snapshot(), store.snapshot());
  t.is(state.entries.at(-1)?.index, 200, "the log after the snapshot is kept");
  t.false(fs.readdirSync(dir).some((name) => name.includes("background")), "no temporary file is left");
});

test("abandoned, superseded by the leader's snapshot, or cut by a crash: the stored snapshot stays as it was", async (t) => {
  const dir = directory(t);
  const disk = new FileDisk(dir);
  const storage = RaftStorage.open(disk);
  storage.save({ hardState: { term: 3, vote: 1, commit: 300 }, entries: entries(1, 300, 3) });
  const first: Snapshot = { metadata: metadataAt(100, 3), data: new KvStore().snapshot() };
  storage.save({ snapshot: first, entries: [] });

  // Abandoned half way (the node stopped): the temporary file goes, the stored snapshot stays.
  const abandoned = storage.beginSnapshot(metadataAt(200, 3))!;
  await new Promise<void>((resolve) => abandoned.append('{"appliedIndex":200,"records":[', () => resolve()));
  abandoned.abandon();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.false(fs.readdirSync(dir).some((name) => name.includes("background")), "abandoned: no temporary file");

  // The leader's snapshot (newer) is saved while ours is written: ours is not committed.
  const ours = storage.beginSnapshot(metadataAt(250, 3))!;
  const leaders: Snapshot = { metadata: metadataAt(280, 3), data: new KvStore().snapshot() };
  const oursSnapshot: Snapshot = { metadata: metadataAt(250, 3), data: new KvStore().snapshot() };
  await new Promise<void>((resolve) => ours.append(oursSnapshot.data, () => resolve()));
  storage.save({ snapshot: leaders, entries: [] });
  await new Promise<void>((resolve, reject) => ours.finish((error) => (error ? reject(error) : resolve())));
  t.false(ours.commit(oursSnapshot), "an older snapshot than the stored one is not committed");

  // A crash in the middle leaves a temporary file; the next open deletes it and reads the old snapshot.
  const cut = storage.beginSnapshot(metadataAt(290, 3))!;
  await new Promise<void>((resolve) => cut.append('{"appliedIndex":290,"records":[["k",', () => resolve()));
  t.true(fs.readdirSync(dir).some((name) => name.includes("background")));
  const reopenedDisk = new FileDisk(dir);
  const reopened = RaftStorage.open(reopenedDisk);
  t.deepEqual(reopened.state().snapshot?.metadata, metadataAt(280, 3));
  t.false(fs.readdirSync(dir).some((name) => name.includes("background")), "the open deleted the temporary file");
  cut.abandon();
  reopenedDisk.close();
  disk.close();
});

test("FileDisk: a background file abandoned with a write in flight is deleted once the write returns, and never touches a newer one", async (t) => {
  const dir = directory(t);
  const disk = new FileDisk(dir);
  const big = new Uint8Array(8 * 1024 * 1024).fill(0x61);
  const first = disk.openBackground("snapshot.json");
  const firstWrite = new Promise<Error | undefined>((resolve) => first.write(big, 0, resolve));
  first.abandon(); // the write is still in flight
  const second = disk.openBackground("snapshot.json");
  const small = new TextEncoder().encode("the newer file");
  await new Promise<void>((resolve, reject) => second.write(small, 0, (error) => (error ? reject(error) : resolve())));
  t.is(await firstWrite, undefined, "the abandoned file's write completes");
  await new Promise<void>((resolve, reject) => second.sync((error) => (error ? reject(error) : resolve())));
  second.commit();
  t.is(fs.readFileSync(path.join(dir, "snapshot.json"), "utf8"), "the newer file", "the abandoned write landed nowhere near the committed file");
  t.deepEqual(fs.readdirSync(dir).filter((name) => name.includes("background")), [], "the abandoned file is gone");
  const refused = await new Promise<Error | undefined>((resolve) => first.write(small, 0, resolve));
  t.regex(refused?.message ?? "", /after it was committed or abandoned/);
  // close() abandons what is still open.
  const open = disk.openBackground("snapshot.json");
  disk.close();
  t.deepEqual(fs.readdirSync(dir).filter((name) => name.includes("background")), [], "close() removed the open background file");
  const late = await new Promise<Error | undefined>((resolve) => open.write(small, 0, resolve));
  t.truthy(late);
});

function* iterate(parts: Iterator<string>): Generator<string> {
  for (let part = parts.next(); !part.done; part = parts.next()) yield part.value;
}

/** One voter (it elects itself), a snapshot every 50 entries keeping 10 behind it; `overrides` change that. */
function singleVoter(timers: Timers, persistence: LogPersistence, logger?: (line: string) => void, overrides: Partial<RaftNodeOptions> = {}): RaftNode {
  return new RaftNode({
    id: 1,
    membership: { voters: [1], learners: [] },
    tickMs: 10,
    electionTimeoutMs: 100,
    heartbeatIntervalMs: 10,
    preVote: false,
    checkQuorum: false,
    entriesPerAppendMax: 100,
    maxBatchDelayMs: 0,
    requestTimeoutMs: 60_000,
    snapshotIntervalEntries: 50,
    logEntriesMax: 10,
    restored: { hardState: HARD_STATE_EMPTY, entries: [] },
    persistence,
    transport: { send: () => undefined },
    timers,
    random: () => 0,
    ...(logger === undefined ? {} : { logger }),
    ...overrides,
  });
}

/** Timers the test turns by hand: `soon` and `after` callbacks run when flush() says. */
class HandTimers implements Timers {
  queued: (() => void)[] = [];
  nowMs(): number {
    return 0;
  }
  after(_delayMs: number, callback: () => void): TimerHandle {
    return this.soon(callback);
  }
  soon(callback: () => void): TimerHandle {
    let cancelled = false;
    this.queued.push(() => {
      if (!cancelled) callback();
    });
    return { cancel: () => void (cancelled = true) };
  }
  flush(): void {
    for (let round = 0; round < 100 && this.queued.length > 0; round++) for (const callback of this.queued.splice(0)) callback();
  }
}

test("RaftNode saves its snapshot a part per callback, applies writes meanwhile, and compacts only when it is durable", (t) => {
  const timers = new HandTimers();
  const events: string[] = [];
  const pendingCallbacks: (() => void)[] = [];
  let committed: Snapshot | undefined;
  const persistence: LogPersistence = {
    save: () => undefined,
    compact: (through) => void events.push(`compact ${through}`),
    beginSnapshot: (metadata) => {
      events.push(`begin ${metadata.index}`);
      return {
        append: (_part, done) => void pendingCallbacks.push(() => done()),
        finish: (done) => void pendingCallbacks.push(() => done()),
        commit: (snapshot) => {
          committed = snapshot;
          events.push(`commit ${snapshot.metadata.index}`);
          return true;
        },
        abandon: () => void events.push("abandon"),
      };
    },
  };
  const node = singleVoter(timers, persistence);
  node.start();
  for (let tick = 0; tick < 30 && node.status().role !== "leader"; tick++) {
    node.tick();
    timers.flush();
  }
  t.is(node.status().role, "leader");
  const answered: string[] = [];
  const put = (key: string): void => node.write({ op: "put", key, value: "v" }, (result) => void answered.push(result.ok ? key : `${key} failed`));
  for (let i = 0; i < 60; i++) put(`a${i}`);
  timers.flush();
  t.true(events.some((event) => event.startsWith("begin")), events.join("; "));
  const begun = Number(events.find((event) => event.startsWith("begin"))!.split(" ")[1]);
  t.false(events.some((event) => event.startsWith("compact")), "nothing is compacted while the snapshot is written");

  // Writes go on while the parts are written, one callback at a time.
  for (let i = 0; i < 5; i++) put(`b${i}`);
  timers.flush();
  t.true(answered.includes("b4"), "a write proposed during the snapshot is applied and answered");
  t.is(pendingCallbacks.length, 1, "one part in flight at a time");
  while (pendingCallbacks.length > 0) pendingCallbacks.shift()!();
  t.deepEqual(events.filter((event) => !event.startsWith("begin")), [`commit ${begun}`, `compact ${begun - 10}`]);
  t.is(KvStore.restore(committed!.data).appliedIndex, begun);
  t.true(KvStore.restore(committed!.data).get("a0") !== undefined);
  t.is(KvStore.restore(committed!.data).get("b4"), undefined, "the image is the store at the snapshot's index");

  // Stopped in the middle of the next one: abandoned, never committed, nothing compacted.
  for (let i = 0; i < 60; i++) put(`c${i}`);
  timers.flush();
  t.is(events.filter((event) => event.startsWith("begin")).length, 2);
  node.stop();
  while (pendingCallbacks.length > 0) pendingCallbacks.shift()!();
  t.is(events.at(-1), "abandon");
  t.is(events.filter((event) => event.startsWith("commit")).length, 1);
});

test("RaftNode: a background snapshot that fails (a full disk) is abandoned, compacts nothing, says what to do, and waits an interval to retry", (t) => {
  const timers = new HandTimers();
  const events: string[] = [];
  const lines: string[] = [];
  let failWrites = true;
  const persistence: LogPersistence = {
    save: () => undefined,
    compact: (through) => void events.push(`compact ${through}`),
    beginSnapshot: (metadata) => {
      events.push(`begin ${metadata.index}`);
      return {
        append: (_part, done) => void timers.soon(() => done(failWrites ? new Error("ENOSPC: no space left on device, write") : undefined)),
        finish: (done) => void timers.soon(() => done()),
        commit: (snapshot) => {
          events.push(`commit ${snapshot.metadata.index}`);
          return true;
        },
        abandon: () => void events.push("abandon"),
      };
    },
  };
  const node = singleVoter(timers, persistence, (line) => void lines.push(line));
  node.start();
  timers.flush();
  t.is(node.status().role, "leader");
  const put = (key: string): void => node.write({ op: "put", key, value: "v" }, () => undefined);
  for (let i = 0; i < 60; i++) put(`a${i}`);
  timers.flush();
  const begun = Number(events[0]!.split(" ")[1]);
  t.deepEqual(events, [`begin ${begun}`, "abandon"]);
  t.regex(lines.join("\n"), new RegExp(`Cannot save this node's snapshot at index ${begun}: ENOSPC.*Free space in the data directory.*next try is at index ${begun + 50}`));
  // Entries short of the next try start nothing; past it, the next try succeeds.
  for (let i = 0; i < 20; i++) put(`b${i}`);
  timers.flush();
  t.is(events.length, 2, "no new attempt before the retry index");
  failWrites = false;
  for (let i = 0; i < 40; i++) put(`c${i}`);
  timers.flush();
  const second = Number(events[2]!.split(" ")[1]);
  t.true(second >= begun + 50);
  t.deepEqual(events.slice(2), [`begin ${second}`, `commit ${second}`, `compact ${second - 10}`]);
  node.stop();
});

test("RaftNode: the leader's snapshot restored in the core before its Ready is saved wins over our own still being written (swarm seed 3234)", (t) => {
  const timers = new HandTimers();
  const events: string[] = [];
  const held: (() => void)[] = [];
  const sent: string[] = [];
  const persistence: LogPersistence = {
    save: (batch) => void (batch.snapshot && events.push(`save leader's snapshot ${batch.snapshot.metadata.index}`)),
    compact: (through) => void events.push(`compact ${through}`),
    beginSnapshot: (metadata) => {
      events.push(`begin ${metadata.index}`);
      return {
        append: (_part, done) => void held.push(() => done()),
        finish: (done) => void held.push(() => done()),
        commit: (snapshot) => {
          events.push(`commit ${snapshot.metadata.index}`);
          return true;
        },
        abandon: () => void events.push("abandon"),
      };
    },
  };
  // A follower of node 1 that never campaigns here.
  const node = singleVoter(timers, persistence, undefined, {
    id: 2,
    membership: { voters: [1, 2, 3], learners: [] },
    electionTimeoutMs: 100_000,
    preVote: true,
    checkQuorum: true,
    transport: { send: (message) => void sent.push(message.type) },
  });
  node.start();
  // The leader (node 1, term 1) replicates and commits 60 entries: our own snapshot starts at 60.
  const entries: Entry[] = [];
  for (let index = 1; index <= 60; index++) entries.push({ index, term: 1, kind: "command", data: JSON.stringify({ op: "put", key: `k${index}`, value: "v" }) });
  node.receive({ type: "MsgApp", from: 1, to: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries, commit: 60 });
  timers.flush();
  t.deepEqual(events, ["begin 60"]);
  // The leader's snapshot at 100 arrives; the core restores it at once, its Ready waits for the turn's end.
  const image = new KvStore();
  for (let index = 1; index <= 100; index++) image.apply(index, { op: "put", key: `k${index}`, value: "w" });
  node.receive({ type: "MsgSnap", from: 1, to: 2, term: 1, snapshot: { metadata: { index: 100, term: 1, membership: { voters: [1, 2, 3], learners: [] } }, data: image.snapshot() } });
  // Our own snapshot's writes complete before that Ready is handled.
  t.notThrows(() => {
    while (held.length > 0) held.shift()!();
  });
  timers.flush();
  t.deepEqual(events, ["begin 60", "abandon", "save leader's snapshot 100"]);
  t.is(node.store.appliedIndex, 100);
  node.stop();
});
