/**
 * The node's side of pgraft_add_node's optional client URL and name, without a server: how the JSON
 * command is parsed (absent and null mean "not given", a trailing "/" is dropped), that each bad value
 * is refused with 22023 naming the value and what to pass instead, and that what is accepted reaches
 * the membership change the node proposes.
 */
import test from "ava";
import type { MembershipChange } from "../../src/node/raft-node.ts";
import { SQLSTATES } from "../../src/postgres/schema.ts";
import { createSqlCommandHandler, parseCommand } from "../../src/postgres/sql-commands.ts";
import { WireError } from "../../src/postgres/wire-server.ts";

const base = { op: "add_node", node_id: 4, address: "127.0.0.1", port: 7004 };

test("add_node takes an optional client URL and name; absent or null leaves them out", (t) => {
  t.deepEqual(parseCommand(JSON.stringify(base)), { op: "add_node", nodeId: 4, address: "127.0.0.1:7004" });
  t.deepEqual(parseCommand(JSON.stringify({ ...base, client_url: null, name: null })), { op: "add_node", nodeId: 4, address: "127.0.0.1:7004" });
  t.deepEqual(parseCommand(JSON.stringify({ ...base, client_url: "http://127.0.0.1:2374", name: "n4" })), {
    op: "add_node",
    nodeId: 4,
    address: "127.0.0.1:7004",
    clientUrl: "http://127.0.0.1:2374",
    name: "n4",
  });
  // As pgraft member add --client-url takes it: https, IPv6 in brackets, a trailing "/" dropped.
  t.is((parseCommand(JSON.stringify({ ...base, client_url: "https://[::1]:2374/" })) as { clientUrl?: string }).clientUrl, "https://[::1]:2374");
  t.deepEqual(parseCommand(JSON.stringify({ ...base, name: "db-4.eu" })), { op: "add_node", nodeId: 4, address: "127.0.0.1:7004", name: "db-4.eu" });
});

test("a malformed client URL or an empty or invalid name is refused with 22023, saying what to pass", (t) => {
  const refusals: [Record<string, unknown>, RegExp][] = [
    [{ client_url: "127.0.0.1:2374" }, /cannot add node 4: client_url "127\.0\.0\.1:2374" is not a client URL; write it as http:\/\/host:port .* or pass NULL to leave it out/],
    [{ client_url: "http://127.0.0.1:2374/v3" }, /client_url "http:\/\/127\.0\.0\.1:2374\/v3" is not a client URL/],
    [{ client_url: "http://127.0.0.1:99999" }, /client_url "http:\/\/127\.0\.0\.1:99999" is not a client URL/],
    [{ client_url: "http://127.0.0.1" }, /is not a client URL/],
    [{ client_url: "" }, /client_url "" is not a client URL/],
    [{ client_url: 2374 }, /client_url 2374 is not a client URL/],
    [{ name: "" }, /cannot add node 4: the name is empty; pass the new node's pgraft\.name, or NULL to leave it out/],
    [{ name: "-n4" }, /name "-n4" is not a member name; pass the new node's pgraft\.name: 1 to 63 letters/],
    [{ name: "n 4" }, /name "n 4" is not a member name/],
    [{ name: "x".repeat(64) }, /is not a member name/],
    [{ name: 4 }, /name 4 is not a member name/],
  ];
  for (const [fields, message] of refusals) {
    const error = t.throws(() => parseCommand(JSON.stringify({ ...base, ...fields })), { instanceOf: WireError }, JSON.stringify(fields));
    t.is(error!.sqlstate, SQLSTATES.invalid);
    t.regex(error!.message, message);
  }
  // A long bad value is quoted only in part.
  const long = t.throws(() => parseCommand(JSON.stringify({ ...base, client_url: `http://${"h".repeat(5000)}` })), { instanceOf: WireError });
  t.true(long!.message.length < 600, long!.message);
});

test("the client URL and name given reach the membership change the node proposes; a refused command proposes nothing", async (t) => {
  const proposed: MembershipChange[] = [];
  const handler = createSqlCommandHandler({
    node: {
      id: 1,
      write: () => undefined,
      changeMembership: (change, callback) => {
        proposed.push(change);
        callback({ ok: true, membership: { voters: [1, 4], learners: [] } });
      },
      leaderId: () => 1,
    },
    waitApplied: async () => undefined,
    requestTimeoutMs: 1000,
    describeMember: (id) => `node ${id}`,
  });
  await handler(JSON.stringify({ ...base, client_url: "http://127.0.0.1:2374/", name: "n4" }));
  await handler(JSON.stringify(base));
  await t.throwsAsync(handler(JSON.stringify({ ...base, name: "" })), { instanceOf: WireError });
  t.deepEqual(proposed, [
    { type: "add", nodeId: 4, address: "127.0.0.1:7004", clientUrl: "http://127.0.0.1:2374", name: "n4" },
    { type: "add", nodeId: 4, address: "127.0.0.1:7004" },
  ]);
});
