/**
 * The replicated key-value store's operations and results (etcd semantics: every key carries a
 * version; a put creates the key at version 1 or increments it; a delete removes it, and an absent key
 * has version 0; compare-and-set succeeds only when the key's version equals the expected one).
 *
 * Writes travel through the Raft log as JSON strings; reads never enter the log (ReadIndex serves them).
 */
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
  | { readonly op: "txn"; readonly key: string; readonly request: string };

export type KvRead = { readonly op: "get"; readonly key: string };

export type KvInput = KvSimpleWrite | KvRead;

export type KvOutput =
  | { readonly op: "put"; readonly version: number }
  | { readonly op: "get"; readonly value: string | null; readonly version: number }
  | { readonly op: "delete"; readonly deleted: boolean }
  | { readonly op: "cas"; readonly succeeded: boolean; readonly version: number };

/** A transaction's result (the API's TxnResult), handed back to the client that proposed it. */
export type KvTxnOutput = { readonly op: "txn"; readonly result: unknown };

export type KvWriteOutput = KvOutput | KvTxnOutput;

export const KEY_BYTES_MAX = 4096;
export const VALUE_BYTES_MAX = 1024 * 1024;

export function encodeWrite(write: KvWrite): string {
  return JSON.stringify(write);
}

/** Decodes a committed command; a malformed one is a bug (only validated writes are proposed). */
export function decodeWrite(data: string): KvWrite {
  const value = JSON.parse(data) as KvWrite;
  if (value === null || typeof value !== "object" || typeof value.key !== "string") {
    throw new Error(`Cannot decode key-value command: expected an object with a string "key", received ${data.slice(0, 80)}`);
  }
  return value;
}

/** Checks a client's write before it is proposed. Returns a message saying what is wrong, or undefined. */
export function validateWrite(write: KvWrite): string | undefined {
  if (typeof write.key !== "string" || write.key.length === 0) return "Cannot write: the key must be a non-empty string";
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
