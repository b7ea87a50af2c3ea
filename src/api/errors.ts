/**
 * The client API's own errors, and the mapping of every pgraft error onto etcd's JSON gateway shape:
 * `{"error": message, "code": gRPC code, "message": message}` with the HTTP status grpc-gateway gives
 * that gRPC code. Two fields are pgraft's additions, harmless to etcd clients: `outcome` ("failed":
 * the request did not take effect, safe to retry; "unknown": it may still take effect, read before
 * retrying) and, where a leader is known, `leader_id`.
 */
import type { NodeId } from "../core/types.ts";
import {
  BusyError,
  InvalidRequestError,
  MembershipChangeInProgressError,
  NodeStoppedError,
  NoQuorumError,
  NotLeaderError,
  PgraftError,
  RequestTimeoutError,
  SupersededError,
  type ErrorOutcome,
} from "../errors.ts";

/** gRPC status codes, as etcd's gateway reports them in `code`. */
export const GRPC_CODES = {
  cancelled: 1,
  unknown: 2,
  invalidArgument: 3,
  deadlineExceeded: 4,
  notFound: 5,
  resourceExhausted: 8,
  failedPrecondition: 9,
  outOfRange: 11,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
} as const;

/** The request asks for something pgraft does not do (yet): HTTP 501, gRPC UNIMPLEMENTED. */
export class UnimplementedError extends PgraftError {
  override name = "UnimplementedError";
  readonly code = "unimplemented";
  readonly outcome = "failed";
  /** The request feature refused, as etcd names it: "lease", "prev_kv", "range_end", ... */
  readonly feature: string;
  constructor(feature: string, message: string) {
    super(message);
    this.feature = feature;
  }
}

/**
 * etcd's own error strings. Clients match them exactly (Go's clientv3 turns them back into typed errors,
 * Patroni's etcd3 module looks "requested lease not found" up by its text), so errors that etcd clients
 * act on carry etcd's string as their message and pgraft's explanation apart, in `hint`.
 */
export const ETCD_ERRORS = {
  compacted: "etcdserver: mvcc: required revision has been compacted",
  futureRevision: "etcdserver: mvcc: required revision is a future revision",
  leaseNotFound: "etcdserver: requested lease not found",
  leaseExists: "etcdserver: lease already exists",
  leaseTtlTooLarge: "etcdserver: too large lease TTL",
  memberNotFound: "etcdserver: member not found",
} as const;

/** An error etcd clients recognise by its message (ETCD_ERRORS); `hint` says what to do, pgraft's way. */
export abstract class EtcdError extends PgraftError {
  abstract readonly grpcCode: number;
  abstract readonly httpStatus: number;
  readonly outcome = "failed";
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** A read or watch at a revision the store no longer keeps, or has not reached: OUT_OF_RANGE. */
export class RevisionUnavailableError extends EtcdError {
  override name = "RevisionUnavailableError";
  readonly code = "revision_unavailable";
  readonly grpcCode = 11;
  readonly httpStatus = 400;
  constructor(
    readonly requestedRevision: number,
    readonly problem: "compacted" | "future",
    readonly currentRevision: number,
  ) {
    super(
      problem === "compacted" ? ETCD_ERRORS.compacted : ETCD_ERRORS.futureRevision,
      problem === "compacted"
        ? `Cannot read at revision ${requestedRevision}: its history has been compacted; read the latest (omit "revision") or a newer revision (the current one is ${currentRevision})`
        : `Cannot read at revision ${requestedRevision}: it is a future revision, the current one is ${currentRevision}; omit "revision" to read the latest`,
    );
  }
}

/** The lease named does not exist (never granted, revoked, or expired): NOT_FOUND. */
export class LeaseNotFoundError extends EtcdError {
  override name = "LeaseNotFoundError";
  readonly code = "lease_not_found";
  readonly grpcCode = 5;
  readonly httpStatus = 404;
  constructor(readonly leaseId: number) {
    super(ETCD_ERRORS.leaseNotFound, `Cannot use lease ${leaseId}: it does not exist (never granted, revoked, or expired); grant a new one`);
  }
}

/** A member remove named an id that is not a member: NOT_FOUND, as etcd answers (etcdctl prints it). */
export class MemberNotFoundError extends EtcdError {
  override name = "MemberNotFoundError";
  readonly code = "member_not_found";
  readonly grpcCode = 5;
  readonly httpStatus = 404;
  constructor(readonly memberId: number) {
    super(ETCD_ERRORS.memberNotFound, `Cannot remove member ${memberId}: it is not a member of the cluster; list the members (POST /v3/cluster/member/list, etcdctl member list) for their ids`);
  }
}

/** A grant named an id that is taken: FAILED_PRECONDITION. */
export class LeaseExistsError extends EtcdError {
  override name = "LeaseExistsError";
  readonly code = "lease_exists";
  readonly grpcCode = 9;
  readonly httpStatus = 400;
  constructor(readonly leaseId: number) {
    super(ETCD_ERRORS.leaseExists, `Cannot grant lease ${leaseId}: a lease with that id exists; send ID 0 to let pgraft pick one`);
  }
}

/** The request body exceeds the configured bound: HTTP 413, gRPC INVALID_ARGUMENT. */
export class RequestTooLargeError extends PgraftError {
  override name = "RequestTooLargeError";
  readonly code = "too_large";
  readonly outcome = "failed";
  constructor(readonly bodyBytesMax: number) {
    super(
      `Cannot accept the request: its body is larger than ${bodyBytesMax} bytes; send smaller values (pgraft stores at most 1 MiB per value)`,
    );
  }
}

/** A path or method the API does not serve: HTTP 404 or 405. */
export class RouteError extends PgraftError {
  override name = "RouteError";
  readonly code = "not_found";
  readonly outcome = "failed";
  constructor(
    readonly httpStatus: 404 | 405,
    message: string,
  ) {
    super(message);
  }
}

/** A follower could not hand the request to the leader: HTTP 503 (or 504 on a timeout). */
export class ForwardError extends PgraftError {
  override name = "ForwardError";
  readonly code = "forward_failed";
  readonly outcome: ErrorOutcome;
  constructor(
    readonly leaderId: NodeId,
    readonly timedOut: boolean,
    outcome: ErrorOutcome,
    message: string,
  ) {
    super(message);
    this.outcome = outcome;
  }
}

export interface GatewayErrorBody {
  readonly error: string;
  readonly code: number;
  readonly message: string;
  readonly outcome: ErrorOutcome;
  readonly leader_id?: string;
  /** For errors that carry etcd's exact text (EtcdError): what happened and what to do. */
  readonly hint?: string;
}

export interface GatewayError {
  readonly httpStatus: number;
  readonly body: GatewayErrorBody;
}

function gatewayError(httpStatus: number, grpcCode: number, message: string, outcome: ErrorOutcome, leaderId?: NodeId): GatewayError {
  const body: GatewayErrorBody = { error: message, code: grpcCode, message, outcome };
  return { httpStatus, body: leaderId !== undefined && leaderId !== 0 ? { ...body, leader_id: String(leaderId) } : body };
}

/**
 * The HTTP status and body for any error a request met. Errors that are not PgraftErrors are bugs:
 * they become 500 INTERNAL with their message and an unknown outcome.
 */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof InvalidRequestError) return gatewayError(400, GRPC_CODES.invalidArgument, error.message, "failed");
  if (error instanceof RequestTooLargeError) return gatewayError(413, GRPC_CODES.invalidArgument, error.message, "failed");
  if (error instanceof EtcdError) return { httpStatus: error.httpStatus, body: { ...gatewayError(error.httpStatus, error.grpcCode, error.message, "failed").body, hint: error.hint } };
  if (error instanceof UnimplementedError) return gatewayError(501, GRPC_CODES.unimplemented, error.message, "failed");
  if (error instanceof RouteError) {
    return gatewayError(error.httpStatus, error.httpStatus === 404 ? GRPC_CODES.notFound : GRPC_CODES.unimplemented, error.message, "failed");
  }
  if (error instanceof NotLeaderError) return gatewayError(503, GRPC_CODES.unavailable, error.message, "failed", error.leaderId);
  if (error instanceof NoQuorumError) return gatewayError(503, GRPC_CODES.unavailable, error.message, "failed");
  if (error instanceof SupersededError) return gatewayError(503, GRPC_CODES.unavailable, error.message, "failed");
  if (error instanceof NodeStoppedError) return gatewayError(503, GRPC_CODES.unavailable, error.message, error.outcome);
  if (error instanceof BusyError) return gatewayError(429, GRPC_CODES.resourceExhausted, error.message, "failed");
  if (error instanceof RequestTimeoutError) return gatewayError(504, GRPC_CODES.deadlineExceeded, error.message, error.outcome);
  if (error instanceof ForwardError) {
    return error.timedOut
      ? gatewayError(504, GRPC_CODES.deadlineExceeded, error.message, error.outcome, error.leaderId)
      : gatewayError(503, GRPC_CODES.unavailable, error.message, error.outcome, error.leaderId);
  }
  if (error instanceof MembershipChangeInProgressError) return gatewayError(409, GRPC_CODES.failedPrecondition, error.message, "failed");
  if (error instanceof PgraftError) return gatewayError(500, GRPC_CODES.unknown, error.message, error.outcome);
  const message = error instanceof Error ? error.message : String(error);
  return gatewayError(
    500,
    GRPC_CODES.internal,
    `Cannot complete the request: the node met an internal error: ${message}; the write may or may not have taken effect, read before retrying and report this with the node's log`,
    "unknown",
  );
}
