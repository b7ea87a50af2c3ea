/**
 * The simulated Disk: files in memory, with what a real disk keeps and loses at a crash made explicit.
 *
 * Each file holds its bytes and how many of them are durable (`syncedBytes`); only `append` creates
 * bytes that are not durable yet, because every other operation of the Disk interface is durable when
 * it returns. A file created by `append` exists durably only once it was synced. All choices come from
 * the injected `random` function, so one seed gives one run, bit for bit.
 *
 * Faults injected, and why the storage layer can recover from them (or must refuse to start):
 * - `crash()`, as kill -9 or a power cut: every unsynced append is lost, and a file never synced vanishes.
 *   Recoverable: nothing that was acknowledged depended on those bytes, because Raft persists (and syncs)
 *   before it sends.
 * - torn writes (option `tornWrites`): at a crash, a random prefix of each file's unsynced bytes may
 *   survive, cutting the last record anywhere, inside its length, checksum or payload. Recoverable: the
 *   cut is always at the end of the newest log segment, after everything synced, so the storage layer
 *   truncates the partial record away. (The prefix is the model; sector reordering is not simulated.)
 * - `corruptSynced()`: flips one byte inside synced bytes of a log file (bit rot, a misdirected write).
 *   Not recoverable locally, by design: the checksum finds it and the node must refuse to start, naming
 *   the file and byte, so the operator restores it from a healthy member. One exception is documented in
 *   src/storage/raft-storage.ts: damage to the very last record of the newest segment cannot be told
 *   apart from a torn write, so that record is dropped like one.
 * - `failNextSync`: the next operation that syncs (`sync`, `writeAtomic`, `truncate`, `remove`) throws
 *   SimulatedCrash instead of taking effect, so the simulator can place a kill inside a write; it then
 *   calls `crash()`. Recoverable like any crash: that operation had not returned, so nothing depended on it.
 * Every fault is recorded in `faultLog`, in order, for traces and failure reports.
 */
import { assert } from "../src/assert.ts";
import type { Disk } from "../src/storage/disk.ts";

export interface SimDiskOptions {
  /** Uniform in [0, 1); the simulator passes its seeded generator. Never Math.random. */
  readonly random: () => number;
  /** Let a crash keep a random prefix of each file's unsynced bytes. Off: unsynced bytes are all lost. */
  readonly tornWrites?: boolean;
  /** Which files `corruptSynced()` picks from when no name is given. Default: Raft log segments. */
  readonly logFilePattern?: RegExp;
}

export type SimDiskFault =
  | {
      readonly kind: "crash";
      /** Unsynced bytes dropped, over all files. */
      readonly bytesLost: number;
      /** Files left with a partial unsynced tail, and how many unsynced bytes survived in each. */
      readonly tornFiles: readonly { readonly name: string; readonly bytesKept: number }[];
      /** Files created but never synced, which the crash deleted. */
      readonly filesLost: readonly string[];
    }
  | { readonly kind: "corruption"; readonly name: string; readonly offset: number; readonly before: number; readonly after: number }
  | { readonly kind: "sync-failure"; readonly name: string; readonly operation: SimDiskSyncOperation };

export type SimDiskSyncOperation = "sync" | "writeAtomic" | "truncate" | "remove";

/** Thrown by the operation that `failNextSync` picked: the process dies inside that write. */
export class SimulatedCrash extends Error {
  override name = "SimulatedCrash";
  readonly file: string;
  readonly operation: SimDiskSyncOperation;

  constructor(file: string, operation: SimDiskSyncOperation) {
    super(`Simulated crash inside ${operation}("${file}")`);
    this.file = file;
    this.operation = operation;
  }
}

export interface SimDiskCorruption {
  readonly name: string;
  readonly offset: number;
  readonly before: number;
  readonly after: number;
}

interface SimFile {
  /** Capacity grows by doubling so appends stay amortised O(bytes). */
  bytes: Uint8Array;
  sizeBytes: number;
  /** bytes[0, syncedBytes) survive a crash. */
  syncedBytes: number;
  /** False while the file was created by `append` and never synced: a crash deletes it. */
  durable: boolean;
}

const CAPACITY_BYTES_MIN = 256;

export class SimDisk implements Disk {
  /** Syncs that reached the disk: `sync` calls, and one per durable operation (atomic write, truncate, remove). */
  fsyncCount = 0;
  bytesAppended = 0;
  bytesWrittenAtomic = 0;
  bytesRead = 0;
  /** Every fault injected, in order. */
  readonly faultLog: SimDiskFault[] = [];
  /** When set, the next operation that syncs throws SimulatedCrash without taking effect (then clears). */
  failNextSync = false;

  private readonly files = new Map<string, SimFile>();
  private readonly random: () => number;
  private readonly tornWrites: boolean;
  private readonly logFilePattern: RegExp;

  constructor(options: SimDiskOptions) {
    this.random = options.random;
    this.tornWrites = options.tornWrites ?? false;
    this.logFilePattern = options.logFilePattern ?? /^log-\d+\.seg$/;
  }

  list(): string[] {
    return [...this.files.keys()].sort();
  }

  read(name: string): Uint8Array | undefined {
    const file = this.files.get(name);
    if (file === undefined) return undefined;
    this.bytesRead += file.sizeBytes;
    return file.bytes.slice(0, file.sizeBytes);
  }

  append(name: string, data: Uint8Array): void {
    let file = this.files.get(name);
    if (file === undefined) {
      file = { bytes: new Uint8Array(Math.max(CAPACITY_BYTES_MIN, data.length)), sizeBytes: 0, syncedBytes: 0, durable: false };
      this.files.set(name, file);
    }
    const sizeBytes = file.sizeBytes + data.length;
    if (sizeBytes > file.bytes.length) {
      const grown = new Uint8Array(Math.max(sizeBytes, file.bytes.length * 2));
      grown.set(file.bytes.subarray(0, file.sizeBytes));
      file.bytes = grown;
    }
    file.bytes.set(data, file.sizeBytes);
    file.sizeBytes = sizeBytes;
    this.bytesAppended += data.length;
  }

  sync(name: string): void {
    this.maybeFailSync(name, "sync");
    const file = this.files.get(name);
    assert(file !== undefined, `sync(${name}): no such file`);
    file.syncedBytes = file.sizeBytes;
    file.durable = true;
    this.fsyncCount++;
  }

  writeAtomic(name: string, data: Uint8Array): void {
    this.maybeFailSync(name, "writeAtomic");
    const bytes = new Uint8Array(Math.max(CAPACITY_BYTES_MIN, data.length));
    bytes.set(data);
    this.files.set(name, { bytes, sizeBytes: data.length, syncedBytes: data.length, durable: true });
    this.bytesWrittenAtomic += data.length;
    this.fsyncCount++;
  }

  truncate(name: string, size: number): void {
    this.maybeFailSync(name, "truncate");
    const file = this.files.get(name);
    assert(file !== undefined, `truncate(${name}): no such file`);
    assert(Number.isInteger(size) && size >= 0, `truncate(${name}): size ${size} is not a byte count`);
    assert(size <= file.sizeBytes, `truncate(${name}): size ${size} exceeds the file's ${file.sizeBytes} bytes`);
    // ftruncate followed by fsync: the remaining bytes, and the file itself, are durable.
    file.sizeBytes = size;
    file.syncedBytes = size;
    file.durable = true;
    this.fsyncCount++;
  }

  remove(name: string): void {
    this.maybeFailSync(name, "remove");
    if (this.files.delete(name)) this.fsyncCount++;
  }

  /**
   * Simulates kill -9 of the process together with a power cut: unsynced appends are lost (or, with
   * `tornWrites`, a random prefix of them survives), and files never synced disappear (or, with
   * `tornWrites`, may survive holding a prefix of what was written). Files are visited in name order, so
   * the random draws are deterministic.
   */
  crash(): SimDiskFault {
    let bytesLost = 0;
    const tornFiles: { name: string; bytesKept: number }[] = [];
    const filesLost: string[] = [];
    for (const name of this.list()) {
      const file = this.files.get(name)!;
      const unsyncedBytes = file.sizeBytes - file.syncedBytes;
      let bytesKept = 0;
      if (this.tornWrites && unsyncedBytes > 0) bytesKept = Math.floor(this.random() * (unsyncedBytes + 1));
      const survives = file.durable || (this.tornWrites && this.random() < 0.5);
      if (!survives) {
        this.files.delete(name);
        filesLost.push(name);
        bytesLost += file.sizeBytes;
        continue;
      }
      file.sizeBytes = file.syncedBytes + bytesKept;
      file.syncedBytes = file.sizeBytes;
      file.durable = true;
      bytesLost += unsyncedBytes - bytesKept;
      if (bytesKept > 0 && bytesKept < unsyncedBytes) tornFiles.push({ name, bytesKept });
    }
    const fault: SimDiskFault = { kind: "crash", bytesLost, tornFiles, filesLost };
    this.faultLog.push(fault);
    return fault;
  }

  /**
   * Flips one byte inside the synced bytes of `name`, or, without a name, of a random log file that has
   * synced bytes. Returns what was changed, or undefined when there is nothing synced to damage.
   */
  corruptSynced(name?: string, options: { bytesMax?: number } = {}): SimDiskCorruption | undefined {
    const candidates =
      name === undefined
        ? this.list().filter((candidate) => this.logFilePattern.test(candidate) && this.files.get(candidate)!.syncedBytes > 0)
        : [name].filter((candidate) => (this.files.get(candidate)?.syncedBytes ?? 0) > 0);
    if (candidates.length === 0) return undefined;
    const chosen = candidates[Math.floor(this.random() * candidates.length)]!;
    const file = this.files.get(chosen)!;
    const range = Math.min(file.syncedBytes, options.bytesMax ?? file.syncedBytes);
    if (range <= 0) return undefined;
    const offset = Math.floor(this.random() * range);
    const before = file.bytes[offset]!;
    const after = before ^ (1 + Math.floor(this.random() * 255));
    assert(after !== before && after >= 0 && after <= 255, "corruptSynced(): the flip must change the byte");
    file.bytes[offset] = after;
    const corruption: SimDiskCorruption = { name: chosen, offset, before, after };
    this.faultLog.push({ kind: "corruption", ...corruption });
    return corruption;
  }

  private maybeFailSync(name: string, operation: SimDiskSyncOperation): void {
    if (!this.failNextSync) return;
    this.failNextSync = false;
    this.faultLog.push({ kind: "sync-failure", name, operation });
    throw new SimulatedCrash(name, operation);
  }

  /** Bytes of `name` that a crash now would keep (without torn writes), for tests and checkers. */
  syncedBytes(name: string): number {
    return this.files.get(name)?.syncedBytes ?? 0;
  }

  /** Bytes of `name` appended but not yet synced. */
  unsyncedBytes(name: string): number {
    const file = this.files.get(name);
    return file === undefined ? 0 : file.sizeBytes - file.syncedBytes;
  }
}
