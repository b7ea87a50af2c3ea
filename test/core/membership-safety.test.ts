// Membership changes must never let a node count the wrong quorum, for elections or for reads. Each
// test replays a sequence a review found (thesis 4.1, 6.4): compaction with an uncommitted change on top,
// ReadIndex confirmed by a learner, and ReadIndex on a leader that is removing itself.
import test from "ava";
import type { Raft } from "../../src/core/raft.ts";
import type { Entry, Membership } from "../../src/core/types.ts";
import { drainReadies as drain, standaloneRaft as raft } from "./harness.ts";

const config = (index: number, term: number, membership: Membership): Entry => ({ index, term, kind: "config", data: JSON.stringify(membership) });
const command = (index: number, term: number): Entry => ({ index, term, kind: "command", data: `x${index}` });

/** Makes node 1 leader of term 2 over voter 2 and commits its no-op (index 2). */
function leaderOf(membership: Membership): Raft {
  const node = raft(1, membership, [command(1, 1)], 1, 1);
  drain(node);
  node.campaign();
  drain(node);
  node.step({ type: "MsgVoteResp", from: 2, to: 1, term: 2, reject: false });
  drain(node);
  node.step({ type: "MsgAppResp", from: 2, to: 1, term: 2, reject: false, index: 2, hintIndex: 0, hintTerm: 0 });
  drain(node);
  return node;
}

test("compaction keeps the membership in force at its point, so a replaced uncommitted change falls back correctly", (t) => {
  const initial = { voters: [1, 2, 3, 4, 5], learners: [] };
  const removed4And5 = { voters: [1, 2, 3], learners: [] };
  const log = [command(1, 1), config(2, 1, { voters: [1, 2, 3, 4], learners: [] }), config(3, 1, removed4And5), command(4, 1), config(5, 1, { voters: [1, 2, 3], learners: [6] })];
  const node = raft(1, initial, log, 1, 4);
  drain(node);
  node.snapshotCreated({ metadata: { index: 4, term: 1, membership: removed4And5 }, data: "{}" }, 4);
  // A new leader replaces the uncommitted configuration entry 5.
  node.step({ type: "MsgApp", from: 2, to: 1, term: 2, prevLogIndex: 4, prevLogTerm: 1, entries: [{ index: 5, term: 2, kind: "noop", data: "" }], commit: 4 });
  drain(node);
  t.deepEqual(node.status().membership, removed4And5);
  node.campaign();
  const votes = drain(node).messages.filter((message) => message.type === "MsgVote").map((message) => message.to);
  t.deepEqual(votes, [2, 3], "removed nodes are not asked");
  for (const from of [4, 5]) node.step({ type: "MsgVoteResp", from, to: 1, term: node.term, reject: false });
  drain(node);
  t.is(node.role, "candidate", "votes of removed nodes do not make a leader");
});

test("ReadIndex ignores a learner's confirmation", (t) => {
  const node = leaderOf({ voters: [1, 2, 3], learners: [4] });
  t.is(node.status().commit, 2);
  t.true(node.readIndex(77).ok);
  const heartbeat = drain(node).messages.find((message) => message.type === "MsgHeartbeat" && message.to === 4);
  t.truthy(heartbeat);
  node.step({ type: "MsgHeartbeatResp", from: 4, to: 1, term: 2, context: heartbeat!.type === "MsgHeartbeat" ? heartbeat!.context : 0 });
  t.deepEqual(drain(node).readStates, [], "a learner cannot confirm leadership");
  node.step({ type: "MsgHeartbeatResp", from: 2, to: 1, term: 2, context: heartbeat!.type === "MsgHeartbeat" ? heartbeat!.context : 0 });
  t.deepEqual(drain(node).readStates, [{ requestId: 77, index: 2 }], "a voter can");
});

test("a leader removing itself needs the remaining voters to confirm a read", (t) => {
  const node = leaderOf({ voters: [1, 2], learners: [] });
  t.true(node.proposeMembership({ type: "remove", nodeId: 1 }).ok);
  drain(node);
  t.deepEqual(node.status().membership.voters, [2]);
  t.true(node.readIndex(5).ok);
  const out = drain(node);
  t.deepEqual(out.readStates, [], "no read is served on the leader's word alone");
  const heartbeat = out.messages.find((message) => message.type === "MsgHeartbeat" && message.to === 2);
  t.truthy(heartbeat, "the leader asks the remaining voter");
  node.step({ type: "MsgHeartbeatResp", from: 2, to: 1, term: 2, context: heartbeat!.type === "MsgHeartbeat" ? heartbeat!.context : 0 });
  t.is(drain(node).readStates.length, 1);
});

test("a node that an uncommitted entry removes still campaigns, needs a majority of the others, and steps down once the removal commits", (t) => {
  // Thesis 4.2.2: it "might still be needed until the C_new entry is committed". Here it holds the only
  // complete log (it was the leader that appended its own removal), so without it nobody could win.
  const node = raft(1, { voters: [1, 2, 3, 4], learners: [] }, [command(1, 1), config(2, 1, { voters: [2, 3, 4], learners: [] })], 1, 1);
  drain(node);
  for (let i = 0; i < 100 && node.role === "follower"; i++) node.tick();
  t.is(node.role, "candidate", "it campaigns although its latest configuration leaves it out");
  const asked = drain(node).messages.filter((message) => message.type === "MsgVote").map((message) => message.to);
  t.deepEqual(asked, [2, 3, 4], "it asks the voters of the configuration that removes it");
  node.step({ type: "MsgVoteResp", from: 2, to: 1, term: 2, reject: false });
  drain(node);
  t.is(node.role, "candidate", "its own vote does not count: it needs two of nodes 2, 3 and 4");
  node.step({ type: "MsgVoteResp", from: 3, to: 1, term: 2, reject: false });
  drain(node);
  t.is(node.role, "leader");
  for (const from of [2, 3]) node.step({ type: "MsgAppResp", from, to: 1, term: 2, reject: false, index: 3, hintIndex: 0, hintTerm: 0 });
  drain(node);
  t.is(node.status().commit, 3, "its no-op commits the removal with it");
  t.is(node.role, "follower", "and with the removal committed it steps down");
  for (let i = 0; i < 100; i++) node.tick();
  t.is(node.role, "follower", "a node whose removal is committed never campaigns again");
});

test("a node whose removal is committed, or that was never a voter, does not campaign", (t) => {
  const removed = raft(1, { voters: [1, 2, 3, 4], learners: [] }, [command(1, 1), config(2, 1, { voters: [2, 3, 4], learners: [] })], 1, 2);
  const learner = raft(5, { voters: [1, 2, 3], learners: [] }, [command(1, 1), config(2, 1, { voters: [1, 2, 3], learners: [5] })], 1, 1);
  for (const node of [removed, learner]) {
    drain(node);
    for (let i = 0; i < 100; i++) node.tick();
    t.is(node.role, "follower", `node ${node.id}`);
    t.deepEqual(drain(node).messages.filter((message) => message.type === "MsgVote" || message.type === "MsgPreVote"), []);
  }
});
