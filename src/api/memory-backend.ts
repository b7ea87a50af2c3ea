/**
 * A KvBackend in memory with etcd's full KV semantics (multi-key ranges and deletes, multi-op
 * transactions, prev_kv), for testing the HTTP layer without Raft and as the reference the
 * RaftNodeBackend grows toward. Every write takes the next revision, as every pgraft write takes the
 * next log index; reads and read-only transactions take none.
 *
 * A backend is a leader when `leaderId` is its own id. Otherwise writes and linearizable reads fail with
 * NotLeaderError (or NoQuorumError when no leader is known), exactly as RaftNode refuses them, and
 * serializable ranges are served from its own state.
 */
import type { NodeId } from "../core/types.ts";
import { NoQuorumError, NotLeaderError, type PgraftError } from "../errors.ts";
import type { KvRecord } from "../kv/kv-store.ts";
import { clusterIdNumber } from "./header.ts";
import { LeaseNotFoundError } from "./errors.ts";
import { applyDeleteRange, applyPut, applyTxn, evaluateRange, isReadOnlyTxn, missingLease, type KvRecordStore } from "./kv-model.ts";
import type {
  DeleteRangeRequest,
  DeleteRangeResponse,
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

/** The records and the revision; several backends may share one to model a replicated store. */
export class MemoryKvState implements KvRecordStore {
  readonly #records = new Map<string, KvRecord>();
  revision = 0;
  /** Lease ids that exist (tests add them); a put naming another fails as etcd's does. */
  readonly leases = new Set<number>();

  get(key: string): KvRecord | undefined {
    return this.#records.get(key);
  }

  keys(): string[] {
    return [...this.#records.keys()].sort();
  }

  set(key: string, record: KvRecord): void {
    this.#records.set(key, record);
  }

  delete(key: string): boolean {
    return this.#records.delete(key);
  }
}

export interface MemoryKvBackendOptions {
  readonly memberId: NodeId;
  /** pgraft.cluster_id; the header carries clusterIdNumber() of it. */
  readonly clusterId?: string;
  readonly state?: MemoryKvState;
  /** The leader this backend believes in; its own id (the default) makes it the leader. */
  readonly leaderId?: NodeId;
  readonly term?: number;
}

export class MemoryKvBackend implements KvBackend {
  readonly memberId: NodeId;
  readonly state: MemoryKvState;
  /** Every call, in order, by method name: tests check which node did the work. */
  readonly calls: string[] = [];
  leaderId: NodeId;
  term: number;
  readonly #clusterId: string;
  #failures: PgraftError[] = [];

  constructor(options: MemoryKvBackendOptions) {
    this.memberId = options.memberId;
    this.state = options.state ?? new MemoryKvState();
    this.leaderId = options.leaderId ?? options.memberId;
    this.term = options.term ?? 1;
    this.#clusterId = clusterIdNumber(options.clusterId ?? "memory");
  }

  /** The next call rejects with `error` (after the leader check), once. */
  failNext(error: PgraftError): void {
    this.#failures.push(error);
  }

  put(request: PutRequest): Promise<PutResponse> {
    return this.#run("put", true, () => {
      if (request.lease && !this.state.leases.has(request.lease)) throw new LeaseNotFoundError(request.lease);
      const revision = ++this.state.revision;
      return { ...applyPut(this.state, request, revision), header: this.#header(revision) };
    });
  }

  range(request: RangeRequest): Promise<RangeResponse> {
    return this.#run("range", !request.serializable, () => {
      const revision = this.state.revision;
      return { ...evaluateRange(this.state, request, revision), header: this.#header(revision) };
    });
  }

  deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.#run("deleteRange", true, () => {
      const revision = ++this.state.revision;
      return { ...applyDeleteRange(this.state, request), header: this.#header(revision) };
    });
  }

  txn(request: TxnRequest): Promise<TxnResponse> {
    return this.#run("txn", true, () => {
      const missing = missingLease(this.state, request, (id) => this.state.leases.has(id));
      if (missing !== undefined) throw new LeaseNotFoundError(missing);
      const revision = isReadOnlyTxn(request) ? this.state.revision : ++this.state.revision;
      return { ...applyTxn(this.state, request, revision), header: this.#header(revision) };
    });
  }

  header(): ResponseHeader {
    return this.#header(this.state.revision);
  }

  leader(): LeaderInfo {
    return { isLeader: this.leaderId === this.memberId, leaderId: this.leaderId };
  }

  #header(revision: number): ResponseHeader {
    return { clusterId: this.#clusterId, memberId: String(this.memberId), revision, raftTerm: this.term };
  }

  #run<T>(method: string, needsLeader: boolean, body: () => T): Promise<T> {
    this.calls.push(method);
    try {
      if (needsLeader && this.leaderId !== this.memberId) {
        const action = method === "range" ? "read" : "write";
        if (this.leaderId === 0) throw new NoQuorumError(action, `node ${this.memberId} knows no leader`);
        throw new NotLeaderError(this.leaderId, action);
      }
      const failure = this.#failures.shift();
      if (failure !== undefined) throw failure;
      return Promise.resolve(body());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
