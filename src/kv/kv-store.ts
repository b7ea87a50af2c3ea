/**
 * The key-value state machine in memory: what the simulator applies committed entries to, and the
 * model the PostgreSQL-backed table (pgraft.kv) must agree with. Each key keeps its value, its version,
 * and the Raft indexes that created and last modified it (etcd's create_revision and mod_revision).
 */
import { assert } from "../assert.ts";
import { applyTxn } from "../api/kv-model.ts";
import { decodeTxnCommand } from "../api/txn-codec.ts";
import type { KvOutput, KvWrite, KvWriteOutput } from "./command.ts";

export interface KvRecord {
  readonly value: string;
  readonly version: number;
  readonly createIndex: number;
  readonly modIndex: number;
}

export class KvStore {
  #records = new Map<string, KvRecord>();
  #appliedIndex = 0;

  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  get size(): number {
    return this.#records.size;
  }

  get(key: string): KvRecord | undefined {
    return this.#records.get(key);
  }

  keys(): string[] {
    return [...this.#records.keys()].sort();
  }

  /** Applies a committed write at `index`; every index is applied once, in order. */
  apply(index: number, write: KvWrite): KvWriteOutput {
    assert(index > this.#appliedIndex, `KvStore.apply(): index ${index} not after ${this.#appliedIndex}`);
    this.#appliedIndex = index;
    const current = this.#records.get(write.key);
    switch (write.op) {
      case "put":
        return { op: "put", version: this.#put(index, write.key, write.value, current) };
      case "delete":
        this.#records.delete(write.key);
        return { op: "delete", deleted: current !== undefined };
      case "cas": {
        const currentVersion = current?.version ?? 0;
        if (currentVersion !== write.expectedVersion) return { op: "cas", succeeded: false, version: currentVersion };
        return { op: "cas", succeeded: true, version: this.#put(index, write.key, write.value, current) };
      }
      case "txn": {
        // etcd's rules, shared with the API's in-memory backend, applied to this store at `index`.
        const records = this.#records;
        const store = {
          get: (key: string) => records.get(key),
          keys: () => this.keys(),
          set: (key: string, record: KvRecord) => void records.set(key, record),
          delete: (key: string) => records.delete(key),
        };
        return { op: "txn", result: applyTxn(store, decodeTxnCommand(write.request), index) };
      }
    }
  }

  /** Entries that carry no command (no-ops, membership) still advance the applied index. */
  skip(index: number): void {
    assert(index > this.#appliedIndex, `KvStore.skip(): index ${index} not after ${this.#appliedIndex}`);
    this.#appliedIndex = index;
  }

  read(key: string): KvOutput {
    const record = this.#records.get(key);
    return { op: "get", value: record?.value ?? null, version: record?.version ?? 0 };
  }

  /** A deterministic image of the whole store (keys sorted), for snapshots and comparisons. */
  snapshot(): string {
    const records = this.keys().map((key) => [key, this.#records.get(key)!] as const);
    return JSON.stringify({ appliedIndex: this.#appliedIndex, records });
  }

  static restore(image: string): KvStore {
    const parsed = JSON.parse(image) as { appliedIndex: number; records: [string, KvRecord][] };
    const store = new KvStore();
    store.#appliedIndex = parsed.appliedIndex;
    for (const [key, record] of parsed.records) store.#records.set(key, record);
    return store;
  }

  #put(index: number, key: string, value: string, current: KvRecord | undefined): number {
    const version = (current?.version ?? 0) + 1;
    this.#records.set(key, { value, version, createIndex: current?.createIndex ?? index, modIndex: index });
    return version;
  }
}
