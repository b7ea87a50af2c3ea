/**
 * The KvBackend over a RaftNode: what production serves the client API with.
 *
 * Writes go through the Raft log; linearizable ranges and read-only transactions take a ReadIndex round
 * (RaftNode.read) and are evaluated inside its callback, when the applied state has reached the read
 * index and before anything else is applied, so a prefix range is one consistent cut. Serializable
 * ranges read this node's applied state at once.
 *
 * Writes map onto the state machine's commands (src/kv/command.ts): a plain put or delete of one key
 * is a `put` or `delete`; a transaction of the shape
 *   compare [{key K, target VERSION (or CREATE or MOD with 0), result EQUAL}], success [put K], failure []
 * is a `cas` (CREATE = 0 and MOD = 0 both mean "K is absent", which is version 0); everything else (any
 * other transaction, a range delete, prev_kv) is a `txn` command that the state machine applies
 * atomically at one index with etcd's rules (src/api/kv-model.ts).
 */
import type { RaftStatus } from "../core/raft.ts";
import type { NodeId } from "../core/types.ts";
import { RequestTimeoutError, type ErrorOutcome, type PgraftError } from "../errors.ts";
import type { KvStore } from "../kv/kv-store.ts";
import type { ClientCallback, ClientResult, RaftNode } from "../node/raft-node.ts";
import type { KvWrite } from "../kv/command.ts";
import type { Timers } from "../node/environment.ts";
import { assert } from "../assert.ts";
import { encodeTxnCommand } from "./txn-codec.ts";
import { LeaseExistsError, LeaseNotFoundError, RevisionUnavailableError, UnimplementedError } from "./errors.ts";
import type { LeaseBackend, LeaseGrant, LeaseTimeToLive, MaintenanceBackend, NodeStatusReport } from "./etcd-service.ts";
import { clusterIdNumber } from "./header.ts";
import { applyTxn, evaluateRange, isReadOnlyTxn, readOnlyStore } from "./kv-model.ts";
import type {
  DeleteRangeRequest,
  DeleteRangeResponse,
  DeleteRangeResult,
  PutResult,
  TxnResult,
  KvBackend,
  LeaderInfo,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
} from "./kv-types.ts";

/** The part of RaftNode the backend uses (RaftNode fits as is). */
export interface RaftNodeLike {
  readonly id: NodeId;
  readonly store: KvStore;
  status(): RaftStatus;
  write(write: KvWrite, callback: ClientCallback): void;
  read(key: string, callback: ClientCallback): void;
  /** Leases (RaftNode has them; a node without them answers lease calls 501). */
  keepAlive?: RaftNode["keepAlive"];
  leaseRemainingSec?: RaftNode["leaseRemainingSec"];
  readonly leaseTtlMinSec?: number;
}

export interface RaftNodeBackendOptions {
  readonly node: RaftNodeLike;
  /** pgraft.cluster_id. */
  readonly clusterId: string;
  /**
   * The node's own request timeout. The node answers every request within it while it runs; a request
   * still unanswered `graceMs` later (a stopped node answers nobody) fails with RequestTimeoutError.
   */
  readonly requestTimeoutMs: number;
  readonly graceMs?: number;
  /** Timers for the backstop (default: setTimeout, unref'd so a backstop never keeps a process alive). */
  readonly timers?: Timers;
  /** Called with each successful write's latency, proposal to apply, in seconds. */
  readonly observeWriteLatency?: (seconds: number) => void;
}

const GRACE_MS_DEFAULT = 1000;

const BACKSTOP_TIMERS: Timers = {
  nowMs: () => performance.now(),
  after(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/** One compare-and-set, the only multi-part write the state machine applies today. */
interface CasShape {
  readonly key: string;
  readonly expectedVersion: number;
  readonly value: string;
}

export class RaftNodeBackend implements KvBackend, LeaseBackend, MaintenanceBackend {
  readonly #node: RaftNodeLike;
  readonly #clusterId: string;
  readonly #memberId: string;
  readonly #backstopMs: number;
  readonly #timers: Timers;
  readonly #observeWriteLatency: ((seconds: number) => void) | undefined;

  constructor(options: RaftNodeBackendOptions) {
    this.#node = options.node;
    this.#clusterId = clusterIdNumber(options.clusterId);
    this.#memberId = String(options.node.id);
    this.#backstopMs = options.requestTimeoutMs + (options.graceMs ?? GRACE_MS_DEFAULT);
    this.#timers = options.timers ?? BACKSTOP_TIMERS;
    this.#observeWriteLatency = options.observeWriteLatency;
  }

  put(request: PutRequest): Promise<PutResponse> {
    if (request.prevKv || request.lease) {
      // The previous value must be read in the same step as the write, and the lease must exist when
      // it applies: a one-operation transaction.
      return this.#transaction({ compare: [], success: [{ type: "put", request }], failure: [] }).then((result) => ({
        ...(result.responses[0]!.result as PutResult),
        header: result.header,
      }));
    }
    return this.#write({ op: "put", key: request.key, value: request.value }, (result) => ({ header: this.#header(result.index) }));
  }

  range(request: RangeRequest): Promise<RangeResponse> {
    if (request.serializable) {
      try {
        return Promise.resolve(this.#evaluateRange(request));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#call("read", "failed", (callback) => this.#node.read(request.key, callback), () => this.#evaluateRange(request));
  }

  deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    if (request.rangeEnd.length > 0 || request.prevKv) {
      // A range of keys, or the deleted values, in one atomic step: a one-operation transaction.
      return this.#transaction({ compare: [], success: [{ type: "delete_range", request }], failure: [] }).then((result) => ({
        ...(result.responses[0]!.result as DeleteRangeResult),
        header: result.header,
      }));
    }
    return this.#write({ op: "delete", key: request.key }, (result) => ({
      deleted: result.output.op === "delete" && result.output.deleted ? 1 : 0,
      prevKvs: [],
      header: this.#header(result.index),
    }));
  }

  txn(request: TxnRequest): Promise<TxnResponse> {
    if (isReadOnlyTxn(request)) {
      const key = request.compare[0]?.key ?? "";
      return this.#call(
        "read",
        "failed",
        (callback) => this.#node.read(key, callback),
        () => {
          const revision = this.#node.store.appliedIndex;
          return { ...applyTxn(readOnlyStore(this.#node.store), request, revision), header: this.#header(revision) };
        },
      );
    }
    const cas = casShape(request);
    if (cas === undefined) return this.#transaction(request);
    return this.#write({ op: "cas", key: cas.key, expectedVersion: cas.expectedVersion, value: cas.value }, (result) => {
      const succeeded = result.output.op === "cas" && result.output.succeeded;
      return { succeeded, responses: succeeded ? [{ type: "put", result: {} }] : [], header: this.#header(result.index) };
    });
  }

  /** Any transaction, applied atomically by the state machine at one log index. */
  #transaction(request: TxnRequest): Promise<TxnResponse> {
    const key = request.compare[0]?.key ?? firstKey(request) ?? "";
    return this.#write({ op: "txn", key, request: encodeTxnCommand(request) }, (result) => {
      const output = result.output;
      assert(output.op === "txn", `a transaction completed as ${output.op}`);
      if (output.leaseNotFound !== undefined) throw new LeaseNotFoundError(output.leaseNotFound);
      return { ...(output.result as TxnResult), header: this.#header(result.index) };
    });
  }

  header(): ResponseHeader {
    return this.#header(this.#node.store.appliedIndex);
  }

  // --- Lease ----------------------------------------------------------------------------------------

  grant(id: number, ttlSec: number): Promise<LeaseGrant> {
    // etcd raises a TTL below its minimum (1.5 election timeouts) to it, so a lease outlives an election.
    const granted = Math.max(ttlSec, this.#node.leaseTtlMinSec ?? 1);
    return this.#write({ op: "lease_grant", id, ttlSec: granted }, (result) => {
      const output = result.output;
      assert(output.op === "lease_grant", `a lease grant completed as ${output.op}`);
      if (!output.granted) throw new LeaseExistsError(output.id);
      return { id: output.id, ttlSec: output.ttlSec, header: this.#header(result.index) };
    });
  }

  revoke(id: number): Promise<{ header: ResponseHeader }> {
    return this.#write({ op: "lease_revoke", id }, (result) => {
      const output = result.output;
      assert(output.op === "lease_revoke", `a lease revoke completed as ${output.op}`);
      if (!output.found) throw new LeaseNotFoundError(id);
      return { header: this.#header(result.index) };
    });
  }

  keepAlive(id: number): Promise<LeaseGrant> {
    const keepAlive = this.#node.keepAlive?.bind(this.#node);
    if (keepAlive === undefined) return Promise.reject(new UnimplementedError("lease", "Cannot keep a lease alive: this node has no leases"));
    return this.#call("read", "failed", (callback: Parameters<typeof keepAlive>[1]) => keepAlive(id, callback), (result) => ({ id, ttlSec: result.ttlSec, header: this.header() }));
  }

  timeToLive(id: number, keys: boolean): Promise<LeaseTimeToLive> {
    const remaining = this.#node.leaseRemainingSec?.(id);
    if (remaining === undefined) return Promise.reject(new UnimplementedError("lease", "Cannot read a lease's time to live: this node has no leases"));
    if (!remaining.ok) return Promise.reject(remaining.error);
    const lease = this.#node.store.lease(id);
    if (remaining.remainingSec === undefined || lease === undefined) return Promise.resolve({ id, ttlSec: -1, grantedTtlSec: 0, keys: [], header: this.header() });
    return Promise.resolve({ id, ttlSec: remaining.remainingSec, grantedTtlSec: lease.ttlSec, keys: keys ? lease.keys : [], header: this.header() });
  }

  leases(): Promise<{ ids: readonly number[]; header: ResponseHeader }> {
    return this.#call("read", "failed", (callback) => this.#node.read("", callback), () => ({
      ids: this.#node.store.leases().map((lease) => lease.id),
      header: this.header(),
    }));
  }

  // --- Maintenance ----------------------------------------------------------------------------------

  compact(revision: number): Promise<{ header: ResponseHeader }> {
    return this.#write({ op: "compact", revision }, (result) => {
      const output = result.output;
      assert(output.op === "compact", `a compaction completed as ${output.op}`);
      if (output.problem !== undefined) throw new RevisionUnavailableError(revision, output.problem, result.index - 1);
      return { header: this.#header(result.index) };
    });
  }

  status(): NodeStatusReport {
    const status = this.#node.status();
    const store = this.#node.store;
    return {
      header: this.header(),
      leaderId: status.leaderId,
      raftIndex: status.commit,
      raftTerm: status.term,
      raftAppliedIndex: store.appliedIndex,
      // An estimate: the bytes of the keys and values held (pgraft has no database file of its own).
      dbSize: storeBytes(store),
      isLearner: status.membership.learners.includes(status.id),
    };
  }

  leader(): LeaderInfo {
    const status = this.#node.status();
    return { isLeader: status.role === "leader", leaderId: status.leaderId };
  }

  #header(revision: number): ResponseHeader {
    return { clusterId: this.#clusterId, memberId: this.#memberId, revision, raftTerm: this.#node.status().term };
  }

  #evaluateRange(request: RangeRequest): RangeResponse {
    const revision = this.#node.store.appliedIndex;
    return { ...evaluateRange(this.#node.store, request, revision), header: this.#header(revision) };
  }

  #write<T>(write: KvWrite, onApplied: (result: ClientResult & { ok: true }) => T): Promise<T> {
    const startMs = this.#timers.nowMs();
    return this.#call("write", "unknown", (callback) => this.#node.write(write, callback), (result) => {
      this.#observeWriteLatency?.((this.#timers.nowMs() - startMs) / 1000);
      return onApplied(result);
    });
  }

  /**
   * Runs one node request. `onResult` runs inside the node's callback, synchronously, so it sees the
   * state exactly as of the write's apply or the read's index: nothing else is applied in between.
   */
  #call<T, R extends { readonly ok: true } | { readonly ok: false; readonly error: PgraftError } = ClientResult>(
    action: "read" | "write",
    outcomeOnTimeout: ErrorOutcome,
    start: (callback: (result: R) => void) => void,
    onResult: (result: R & { ok: true }) => T,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const backstop = this.#timers.after(this.#backstopMs, () => {
        if (settled) return;
        settled = true;
        reject(new RequestTimeoutError(action, this.#backstopMs, outcomeOnTimeout));
      });
      try {
        start((result) => {
          if (settled) return;
          settled = true;
          backstop.cancel();
          if (!result.ok) return reject(result.error);
          try {
            resolve(onResult(result as R & { ok: true }));
          } catch (error) {
            reject(error);
          }
        });
      } catch (error) {
        settled = true;
        backstop.cancel();
        reject(error);
      }
    });
  }
}

/** The transaction as one `cas` command, or undefined when it has another shape. */
export function casShape(request: TxnRequest): CasShape | undefined {
  if (request.compare.length !== 1 || request.success.length !== 1 || request.failure.length !== 0) return undefined;
  const compare = request.compare[0]!;
  const op = request.success[0]!;
  if (compare.result !== "EQUAL" || compare.rangeEnd.length > 0) return undefined;
  if (op.type !== "put" || op.request.key !== compare.key || op.request.prevKv || op.request.lease) return undefined;
  let expectedVersion: number;
  if (compare.target === "VERSION") expectedVersion = compare.operand;
  else if ((compare.target === "CREATE" || compare.target === "MOD") && compare.operand === 0) expectedVersion = 0;
  else return undefined;
  return { key: compare.key, expectedVersion, value: op.request.value };
}


function storeBytes(store: KvStore): number {
  let bytes = 0;
  for (const [key, record] of store.entries()) bytes += key.length + record.value.length;
  return bytes;
}

function firstKey(request: TxnRequest): string | undefined {
  const op = request.success[0] ?? request.failure[0];
  if (op === undefined) return undefined;
  return op.type === "txn" ? firstKey(op.request) : op.request.key;
}
