/**
 * etcd's response header identifies the cluster and the member by uint64 ids. pgraft names its cluster
 * (pgraft.cluster_id is text), so the header carries a number derived from the name: the name itself
 * when it is already a decimal uint64, else the first 8 bytes of its SHA-256 digest. Every node derives
 * the same number, and the name never travels in a header.
 */
import { createHash } from "node:crypto";

const UINT64_LIMIT = 1n << 64n;

export function clusterIdNumber(clusterId: string): string {
  if (/^\d{1,20}$/.test(clusterId) && BigInt(clusterId) < UINT64_LIMIT) return BigInt(clusterId).toString();
  return createHash("sha256").update(clusterId, "utf8").digest().readBigUInt64BE(0).toString();
}
