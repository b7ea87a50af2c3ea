/**
 * The errors a client or an operator can meet. Each says what failed, why, and what to do, and carries
 * typed fields so programs need not parse messages. `outcome` tells a client whether the operation
 * definitely did not happen ("failed": safe to retry) or may still take effect ("unknown").
 */
import type { NodeId } from "./core/types.ts";

export type ErrorOutcome = "failed" | "unknown";

export abstract class PgraftError extends Error {
  abstract readonly code: string;
  abstract readonly outcome: ErrorOutcome;
}

export class NotLeaderError extends PgraftError {
  override name = "NotLeaderError";
  readonly code = "not_leader";
  readonly outcome = "failed";
  constructor(readonly leaderId: NodeId, action = "write") {
    super(`Cannot ${action} on this node: it is a follower; send the request to the leader, node ${leaderId}`);
  }
}

export class NoQuorumError extends PgraftError {
  override name = "NoQuorumError";
  readonly code = "no_quorum";
  readonly outcome = "failed";
  constructor(action = "write", detail = "no leader is known") {
    super(
      `Cannot ${action}: the cluster is read-only without a quorum: ${detail}; restore the failed nodes so a majority can talk, and a leader will be elected`,
    );
  }
}

export class BusyError extends PgraftError {
  override name = "BusyError";
  readonly code = "busy";
  readonly outcome = "failed";
  constructor(what: string, limit: number) {
    super(`Cannot accept the request: ${what} reached its limit of ${limit}; retry after a short wait`);
  }
}

export class InvalidRequestError extends PgraftError {
  override name = "InvalidRequestError";
  readonly code = "invalid";
  readonly outcome = "failed";
}

/** Another leader's entry took our proposal's place in the log: it will never be applied. */
export class SupersededError extends PgraftError {
  override name = "SupersededError";
  readonly code = "superseded";
  readonly outcome = "failed";
  constructor(index: number) {
    super(`Cannot commit the write proposed at index ${index}: leadership changed and another entry took its place; retry it`);
  }
}

export class RequestTimeoutError extends PgraftError {
  override name = "RequestTimeoutError";
  readonly code = "timeout";
  readonly outcome: ErrorOutcome;
  /** `check`: how to find out whether an unconfirmed request took effect (a key read by default). */
  constructor(action: string, timeoutMs: number, outcome: ErrorOutcome, check = "read the key before retrying") {
    super(
      outcome === "unknown"
        ? `Cannot confirm the ${action} within ${timeoutMs} ms: it may still take effect; ${check}`
        : `Cannot complete the ${action} within ${timeoutMs} ms: it did not take effect; retry it`,
    );
    this.outcome = outcome;
  }
}

export class NodeStoppedError extends PgraftError {
  override name = "NodeStoppedError";
  readonly code = "stopped";
  readonly outcome = "unknown";
  constructor() {
    super("Cannot complete the request: the node is shutting down; it may still take effect, so read before retrying");
  }
}

export class MembershipChangeInProgressError extends PgraftError {
  override name = "MembershipChangeInProgressError";
  readonly code = "change_in_progress";
  readonly outcome = "failed";
  constructor(
    readonly configIndex: number | undefined,
    reason = `another change (log index ${configIndex}) is not committed yet`,
  ) {
    super(`Cannot change membership: ${reason}; wait a moment, then retry`);
  }
}

export class LeadershipTransferError extends PgraftError {
  override name = "LeadershipTransferError";
  readonly code = "transfer_failed";
  readonly outcome = "failed";
}
