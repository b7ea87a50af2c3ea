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

/** A read at a revision pgraft does not keep: HTTP 400, gRPC OUT_OF_RANGE (as etcd's mvcc errors). */
export class RevisionUnavailableError extends PgraftError {
  override name = "RevisionUnavailableError";
  readonly code = "revision_unavailable";
  readonly outcome = "failed";
  constructor(
    readonly requestedRevision: number,
    readonly currentRevision: number,
  ) {
    super(
      requestedRevision > currentRevision
        ? `Cannot read at revision ${requestedRevision}: it is a future revision, the current one is ${currentRevision}; omit "revision" to read the latest`
        : `Cannot read at revision ${requestedRevision}: pgraft keeps no history of old revisions, only the current one (${currentRevision}); omit "revision" to read the latest`,
    );
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
  if (error instanceof RevisionUnavailableError) return gatewayError(400, GRPC_CODES.outOfRange, error.message, "failed");
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
