/**
 * SimDisk against the shared Disk contract, then its fault model: what a crash keeps and loses, when a
 * torn tail can appear, byte flips in synced data, a failing sync, and that one seed gives one outcome.
 */
import test from "ava";
import seedrandom from "seedrandom";
import { SimDisk, SimulatedCrash } from "../../sim/disk.ts";
import { runDiskContract } from "../storage/disk-contract.ts";

function seeded(seed: number): () => number {
  return seedrandom(`sim-disk-${seed}`);
}

const encoder = new TextEncoder();
const bytes = (value: string): Uint8Array => encoder.encode(value);
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

runDiskContract({
  name: "SimDisk",
  create: () => new SimDisk({ random: seeded(1) }),
  reopen: (disk) => {
    (disk as SimDisk).crash();
    return disk;
  },
});

runDiskContract({
  name: "SimDisk with torn writes",
  create: () => new SimDisk({ random: seeded(2), tornWrites: true }),
  reopen: (disk) => {
    (disk as SimDisk).crash();
    return disk;
  },
});

test("SimDisk.crash() loses unsynced appends and keeps synced bytes, atomic writes and truncates", (t) => {
  const disk = new SimDisk({ random: seeded(3) });
  disk.append("log", bytes("synced|"));
  disk.sync("log");
  disk.append("log", bytes("unsynced"));
  disk.writeAtomic("state", bytes("atomic"));
  disk.append("cut", bytes("0123456789"));
  disk.truncate("cut", 5);
  disk.append("cut", bytes("lost"));
  t.is(disk.unsyncedBytes("log"), 8);
  const fault = disk.crash();
  t.is(text(disk.read("log")), "synced|");
  t.is(text(disk.read("state")), "atomic");
  t.is(text(disk.read("cut")), "01234");
  t.is(fault.kind, "crash");
  if (fault.kind === "crash") {
    t.is(fault.bytesLost, 12);
    t.deepEqual(fault.tornFiles, []);
  }
  t.is(disk.unsyncedBytes("log"), 0);
  t.deepEqual(disk.faultLog, [fault]);
});

test("SimDisk.crash() deletes files created by append() and never synced", (t) => {
  const disk = new SimDisk({ random: seeded(4) });
  disk.append("new", bytes("never synced"));
  disk.append("kept", bytes("synced"));
  disk.sync("kept");
  const fault = disk.crash();
  t.deepEqual(disk.list(), ["kept"]);
  t.is(fault.kind === "crash" ? fault.filesLost.join() : "", "new");
});

test("SimDisk without tornWrites never keeps part of an unsynced append, over many seeds", (t) => {
  for (let seed = 0; seed < 200; seed++) {
    const disk = new SimDisk({ random: seeded(seed) });
    disk.append("log", bytes("durable"));
    disk.sync("log");
    disk.append("log", bytes("-volatile-tail"));
    disk.crash();
    t.is(text(disk.read("log")), "durable", `seed ${seed}`);
  }
});

test("SimDisk with tornWrites keeps a prefix of the unsynced bytes, all prefix lengths occur, synced bytes always stay", (t) => {
  const tail = "-volatile-tail";
  const lengthsSeen = new Set<number>();
  for (let seed = 0; seed < 400; seed++) {
    const disk = new SimDisk({ random: seeded(seed), tornWrites: true });
    disk.append("log", bytes("durable"));
    disk.sync("log");
    disk.append("log", bytes(tail));
    disk.crash();
    const content = text(disk.read("log"))!;
    t.true(content.startsWith("durable"), `seed ${seed}: synced bytes lost`);
    const kept = content.slice("durable".length);
    t.true(tail.startsWith(kept), `seed ${seed}: "${kept}" is not a prefix of the unsynced bytes`);
    lengthsSeen.add(kept.length);
    t.is(disk.unsyncedBytes("log"), 0);
  }
  // Every cut point, including none and all of it, must be reachable: that is what a torn write means.
  t.is(lengthsSeen.size, tail.length + 1);
});

test("SimDisk with tornWrites may keep a never-synced file, holding a prefix of its bytes", (t) => {
  let kept = 0;
  let lost = 0;
  for (let seed = 0; seed < 100; seed++) {
    const disk = new SimDisk({ random: seeded(seed), tornWrites: true });
    disk.append("new", bytes("abcdef"));
    disk.crash();
    const content = text(disk.read("new"));
    if (content === undefined) lost++;
    else {
      kept++;
      t.true("abcdef".startsWith(content));
    }
  }
  t.true(kept > 0 && lost > 0, `kept ${kept}, lost ${lost}`);
});

test("SimDisk.corruptSynced() flips one byte inside synced data of a log file only", (t) => {
  for (let seed = 0; seed < 100; seed++) {
    const disk = new SimDisk({ random: seeded(seed) });
    disk.append("log-000001.seg", bytes("0123456789"));
    disk.sync("log-000001.seg");
    disk.append("log-000001.seg", bytes("unsynced"));
    disk.writeAtomic("hardstate.json", bytes("hs"));
    const before = disk.read("log-000001.seg")!;
    const corruption = disk.corruptSynced();
    t.truthy(corruption);
    t.is(corruption!.name, "log-000001.seg");
    t.true(corruption!.offset >= 0 && corruption!.offset < 10, `offset ${corruption!.offset} outside synced bytes`);
    const after = disk.read("log-000001.seg")!;
    const changed = [...after].flatMap((value, i) => (value === before[i] ? [] : [i]));
    t.deepEqual(changed, [corruption!.offset]);
    t.is(after[corruption!.offset], corruption!.after);
    t.is(text(disk.read("hardstate.json")), "hs");
  }
});

test("SimDisk.corruptSynced() returns undefined when nothing synced can be damaged", (t) => {
  const disk = new SimDisk({ random: seeded(5) });
  t.is(disk.corruptSynced(), undefined);
  disk.append("log-000001.seg", bytes("unsynced"));
  t.is(disk.corruptSynced(), undefined);
  t.is(disk.corruptSynced("missing"), undefined);
  disk.writeAtomic("other", bytes("x"));
  t.is(disk.corruptSynced(), undefined, "only log files are picked without a name");
  t.is(disk.corruptSynced("other")?.name, "other");
});

test("SimDisk.failNextSync makes the next durable operation throw SimulatedCrash without taking effect", (t) => {
  const disk = new SimDisk({ random: seeded(6) });
  disk.append("log", bytes("a"));
  disk.failNextSync = true;
  const error = t.throws(() => disk.sync("log"), { instanceOf: SimulatedCrash });
  t.is(error?.name, "SimulatedCrash");
  t.is(disk.unsyncedBytes("log"), 1);
  t.false(disk.failNextSync);
  disk.writeAtomic("state", bytes("old"));
  disk.failNextSync = true;
  t.throws(() => disk.writeAtomic("state", bytes("new")), { instanceOf: SimulatedCrash });
  t.is(text(disk.read("state")), "old");
  t.deepEqual(disk.faultLog, [
    { kind: "sync-failure", name: "log", operation: "sync" },
    { kind: "sync-failure", name: "state", operation: "writeAtomic" },
  ]);
});

test("SimDisk counts fsyncs and bytes", (t) => {
  const disk = new SimDisk({ random: seeded(7) });
  disk.append("log", new Uint8Array(10));
  disk.append("log", new Uint8Array(5));
  disk.sync("log");
  disk.writeAtomic("state", new Uint8Array(3));
  disk.read("log");
  t.is(disk.fsyncCount, 2);
  t.is(disk.bytesAppended, 15);
  t.is(disk.bytesWrittenAtomic, 3);
  t.is(disk.bytesRead, 15);
});

test("SimDisk is deterministic: one seed and one sequence of operations give the same files and faults", (t) => {
  function run(seed: number): { files: Record<string, string>; faults: string } {
    const disk = new SimDisk({ random: seeded(seed), tornWrites: true });
    for (let round = 0; round < 20; round++) {
      for (const name of ["log-000001.seg", "log-000002.seg", "other"]) {
        disk.append(name, bytes(`${name}:${round};`.repeat(3)));
        if ((round + name.length) % 3 === 0) disk.sync(name);
      }
      if (round % 5 === 4) disk.crash();
      if (round % 7 === 6) disk.corruptSynced();
    }
    const files: Record<string, string> = {};
    for (const name of disk.list()) files[name] = Buffer.from(disk.read(name)!).toString("hex");
    return { files, faults: JSON.stringify(disk.faultLog) };
  }
  for (let seed = 0; seed < 20; seed++) t.deepEqual(run(seed), run(seed), `seed ${seed}`);
  t.notDeepEqual(run(1), run(2), "different seeds should draw different faults");
});
