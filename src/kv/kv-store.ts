/**
 * The key-value state machine in memory: what every node applies committed entries to, and the model
 * the PostgreSQL-backed table (pgraft.kv) must agree with. Each key keeps its value, its version, the
 * Raft indexes that created and last modified it (etcd's create_revision and mod_revision) and the
 * lease it is attached to. Keys and values are byte strings (src/kv/bytes.ts).
 *
 * Beside the records the store keeps:
 * - leases (id and TTL: the replicated part; when a lease expires is the leader's business, see
 *   src/node/lease-clock.ts), and which keys each one holds;
 * - the recent history: one event per key change, each with the record before it, for watches from a
 *   past revision and ranges at a past revision. Events at revisions >= `compactedRevision` are kept
 *   (at most `historyEventsMax`; older ones are dropped whole revisions at a time, as a compaction).
 *   History is not part of a snapshot: a store restored from one starts its history there.
 */
import { assert } from "../assert.ts";
import { applyTxn, missingLease, type KvRecordView } from "../api/kv-model.ts";
import { decodeTxnCommand } from "../api/txn-codec.ts";
import type { KvOutput, KvWrite, KvWriteOutput } from "./command.ts";

export interface KvRecord {
  readonly value: string;
  readonly version: number;
  readonly createIndex: number;
  readonly modIndex: number;
  /** The lease the key is attached to (it is deleted when the lease ends); absent or 0: none. */
  readonly lease?: number;
}

/** One key's new state after an applied entry: its record, or undefined when it was deleted. */
export interface KvChange {
  readonly key: string;
  readonly record: KvRecord | undefined;
}

/** One change in the history (a watch event): the new record (undefined: deleted) and the one before. */
export interface KvEvent {
  readonly revision: number;
  readonly key: string;
  readonly record: KvRecord | undefined;
  readonly prev: KvRecord | undefined;
}

export interface LeaseInfo {
  readonly id: number;
  readonly ttlSec: number;
}

/** Events kept for watches and past-revision ranges unless the store is built with another bound. */
export const HISTORY_EVENTS_MAX_DEFAULT = 10_000;

/** Why a revision cannot be served: older than the kept history, or not applied yet. */
export type RevisionProblem = "compacted" | "future";

export class KvStore implements KvRecordView {
  #records = new Map<string, KvRecord>();
  #appliedIndex = 0;
  /** What the last apply() or skip() changed, in order (the PostgreSQL apply path mirrors it). */
  #lastChanges: KvChange[] = [];
  #leases = new Map<number, { ttlSec: number; keys: Set<string> }>();
  #history: KvEvent[] = [];
  /** The oldest revision whose events are all kept (0: from the beginning). */
  #compactedRevision = 0;
  readonly #historyEventsMax: number;

  constructor(options: { historyEventsMax?: number } = {}) {
    this.#historyEventsMax = options.historyEventsMax ?? HISTORY_EVENTS_MAX_DEFAULT;
    assert(this.#historyEventsMax >= 1, "KvStore: historyEventsMax must be at least 1");
  }

  /**
   * The keys the last applied entry changed and their new records, in the order the entry changed
   * them. Valid until the next apply() or skip(); pgraft.kv copies exactly these rows, so the store's
   * rules (versions, revisions, transactions, leases) live only here.
   */
  get lastChanges(): readonly KvChange[] {
    return this.#lastChanges;
  }

  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  get size(): number {
    return this.#records.size;
  }

  /** Events at revisions >= this are kept; older revisions are compacted. */
  get compactedRevision(): number {
    return this.#compactedRevision;
  }

  get(key: string): KvRecord | undefined {
    return this.#records.get(key);
  }

  /** Every key in byte order (byte strings compare by their bytes). */
  keys(): string[] {
    return [...this.#records.keys()].sort();
  }

  /** Every record, keys in sorted order (for copying the whole store into pgraft.kv). */
  *entries(): IterableIterator<[string, KvRecord]> {
    for (const key of this.keys()) yield [key, this.#records.get(key)!];
  }

  hasLease(id: number): boolean {
    return this.#leases.has(id);
  }

  lease(id: number): (LeaseInfo & { readonly keys: readonly string[] }) | undefined {
    const lease = this.#leases.get(id);
    return lease === undefined ? undefined : { id, ttlSec: lease.ttlSec, keys: [...lease.keys].sort() };
  }

  /** Every lease, by id. */
  leases(): LeaseInfo[] {
    return [...this.#leases].map(([id, lease]) => ({ id, ttlSec: lease.ttlSec })).sort((a, b) => a.id - b.id);
  }

  /** Why `revision` cannot be read (older than the kept history, or not applied yet), or undefined. */
  revisionProblem(revision: number): RevisionProblem | undefined {
    if (revision > this.#appliedIndex) return "future";
    if (revision < this.#compactedRevision) return "compacted";
    return undefined;
  }

  /** The records as they were at `revision` (checked with revisionProblem() first). */
  viewAt(revision: number): KvRecordView {
    const problem = this.revisionProblem(revision);
    assert(problem === undefined, `KvStore.viewAt(${revision}): the revision is ${problem}`);
    if (revision === this.#appliedIndex) return this;
    // Undo the events after `revision`, latest first: the earliest one's previous record wins.
    const overlay = new Map<string, KvRecord | undefined>();
    for (let i = this.#history.length - 1; i >= 0 && this.#history[i]!.revision > revision; i--) {
      const event = this.#history[i]!;
      overlay.set(event.key, event.prev);
    }
    const records = this.#records;
    const get = (key: string): KvRecord | undefined => (overlay.has(key) ? overlay.get(key) : records.get(key));
    return {
      get,
      keys: () => [...new Set([...records.keys(), ...overlay.keys()])].filter((key) => get(key) !== undefined).sort(),
    };
  }

  /** The kept events at revisions >= `fromRevision`, in order (check revisionProblem() first). */
  eventsFrom(fromRevision: number): readonly KvEvent[] {
    let low = 0;
    let high = this.#history.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#history[middle]!.revision < fromRevision) low = middle + 1;
      else high = middle;
    }
    return this.#history.slice(low);
  }

  /** Applies a committed write at `index`; every index is applied once, in order. */
  apply(index: number, write: KvWrite): KvWriteOutput {
    assert(index > this.#appliedIndex, `KvStore.apply(): index ${index} not after ${this.#appliedIndex}`);
    const before = this.#appliedIndex;
    this.#appliedIndex = index;
    this.#lastChanges = [];
    try {
      return this.#applyWrite(index, before, write);
    } finally {
      this.#trimHistory();
    }
  }

  #applyWrite(index: number, before: number, write: KvWrite): KvWriteOutput {
    switch (write.op) {
      case "put":
        return { op: "put", version: this.#put(index, write.key, write.value) };
      case "delete":
        return { op: "delete", deleted: this.#delete(index, write.key) };
      case "cas": {
        const currentVersion = this.#records.get(write.key)?.version ?? 0;
        if (currentVersion !== write.expectedVersion) return { op: "cas", succeeded: false, version: currentVersion };
        return { op: "cas", succeeded: true, version: this.#put(index, write.key, write.value) };
      }
      case "txn": {
        // etcd's rules, shared with the API's in-memory backend, applied to this store at `index`.
        const request = decodeTxnCommand(write.request);
        const missing = missingLease(this, request, (id) => this.#leases.has(id));
        if (missing !== undefined) return { op: "txn", result: undefined, leaseNotFound: missing };
        const store = {
          get: (key: string) => this.#records.get(key),
          keys: () => this.keys(),
          set: (key: string, record: KvRecord) => this.#set(index, key, record),
          delete: (key: string) => this.#delete(index, key),
          viewAt: (revision: number) => this.viewAt(revision),
          revisionProblem: (revision: number) => this.revisionProblem(revision),
        };
        return { op: "txn", result: applyTxn(store, request, index) };
      }
      case "lease_grant": {
        let id = write.id;
        if (id === 0) {
          // Granted ids are the entry's index, so every node assigns the same one; a client may have
          // taken it, so step past clients' ids (bounded: at most one step per existing lease).
          id = index;
          while (this.#leases.has(id)) id += 2 ** 32;
        }
        if (this.#leases.has(id) || !Number.isSafeInteger(id)) return { op: "lease_grant", granted: false, id, ttlSec: write.ttlSec };
        this.#leases.set(id, { ttlSec: write.ttlSec, keys: new Set() });
        return { op: "lease_grant", granted: true, id, ttlSec: write.ttlSec };
      }
      case "lease_revoke": {
        const lease = this.#leases.get(write.id);
        if (lease === undefined) return { op: "lease_revoke", found: false, deleted: 0 };
        const keys = [...lease.keys].sort();
        for (const key of keys) this.#delete(index, key);
        this.#leases.delete(write.id);
        return { op: "lease_revoke", found: true, deleted: keys.length };
      }
      case "compact": {
        // etcd: compacting at or below the current compaction, or beyond the store, is refused.
        if (write.revision <= this.#compactedRevision) return { op: "compact", problem: "compacted", compactedRevision: this.#compactedRevision };
        if (write.revision > before) return { op: "compact", problem: "future", compactedRevision: this.#compactedRevision };
        this.#compactTo(write.revision);
        return { op: "compact", compactedRevision: this.#compactedRevision };
      }
    }
  }

  /** Entries that carry no command (no-ops, membership) still advance the applied index. */
  skip(index: number): void {
    assert(index > this.#appliedIndex, `KvStore.skip(): index ${index} not after ${this.#appliedIndex}`);
    this.#appliedIndex = index;
    this.#lastChanges = [];
  }

  read(key: string): KvOutput {
    const record = this.#records.get(key);
    return { op: "get", value: record?.value ?? null, version: record?.version ?? 0 };
  }

  /** A deterministic image of the records and leases (keys sorted), for snapshots and comparisons. */
  snapshot(): string {
    const records = this.keys().map((key) => [key, this.#records.get(key)!] as const);
    const leases = this.leases().map((lease) => [lease.id, lease.ttlSec] as const);
    return JSON.stringify(leases.length === 0 ? { appliedIndex: this.#appliedIndex, records } : { appliedIndex: this.#appliedIndex, records, leases });
  }

  /**
   * The same image as snapshot(), in parts whose concatenation restore() reads, for a snapshot saved
   * off the event loop: the records are copied now (records are replaced, never changed in place, so a
   * copy of the map is a consistent view at this applied index), and each part is made only when it is
   * asked for, `recordsPerPart` records at a time. Unlike snapshot() the keys are in the store's own
   * order, not sorted: sorting a large store would block the event loop, which is what this avoids, and
   * restore() does not care (it is the same for every node that applied the same log).
   */
  snapshotParts(recordsPerPart: number): { readonly appliedIndex: number; readonly parts: Iterator<string> } {
    assert(Number.isInteger(recordsPerPart) && recordsPerPart >= 1, `snapshotParts(): ${recordsPerPart} records per part`);
    const records = [...this.#records];
    const leases = this.leases().map((lease) => [lease.id, lease.ttlSec] as const);
    const appliedIndex = this.#appliedIndex;
    function* parts(): Generator<string> {
      yield `{"appliedIndex":${JSON.stringify(appliedIndex)},"records":[`;
      for (let start = 0; start < records.length; start += recordsPerPart) {
        const chunk = JSON.stringify(records.slice(start, start + recordsPerPart));
        yield `${start === 0 ? "" : ","}${chunk.slice(1, -1)}`;
      }
      yield leases.length === 0 ? "]}" : `],"leases":${JSON.stringify(leases)}}`;
    }
    return { appliedIndex, parts: parts() };
  }

  static restore(image: string, options: { historyEventsMax?: number } = {}): KvStore {
    const parsed = JSON.parse(image) as { appliedIndex: number; records: [string, KvRecord][]; leases?: [number, number][] };
    const store = new KvStore(options);
    store.#appliedIndex = parsed.appliedIndex;
    // No history before the snapshot: the state at its index is known, nothing older.
    store.#compactedRevision = parsed.appliedIndex;
    for (const [id, ttlSec] of parsed.leases ?? []) store.#leases.set(id, { ttlSec, keys: new Set() });
    for (const [key, record] of parsed.records) {
      store.#records.set(key, record);
      if (record.lease) store.#leases.get(record.lease)?.keys.add(key);
    }
    return store;
  }

  #put(index: number, key: string, value: string): number {
    const current = this.#records.get(key);
    const version = (current?.version ?? 0) + 1;
    this.#set(index, key, { value, version, createIndex: current?.createIndex ?? index, modIndex: index });
    return version;
  }

  /** Every change to a record goes through here and #delete: records, lease index, history, lastChanges. */
  #set(index: number, key: string, record: KvRecord): void {
    const prev = this.#records.get(key);
    if (prev?.lease) this.#leases.get(prev.lease)?.keys.delete(key);
    const stored: KvRecord = record.lease ? record : { value: record.value, version: record.version, createIndex: record.createIndex, modIndex: record.modIndex };
    if (stored.lease) {
      const lease = this.#leases.get(stored.lease);
      assert(lease !== undefined, `KvStore: key attached to lease ${stored.lease}, which does not exist (checked before applying)`);
      lease.keys.add(key);
    }
    this.#records.set(key, stored);
    this.#lastChanges.push({ key, record: stored });
    this.#history.push({ revision: index, key, record: stored, prev });
  }

  #delete(index: number, key: string): boolean {
    const prev = this.#records.get(key);
    if (prev === undefined) return false;
    if (prev.lease) this.#leases.get(prev.lease)?.keys.delete(key);
    this.#records.delete(key);
    this.#lastChanges.push({ key, record: undefined });
    this.#history.push({ revision: index, key, record: undefined, prev });
    return true;
  }

  /** Drops the events of revisions below `revision`. */
  #compactTo(revision: number): void {
    let drop = 0;
    while (drop < this.#history.length && this.#history[drop]!.revision < revision) drop++;
    this.#history.splice(0, drop);
    this.#compactedRevision = revision;
  }

  /** Keeps at most historyEventsMax events, dropping whole revisions (never half a transaction). */
  #trimHistory(): void {
    const excess = this.#history.length - this.#historyEventsMax;
    if (excess <= 0) return;
    let keepFrom = excess;
    // Drop through the end of the revision the cut falls in.
    const cutRevision = this.#history[keepFrom - 1]!.revision;
    while (keepFrom < this.#history.length && this.#history[keepFrom]!.revision === cutRevision) keepFrom++;
    this.#history.splice(0, keepFrom);
    this.#compactedRevision = Math.max(this.#compactedRevision, cutRevision + 1);
  }
}
