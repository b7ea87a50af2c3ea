/**
 * Durable Raft state (log entries, hard state, snapshot) over the Disk interface, so the one
 * implementation runs over SimDisk in the simulator and over FileDisk in production.
 *
 * Files:
 * - `log-000001.seg`, `log-000002.seg`, ...: append-only segments of records `[u32 length][u32 crc32]
 *   [payload]` (little-endian; the CRC covers the payload), each payload the UTF-8 JSON of one Entry. A
 *   segment holds at most `segmentEntriesMax` entries; the log is the segments in sequence order.
 * - `hardstate.json`, `snapshot.json`: one record each, same framing, replaced with `writeAtomic`. The
 *   snapshot's payload is its metadata as one line of JSON, a newline, then the state machine's image
 *   as it is (not escaped into a JSON string a second time: for a store of tens of megabytes that
 *   escaping cost as much as taking the image). A payload without a newline is the older format, the
 *   whole snapshot as JSON, and is still read; a version before this change cannot read the new one
 *   (it reports the file as damaged), so downgrading a node that has taken a snapshot since is not
 *   supported. The image must be well-formed UTF-16 (KvStore.snapshot() makes it with JSON.stringify,
 *   which escapes lone surrogates); UTF-8 would replace a lone surrogate.
 *
 * `save()` persists a Ready batch in the order that keeps recovery sound: the snapshot first, then the
 * entries (one sync for the whole batch: group commit), then the hard state. The log is synced before
 * the hard state is written, so a recovered commit index never points past the recovered log. A segment
 * is synced before the next one is started, so only the newest segment can ever hold unsynced bytes.
 *
 * Recovery (`open()`) therefore accepts damage in one place only: the end of the newest segment, where a
 * crash may have cut the last (unsynced) write. A record cut short there, or a final record running to
 * the end of the file whose checksum fails, is truncated away. Any other failure is damage to synced
 * data and throws StorageCorruptionError, naming the file and byte: a Raft node that silently lost
 * entries it acknowledged could make a committed entry disappear, so it must not start. Limits of that
 * rule: damage to the last record of the newest segment cannot be told apart from a torn write and is
 * dropped like one (the hard state's commit check catches it when that entry was known committed); a
 * damaged length field that points past the end of the file is told apart from a torn write, because the
 * payload that follows still carries the record's checksum.
 */
import { assert } from "../assert.ts";
import { HARD_STATE_EMPTY, type Entry, type EntryKind, type HardState, type Snapshot, type SnapshotMetadata } from "../core/types.ts";
import { crc32, crc32Continue, crc32PrefixLength } from "./crc32.ts";
import type { Disk } from "./disk.ts";

export const SEGMENT_ENTRIES_MAX_DEFAULT = 10_000;
/** No entry is this large; a length field above it is damage, not data. */
export const RECORD_PAYLOAD_BYTES_MAX = 64 * 1024 * 1024;
export const HARD_STATE_FILE = "hardstate.json";
export const SNAPSHOT_FILE = "snapshot.json";

const RECORD_HEADER_BYTES = 8;
const SEGMENT_NAME_PATTERN = /^log-(\d{6,})\.seg$/;
const SEGMENT_SEQUENCE_MAX = 999_999_999;
const ENTRY_KINDS: readonly EntryKind[] = ["command", "noop", "config"];

export type StorageCorruptionCode =
  | "checksum_mismatch"
  | "record_invalid"
  | "record_truncated"
  | "entries_not_contiguous"
  | "segment_empty"
  | "commit_past_log";

/** Raised by `RaftStorage.open()` when data that was synced is damaged or inconsistent. */
export class StorageCorruptionError extends Error {
  override name = "StorageCorruptionError";
  readonly code: StorageCorruptionCode;
  /** The damaged file, as named in the data directory. */
  readonly file: string;
  /** Byte offset of the damaged record inside `file`. */
  readonly offset: number;

  constructor(options: { code: StorageCorruptionCode; file: string; offset: number; problem: string }) {
    super(
      `Cannot start node: ${options.problem} in ${describeFile(options.file)} "${options.file}" at byte ${options.offset}: ` +
        "the data directory is damaged; restore this node from a healthy member (stop it, move its data " +
        "directory aside, and let it rejoin the cluster so the leader sends it a snapshot); do not edit or " +
        "truncate the file by hand, since entries this node acknowledged may be lost",
    );
    this.code = options.code;
    this.file = options.file;
    this.offset = options.offset;
  }
}

export interface RaftStorageOptions {
  /** Entries per segment file before a new one starts. Default 10 000. */
  readonly segmentEntriesMax?: number;
}

export interface RaftStorageState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | undefined;
  /** Every stored entry after the snapshot, contiguous by index. */
  readonly entries: Entry[];
}

export interface SaveBatch {
  readonly hardState?: HardState;
  readonly snapshot?: Snapshot;
  readonly entries: readonly Entry[];
}

/**
 * A snapshot being saved off the event loop (RaftStorage.beginSnapshot): its image goes to a temporary
 * file part by part, then finish() writes the record header and syncs, and commit() puts it in place.
 * Callbacks run in a later turn. The node's own snapshots take this way; one from the leader is saved
 * with save(), at once, and a background one it overtook is not committed.
 */
export interface BackgroundSnapshotWrite {
  /** Appends the next part of the image. */
  append(part: string, done: (error?: Error) => void): void;
  /** Completes the record (length, checksum) and makes it durable. */
  finish(done: (error?: Error) => void): void;
  /**
   * Makes `snapshot` (its data: the parts, joined) the stored snapshot, synchronously. False, and the
   * file deleted, when a snapshot at the same index or a newer one is stored already.
   */
  commit(snapshot: Snapshot): boolean;
  /** Gives up: the temporary file is deleted, the stored snapshot stays. */
  abandon(): void;
}

/** One segment file, as indexed in memory: no file is read again after `open()` except by `state()`. */
interface Segment {
  readonly sequence: number;
  readonly name: string;
  /** Index of the segment's first entry (of the next entry appended, while it is empty). */
  readonly firstIndex: number;
  /** offsets[i] is the byte offset of the record of entry firstIndex + i. */
  readonly offsets: number[];
  /** terms[i] is the term of entry firstIndex + i. */
  readonly terms: number[];
  sizeBytes: number;
  /** Appended since its last sync. */
  unsynced: boolean;
}

/** What parsing one segment found: its entries, and where a torn tail starts (if it has one). */
interface SegmentScan {
  readonly entries: Entry[];
  readonly offsets: number[];
  readonly tornOffset: number | undefined;
}

export class RaftStorage {
  /** Sync-equivalents issued: log syncs, truncates, removals and atomic writes. */
  syncCount = 0;
  /** Bytes handed to the disk (records and atomic files). */
  bytesWritten = 0;
  /** Torn tail bytes cut from the newest segment by `open()` (0 after a clean shutdown). */
  readonly tornBytesTruncated: number;

  private readonly disk: Disk;
  private readonly segmentEntriesMax: number;
  private readonly segments: Segment[] = [];
  private hardState: HardState = HARD_STATE_EMPTY;
  private snapshot: Snapshot | undefined;
  private sequenceNext = 1;
  /** Entries decoded by `open()`, handed out by `state()` until the first change makes them stale. */
  private entriesLoaded: Entry[] | undefined;
  private readonly encoder = new TextEncoder();

  private constructor(disk: Disk, segmentEntriesMax: number, tornBytesTruncated: number) {
    this.disk = disk;
    this.segmentEntriesMax = segmentEntriesMax;
    this.tornBytesTruncated = tornBytesTruncated;
  }

  /**
   * Recovers the state persisted on `disk` (empty on a fresh disk). Cuts a torn tail off the newest
   * segment and drops log segments a newer snapshot made stale; throws StorageCorruptionError for
   * anything else that is wrong.
   */
  static open(disk: Disk, options: RaftStorageOptions = {}): RaftStorage {
    const segmentEntriesMax = options.segmentEntriesMax ?? SEGMENT_ENTRIES_MAX_DEFAULT;
    assert(Number.isInteger(segmentEntriesMax) && segmentEntriesMax >= 1, `segmentEntriesMax must be a positive integer, received ${segmentEntriesMax}`);
    const snapshot = readSingleRecordFile(disk, SNAPSHOT_FILE, decodeSnapshot);
    const hardStateStored = readSingleRecordFile(disk, HARD_STATE_FILE, decodeHardState) ?? HARD_STATE_EMPTY;
    const snapshotIndex = snapshot?.metadata.index ?? 0;
    const log = loadSegments(disk, snapshotIndex);

    const storage = new RaftStorage(disk, segmentEntriesMax, log.torn?.bytes ?? 0);
    storage.snapshot = snapshot;
    storage.segments.push(...log.segments);
    storage.sequenceNext = (log.segments.at(-1)?.sequence ?? 0) + 1;
    const logAgrees = storage.checkLogAgainstSnapshot();
    // Repairs, only once every check passed: both undo what a crash inside a save can leave behind.
    if (log.torn !== undefined) disk.truncate(log.torn.name, log.torn.offset);
    if (!logAgrees) storage.removeAllSegments();
    // A snapshot only holds committed entries, so the commit index is at least its index even when a
    // crash came between writing the snapshot and the hard state.
    storage.hardState = { ...hardStateStored, commit: Math.max(hardStateStored.commit, snapshotIndex) };
    if (storage.hardState.commit > storage.lastIndex()) {
      throw new StorageCorruptionError({
        code: "commit_past_log",
        file: HARD_STATE_FILE,
        offset: 0,
        problem: `commit index ${storage.hardState.commit} is past the last log entry ${storage.lastIndex()}`,
      });
    }
    storage.entriesLoaded = logAgrees ? log.entries.filter((entry) => entry.index > snapshotIndex) : [];
    return storage;
  }

  /** The persisted state: what `open()` recovered, updated by every `save()` and `compact()` since. */
  state(): RaftStorageState {
    if (this.entriesLoaded === undefined) this.entriesLoaded = this.readEntries();
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entriesLoaded] };
  }

  /** Index of the oldest entry still in a segment (entries before it live only in the snapshot). */
  firstIndex(): number {
    const first = this.segments[0];
    if (first === undefined || first.offsets.length === 0) return this.lastIndex() + 1;
    return first.firstIndex;
  }

  /** The index of the stored snapshot (0: none). */
  snapshotIndex(): number {
    return this.snapshot?.metadata.index ?? 0;
  }

  /** Index of the newest entry stored, or the snapshot's index when the log holds nothing after it. */
  lastIndex(): number {
    const last = this.segments.at(-1);
    const snapshotIndex = this.snapshot?.metadata.index ?? 0;
    if (last === undefined) return snapshotIndex;
    const lastIndex = segmentNextIndex(last) - 1;
    assert(lastIndex >= snapshotIndex, `lastIndex(): the log ends at ${lastIndex}, before the snapshot at ${snapshotIndex}`);
    return lastIndex;
  }

  /** Term of the entry at `index`, or undefined when no segment holds it. */
  term(index: number): number | undefined {
    for (let position = this.segments.length - 1; position >= 0; position--) {
      const segment = this.segments[position]!;
      if (index >= segment.firstIndex) return segment.terms[index - segment.firstIndex];
    }
    return undefined;
  }

  /**
   * Persists a Ready batch durably, in order: snapshot, entries (replacing the stored tail from
   * `entries[0].index` on), one log sync, hard state. Entries saved here are never re-read from disk.
   */
  save(batch: SaveBatch): void {
    if (batch.snapshot !== undefined) this.saveSnapshot(batch.snapshot);
    if (batch.entries.length > 0) this.saveEntries(batch.entries);
    if (batch.hardState !== undefined) this.saveHardState(batch.hardState);
  }

  /**
   * Deletes the oldest segments whose entries are all at or below `throughIndex`, which a snapshot must
   * cover. The newest segment is always kept, since appends continue into it.
   */
  compact(throughIndex: number): void {
    const snapshotIndex = this.snapshot?.metadata.index ?? 0;
    assert(this.snapshot !== undefined, `compact(${throughIndex}): no snapshot covers the entries`);
    assert(throughIndex <= snapshotIndex, `compact(${throughIndex}): beyond the snapshot at ${snapshotIndex}`);
    while (this.segments.length > 1 && segmentNextIndex(this.segments[0]!) - 1 <= throughIndex) {
      const segment = this.segments.shift()!;
      this.disk.remove(segment.name);
      this.syncCount++;
    }
    assert(this.firstIndex() <= snapshotIndex + 1, "compact(): a gap opened between the snapshot and the log");
  }

  /**
   * Starts saving a snapshot at `metadata` off the event loop, or returns undefined when the disk
   * cannot write in the background (the simulator's): then save({ snapshot }) is the way. The file is
   * the same record save() writes: the metadata as one line, then the image.
   */
  beginSnapshot(metadata: SnapshotMetadata): BackgroundSnapshotWrite | undefined {
    if (this.disk.openBackground === undefined) return undefined;
    assert(Number.isInteger(metadata.index) && metadata.index >= 1, `beginSnapshot(): snapshot index ${metadata.index} is not a log index`);
    const file = this.disk.openBackground(SNAPSHOT_FILE);
    let offset = RECORD_HEADER_BYTES;
    let crc = 0;
    let payloadBytes = 0;
    let state: "writing" | "finishing" | "finished" | "done" = "writing";
    const write = (bytes: Uint8Array, done: (error?: Error) => void): void => {
      crc = crc32Continue(crc, bytes);
      payloadBytes += bytes.length;
      assert(payloadBytes <= 0xffffffff, `beginSnapshot(): the snapshot record exceeds 4 GiB`);
      file.write(bytes, offset, done);
      offset += bytes.length;
    };
    let headerWritten = false;
    return {
      append: (part, done) => {
        assert(state === "writing", `beginSnapshot(): append after finish`);
        if (!headerWritten) {
          headerWritten = true;
          const metadataLine = this.encoder.encode(`${JSON.stringify(metadata)}\n`);
          write(metadataLine, (error) => (error ? done(error) : write(this.encoder.encode(part), done)));
          return;
        }
        write(this.encoder.encode(part), done);
      },
      finish: (done) => {
        assert(state === "writing" && headerWritten, "beginSnapshot(): finish before any part, or twice");
        state = "finishing";
        const header = new Uint8Array(RECORD_HEADER_BYTES);
        const view = new DataView(header.buffer);
        view.setUint32(0, payloadBytes, true);
        view.setUint32(4, crc, true);
        file.write(header, 0, (error) => {
          if (error) return done(error);
          file.sync((synced) => {
            if (!synced) state = "finished";
            done(synced);
          });
        });
      },
      commit: (snapshot) => {
        assert(state === "finished", `beginSnapshot(): commit before finish completed (${state})`);
        assert(snapshot.metadata.index === metadata.index && snapshot.metadata.term === metadata.term, "beginSnapshot(): commit of another snapshot");
        state = "done";
        if (this.snapshotIndex() >= metadata.index) {
          file.abandon();
          return false;
        }
        file.commit();
        this.syncCount += 2;
        this.bytesWritten += RECORD_HEADER_BYTES + payloadBytes;
        this.adoptSnapshot(snapshot);
        return true;
      },
      abandon: () => {
        state = "done";
        file.abandon();
      },
    };
  }

  private saveSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    const snapshotIndexStored = this.snapshot?.metadata.index ?? 0;
    assert(Number.isInteger(index) && index >= 1, `save(): snapshot index ${index} is not a log index`);
    assert(index >= snapshotIndexStored, `save(): snapshot ${index} is older than the stored snapshot ${snapshotIndexStored}`);
    if (index === snapshotIndexStored) assert(term === this.snapshot!.metadata.term, `save(): snapshot ${index} changed its term`);
    this.writeRecordFile(SNAPSHOT_FILE, this.encoder.encode(`${JSON.stringify(snapshot.metadata)}\n${snapshot.data}`));
    this.adoptSnapshot(snapshot);
  }

  /** After the snapshot's file is in place: the log, the commit index and the loaded entries follow it. */
  private adoptSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    // The stored log survives only if it agrees with the snapshot. Otherwise it is stale: a leader sent
    // the snapshot because this node lacks or contradicts the entries it covers.
    const agrees = this.logAgreesWith(index, term);
    this.snapshot = snapshot;
    if (!agrees) this.removeAllSegments();
    // A snapshot holds only committed entries (the hard state written after it will say so as well).
    if (this.hardState.commit < index) this.hardState = { ...this.hardState, commit: index };
    this.entriesLoaded = undefined;
  }

  private saveEntries(entries: readonly Entry[]): void {
    const first = entries[0]!;
    const snapshotIndex = this.snapshot?.metadata.index ?? 0;
    const lastIndexStored = this.lastIndex();
    if (!(first.index > snapshotIndex)) assert(false, `save(): entry ${first.index} is covered by the snapshot at ${snapshotIndex}`);
    if (!(first.index <= lastIndexStored + 1)) assert(false, `save(): entry ${first.index} leaves a gap after ${lastIndexStored}`);
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.index !== entries[i - 1]!.index + 1) assert(false, `save(): entries not contiguous at ${entries[i]!.index}`);
      if (!(entries[i]!.term >= entries[i - 1]!.term)) assert(false, `save(): term decreases at entry ${entries[i]!.index}`);
    }
    if (first.index <= lastIndexStored) {
      if (!(first.index > this.hardState.commit)) assert(false, `save(): replacing entry ${first.index} at or below commit ${this.hardState.commit}`);
      this.truncateFrom(first.index);
    }
    const termPrevious = this.term(first.index - 1) ?? (first.index - 1 === snapshotIndex ? this.snapshot?.metadata.term : undefined);
    if (termPrevious !== undefined) assert(first.term >= termPrevious, `save(): term decreases at entry ${first.index}`);

    let position = 0;
    while (position < entries.length) {
      const segment = this.segmentForAppend(entries[position]!.index);
      const count = Math.min(this.segmentEntriesMax - segment.offsets.length, entries.length - position);
      assert(count >= 1, "save(): the segment chosen for appending is full");
      this.appendRecords(segment, entries, position, count);
      position += count;
    }
    // One sync for the whole batch: rollovers already synced every older segment.
    const newest = this.segments.at(-1)!;
    assert(newest.unsynced, "save(): appended entries but the newest segment has nothing to sync");
    this.disk.sync(newest.name);
    newest.unsynced = false;
    this.syncCount++;
    this.entriesLoaded = undefined;
  }

  private saveHardState(hardState: HardState): void {
    if (!(hardState.term >= this.hardState.term)) assert(false, `save(): term ${hardState.term} below the stored ${this.hardState.term}`);
    if (!(hardState.commit >= this.hardState.commit)) assert(false, `save(): commit ${hardState.commit} below the stored ${this.hardState.commit}`);
    if (!(hardState.commit <= this.lastIndex())) assert(false, `save(): commit ${hardState.commit} past the last entry ${this.lastIndex()}`);
    // Term and vote must be durable before any message that depends on them leaves. The commit index
    // need not be (Raft recomputes it from the leader after a restart), so a change of the commit index
    // alone costs no write: one atomic file write is three fsyncs, on every node, for every commit.
    // It is written along with the next term or vote change, and with every snapshot.
    if (hardState.term === this.hardState.term && hardState.vote === this.hardState.vote) return;
    this.writeSingleRecordFile(HARD_STATE_FILE, { term: hardState.term, vote: hardState.vote, commit: hardState.commit });
    this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  }

  /** The newest segment if it has room for entry `index`, else a new one (after syncing the full one). */
  private segmentForAppend(index: number): Segment {
    const newest = this.segments.at(-1);
    if (newest !== undefined && newest.offsets.length < this.segmentEntriesMax) {
      if (segmentNextIndex(newest) !== index) assert(false, `save(): entry ${index} does not follow the newest segment`);
      return newest;
    }
    if (newest !== undefined && newest.unsynced) {
      // Only the newest segment may hold unsynced bytes, so recovery can call any other damage real.
      this.disk.sync(newest.name);
      newest.unsynced = false;
      this.syncCount++;
    }
    const sequence = this.sequenceNext++;
    assert(sequence <= SEGMENT_SEQUENCE_MAX, "save(): segment sequence numbers exhausted");
    const segment: Segment = { sequence, name: segmentName(sequence), firstIndex: index, offsets: [], terms: [], sizeBytes: 0, unsynced: false };
    this.segments.push(segment);
    return segment;
  }

  private appendRecords(segment: Segment, entries: readonly Entry[], position: number, count: number): void {
    const payloads: Uint8Array[] = [];
    let totalBytes = 0;
    for (let i = position; i < position + count; i++) {
      const payload = this.encoder.encode(JSON.stringify(entryPlain(entries[i]!)));
      if (!(payload.length <= RECORD_PAYLOAD_BYTES_MAX)) assert(false, `save(): entry ${entries[i]!.index} exceeds ${RECORD_PAYLOAD_BYTES_MAX} bytes`);
      payloads.push(payload);
      totalBytes += RECORD_HEADER_BYTES + payload.length;
    }
    const buffer = new Uint8Array(totalBytes);
    const view = new DataView(buffer.buffer);
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const payload = payloads[i]!;
      view.setUint32(offset, payload.length, true);
      view.setUint32(offset + 4, crc32(payload), true);
      buffer.set(payload, offset + RECORD_HEADER_BYTES);
      segment.offsets.push(segment.sizeBytes + offset);
      segment.terms.push(entries[position + i]!.term);
      offset += RECORD_HEADER_BYTES + payload.length;
    }
    assert(offset === totalBytes, "save(): record buffer size mismatch");
    this.disk.append(segment.name, buffer);
    segment.sizeBytes += totalBytes;
    segment.unsynced = true;
    this.bytesWritten += totalBytes;
  }

  /** Drops every stored entry from `index` on: newer segments are removed, then one truncate. */
  private truncateFrom(index: number): void {
    while (this.segments.length > 0 && this.segments.at(-1)!.firstIndex > index) {
      const segment = this.segments.pop()!;
      this.disk.remove(segment.name);
      this.syncCount++;
    }
    const segment = this.segments.at(-1);
    assert(segment !== undefined, `truncateFrom(${index}): no segment holds the entry`);
    const keep = index - segment.firstIndex;
    assert(keep >= 0 && keep < segment.offsets.length, `truncateFrom(${index}): outside the newest segment`);
    const offset = segment.offsets[keep]!;
    this.disk.truncate(segment.name, offset);
    this.syncCount++;
    segment.offsets.length = keep;
    segment.terms.length = keep;
    segment.sizeBytes = offset;
    segment.unsynced = false;
  }

  private removeAllSegments(): void {
    // Newest first: a crash part-way leaves a prefix of the old log, which recovery also finds stale.
    while (this.segments.length > 0) {
      this.disk.remove(this.segments.pop()!.name);
      this.syncCount++;
    }
  }

  /**
   * After recovery: the log must reach back to the snapshot (or to entry 1) without a gap. Returns
   * whether the log agrees with the snapshot; one that contradicts it, or ends before it, is what a
   * crash inside `saveSnapshot` leaves behind, and the caller removes it.
   */
  private checkLogAgainstSnapshot(): boolean {
    const first = this.segments[0];
    if (first === undefined) return true;
    if (this.snapshot === undefined) {
      if (first.firstIndex !== 1) {
        throw new StorageCorruptionError({
          code: "entries_not_contiguous",
          file: first.name,
          offset: 0,
          problem: `the log starts at entry ${first.firstIndex} without a snapshot covering the entries before it`,
        });
      }
      return true;
    }
    const { index, term } = this.snapshot.metadata;
    if (first.firstIndex > index + 1) {
      throw new StorageCorruptionError({
        code: "entries_not_contiguous",
        file: first.name,
        offset: 0,
        problem: `the log starts at entry ${first.firstIndex}, leaving a gap after the snapshot at ${index}`,
      });
    }
    return this.logAgreesWith(index, term);
  }

  /**
   * Whether the stored log may stay beside a snapshot at `index`/`term`: it holds that entry with that
   * term (Log Matching makes everything before it identical), or it starts right after the snapshot.
   * Callers guarantee the log never starts further on than that.
   */
  private logAgreesWith(index: number, term: number): boolean {
    const first = this.segments[0];
    if (first === undefined) return true;
    assert(first.firstIndex <= index + 1, `the log starts at ${first.firstIndex}, after the snapshot at ${index}`);
    if (first.firstIndex === index + 1) return true;
    return this.term(index) === term;
  }

  private readEntries(): Entry[] {
    const snapshotIndex = this.snapshot?.metadata.index ?? 0;
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const entries: Entry[] = [];
    for (const segment of this.segments) {
      const bytes = this.disk.read(segment.name);
      assert(bytes !== undefined, `state(): segment ${segment.name} vanished`);
      assert(bytes.length === segment.sizeBytes, `state(): segment ${segment.name} changed size behind our back`);
      for (let i = 0; i < segment.offsets.length; i++) {
        const index = segment.firstIndex + i;
        if (index <= snapshotIndex) continue;
        const offset = segment.offsets[i]!;
        const length = readU32(bytes, offset);
        const entry = JSON.parse(decoder.decode(bytes.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length))) as Entry;
        assert(entry.index === index, `state(): ${segment.name} holds entry ${entry.index} where ${index} was indexed`);
        entries.push(entry);
      }
    }
    return entries;
  }

  private writeSingleRecordFile(name: string, value: unknown): void {
    this.writeRecordFile(name, this.encoder.encode(JSON.stringify(value)));
  }

  private writeRecordFile(name: string, payload: Uint8Array): void {
    const record = encodeRecord(payload);
    this.disk.writeAtomic(name, record);
    this.syncCount++;
    this.bytesWritten += record.length;
  }
}

// ---------------------------------------------------------------------------------------------------
// Pure helpers: framing, parsing and validation.

function segmentName(sequence: number): string {
  return `log-${String(sequence).padStart(6, "0")}.seg`;
}

function segmentNextIndex(segment: Segment): number {
  return segment.firstIndex + segment.offsets.length;
}

function describeFile(file: string): string {
  if (SEGMENT_NAME_PATTERN.test(file)) return "synced Raft log file";
  if (file === HARD_STATE_FILE) return "Raft hard state file";
  if (file === SNAPSHOT_FILE) return "Raft snapshot file";
  return "Raft storage file";
}

function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

function encodeRecord(payload: Uint8Array): Uint8Array {
  const record = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  const view = new DataView(record.buffer);
  view.setUint32(0, payload.length, true);
  view.setUint32(4, crc32(payload), true);
  record.set(payload, RECORD_HEADER_BYTES);
  return record;
}

/** Copies only the Entry fields, so nothing else a caller attached reaches the disk. */
function entryPlain(entry: Entry): Entry {
  return { index: entry.index, term: entry.term, kind: entry.kind, data: entry.data };
}

/**
 * Reads and checks every segment, in sequence order, without changing anything on disk: a torn tail of
 * the newest segment is reported for the caller to cut, anything else wrong throws.
 */
function loadSegments(disk: Disk, snapshotIndex: number): { segments: Segment[]; entries: Entry[]; torn: { name: string; offset: number; bytes: number } | undefined } {
  const sequences = disk
    .list()
    .map((name) => SEGMENT_NAME_PATTERN.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => Number(match[1]))
    .sort((a, b) => a - b);
  const segments: Segment[] = [];
  const entries: Entry[] = [];
  let torn: { name: string; offset: number; bytes: number } | undefined;
  for (let position = 0; position < sequences.length; position++) {
    const sequence = sequences[position]!;
    const name = segmentName(sequence);
    const bytes = disk.read(name);
    assert(bytes !== undefined, `open(): listed segment ${name} vanished`);
    const isNewest = position === sequences.length - 1;
    const scan = scanSegment(name, bytes, isNewest);
    if (scan.tornOffset !== undefined) torn = { name, offset: scan.tornOffset, bytes: bytes.length - scan.tornOffset };
    const previous = segments.at(-1);
    const expectedIndex = previous === undefined ? undefined : segmentNextIndex(previous);
    checkSegmentContiguous(name, scan, expectedIndex, previous?.terms.at(-1));
    if (scan.entries.length === 0 && !isNewest) {
      throw new StorageCorruptionError({ code: "segment_empty", file: name, offset: 0, problem: "an empty segment followed by newer segments" });
    }
    segments.push({
      sequence,
      name,
      firstIndex: scan.entries[0]?.index ?? expectedIndex ?? snapshotIndex + 1,
      offsets: scan.offsets,
      terms: scan.entries.map((entry) => entry.term),
      sizeBytes: scan.tornOffset ?? bytes.length,
      unsynced: false,
    });
    for (const entry of scan.entries) entries.push(entry);
  }
  return { segments, entries, torn };
}

/**
 * Parses one segment. A problem at the end of the newest segment that a torn write explains yields a
 * `tornOffset`; every other problem throws.
 */
function scanSegment(name: string, bytes: Uint8Array, isNewest: boolean): SegmentScan {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const entries: Entry[] = [];
  const offsets: number[] = [];
  const corruption = (code: StorageCorruptionCode, offset: number, problem: string): StorageCorruptionError =>
    new StorageCorruptionError({ code, file: name, offset, problem });
  let offset = 0;
  while (offset < bytes.length) {
    const remaining = bytes.length - offset;
    if (remaining < RECORD_HEADER_BYTES) {
      if (isNewest) return { entries, offsets, tornOffset: offset };
      throw corruption("record_truncated", offset, `a record header cut short (${remaining} of ${RECORD_HEADER_BYTES} bytes)`);
    }
    const length = readU32(bytes, offset);
    const checksum = readU32(bytes, offset + 4);
    if (length === 0 || length > RECORD_PAYLOAD_BYTES_MAX) {
      if (isNewest && isZero(bytes, offset, bytes.length)) return { entries, offsets, tornOffset: offset };
      throw corruption("record_invalid", offset, `an impossible record length ${length}`);
    }
    const end = offset + RECORD_HEADER_BYTES + length;
    const payloadStart = offset + RECORD_HEADER_BYTES;
    if (end > bytes.length) {
      // Torn, unless the payload is whole and carries the checksum: then the length field was damaged.
      if (isNewest && crc32PrefixLength(bytes, payloadStart, bytes.length, checksum) < 1) return { entries, offsets, tornOffset: offset };
      throw corruption("record_truncated", offset, `a record of ${length} bytes running past the end of the file`);
    }
    if (crc32(bytes, payloadStart, end) !== checksum) {
      const finalRecord = end === bytes.length;
      if (isNewest && finalRecord && crc32PrefixLength(bytes, payloadStart, end, checksum) < 1) return { entries, offsets, tornOffset: offset };
      throw corruption("checksum_mismatch", offset, "checksum mismatch");
    }
    const entry = decodeEntry(decoder, bytes.subarray(payloadStart, end));
    if (entry === undefined) throw corruption("record_invalid", offset, "a record whose checksum holds but which is not a log entry");
    entries.push(entry);
    offsets.push(offset);
    offset = end;
  }
  return { entries, offsets, tornOffset: undefined };
}

function checkSegmentContiguous(name: string, scan: SegmentScan, expectedIndex: number | undefined, termPrevious: number | undefined): void {
  let expected = expectedIndex;
  let term = termPrevious;
  for (let i = 0; i < scan.entries.length; i++) {
    const entry = scan.entries[i]!;
    if (expected !== undefined && entry.index !== expected) {
      throw new StorageCorruptionError({
        code: "entries_not_contiguous",
        file: name,
        offset: scan.offsets[i]!,
        problem: `entry ${entry.index} where entry ${expected} was expected`,
      });
    }
    if (term !== undefined && entry.term < term) {
      throw new StorageCorruptionError({
        code: "entries_not_contiguous",
        file: name,
        offset: scan.offsets[i]!,
        problem: `entry ${entry.index} has term ${entry.term}, below the term ${term} before it`,
      });
    }
    expected = entry.index + 1;
    term = entry.term;
  }
}

function isZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

function decodeJson(decoder: TextDecoder, payload: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(payload)) as unknown;
  } catch {
    return undefined;
  }
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function decodeEntry(decoder: TextDecoder, payload: Uint8Array): Entry | undefined {
  const value = decodeJson(decoder, payload) as Partial<Entry> | undefined;
  if (typeof value !== "object" || value === null) return undefined;
  if (!isCount(value.index) || value.index < 1 || !isCount(value.term)) return undefined;
  if (!ENTRY_KINDS.includes(value.kind as EntryKind) || typeof value.data !== "string") return undefined;
  return { index: value.index, term: value.term, kind: value.kind as EntryKind, data: value.data };
}

function decodeHardState(decoder: TextDecoder, payload: Uint8Array): HardState | undefined {
  const value = decodeJson(decoder, payload) as Partial<HardState> | undefined;
  if (typeof value !== "object" || value === null) return undefined;
  if (!isCount(value.term) || !isCount(value.vote) || !isCount(value.commit)) return undefined;
  return { term: value.term, vote: value.vote, commit: value.commit };
}

const NEWLINE = 0x0a;

function decodeSnapshot(decoder: TextDecoder, payload: Uint8Array): Snapshot | undefined {
  const newline = payload.indexOf(NEWLINE);
  let value: Partial<Snapshot> | undefined;
  if (newline === -1) {
    // The older format: the whole snapshot as one JSON value (JSON text never holds a raw newline).
    value = decodeJson(decoder, payload) as Partial<Snapshot> | undefined;
  } else {
    const metadata = decodeJson(decoder, payload.subarray(0, newline)) as Snapshot["metadata"] | undefined;
    let data: string;
    try {
      data = decoder.decode(payload.subarray(newline + 1));
    } catch {
      return undefined;
    }
    value = { metadata, data };
  }
  if (typeof value !== "object" || value === null || typeof value.data !== "string") return undefined;
  const metadata = value.metadata;
  if (typeof metadata !== "object" || metadata === null) return undefined;
  if (!isCount(metadata.index) || metadata.index < 1 || !isCount(metadata.term)) return undefined;
  const membership = metadata.membership;
  if (typeof membership !== "object" || membership === null) return undefined;
  if (!Array.isArray(membership.voters) || !membership.voters.every(isCount)) return undefined;
  if (!Array.isArray(membership.learners) || !membership.learners.every(isCount)) return undefined;
  const addresses: unknown = membership.addresses;
  if (addresses !== undefined && (typeof addresses !== "object" || addresses === null || !Object.values(addresses).every((address) => typeof address === "string"))) return undefined;
  return value as Snapshot;
}

/**
 * Reads a file written whole by `writeAtomic`: exactly one record. Any damage is corruption, because an
 * atomic write leaves the old file or the new one and never a torn one.
 */
function readSingleRecordFile<T>(disk: Disk, name: string, decode: (decoder: TextDecoder, payload: Uint8Array) => T | undefined): T | undefined {
  const bytes = disk.read(name);
  if (bytes === undefined) return undefined;
  const corruption = (code: StorageCorruptionCode, problem: string): StorageCorruptionError =>
    new StorageCorruptionError({ code, file: name, offset: 0, problem });
  if (bytes.length < RECORD_HEADER_BYTES) throw corruption("record_truncated", `a file of ${bytes.length} bytes, shorter than its record header`);
  const length = readU32(bytes, 0);
  if (RECORD_HEADER_BYTES + length !== bytes.length) {
    throw corruption("record_truncated", `a record of ${length} bytes in a file of ${bytes.length} bytes`);
  }
  if (crc32(bytes, RECORD_HEADER_BYTES) !== readU32(bytes, 4)) throw corruption("checksum_mismatch", "checksum mismatch");
  const value = decode(new TextDecoder("utf-8", { fatal: true }), bytes.subarray(RECORD_HEADER_BYTES));
  if (value === undefined) throw corruption("record_invalid", "a record whose checksum holds but whose content is invalid");
  return value;
}
