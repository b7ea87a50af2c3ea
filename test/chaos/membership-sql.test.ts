/**
 * Membership steps on PostgreSQL nodes without real servers: the statements the runner sends (the
 * guide's pgraft_add_node / pgraft_remove_node, shown as an operator would type them) and how a
 * failure is told by its SQLSTATE (PR001 naming the leader from its DETAIL, PR003 an unknown outcome,
 * a statement that never reached the server, one that got no answer).
 */
import test from "ava";
import { addNodeStatement, classifyMembershipFailure, MEMBERSHIP_SQLSTATES, removeNodeStatement } from "../../chaos/runner/membership-sql.ts";
import { SqlFailure } from "../../chaos/runner/sql-connections.ts";

test("the statements are the guide's functions, with parameters, shown with their values", (t) => {
  const add = addNodeStatement(4, "127.0.0.1", 40123);
  t.is(add.text, "SELECT pgraft_add_node($1::int, $2::text, $3::int) AS ok");
  t.deepEqual(add.params, [4, "127.0.0.1", 40123]);
  t.is(add.shown, "SELECT pgraft_add_node(4, '127.0.0.1', 40123)");
  t.is(addNodeStatement(5, "o'host", 1).shown, "SELECT pgraft_add_node(5, 'o''host', 1)");
  const remove = removeNodeStatement(3);
  t.is(remove.text, "SELECT pgraft_remove_node($1::int) AS ok");
  t.deepEqual(remove.params, [3]);
  t.is(remove.shown, "SELECT pgraft_remove_node(3)");
});

test("bad ids and ports are refused naming what was wrong", (t) => {
  t.throws(() => addNodeStatement(0, "127.0.0.1", 1), { message: /Cannot add node 0: a node id is an integer >= 1/ });
  t.throws(() => addNodeStatement(4, "127.0.0.1", 70_000), { message: /port 70000 is not a TCP port/ });
  t.throws(() => removeNodeStatement(1.5), { message: /Cannot remove node 1.5/ });
});

test("refusals are classified by SQLSTATE; PR001 names the leader from its DETAIL", (t) => {
  const notLeader = classifyMembershipFailure(new SqlFailure("n2: pgraft: cannot add node on n2: it is not the leader; the leader is n1", true, "PR001", "leader_id=1"));
  t.deepEqual(notLeader, { kind: "refused", code: "not_leader", sqlState: "PR001", message: "n2: pgraft: cannot add node on n2: it is not the leader; the leader is n1", leaderId: 1 });
  const unknownLeader = classifyMembershipFailure(new SqlFailure("x", true, "PR001", "leader_id=0"));
  t.true(unknownLeader.kind === "refused" && unknownLeader.leaderId === undefined, "leader 0 is no leader");
  const codes = Object.entries({ PR002: "no_quorum", PR003: "timeout", PR005: "change_in_progress", "22023": "invalid", XX000: "sqlstate_XX000" }).map(([state, code]) => {
    const outcome = classifyMembershipFailure(new SqlFailure("x", true, state));
    return [state, outcome.kind === "refused" ? outcome.code : outcome.kind, code];
  });
  for (const [state, got, wanted] of codes) t.is(got, wanted, state);
  t.is(MEMBERSHIP_SQLSTATES.PR004, "stopped");
});

test("a statement that never reached the server is unsent; one without an answer is unknown", (t) => {
  t.is(classifyMembershipFailure(new SqlFailure("cannot connect to n1's PostgreSQL", false, undefined)).kind, "unsent");
  t.is(classifyMembershipFailure(new SqlFailure("n1: Query read timeout", true, undefined)).kind, "no_answer");
  t.is(classifyMembershipFailure(new Error("boom")).kind, "no_answer");
});
