/**
 * The replicated key-value store's operations and results (etcd semantics: every key carries a
 * version; a put creates the key at version 1 or increments it; a delete removes it, and an absent key
 * has version 0; compare-and-set succeeds only when the key's version equals the expected one).
 *
 * Writes travel through the Raft log as JSON strings; reads never enter the log (ReadIndex serves them).
 */
import { isByteString } from "./bytes.ts";

/** The single-key writes: what the simulator's clients issue and its linearizability model knows. */
export type KvSimpleWrite =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "cas"; readonly key: string; readonly expectedVersion: number; readonly value: string };

export type KvWrite =
  | KvSimpleWrite
  /**
   * An etcd transaction (compares, then success or failure operations, over any keys), applied
   * atomically at one index. `request` is the encoded TxnRequest (src/api/txn-codec.ts); `key` names
   * the first key it touches, for logs and for the per-key bookkeeping of clients.
   */
  | { readonly op: "txn"; readonly key: string; readonly request: string }
  | KvLeaseWrite
  /** etcd's Compact: drop the history of revisions below `revision` (watches and ranges there end). */
  | { readonly op: "compact"; readonly revision: number };

/**
 * Leases (etcd's Lease service). A grant with id 0 takes the entry's index as its id. A revoke deletes
 * every key attached to the lease, and ends it; the leader proposes one itself when a lease expires
 * (`expired` says so, for logs), so expiry is a committed entry every node applies at the same index.
 */
export type KvLeaseWrite =
  | { readonly op: "lease_grant"; readonly id: number; readonly ttlSec: number }
  | { readonly op: "lease_revoke"; readonly id: number; readonly expired?: boolean };

export type KvRead = { readonly op: "get"; readonly key: string };

export type KvInput = KvSimpleWrite | KvRead;

export type KvOutput =
  | { readonly op: "put"; readonly version: number }
  | { readonly op: "get"; readonly value: string | null; readonly version: number }
  | { readonly op: "delete"; readonly deleted: boolean }
  | { readonly op: "cas"; readonly succeeded: boolean; readonly version: number };

/**
 * A transaction's result (the API's TxnResult), handed back to the client that proposed it; or, when a
 * put on the branch it would take names a lease that does not exist, that lease (nothing was applied).
 */
export type KvTxnOutput = { readonly op: "txn"; readonly result: unknown; readonly leaseNotFound?: number };

export type KvAdminOutput =
  | { readonly op: "lease_grant"; readonly granted: boolean; readonly id: number; readonly ttlSec: number }
  | { readonly op: "lease_revoke"; readonly found: boolean; readonly deleted: number }
  | { readonly op: "compact"; readonly problem?: "compacted" | "future"; readonly compactedRevision: number };

export type KvWriteOutput = KvOutput | KvTxnOutput | KvAdminOutput;

/** etcd's largest lease TTL (its MaxLeaseTTL), in seconds. */
export const LEASE_TTL_SEC_MAX = 9_000_000_000;

export const KEY_BYTES_MAX = 4096;
export const VALUE_BYTES_MAX = 1024 * 1024;

export function encodeWrite(write: KvWrite): string {
  return JSON.stringify(write);
}

/** Decodes a committed command; a malformed one is a bug (only validated writes are proposed). */
export function decodeWrite(data: string): KvWrite {
  const value = JSON.parse(data) as KvWrite;
  if (value === null || typeof value !== "object" || typeof value.op !== "string") {
    throw new Error(`Cannot decode key-value command: expected an object with a string "op", received ${data.slice(0, 80)}`);
  }
  return value;
}

function isId(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** Checks a client's write before it is proposed. Returns a message saying what is wrong, or undefined. */
export function validateWrite(write: KvWrite): string | undefined {
  switch (write.op) {
    case "lease_grant":
      if (!isId(write.id)) return `Cannot grant a lease: its id must be an integer from 0 (pick one) to 2^53-1, received ${String(write.id)}`;
      if (!(Number.isSafeInteger(write.ttlSec) && write.ttlSec >= 1 && write.ttlSec <= LEASE_TTL_SEC_MAX)) {
        return `Cannot grant a lease: its TTL must be an integer number of seconds from 1 to ${LEASE_TTL_SEC_MAX}, received ${String(write.ttlSec)}`;
      }
      return undefined;
    case "lease_revoke":
      return isId(write.id) && write.id > 0 ? undefined : `Cannot revoke lease ${String(write.id)}: a lease id is an integer from 1 to 2^53-1`;
    case "compact":
      return isId(write.revision) && write.revision > 0 ? undefined : `Cannot compact at revision ${String(write.revision)}: send a revision >= 1`;
  }
  if (typeof write.key !== "string" || write.key.length === 0) return "Cannot write: the key must be a non-empty string";
  if (!isByteString(write.key) || ("value" in write && typeof write.value === "string" && !isByteString(write.value))) {
    return "Cannot write: keys and values are byte strings (one char per byte, codes 0-255); convert text with Buffer.from(text).toString(\"latin1\")";
  }
  if (write.key.length > KEY_BYTES_MAX) return `Cannot write: the key is ${write.key.length} characters long; at most ${KEY_BYTES_MAX} are allowed`;
  if (write.op === "txn") {
    return write.request.length > VALUE_BYTES_MAX ? `Cannot write: the transaction is ${write.request.length} characters long; at most ${VALUE_BYTES_MAX} are allowed` : undefined;
  }
  if (write.op !== "delete" && typeof write.value !== "string") return "Cannot write: the value must be a string";
  if (write.op !== "delete" && write.value.length > VALUE_BYTES_MAX) {
    return `Cannot write: the value is ${write.value.length} characters long; at most ${VALUE_BYTES_MAX} are allowed`;
  }
  if (write.op === "cas" && !(Number.isInteger(write.expectedVersion) && write.expectedVersion >= 0)) {
    return `Cannot compare-and-set: the expected version must be an integer >= 0, received ${String(write.expectedVersion)}`;
  }
  return undefined;
}
