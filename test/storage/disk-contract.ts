/**
 * The contract every Disk implementation meets, as one suite that each implementation's test file runs
 * with its own constructor (test/storage/file-disk.test.ts, test/sim/disk.test.ts). RaftStorage relies
 * on exactly these semantics, so an implementation that passes here can carry a Raft log.
 *
 * `reopen`, when given, returns the disk as a new process would find it after a clean stop (a new
 * FileDisk on the same directory; the same SimDisk after a crash): what was made durable must be there.
 */
import test from "ava";
import type { Disk } from "../../src/storage/disk.ts";

export interface DiskContractOptions {
  readonly name: string;
  readonly create: () => Disk;
  /** The same files, as seen after the process stopped and started again. */
  readonly reopen?: (disk: Disk) => Disk;
  /** Releases what `create` took (descriptors, temporary directories). */
  readonly dispose?: (disk: Disk) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

function text(data: Uint8Array | undefined): string | undefined {
  return data === undefined ? undefined : decoder.decode(data);
}

export function runDiskContract(options: DiskContractOptions): void {
  const { name } = options;

  /** Runs `body` on a fresh disk and disposes of it afterwards, whatever happened. */
  function onFreshDisk(body: (disk: Disk) => void): void {
    const disk = options.create();
    try {
      body(disk);
    } finally {
      options.dispose?.(disk);
    }
  }

  test(`${name}: a fresh disk lists no files and reads a missing file as undefined`, (t) => {
    onFreshDisk((disk) => {
      t.deepEqual(disk.list(), []);
      t.is(disk.read("missing"), undefined);
    });
  });

  test(`${name}: append() creates the file and read() returns every appended byte in order`, (t) => {
    onFreshDisk((disk) => {
      disk.append("a.log", bytes("hello "));
      disk.append("a.log", bytes("world"));
      t.deepEqual(disk.list(), ["a.log"]);
      t.is(text(disk.read("a.log")), "hello world");
      disk.sync("a.log");
      t.is(text(disk.read("a.log")), "hello world");
    });
  });

  test(`${name}: append() of no bytes creates an empty file`, (t) => {
    onFreshDisk((disk) => {
      disk.append("empty", new Uint8Array(0));
      t.deepEqual(disk.list(), ["empty"]);
      t.is(disk.read("empty")?.length, 0);
    });
  });

  test(`${name}: list() is sorted by name`, (t) => {
    onFreshDisk((disk) => {
      for (const file of ["log-000010.seg", "hardstate.json", "log-000002.seg", "a"]) disk.append(file, bytes(file));
      t.deepEqual(disk.list(), ["a", "hardstate.json", "log-000002.seg", "log-000010.seg"]);
    });
  });

  test(`${name}: read() returns a copy, and append() copies its input`, (t) => {
    onFreshDisk((disk) => {
      const input = bytes("abc");
      disk.append("f", input);
      input[0] = 0x7a;
      const first = disk.read("f")!;
      t.is(text(first), "abc");
      first[1] = 0x7a;
      t.is(text(disk.read("f")), "abc");
    });
  });

  test(`${name}: large appends round-trip byte for byte`, (t) => {
    onFreshDisk((disk) => {
      const chunk = new Uint8Array(100_000);
      for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff;
      for (let i = 0; i < 5; i++) disk.append("big", chunk);
      disk.sync("big");
      const read = disk.read("big")!;
      t.is(read.length, 500_000);
      let mismatches = 0;
      for (let i = 0; i < read.length; i++) if (read[i] !== chunk[i % chunk.length]) mismatches++;
      t.is(mismatches, 0);
    });
  });

  test(`${name}: sync() of a missing file throws`, (t) => {
    onFreshDisk((disk) => {
      t.throws(() => disk.sync("missing"));
    });
  });

  test(`${name}: writeAtomic() creates and replaces a whole file, and appends continue after it`, (t) => {
    onFreshDisk((disk) => {
      disk.writeAtomic("state", bytes("first version, long"));
      t.is(text(disk.read("state")), "first version, long");
      disk.writeAtomic("state", bytes("second"));
      t.is(text(disk.read("state")), "second");
      disk.append("state", bytes("+more"));
      t.is(text(disk.read("state")), "second+more");
      t.deepEqual(disk.list(), ["state"]);
    });
  });

  test(`${name}: writeAtomic() replaces a file that was being appended to`, (t) => {
    onFreshDisk((disk) => {
      disk.append("f", bytes("appended"));
      disk.writeAtomic("f", bytes("atomic"));
      t.is(text(disk.read("f")), "atomic");
      disk.append("f", bytes("!"));
      disk.sync("f");
      t.is(text(disk.read("f")), "atomic!");
    });
  });

  test(`${name}: truncate() cuts the file and appends continue at the new end`, (t) => {
    onFreshDisk((disk) => {
      disk.append("f", bytes("0123456789"));
      disk.sync("f");
      disk.truncate("f", 4);
      t.is(text(disk.read("f")), "0123");
      disk.append("f", bytes("xy"));
      t.is(text(disk.read("f")), "0123xy");
      disk.truncate("f", 0);
      t.is(disk.read("f")?.length, 0);
      t.deepEqual(disk.list(), ["f"]);
      disk.truncate("f", 0);
      t.is(disk.read("f")?.length, 0);
    });
  });

  test(`${name}: truncate() refuses to grow a file or to cut a missing one`, (t) => {
    onFreshDisk((disk) => {
      disk.append("f", bytes("abc"));
      t.throws(() => disk.truncate("f", 4));
      t.is(text(disk.read("f")), "abc");
      t.throws(() => disk.truncate("missing", 0));
      t.deepEqual(disk.list(), ["f"]);
    });
  });

  test(`${name}: remove() deletes a file, a missing file is no error, and a later append starts afresh`, (t) => {
    onFreshDisk((disk) => {
      disk.append("a", bytes("old"));
      disk.sync("a");
      disk.writeAtomic("b", bytes("b"));
      disk.remove("a");
      t.deepEqual(disk.list(), ["b"]);
      t.is(disk.read("a"), undefined);
      t.notThrows(() => disk.remove("a"));
      t.notThrows(() => disk.remove("never-existed"));
      disk.append("a", bytes("new"));
      t.is(text(disk.read("a")), "new");
    });
  });

  if (options.reopen === undefined) {
    test.skip(`${name}: durable operations survive a restart (no reopen given for this disk)`, () => {});
    return;
  }
  const reopen = options.reopen;

  test(`${name}: synced appends, atomic writes, truncates and removals survive a restart`, (t) => {
    let disk = options.create();
    try {
      disk.append("log", bytes("one,"));
      disk.append("log", bytes("two,"));
      disk.sync("log");
      disk.append("cut", bytes("abcdef"));
      disk.sync("cut");
      disk.truncate("cut", 2);
      disk.writeAtomic("state", bytes("v1"));
      disk.writeAtomic("state", bytes("v2"));
      disk.append("gone", bytes("x"));
      disk.sync("gone");
      disk.remove("gone");
      disk = reopen(disk);
      t.deepEqual(disk.list(), ["cut", "log", "state"]);
      t.is(text(disk.read("log")), "one,two,");
      t.is(text(disk.read("cut")), "ab");
      t.is(text(disk.read("state")), "v2");
      disk.append("log", bytes("three"));
      disk.sync("log");
      t.is(text(disk.read("log")), "one,two,three");
    } finally {
      options.dispose?.(disk);
    }
  });
}
