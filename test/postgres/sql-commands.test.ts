/**
 * The node's side of the SQL functions, without a server: command parsing, the SQLSTATE each refusal
 * becomes, the wait for pgraft.kv, the status row, and the connection strings `pgraft start --postgres`
 * takes.
 */
import test from "ava";
import { parseConninfo, PostgresOptionError } from "../../src/cli/postgres-options.ts";
import { NotLeaderError, NoQuorumError, RequestTimeoutError } from "../../src/errors.ts";
import type { ClientCallback } from "../../src/node/raft-node.ts";
import { SQLSTATES } from "../../src/postgres/schema.ts";
import { createSqlCommandHandler, parseCommand } from "../../src/postgres/sql-commands.ts";
import { buildStatusRow } from "../../src/postgres/status-row.ts";
import { WireError } from "../../src/postgres/wire-server.ts";
import type { RaftStatus } from "../../src/core/raft.ts";

const b64 = (text: string): string => Buffer.from(text, "latin1").toString("base64");

test("commands are parsed strictly: bytes from base64, ids and addresses checked", (t) => {
  t.deepEqual(parseCommand(JSON.stringify({ op: "put", key: b64("k\u00ff"), value: b64("\u0000v") })), { op: "put", key: "k\u00ff", value: "\u0000v" });
  t.deepEqual(parseCommand(JSON.stringify({ op: "add_node", node_id: 4, address: "127.0.0.1", port: 7004 })), { op: "add_node", nodeId: 4, address: "127.0.0.1:7004" });
  t.deepEqual(parseCommand(JSON.stringify({ op: "add_node", node_id: 4, address: "::1", port: 7004 })), { op: "add_node", nodeId: 4, address: "[::1]:7004" });
  const refusals: [unknown, RegExp][] = [
    ["SELECT 1", /takes the JSON commands of pgraft's SQL functions only/],
    [{ op: "put", key: b64(""), value: b64("v") }, /key must not be empty/],
    [{ op: "put", key: "not base64!", value: b64("v") }, /"key" must be base64/],
    [{ op: "remove_node", node_id: 0 }, /node_id must be an integer from 1/],
    [{ op: "add_node", node_id: 4, address: "127.0.0.1", port: 70000 }, /out of range/],
    [{ op: "drop_table" }, /unknown command "drop_table"/],
  ];
  for (const [input, message] of refusals) {
    const error = t.throws(() => parseCommand(typeof input === "string" ? input : JSON.stringify(input)), { instanceOf: WireError });
    t.is(error!.sqlstate, SQLSTATES.invalid);
    t.regex(error!.message, message);
  }
});

function handlerWith(outcome: Parameters<ClientCallback>[0], waitApplied: (index: number) => Promise<void> = async () => undefined) {
  return createSqlCommandHandler({
    node: {
      id: 2,
      write: (_write, callback) => callback(outcome),
      changeMembership: () => undefined,
      leaderId: () => 1,
    },
    waitApplied,
    requestTimeoutMs: 1000,
    describeMember: (id) => `n${id} (node ${id})`,
  });
}

test("each refusal becomes its SQLSTATE with a message that says what to do", async (t) => {
  const put = JSON.stringify({ op: "put", key: b64("k"), value: b64("v") });
  const cases: [Error, string, RegExp][] = [
    [new NotLeaderError(1), SQLSTATES.notLeader, /not the leader; the leader is n1 \(node 1\)/],
    [new NoQuorumError(), SQLSTATES.noQuorum, /the cluster is read-only, it has no quorum/],
    [new RequestTimeoutError("write", 1000, "unknown"), SQLSTATES.timeout, /the outcome is unknown/],
  ];
  for (const [error, sqlstate, message] of cases) {
    const handler = handlerWith({ ok: false, error: error as never });
    const refused = await t.throwsAsync(handler(put), { instanceOf: WireError });
    t.is(refused!.sqlstate, sqlstate);
    t.regex(refused!.message, message);
    t.truthy(refused!.hint);
  }
});

test("a write answers once pgraft.kv holds its entry, or says it committed but is not there yet", async (t) => {
  const put = JSON.stringify({ op: "put", key: b64("k"), value: b64("v") });
  const waited: number[] = [];
  const ok = handlerWith({ ok: true, index: 42, output: { op: "put", version: 1 } }, async (index) => void waited.push(index));
  const result = await ok(put);
  t.deepEqual(JSON.parse(result.rows[0]![0]!), { ok: true, index: 42 });
  t.deepEqual(waited, [42]);
  const late = handlerWith({ ok: true, index: 43, output: { op: "put", version: 1 } }, async () => {
    throw new Error("PostgreSQL down");
  });
  const error = await t.throwsAsync(late(put), { instanceOf: WireError });
  t.is(error!.sqlstate, SQLSTATES.timeout);
  t.regex(error!.message, /committed at index 43 but PostgreSQL down/);
});

test("the status row tells leaders, quorum, reachability and per-follower progress", (t) => {
  const status = {
    id: 1,
    role: "leader",
    term: 3,
    vote: 1,
    leaderId: 1,
    commit: 9,
    applied: 9,
    lastIndex: 10,
    lastTerm: 3,
    firstIndex: 4,
    membership: { voters: [1, 2, 3], learners: [4] },
    configIndex: 0,
    leadTransferee: 0,
    snapshotIndex: 3,
    quorumActive: true,
    peers: [
      { id: 2, match: 10, next: 11, state: "replicate", ticksSinceResponse: 1 },
      { id: 3, match: 2, next: 3, state: "probe", ticksSinceResponse: 500 },
      { id: 4, match: 10, next: 11, state: "replicate", ticksSinceResponse: 0 },
    ],
    counters: { messagesReceived: 7, messagesSent: 8, heartbeatsSent: 5, preVotesStarted: 1, electionsStarted: 1, electionsWon: 1, leaderChanges: 1, proposalsAccepted: 3, proposalsRejected: 2 },
  } as unknown as RaftStatus;
  const row = buildStatusRow({
    status,
    clusterId: "c",
    name: "n1",
    electionTimeoutTicks: 100,
    tickMs: 10,
    memberName: (id) => `n${id}`,
    peerAddress: (id) => ({ host: "127.0.0.1", port: 7000 + id }),
    clientUrl: () => undefined,
    connected: () => false,
    tableApplied: 8,
  });
  t.like(row, { state: "leader", quorum: true, num_nodes: 4, log_size: 7, replicated: 10, committed: 9, applied: 8, errors: 2, elections_triggered: 1, worker_state: "RUNNING" });
  t.deepEqual(
    row.nodes.map((node) => [node.node_id, node.is_leader, node.is_learner, node.reachable]),
    [
      [1, true, false, true],
      [2, false, false, true],
      [3, false, false, false],
      [4, false, true, true],
    ],
  );
  t.deepEqual(row.replication.map((peer) => [peer.node_id, peer.lag, peer.ms_since_contact]), [
    [2, 0, 10],
    [3, 8, 5000],
    [4, 0, 0],
  ]);
  // A node waiting to be added is STARTING.
  const joining = buildStatusRow({ ...{ status: { ...status, id: 9, role: "follower", membership: { voters: [], learners: [] }, peers: [] } as RaftStatus }, clusterId: "c", name: "n9", electionTimeoutTicks: 100, tickMs: 10, memberName: () => undefined, peerAddress: () => undefined, clientUrl: () => undefined, connected: () => false, tableApplied: 0 });
  t.is(joining.worker_state, "STARTING");
  t.is(joining.quorum, false);
});

test("connection strings: URLs, libpq key=value pairs with quotes, and clear refusals", (t) => {
  t.deepEqual(parseConninfo("postgresql://u@h:5/db"), { connectionString: "postgresql://u@h:5/db" });
  t.deepEqual(parseConninfo("host=/var/run/postgresql port=5433 user=postgres dbname='my db' sslmode=disable"), {
    host: "/var/run/postgresql",
    port: 5433,
    user: "postgres",
    database: "my db",
  });
  t.deepEqual(parseConninfo(""), {});
  t.throws(() => parseConninfo("host=x port=99999"), { instanceOf: PostgresOptionError, message: /port "99999"/ });
  t.throws(() => parseConninfo("hots=x"), { instanceOf: PostgresOptionError, message: /Cannot use "hots"/ });
  t.throws(() => parseConninfo("host"), { instanceOf: PostgresOptionError, message: /at character 1/ });
});
