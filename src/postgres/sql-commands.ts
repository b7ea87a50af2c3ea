/**
 * What the SQL functions ask the node through dblink (see schema.ts): one JSON command per query on
 * the node's command endpoint, answered once the change is committed (and, for key-value writes,
 * applied to pgraft.kv on this node, so the caller reads its own write), or refused with a pgraft
 * SQLSTATE whose message says what to do:
 *
 *   {"op":"put","key":B64,"value":B64}   {"op":"delete","key":B64}
 *   {"op":"add_node","node_id":N,"address":"host","port":P,"client_url"?:"http://host:port","name"?:"n4"}
 *   {"op":"remove_node","node_id":N}
 *
 * add_node's client_url and name are optional (absent or null: not given); when given they go into the
 * membership with the node, as `pgraft member add --client-url --name` puts them, so that followers
 * forward to it and every node names it before it has started and published its own.
 */
import type { NodeId } from "../core/types.ts";
import { parseHostAndPort, formatHostAndPort } from "../config/index.ts";
import { isMemberClientUrl, isMemberName } from "../core/membership.ts";
import { NODE_NONE } from "../core/types.ts";
import {
  BusyError,
  InvalidRequestError,
  MembershipChangeInProgressError,
  NoQuorumError,
  NotLeaderError,
  type PgraftError,
  RequestTimeoutError,
} from "../errors.ts";
import type { AdminCallback, ClientCallback, MembershipChange } from "../node/raft-node.ts";
import type { KvWrite } from "../kv/command.ts";
import { SQLSTATES } from "./schema.ts";
import { WireError, type WireQueryResult } from "./wire-server.ts";

/** Commands larger than this are refused before parsing (a put carries at most 1 MiB of value). */
const COMMAND_BYTES_MAX = 2 * 1024 * 1024;

export interface SqlCommandNode {
  readonly id: NodeId;
  write(write: KvWrite, callback: ClientCallback): void;
  changeMembership(change: MembershipChange, callback: AdminCallback): void;
  /** The leader this node knows, or NODE_NONE. */
  leaderId(): NodeId;
}

export interface SqlCommandOptions {
  readonly node: SqlCommandNode;
  /** Resolves once pgraft.kv on this node holds entry `index`. */
  readonly waitApplied: (index: number, timeoutMs: number) => Promise<void>;
  readonly requestTimeoutMs: number;
  readonly describeMember: (id: NodeId) => string;
}

export function createSqlCommandHandler(options: SqlCommandOptions): (sql: string) => Promise<WireQueryResult> {
  return async (sql) => {
    // dblink from a database whose encoding is not UTF8 first sets the client encoding: accept it (we
    // read and answer UTF-8, which PostgreSQL converts).
    if (/^\s*set\s+client_encoding\b/i.test(sql)) return { columns: [], rows: [], command: "SET" };
    const command = parseCommand(sql);
    const startedMs = Date.now();
    switch (command.op) {
      case "put":
      case "delete": {
        const write: KvWrite = command.op === "put" ? { op: "put", key: command.key, value: command.value! } : { op: "delete", key: command.key };
        const index = await new Promise<number>((resolve, reject) =>
          options.node.write(write, (result) => (result.ok ? resolve(result.index) : reject(toWireError(result.error, command.op, options)))),
        );
        const remainingMs = Math.max(100, options.requestTimeoutMs - (Date.now() - startedMs));
        await options.waitApplied(index, remainingMs).catch((error: Error) => {
          throw new WireError(
            SQLSTATES.timeout,
            `pgraft: the ${command.op} committed at index ${index} but ${error.message}`,
            undefined,
            "The change is in the cluster; this server's pgraft.kv shows it once the node catches up (see the node's log and pgraft_log_get_stats()).",
          );
        });
        return answer({ ok: true, index });
      }
      case "add_node":
      case "remove_node": {
        const change: MembershipChange =
          command.op === "add_node"
            ? {
                type: "add",
                nodeId: command.nodeId,
                address: command.address,
                ...(command.clientUrl === undefined ? {} : { clientUrl: command.clientUrl }),
                ...(command.name === undefined ? {} : { name: command.name }),
              }
            : { type: "remove", nodeId: command.nodeId };
        await new Promise<void>((resolve, reject) =>
          options.node.changeMembership(change, (result) => (result.ok ? resolve() : reject(toWireError(result.error, command.op, options)))),
        );
        return answer({ ok: true });
      }
    }
  };
}

type Command =
  | { readonly op: "put" | "delete"; readonly key: string; readonly value?: string }
  | { readonly op: "add_node"; readonly nodeId: number; readonly address: string; readonly clientUrl?: string; readonly name?: string }
  | { readonly op: "remove_node"; readonly nodeId: number };

function invalid(message: string): WireError {
  return new WireError(SQLSTATES.invalid, `pgraft: ${message}`);
}

export function parseCommand(sql: string): Command {
  if (sql.length > COMMAND_BYTES_MAX) throw invalid(`the command is ${sql.length} characters long; at most ${COMMAND_BYTES_MAX} are allowed`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(sql);
  } catch {
    throw invalid("this endpoint takes the JSON commands of pgraft's SQL functions only; call pgraft_kv_put(), pgraft_add_node(), ... in PostgreSQL");
  }
  if (parsed === null || typeof parsed !== "object") throw invalid("the command must be a JSON object");
  const body = parsed as Record<string, unknown>;
  const bytes = (field: string): string => {
    const value = body[field];
    if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw invalid(`"${field}" must be base64`);
    return Buffer.from(value, "base64").toString("latin1");
  };
  const nodeId = (): number => {
    const value = body.node_id;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 2_147_483_647) {
      throw invalid(`node_id must be an integer from 1 to 2147483647, received ${JSON.stringify(value)}`);
    }
    return value;
  };
  switch (body.op) {
    case "put": {
      const key = bytes("key");
      if (key.length === 0) throw invalid("cannot put: the key must not be empty");
      return { op: "put", key, value: bytes("value") };
    }
    case "delete": {
      const key = bytes("key");
      if (key.length === 0) throw invalid("cannot delete: the key must not be empty");
      return { op: "delete", key };
    }
    case "add_node": {
      const id = nodeId();
      const host = body.address;
      const port = body.port;
      if (typeof host !== "string" || typeof port !== "number") throw invalid("cannot add a node: address must be text and port an integer");
      const parsedAddress = parseHostAndPort(`${host.includes(":") ? `[${host}]` : host}:${port}`);
      if (!parsedAddress.ok) throw invalid(`cannot add node ${id}: ${parsedAddress.problem}`);
      const clientUrl = optionalClientUrl(body.client_url, id);
      const name = optionalName(body.name, id);
      return {
        op: "add_node",
        nodeId: id,
        address: formatHostAndPort(parsedAddress.value),
        ...(clientUrl === undefined ? {} : { clientUrl }),
        ...(name === undefined ? {} : { name }),
      };
    }
    case "remove_node":
      return { op: "remove_node", nodeId: nodeId() };
    default:
      throw invalid(`unknown command ${JSON.stringify(body.op)}; expected put, delete, add_node or remove_node`);
  }
}

/** Longest client URL or name quoted back in an error. */
const QUOTED_CHARS_MAX = 200;

/**
 * add_node's client URL: absent or null, or "http://host:port" (https too), a port from 1 to 65535 and
 * nothing after it but an optional "/" (dropped), as `pgraft member add --client-url` takes it.
 */
function optionalClientUrl(value: unknown, nodeId: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  const url = typeof value === "string" ? value.replace(/\/$/, "") : undefined;
  if (url === undefined || !isMemberClientUrl(url)) {
    throw invalid(
      `cannot add node ${nodeId}: client_url ${JSON.stringify(value).slice(0, QUOTED_CHARS_MAX)} is not a client URL; ` +
        "write it as http://host:port (or https://), the new node's pgraft.client_address with a port from 1 to 65535 and nothing after it, or pass NULL to leave it out",
    );
  }
  return url;
}

/** add_node's name: absent or null, or the new node's pgraft.name. An empty name is refused, not ignored. */
function optionalName(value: unknown, nodeId: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === "") throw invalid(`cannot add node ${nodeId}: the name is empty; pass the new node's pgraft.name, or NULL to leave it out`);
  if (typeof value !== "string" || !isMemberName(value)) {
    throw invalid(
      `cannot add node ${nodeId}: name ${JSON.stringify(value).slice(0, QUOTED_CHARS_MAX)} is not a member name; ` +
        'pass the new node\'s pgraft.name: 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit',
    );
  }
  return value;
}

function toWireError(error: PgraftError, op: string, options: SqlCommandOptions): WireError {
  const action = op.replace("_", " ");
  const self = options.describeMember(options.node.id);
  if (error instanceof NotLeaderError) {
    const leader = error.leaderId;
    return new WireError(
      SQLSTATES.notLeader,
      `pgraft: cannot ${action} on ${self}: it is not the leader; the leader is ${options.describeMember(leader)}`,
      `leader_id=${leader}`,
      "Run it on the leader's PostgreSQL (SELECT pgraft_is_leader() is true there), or write through the etcd API of any node.",
    );
  }
  if (error instanceof NoQuorumError) {
    const leader = options.node.leaderId();
    return new WireError(
      SQLSTATES.noQuorum,
      `pgraft: cannot ${action}: the cluster is read-only, it has no quorum (${self} ${leader === NODE_NONE ? "knows no leader" : `last knew ${options.describeMember(leader)}`})`,
      undefined,
      "Restore the failed nodes so that a majority can talk; a leader is then elected and writes resume.",
    );
  }
  if (error instanceof RequestTimeoutError) {
    return new WireError(
      SQLSTATES.timeout,
      `pgraft: cannot confirm the ${action} within ${options.requestTimeoutMs} ms: the outcome is unknown, it may still take effect`,
      undefined,
      op === "put" || op === "delete"
        ? "Check with SELECT pgraft_kv_get(key) on the leader once one is elected, before retrying."
        : "Check the members with SELECT * FROM pgraft_get_nodes() on the leader before retrying.",
    );
  }
  if (error instanceof MembershipChangeInProgressError) return new WireError(SQLSTATES.changeInProgress, `pgraft: ${error.message}`);
  if (error instanceof BusyError) return new WireError(SQLSTATES.busy, `pgraft: ${error.message}`);
  if (error instanceof InvalidRequestError) return new WireError(SQLSTATES.invalid, `pgraft: ${error.message}`);
  // Superseded (leadership changed under the write: it did not happen) and anything else.
  return new WireError(error.outcome === "failed" ? SQLSTATES.noQuorum : SQLSTATES.timeout, `pgraft: ${error.message}`);
}

function answer(body: Record<string, unknown>): WireQueryResult {
  return { columns: [{ name: "answer", typeOid: 25 }], rows: [[JSON.stringify(body)]], command: "SELECT 1" };
}
