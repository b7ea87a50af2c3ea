/**
 * etcd's key-value semantics over a map of records: ranges (with etcd's range ends, limits, sorting and
 * revision filters), compares, puts, range deletes and multi-op transactions. Pure and deterministic:
 * no clock, no I/O. MemoryKvBackend applies writes with it; RaftNodeBackend evaluates reads and
 * read-only transactions with it over the KvStore; and the state machine can apply the proposed `txn`
 * command with `applyTxn` (see the note in src/api/README.md).
 */
import { assert, AssertionError } from "../assert.ts";
import { toByteString } from "../kv/bytes.ts";
import type { KvRecord } from "../kv/kv-store.ts";
import { RevisionUnavailableError } from "./errors.ts";
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResult,
  KeyValue,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  RequestOp,
  ResponseOp,
  SortOrder,
  TxnRequest,
  TxnResult,
} from "./kv-types.ts";

/** Read access to the records: KvStore fits as is. */
export interface KvRecordView {
  get(key: string): KvRecord | undefined;
  /** Every key, in byte order. */
  keys(): readonly string[];
  /** Why `revision` cannot be read, or undefined; absent: only the current revision can be read. */
  revisionProblem?(revision: number): "compacted" | "future" | undefined;
  /** The records as of a past revision that revisionProblem() accepted. */
  viewAt?(revision: number): KvRecordView;
}

export interface KvRecordStore extends KvRecordView {
  set(key: string, record: KvRecord): void;
  delete(key: string): boolean;
}

/** A read-only view as a store whose writes are bugs: for evaluating read-only transactions. */
export function readOnlyStore(view: KvRecordView): KvRecordStore {
  return {
    get: (key) => view.get(key),
    keys: () => view.keys(),
    ...(view.revisionProblem && view.viewAt ? { revisionProblem: view.revisionProblem.bind(view), viewAt: view.viewAt.bind(view) } : {}),
    set: (key) => {
      throw new AssertionError(`readOnlyStore: a read-only transaction tried to put "${key}"`);
    },
    delete: (key) => {
      throw new AssertionError(`readOnlyStore: a read-only transaction tried to delete "${key}"`);
    },
  };
}

/** A byte string's bytes (keys and values are byte strings: one char per byte, see src/kv/bytes.ts). */
export function keyBytes(key: string): Buffer {
  return Buffer.from(key, "latin1");
}

/** etcd's "from key" range end: a single zero byte means "every key at or after `key`". */
export function isFromKey(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/**
 * The range end that covers every key starting with `prefix`, as etcd's clientv3.GetPrefixRangeEnd:
 * the prefix with its last byte below 0xff incremented and the rest cut; a single zero byte ("every
 * key") when every byte is 0xff.
 */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.slice(0, i + 1);
    }
  }
  return Uint8Array.of(0);
}

/** The keys in [key, rangeEnd) (or just `key` when rangeEnd is empty), in ascending byte order. */
export function keysInRange(view: KvRecordView, key: string, rangeEnd: Uint8Array): string[] {
  if (rangeEnd.length === 0) return view.get(key) === undefined ? [] : [key];
  // Byte strings compare as their bytes: plain string comparison is etcd's key order.
  const fromKey = isFromKey(rangeEnd);
  const end = toByteString(rangeEnd);
  return view
    .keys()
    .filter((candidate) => candidate >= key && (fromKey || candidate < end))
    .sort();
}

export function toKeyValue(key: string, record: KvRecord): KeyValue {
  return { key, value: record.value, version: record.version, createRevision: record.createIndex, modRevision: record.modIndex, lease: record.lease ?? 0 };
}

/**
 * The view to read at `revision` (0: the current one, `currentRevision`), or RevisionUnavailableError
 * when the view keeps no such revision (etcd's compacted and future-revision errors).
 */
export function viewAtRevision(view: KvRecordView, revision: number, currentRevision: number): KvRecordView {
  if (revision <= 0 || revision === currentRevision) return view;
  if (revision > currentRevision) throw new RevisionUnavailableError(revision, "future", currentRevision);
  const problem = view.revisionProblem === undefined || view.viewAt === undefined ? "compacted" : view.revisionProblem(revision);
  if (problem !== undefined) throw new RevisionUnavailableError(revision, problem, currentRevision);
  assert(view.viewAt !== undefined, "viewAtRevision(): a view that accepts past revisions can give them");
  return view.viewAt(revision);
}

/**
 * A range at `currentRevision` (the revision the view is at). etcd's rules: `count` is the number of
 * keys in the range before revision filters and limit; sorting by anything but the key defaults to
 * ascending; `more` says the limit cut matches off.
 */
export function evaluateRange(current: KvRecordView, request: RangeRequest, currentRevision: number): RangeResult {
  const view = viewAtRevision(current, request.revision, currentRevision);
  const keys = keysInRange(view, request.key, request.rangeEnd);
  let kvs = keys.map((key) => toKeyValue(key, view.get(key)!));
  kvs = kvs.filter(
    (kv) =>
      (request.minModRevision <= 0 || kv.modRevision >= request.minModRevision) &&
      (request.maxModRevision <= 0 || kv.modRevision <= request.maxModRevision) &&
      (request.minCreateRevision <= 0 || kv.createRevision >= request.minCreateRevision) &&
      (request.maxCreateRevision <= 0 || kv.createRevision <= request.maxCreateRevision),
  );
  const order = effectiveSortOrder(request);
  if (order !== "NONE") {
    const sign = order === "ASCEND" ? 1 : -1;
    kvs.sort((a, b) => sign * compareBySortTarget(a, b, request.sortTarget));
  }
  if (request.countOnly) return { kvs: [], count: keys.length, more: false };
  let more = false;
  if (request.limit > 0 && kvs.length > request.limit) {
    kvs = kvs.slice(0, request.limit);
    more = true;
  }
  if (request.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: "" }));
  return { kvs, count: keys.length, more };
}

/** etcd's defaults: keys already come in ascending key order; other targets sort ascending by default. */
function effectiveSortOrder(request: RangeRequest): SortOrder {
  if (request.sortTarget !== "KEY" && request.sortOrder === "NONE") return "ASCEND";
  if (request.sortTarget === "KEY" && request.sortOrder === "ASCEND") return "NONE";
  return request.sortOrder;
}

function compareBySortTarget(a: KeyValue, b: KeyValue, target: RangeRequest["sortTarget"]): number {
  switch (target) {
    case "KEY":
      return Buffer.compare(keyBytes(a.key), keyBytes(b.key));
    case "VERSION":
      return a.version - b.version;
    case "CREATE":
      return a.createRevision - b.createRevision;
    case "MOD":
      return a.modRevision - b.modRevision;
    case "VALUE":
      return Buffer.compare(keyBytes(a.value), keyBytes(b.value));
  }
}

/**
 * True when every key in the compare's range satisfies it. As in etcd: an absent key compares as
 * version, create_revision, mod_revision and lease 0, but a value compare on an absent key fails.
 */
export function compareHolds(view: KvRecordView, compare: Compare): boolean {
  const keys = keysInRange(view, compare.key, compare.rangeEnd);
  if (keys.length === 0) return compare.target === "VALUE" ? false : compareOne(undefined, compare);
  return keys.every((key) => compareOne(view.get(key), compare));
}

function compareOne(record: KvRecord | undefined, compare: Compare): boolean {
  let order: number;
  switch (compare.target) {
    case "VALUE":
      order = Buffer.compare(keyBytes(record?.value ?? ""), Buffer.from(compare.operand));
      break;
    case "VERSION":
      order = Math.sign((record?.version ?? 0) - compare.operand);
      break;
    case "CREATE":
      order = Math.sign((record?.createIndex ?? 0) - compare.operand);
      break;
    case "MOD":
      order = Math.sign((record?.modIndex ?? 0) - compare.operand);
      break;
    case "LEASE":
      order = Math.sign((record?.lease ?? 0) - compare.operand);
      break;
  }
  switch (compare.result) {
    case "EQUAL":
      return order === 0;
    case "NOT_EQUAL":
      return order !== 0;
    case "GREATER":
      return order > 0;
    case "LESS":
      return order < 0;
  }
}

/** Puts `value` at `revision`: the key is created at version 1, or its version is incremented. */
export function applyPut(store: KvRecordStore, request: PutRequest, revision: number): PutResult {
  const current = store.get(request.key);
  const record = { value: request.value, version: (current?.version ?? 0) + 1, createIndex: current?.createIndex ?? revision, modIndex: revision };
  // A put without a lease detaches the key from the one it had, as in etcd.
  store.set(request.key, request.lease ? { ...record, lease: request.lease } : record);
  return request.prevKv && current !== undefined ? { prevKv: toKeyValue(request.key, current) } : {};
}

export function applyDeleteRange(store: KvRecordStore, request: DeleteRangeRequest): DeleteRangeResult {
  const keys = keysInRange(store, request.key, request.rangeEnd);
  const prevKvs = request.prevKv ? keys.map((key) => toKeyValue(key, store.get(key)!)) : [];
  for (const key of keys) store.delete(key);
  return { deleted: keys.length, prevKvs };
}

/**
 * Applies a transaction atomically at `revision`: if every compare holds, the success ops run in
 * order, else the failure ops. Later ops see earlier ones' writes; every write carries `revision`.
 */
export function applyTxn(store: KvRecordStore, request: TxnRequest, revision: number): TxnResult {
  const succeeded = request.compare.every((compare) => compareHolds(store, compare));
  const ops = succeeded ? request.success : request.failure;
  return { succeeded, responses: ops.map((op) => applyOp(store, op, revision)) };
}

function applyOp(store: KvRecordStore, op: RequestOp, revision: number): ResponseOp {
  switch (op.type) {
    case "range":
      return { type: "range", result: evaluateRange(store, op.request, revision) };
    case "put":
      return { type: "put", result: applyPut(store, op.request, revision) };
    case "delete_range":
      return { type: "delete_range", result: applyDeleteRange(store, op.request) };
    case "txn":
      return { type: "txn", result: applyTxn(store, op.request, revision) };
  }
}

/**
 * The first lease that a put on the path the transaction will take (its compares evaluated now, nested
 * ones too, as etcd does before applying) names and that does not exist; undefined when all do. etcd
 * then fails the whole transaction with "requested lease not found" and applies nothing.
 */
export function missingLease(view: KvRecordView, request: TxnRequest, hasLease: (id: number) => boolean): number | undefined {
  const succeeded = request.compare.every((compare) => compareHolds(view, compare));
  for (const op of succeeded ? request.success : request.failure) {
    if (op.type === "put" && op.request.lease && !hasLease(op.request.lease)) return op.request.lease;
    if (op.type === "txn") {
      const missing = missingLease(view, op.request, hasLease);
      if (missing !== undefined) return missing;
    }
  }
  return undefined;
}

/** The leases that puts anywhere in the transaction name (for requests that need a lease at all). */
export function usesLeases(request: TxnRequest): boolean {
  return [...request.success, ...request.failure].some((op) => (op.type === "put" && Boolean(op.request.lease)) || (op.type === "txn" && usesLeases(op.request)));
}

/** True when no branch, at any depth, puts or deletes: the transaction can be served as a read. */
export function isReadOnlyTxn(request: TxnRequest): boolean {
  return [...request.success, ...request.failure].every((op) => op.type === "range" || (op.type === "txn" && isReadOnlyTxn(op.request)));
}

/**
 * etcd's rule that one branch writes each key at most once: no key is put twice, and no put key lies
 * in a range the same branch deletes. A nested transaction's two branches exclude each other, so each
 * is checked on its own, and what either may write counts against its parent's other ops.
 * Returns a message naming the key, or undefined.
 */
export function checkTxnWrites(request: TxnRequest): string | undefined {
  for (const [branch, ops] of [["success", request.success], ["failure", request.failure]] as const) {
    const writes = branchWrites(ops, branch);
    if (typeof writes === "string") return writes;
  }
  return undefined;
}

interface BranchWrites {
  readonly puts: ReadonlySet<string>;
  readonly deletes: readonly DeleteRangeRequest[];
}

function branchWrites(ops: readonly RequestOp[], branch: string): BranchWrites | string {
  const direct = { puts: new Set<string>(), deletes: [] as DeleteRangeRequest[] };
  const units: BranchWrites[] = [direct];
  for (const op of ops) {
    if (op.type === "put") {
      if (direct.puts.has(op.request.key)) return putTwice(op.request.key, branch);
      direct.puts.add(op.request.key);
    } else if (op.type === "delete_range") {
      direct.deletes.push(op.request);
    } else if (op.type === "txn") {
      const success = branchWrites(op.request.success, "nested success");
      if (typeof success === "string") return success;
      const failure = branchWrites(op.request.failure, "nested failure");
      if (typeof failure === "string") return failure;
      units.push({ puts: new Set([...success.puts, ...failure.puts]), deletes: [...success.deletes, ...failure.deletes] });
    }
  }
  const putBy = new Map<string, number>();
  for (const [unit, writes] of units.entries()) {
    for (const key of writes.puts) {
      if (putBy.has(key)) return putTwice(key, branch);
      putBy.set(key, unit);
    }
  }
  for (const [unit, writes] of units.entries()) {
    for (const deleted of writes.deletes) {
      for (const [key, putter] of putBy) {
        if ((unit === 0 || putter !== unit) && inRange(key, deleted.key, deleted.rangeEnd)) {
          return `Cannot run the transaction: key "${key}" is both put and deleted in the ${branch} branch; write each key at most once per branch`;
        }
      }
    }
  }
  return { puts: new Set(putBy.keys()), deletes: units.flatMap((writes) => writes.deletes) };
}

function putTwice(key: string, branch: string): string {
  return `Cannot run the transaction: key "${key}" is put twice in the ${branch} branch; put each key at most once per branch`;
}

function inRange(key: string, start: string, rangeEnd: Uint8Array): boolean {
  if (rangeEnd.length === 0) return key === start;
  const bytes = keyBytes(key);
  if (Buffer.compare(bytes, keyBytes(start)) < 0) return false;
  return isFromKey(rangeEnd) || Buffer.compare(bytes, Buffer.from(rangeEnd)) < 0;
}
