/**
 * The Raft log as the core sees it: every entry after the last snapshot, in memory, plus the
 * bookkeeping of which entries are already persisted, committed and handed out for application.
 *
 * Keeping the uncompacted log in memory is deliberate: pgraft.max_log_entries bounds it, and it keeps
 * the core free of I/O (the runtime persists what `ready()` hands it). Index arithmetic is the one
 * place off-by-one bugs hide, so every public method asserts its bounds.
 */
import { assert } from "../assert.ts";
import type { Entry, Snapshot } from "./types.ts";

export class RaftLog {
  /** Index and term of the last entry covered by the snapshot (0/0 for none). */
  snapshotIndex = 0;
  snapshotTerm = 0;
  /** entries[i].index === snapshotIndex + 1 + i. */
  private entries: Entry[] = [];
  /** Highest index known to be persisted by the runtime. */
  stableIndex = 0;
  /** First index not yet handed to the runtime for persistence. */
  unstableFrom = 1;
  committed = 0;
  /** Highest index handed out for application (in a Ready). */
  applying = 0;
  /** Highest index the runtime confirmed as applied (advance). */
  applied = 0;
  /** A snapshot received from the leader and not yet persisted. */
  pendingSnapshot: Snapshot | undefined;

  /** Builds the log from what the runtime recovered from storage (all of it persisted). */
  static restore(options: { snapshot?: Snapshot; entries: readonly Entry[]; commit: number; applied: number }): RaftLog {
    const log = new RaftLog();
    if (options.snapshot) {
      log.snapshotIndex = options.snapshot.metadata.index;
      log.snapshotTerm = options.snapshot.metadata.term;
    }
    let expected = log.snapshotIndex + 1;
    for (const entry of options.entries) {
      assert(entry.index === expected, `restore(): entries not contiguous: expected ${expected}, got ${entry.index}`);
      expected++;
    }
    log.entries = [...options.entries];
    log.stableIndex = log.lastIndex();
    log.unstableFrom = log.lastIndex() + 1;
    assert(options.commit <= log.lastIndex(), `restore(): commit ${options.commit} beyond last index ${log.lastIndex()}`);
    log.committed = Math.max(options.commit, log.snapshotIndex);
    const applied = Math.max(options.applied, log.snapshotIndex);
    assert(applied <= log.committed, `restore(): applied ${applied} beyond commit ${log.committed}`);
    log.applied = applied;
    log.applying = applied;
    return log;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.entries.length === 0 ? this.snapshotTerm : this.entries[this.entries.length - 1]!.term;
  }

  /** Term of the entry at `index`, or undefined when it is compacted away or not yet there. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1]!.term;
  }

  entry(index: number): Entry {
    if (!(index > this.snapshotIndex && index <= this.lastIndex())) assert(false, `entry(${index}) outside [${this.firstIndex()}, ${this.lastIndex()}]`);
    return this.entries[index - this.snapshotIndex - 1]!;
  }

  /** Entries in [from, to] inclusive, at most `countMax` of them. */
  slice(from: number, to: number, countMax = Number.MAX_SAFE_INTEGER): Entry[] {
    if (!(from > this.snapshotIndex)) assert(false, `slice(${from}) reaches into the snapshot at ${this.snapshotIndex}`);
    const last = Math.min(to, this.lastIndex(), from + countMax - 1);
    if (last < from) return [];
    return this.entries.slice(from - this.snapshotIndex - 1, last - this.snapshotIndex);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Is a log ending at (lastIndex, lastTerm) at least as up to date as ours (paper 5.4.1)? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends entries that extend the log directly (a leader's proposals). */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.index !== this.lastIndex() + 1) assert(false, `append(): index ${entry.index} does not follow ${this.lastIndex()}`);
      this.entries.push(entry);
    }
  }

  /**
   * Follower side of AppendEntries after the consistency check passed: skips entries we already hold,
   * truncates at the first conflict and appends the rest. Returns the index of the last new entry.
   */
  appendAfter(prevLogIndex: number, entries: readonly Entry[]): number {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      assert(entry.index === prevLogIndex + 1 + i, "appendAfter(): entries not contiguous");
      const existing = this.term(entry.index);
      if (existing === entry.term) continue;
      if (existing !== undefined) {
        // A conflict: our tail from here on came from a leader that lost; committed entries never conflict.
        assert(entry.index > this.committed, `appendAfter(): conflict at ${entry.index} at or below commit ${this.committed}`);
        this.truncateFrom(entry.index);
      }
      this.append(entries.slice(i));
      break;
    }
    return prevLogIndex + entries.length;
  }

  private truncateFrom(index: number): void {
    assert(index > this.snapshotIndex, "truncateFrom() into the snapshot");
    this.entries.length = index - this.snapshotIndex - 1;
    this.unstableFrom = Math.min(this.unstableFrom, index);
    this.stableIndex = Math.min(this.stableIndex, index - 1);
    this.applying = Math.min(this.applying, index - 1);
  }

  /**
   * Fast backtracking helper (etcd's findConflictByTerm): the largest index at or below `index` whose
   * term is at most `term`. Stops at the snapshot boundary.
   */
  lastIndexWithTermAtMost(index: number, term: number): number {
    let candidate = Math.min(index, this.lastIndex());
    while (candidate > this.snapshotIndex) {
      if (this.term(candidate)! <= term) return candidate;
      candidate--;
    }
    return candidate;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (!(index <= this.lastIndex())) assert(false, `commitTo(${index}) beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  unstableEntries(): Entry[] {
    return this.unstableFrom > this.lastIndex() ? [] : this.slice(this.unstableFrom, this.lastIndex());
  }

  /** Committed entries not yet handed out; they are persisted no later than the Ready that carries them. */
  nextCommittedEntries(countMax: number): Entry[] {
    const from = this.applying + 1;
    const to = Math.min(this.committed, this.lastIndex());
    return to < from ? [] : this.slice(from, to, countMax);
  }

  /** Replaces the log with a snapshot from the leader (it covers entries we do not have). */
  restoreSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    assert(index > this.committed, `restoreSnapshot(): snapshot ${index} at or below commit ${this.committed}`);
    this.entries = [];
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.committed = index;
    this.stableIndex = Math.min(this.stableIndex, index);
    this.unstableFrom = index + 1;
    this.applying = index;
    this.pendingSnapshot = snapshot;
  }

  /** Drops entries up to `index` once a snapshot covers them (log compaction). */
  compactTo(index: number, term: number): void {
    assert(index <= this.applied, `compactTo(${index}) beyond applied ${this.applied}`);
    if (index <= this.snapshotIndex) return;
    assert(this.term(index) === term, `compactTo(${index}) with the wrong term`);
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }
}
