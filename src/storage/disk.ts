/**
 * The file system as the storage layer sees it: a flat directory of named files.
 *
 * Two implementations share this interface and one contract suite (test/storage/disk-contract.ts):
 * `FileDisk` (src/storage/file-disk.ts) over node:fs for production, and `SimDisk` (sim/disk.ts) in memory
 * for the simulator, which also models what real disks do at a crash. The interface is synchronous on
 * purpose: the Raft driver persists a Ready batch before it sends anything, and a synchronous disk keeps
 * the simulator deterministic and the production loop simple (one fsync per batch is the group commit).
 */
export interface Disk {
  /** Names of the files present, sorted. */
  list(): string[];
  /** The whole content of `name`, or undefined when it does not exist. */
  read(name: string): Uint8Array | undefined;
  /** Appends to `name`, creating it. Not durable until `sync(name)` returns. */
  append(name: string, data: Uint8Array): void;
  /** Makes every earlier write to `name` durable (fsync). */
  sync(name: string): void;
  /** Replaces the whole content of `name` atomically and durably: readers see the old or the new bytes. */
  writeAtomic(name: string, data: Uint8Array): void;
  /** Cuts `name` to `size` bytes, durably. */
  truncate(name: string, size: number): void;
  /** Deletes `name`, durably; a missing file is not an error. */
  remove(name: string): void;
  /**
   * Optional: a new file written off the event loop, then put in place of `name` atomically (a snapshot
   * of a large store). A disk without it has snapshots written with writeAtomic, on the loop.
   */
  openBackground?(name: string): BackgroundFile;
}

/**
 * A file written in the background. Its callbacks run in a later turn, never inside the call. Until
 * commit() nothing of it is visible under its target's name, and a crash leaves the old file.
 */
export interface BackgroundFile {
  /** Writes `data` at byte `offset`; `done` runs once the write has returned (not yet durable). */
  write(data: Uint8Array, offset: number, done: (error?: Error) => void): void;
  /** Makes every write before it durable. */
  sync(done: (error?: Error) => void): void;
  /** Puts the file in place of its target, durably (rename, then the directory's fsync); synchronous. */
  commit(): void;
  /** Deletes the file; its target is left as it was. */
  abandon(): void;
}
