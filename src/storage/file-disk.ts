/**
 * The production Disk: one directory on a real file system, through node:fs's synchronous calls.
 *
 * Durability is the whole point, so each operation says exactly what it syncs:
 * - `append` writes through a file descriptor kept open (O_APPEND) and syncs nothing;
 * - `sync` fsyncs the file and, the first time after the file was created, the directory too, because a
 *   new file's directory entry is not durable until its directory is synced;
 * - `writeAtomic` writes a temporary file, fsyncs it, renames it over the target and fsyncs the
 *   directory, so a crash leaves the old bytes or the new ones, never a mix;
 * - `truncate` and `remove` fsync the file or the directory before they return.
 * Temporary files left by a crash inside `writeAtomic` are deleted when the directory is opened and are
 * never listed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert } from "../assert.ts";
import type { BackgroundFile, Disk } from "./disk.ts";

const TEMPORARY_SUFFIX = ".atomic-tmp";
/** Numbers the background files of this process, so that no two share a name. */
let backgroundSequence = 0;

export class FileDisk implements Disk {
  readonly directory: string;
  /** fsync calls issued (files and the directory), for benchmarks and metrics. */
  fsyncCount = 0;
  /** Bytes handed to write(2), appends and atomic writes together. */
  bytesWritten = 0;

  /** Append descriptors, opened on first use and kept until the file is replaced, removed or closed. */
  private readonly descriptors = new Map<string, number>();
  /** The abandon() of every background file not yet committed or abandoned. */
  private readonly backgroundFiles = new Set<() => void>();
  /** Files created by `append` whose directory entry no sync has covered yet. */
  private readonly namesUnsyncedInDirectory = new Set<string>();
  private directoryDescriptor: number | undefined;

  constructor(directory: string) {
    this.directory = path.resolve(directory);
    fs.mkdirSync(this.directory, { recursive: true });
    this.directoryDescriptor = fs.openSync(this.directory, "r");
    let removed = false;
    for (const name of fs.readdirSync(this.directory)) {
      if (!name.endsWith(TEMPORARY_SUFFIX)) continue;
      fs.rmSync(path.join(this.directory, name), { force: true });
      removed = true;
    }
    if (removed) this.syncDirectory();
  }

  list(): string[] {
    return fs
      .readdirSync(this.directory)
      .filter((name) => !name.endsWith(TEMPORARY_SUFFIX))
      .sort();
  }

  read(name: string): Uint8Array | undefined {
    let buffer: Buffer;
    try {
      buffer = fs.readFileSync(this.pathOf(name));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  append(name: string, data: Uint8Array): void {
    let descriptor = this.descriptors.get(name);
    if (descriptor === undefined) {
      const existed = fs.existsSync(this.pathOf(name));
      descriptor = fs.openSync(this.pathOf(name), "a");
      this.descriptors.set(name, descriptor);
      if (!existed) this.namesUnsyncedInDirectory.add(name);
    }
    writeAll(descriptor, data);
    this.bytesWritten += data.length;
  }

  sync(name: string): void {
    const descriptor = this.descriptors.get(name);
    if (descriptor !== undefined) {
      fs.fsyncSync(descriptor);
      this.fsyncCount++;
    } else {
      // Nothing was appended through us; the file must still exist (a missing file throws ENOENT).
      const temporary = fs.openSync(this.pathOf(name), "r");
      try {
        fs.fsyncSync(temporary);
        this.fsyncCount++;
      } finally {
        fs.closeSync(temporary);
      }
    }
    if (this.namesUnsyncedInDirectory.delete(name)) this.syncDirectory();
  }

  writeAtomic(name: string, data: Uint8Array): void {
    this.closeDescriptor(name);
    const temporaryPath = this.pathOf(name) + TEMPORARY_SUFFIX;
    const descriptor = fs.openSync(temporaryPath, "w");
    try {
      writeAll(descriptor, data);
      fs.fsyncSync(descriptor);
      this.fsyncCount++;
    } finally {
      fs.closeSync(descriptor);
    }
    this.bytesWritten += data.length;
    fs.renameSync(temporaryPath, this.pathOf(name));
    this.namesUnsyncedInDirectory.delete(name);
    this.syncDirectory();
  }

  /**
   * A temporary file beside `name` (its name ends in the reserved suffix, so a crash leaves nothing the
   * next open does not delete), written with node:fs's callback API on libuv's thread pool. commit()
   * renames it over `name` and fsyncs the directory, as writeAtomic does.
   */
  openBackground(name: string): BackgroundFile {
    const target = this.pathOf(name);
    // A name of its own: an abandoned file still finishing its last write must never share an inode
    // with a newer one for the same target (a stale write would land inside it after its checksum).
    const temporaryPath = `${target}.${process.pid}-${++backgroundSequence}.background${TEMPORARY_SUFFIX}`;
    const descriptor = fs.openSync(temporaryPath, "wx", 0o600);
    let state: "open" | "abandoning" | "closed" = "open";
    // Writes and syncs on the thread pool. The descriptor is closed only once none is in flight: a
    // number closed under a running write could be reused by another open and written to.
    let inFlight = 0;
    const settle = (): void => {
      if (state !== "abandoning" || inFlight > 0) return;
      state = "closed";
      fs.closeSync(descriptor);
      fs.rmSync(temporaryPath, { force: true });
    };
    const abandon = (): void => {
      if (state !== "open") return;
      state = "abandoning";
      this.backgroundFiles.delete(abandon);
      settle();
    };
    this.backgroundFiles.add(abandon);
    const start = (what: string, done: (error?: Error) => void): boolean => {
      if (state === "open") {
        inFlight++;
        return true;
      }
      process.nextTick(() => done(new Error(`FileDisk: ${what} on ${temporaryPath} after it was committed or abandoned`)));
      return false;
    };
    const finish = (done: (error?: Error) => void, error?: Error): void => {
      inFlight--;
      settle();
      done(error);
    };
    return {
      write: (data, offset, done) => {
        if (!start("write", done)) return;
        const writeFrom = (written: number): void => {
          fs.write(descriptor, data, written, data.length - written, offset + written, (error, bytes) => {
            if (error) return finish(done, error);
            this.bytesWritten += bytes;
            if (written + bytes < data.length && state === "open") return writeFrom(written + bytes);
            finish(done);
          });
        };
        writeFrom(0);
      },
      sync: (done) => {
        if (!start("sync", done)) return;
        fs.fsync(descriptor, (error) => {
          if (!error) this.fsyncCount++;
          finish(done, error ?? undefined);
        });
      },
      commit: () => {
        assert(state === "open", `FileDisk: commit of ${temporaryPath} after it was committed or abandoned`);
        assert(inFlight === 0, `FileDisk: commit of ${temporaryPath} while ${inFlight} writes are in flight`);
        state = "closed";
        this.backgroundFiles.delete(abandon);
        fs.closeSync(descriptor);
        this.closeDescriptor(name);
        fs.renameSync(temporaryPath, target);
        this.namesUnsyncedInDirectory.delete(name);
        this.syncDirectory();
      },
      abandon,
    };
  }

  truncate(name: string, size: number): void {
    assert(Number.isInteger(size) && size >= 0, `truncate(${name}): size ${size} is not a byte count`);
    const open = this.descriptors.get(name);
    const descriptor = open ?? fs.openSync(this.pathOf(name), "r+");
    try {
      const sizeBytes = fs.fstatSync(descriptor).size;
      assert(size <= sizeBytes, `truncate(${name}): size ${size} exceeds the file's ${sizeBytes} bytes`);
      fs.ftruncateSync(descriptor, size);
      fs.fsyncSync(descriptor);
      this.fsyncCount++;
    } finally {
      if (open === undefined) fs.closeSync(descriptor);
    }
    if (this.namesUnsyncedInDirectory.delete(name)) this.syncDirectory();
  }

  remove(name: string): void {
    this.closeDescriptor(name);
    this.namesUnsyncedInDirectory.delete(name);
    try {
      fs.unlinkSync(this.pathOf(name));
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    this.syncDirectory();
  }

  /** Closes every descriptor (background files are abandoned). The disk must not be used afterwards. */
  close(): void {
    for (const abandon of [...this.backgroundFiles]) abandon();
    for (const name of [...this.descriptors.keys()]) this.closeDescriptor(name);
    if (this.directoryDescriptor !== undefined) fs.closeSync(this.directoryDescriptor);
    this.directoryDescriptor = undefined;
  }

  private pathOf(name: string): string {
    assert(name.length > 0 && !name.includes("/") && !name.includes("\\"), `FileDisk: "${name}" is not a plain file name`);
    assert(name !== "." && name !== "..", `FileDisk: "${name}" is not a plain file name`);
    assert(!name.endsWith(TEMPORARY_SUFFIX), `FileDisk: names ending in "${TEMPORARY_SUFFIX}" are reserved`);
    return path.join(this.directory, name);
  }

  private closeDescriptor(name: string): void {
    const descriptor = this.descriptors.get(name);
    if (descriptor === undefined) return;
    this.descriptors.delete(name);
    fs.closeSync(descriptor);
  }

  private syncDirectory(): void {
    assert(this.directoryDescriptor !== undefined, "FileDisk used after close()");
    fs.fsyncSync(this.directoryDescriptor);
    this.fsyncCount++;
  }
}

function writeAll(descriptor: number, data: Uint8Array): void {
  let written = 0;
  while (written < data.length) {
    written += fs.writeSync(descriptor, data, written, data.length - written);
  }
}

function isMissing(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ENOENT";
}
