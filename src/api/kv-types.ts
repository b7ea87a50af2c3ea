/**
 * The client API's requests and responses (etcd's KV service, decoded from its JSON gateway form) and
 * the KvBackend boundary the HTTP layer talks to. The HTTP layer never sees Raft: production plugs in
 * RaftNodeBackend (over a RaftNode), tests plug in MemoryKvBackend.
 *
 * Keys and values are byte strings (src/kv/bytes.ts: one char per byte), so any bytes are stored as
 * sent, and keys order as their bytes, as in etcd. Range ends and value compares stay Uint8Arrays.
 *
 * Revisions: pgraft's revision is the Raft log index. A key's create_revision and mod_revision are the
 * indexes of the entries that created and last changed it; a response header's revision is the index
 * of the write it reports, or for a read the applied index the read was served at.
 */
import type { NodeId } from "../core/types.ts";

export interface ResponseHeader {
  /** pgraft.cluster_id as etcd's uint64, in decimal (see clusterIdNumber()). */
  readonly clusterId: string;
  /** This node's id, in decimal. */
  readonly memberId: string;
  readonly revision: number;
  readonly raftTerm: number;
}

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
  /** The lease the key is attached to; 0: none. */
  readonly lease: number;
}

export const SORT_ORDERS = ["NONE", "ASCEND", "DESCEND"] as const;
export type SortOrder = (typeof SORT_ORDERS)[number];
export const SORT_TARGETS = ["KEY", "VERSION", "CREATE", "MOD", "VALUE"] as const;
export type SortTarget = (typeof SORT_TARGETS)[number];

export interface RangeRequest {
  readonly key: string;
  /** Empty: only `key`. One zero byte: every key >= `key`. Otherwise every key in [key, rangeEnd). */
  readonly rangeEnd: Uint8Array;
  /** 0: no limit. */
  readonly limit: number;
  /** 0: the latest; else a past revision within the kept history (older ones are compacted). */
  readonly revision: number;
  readonly sortOrder: SortOrder;
  readonly sortTarget: SortTarget;
  /** Serve from this node's applied state (possibly stale) instead of a ReadIndex round. */
  readonly serializable: boolean;
  readonly keysOnly: boolean;
  readonly countOnly: boolean;
  readonly minModRevision: number;
  readonly maxModRevision: number;
  readonly minCreateRevision: number;
  readonly maxCreateRevision: number;
}

export interface PutRequest {
  readonly key: string;
  readonly value: string;
  /** The lease to attach the key to; absent or 0: none (a key put without one loses the lease it had). */
  readonly lease?: number;
  readonly prevKv: boolean;
}

export interface DeleteRangeRequest {
  readonly key: string;
  readonly rangeEnd: Uint8Array;
  readonly prevKv: boolean;
}

export const COMPARE_RESULTS = ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"] as const;
export type CompareResult = (typeof COMPARE_RESULTS)[number];
export const COMPARE_TARGETS = ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"] as const;
export type CompareTarget = (typeof COMPARE_TARGETS)[number];

/** One txn compare: every key in [key, rangeEnd) (or just `key`) must satisfy it. */
export type Compare =
  | {
      readonly target: "VERSION" | "CREATE" | "MOD" | "LEASE";
      readonly result: CompareResult;
      readonly key: string;
      readonly rangeEnd: Uint8Array;
      readonly operand: number;
    }
  | {
      readonly target: "VALUE";
      readonly result: CompareResult;
      readonly key: string;
      readonly rangeEnd: Uint8Array;
      readonly operand: Uint8Array;
    };

export type RequestOp =
  | { readonly type: "range"; readonly request: RangeRequest }
  | { readonly type: "put"; readonly request: PutRequest }
  | { readonly type: "delete_range"; readonly request: DeleteRangeRequest }
  | { readonly type: "txn"; readonly request: TxnRequest };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

export interface RangeResult {
  readonly kvs: readonly KeyValue[];
  /** Keys in the range (before limit and revision filters, as etcd counts). */
  readonly count: number;
  /** More keys matched than `limit` let through. */
  readonly more: boolean;
}

export interface PutResult {
  readonly prevKv?: KeyValue;
}

export interface DeleteRangeResult {
  readonly deleted: number;
  readonly prevKvs: readonly KeyValue[];
}

export type ResponseOp =
  | { readonly type: "range"; readonly result: RangeResult }
  | { readonly type: "put"; readonly result: PutResult }
  | { readonly type: "delete_range"; readonly result: DeleteRangeResult }
  | { readonly type: "txn"; readonly result: TxnResult };

export interface TxnResult {
  readonly succeeded: boolean;
  readonly responses: readonly ResponseOp[];
}

export type RangeResponse = RangeResult & { readonly header: ResponseHeader };
export type PutResponse = PutResult & { readonly header: ResponseHeader };
export type DeleteRangeResponse = DeleteRangeResult & { readonly header: ResponseHeader };
export type TxnResponse = TxnResult & { readonly header: ResponseHeader };

/** Who this node believes leads: `leaderId` is 0 when it knows no leader. */
export interface LeaderInfo {
  readonly isLeader: boolean;
  readonly leaderId: NodeId;
}

/**
 * What the client API needs from the node. Every method settles: it resolves with the response, or
 * rejects with a PgraftError (src/errors.ts, src/api/errors.ts). A NotLeaderError means the request
 * did not take effect and the HTTP layer may forward it to `leaderId`. Linearizable reads and all
 * writes need the leader; serializable ranges are served from this node's applied state.
 */
export interface KvBackend {
  put(request: PutRequest): Promise<PutResponse>;
  range(request: RangeRequest): Promise<RangeResponse>;
  deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  txn(request: TxnRequest): Promise<TxnResponse>;
  /** The header a response from this node would carry now (revision: the applied index). */
  header(): ResponseHeader;
  leader(): LeaderInfo;
}
