/**
 * pgraft's errors as gRPC statuses, the way etcd sends them: the gRPC code the gateway reports in
 * `code`, and the gateway's `error` text as the status message, which for the errors etcd clients act on
 * is etcd's exact string (clientv3 turns "etcdserver: mvcc: required revision has been compacted" or
 * "etcdserver: requested lease not found" back into its typed errors by that text). pgraft's additions
 * travel as trailing metadata: `pgraft-outcome` ("failed" or "unknown", see errors.ts), `pgraft-hint`
 * and `pgraft-leader-id`.
 */
import { Metadata, type StatusObject } from "@grpc/grpc-js";
import { toGatewayError, type GatewayErrorBody } from "./errors.ts";

/** etcd clients' message size limit is 2 MiB by default; a status message far below it. */
const DETAILS_CHARS_MAX = 4096;

export type GrpcError = Partial<StatusObject> & { code: number; details: string };

/** A gateway error body (this node's, or a leader's answer to a forwarded request) as a gRPC status. */
export function grpcStatusOf(body: Pick<GatewayErrorBody, "code" | "error"> & Partial<GatewayErrorBody>): GrpcError {
  const metadata = new Metadata();
  if (body.outcome !== undefined) metadata.set("pgraft-outcome", body.outcome);
  if (body.hint !== undefined) metadata.set("pgraft-hint", ascii(body.hint));
  if (body.leader_id !== undefined) metadata.set("pgraft-leader-id", body.leader_id);
  const details = body.error.length > DETAILS_CHARS_MAX ? `${body.error.slice(0, DETAILS_CHARS_MAX - 3)}...` : body.error;
  return { code: body.code, details, metadata };
}

/** Any error a call met, as the gRPC status etcd would send (errors.ts's mapping, transport-neutral). */
export function toGrpcError(error: unknown): GrpcError {
  return grpcStatusOf(toGatewayError(error).body);
}

/** Metadata values must be printable ASCII. */
function ascii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, DETAILS_CHARS_MAX);
}
