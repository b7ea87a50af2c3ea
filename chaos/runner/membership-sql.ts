/**
 * Membership steps on PostgreSQL nodes go through the operations guide's SQL functions on the `via`
 * node's PostgreSQL, as an operator runs them: `SELECT pgraft_add_node(id, host, port)` and
 * `SELECT pgraft_remove_node(id)`. (Leadership transfer has no SQL function and stays on HTTP.)
 *
 * A refusal is told by its SQLSTATE, named with the codes the simulator's requests use:
 * PR001 not_leader (the DETAIL says leader_id=N), PR002 no_quorum, PR003 timeout (the outcome is
 * unknown: the change may still take effect), PR004 stopped (the node beside that PostgreSQL is not
 * running), PR005 change_in_progress, PR006 busy, 22023 invalid; any other SQLSTATE is
 * `sqlstate_XXXXX`. A broken session (SQLSTATE class 08, 57P01-57P03) is no answer: the outcome is unknown.
 */
import { SqlFailure } from "./sql-connections.ts";

/** One statement: its text with $n parameters, the parameters, and the text shown in the recording. */
export interface MembershipStatement {
  readonly text: string;
  readonly params: readonly unknown[];
  /** The statement with its values inlined, as an operator would type it. */
  readonly shown: string;
}

export function addNodeStatement(nodeId: number, host: string, port: number): MembershipStatement {
  if (!Number.isInteger(nodeId) || nodeId < 1) throw new RangeError(`Cannot add node ${nodeId}: a node id is an integer >= 1`);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`Cannot add node ${nodeId}: port ${port} is not a TCP port (1-65535)`);
  return {
    text: "SELECT pgraft_add_node($1::int, $2::text, $3::int) AS ok",
    params: [nodeId, host, port],
    shown: `SELECT pgraft_add_node(${nodeId}, ${quoteLiteral(host)}, ${port})`,
  };
}

export function removeNodeStatement(nodeId: number): MembershipStatement {
  if (!Number.isInteger(nodeId) || nodeId < 1) throw new RangeError(`Cannot remove node ${nodeId}: a node id is an integer >= 1`);
  return { text: "SELECT pgraft_remove_node($1::int) AS ok", params: [nodeId], shown: `SELECT pgraft_remove_node(${nodeId})` };
}

/** SQLSTATE to the request code the scenario files name. */
export const MEMBERSHIP_SQLSTATES: Readonly<Record<string, string>> = Object.freeze({
  PR001: "not_leader",
  PR002: "no_quorum",
  PR003: "timeout",
  PR004: "stopped",
  PR005: "change_in_progress",
  PR006: "busy",
  "22023": "invalid",
});

export type MembershipOutcome =
  /** The server answered with an error: the change was refused (or, for "timeout", may still happen). */
  | { readonly kind: "refused"; readonly code: string; readonly sqlState: string; readonly message: string; readonly leaderId: number | undefined }
  /** The statement never reached the server: the change certainly did not happen. */
  | { readonly kind: "unsent"; readonly message: string }
  /** Sent, but no answer came (timeout, broken connection): the outcome is unknown. */
  | { readonly kind: "no_answer"; readonly message: string };

export function classifyMembershipFailure(error: unknown): MembershipOutcome {
  if (!(error instanceof SqlFailure)) return { kind: "no_answer", message: (error as Error).message ?? String(error) };
  if (!error.sent) return { kind: "unsent", message: error.message };
  if (error.sqlState === undefined || sessionLost(error.sqlState)) return { kind: "no_answer", message: error.sqlState === undefined ? error.message : `SQLSTATE ${error.sqlState}: ${error.message}` };
  const code = MEMBERSHIP_SQLSTATES[error.sqlState] ?? `sqlstate_${error.sqlState}`;
  const match = /leader_id=(\d+)/.exec(error.detail ?? "");
  const leaderId = match !== null && Number(match[1]) > 0 ? Number(match[1]) : undefined;
  return { kind: "refused", code, sqlState: error.sqlState, message: error.message, leaderId };
}

/**
 * SQLSTATEs that say the session or a connection behind the statement broke, not that the change was
 * refused: class 08 (connection exception: also what dblink raises when the node's command connection
 * drops) and 57P01-57P03 (the server shutting down, as when `pgraft start` stops its PostgreSQL on
 * learning that this very node was removed). The change may well have happened.
 */
function sessionLost(sqlState: string): boolean {
  return sqlState.startsWith("08") || sqlState === "57P01" || sqlState === "57P02" || sqlState === "57P03";
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
