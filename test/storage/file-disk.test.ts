/**
 * FileDisk against the shared Disk contract, plus what only a real directory shows: files persist for a
 * new instance, temporary files of an interrupted atomic write are cleaned up and never listed, and
 * every durable operation issues an fsync.
 */
import test from "ava";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FileDisk } from "../../src/storage/file-disk.ts";
import type { Disk } from "../../src/storage/disk.ts";
import { runDiskContract } from "./disk-contract.ts";

function temporaryDirectory(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "pgraft-file-disk-"));
}

function dispose(disk: Disk): void {
  const fileDisk = disk as FileDisk;
  fileDisk.close();
  fs.rmSync(fileDisk.directory, { recursive: true, force: true });
}

runDiskContract({
  name: "FileDisk",
  create: () => new FileDisk(temporaryDirectory()),
  reopen: (disk) => {
    const fileDisk = disk as FileDisk;
    fileDisk.close();
    return new FileDisk(fileDisk.directory);
  },
  dispose,
});

test("FileDisk creates its directory, nested, when it does not exist", (t) => {
  const root = temporaryDirectory();
  try {
    const disk = new FileDisk(path.join(root, "a", "b"));
    disk.writeAtomic("x", new Uint8Array([1, 2, 3]));
    t.deepEqual([...fs.readFileSync(path.join(root, "a", "b", "x"))], [1, 2, 3]);
    disk.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("FileDisk deletes temporary files left by an interrupted writeAtomic() and never lists them", (t) => {
  const directory = temporaryDirectory();
  try {
    fs.writeFileSync(path.join(directory, "hardstate.json.atomic-tmp"), "half");
    fs.writeFileSync(path.join(directory, "hardstate.json"), "old");
    const disk = new FileDisk(directory);
    t.deepEqual(disk.list(), ["hardstate.json"]);
    t.deepEqual(fs.readdirSync(directory).sort(), ["hardstate.json"]);
    t.is(new TextDecoder().decode(disk.read("hardstate.json")), "old");
    t.throws(() => disk.append("x.atomic-tmp", new Uint8Array(1)), { message: /reserved/ });
    t.throws(() => disk.append("../escape", new Uint8Array(1)), { message: /plain file name/ });
    disk.close();
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test("FileDisk issues an fsync for every sync(), writeAtomic(), truncate() and remove(), and counts bytes", (t) => {
  const disk = new FileDisk(temporaryDirectory());
  try {
    disk.append("log", new Uint8Array(10));
    t.is(disk.fsyncCount, 0);
    disk.sync("log"); // the file, and the directory because the file is new
    t.is(disk.fsyncCount, 2);
    disk.append("log", new Uint8Array(5));
    disk.sync("log"); // the file only
    t.is(disk.fsyncCount, 3);
    disk.writeAtomic("state", new Uint8Array(7)); // temporary file and directory
    t.is(disk.fsyncCount, 5);
    disk.truncate("log", 3);
    t.is(disk.fsyncCount, 6);
    disk.remove("log");
    t.is(disk.fsyncCount, 7);
    t.is(disk.bytesWritten, 22);
  } finally {
    dispose(disk);
  }
});
