// Peer addresses in the configuration: changeMembership() records the address of a node added with one,
// keeps it through promotion and drops it with the node; a membership without addresses encodes exactly
// as before the field existed (the simulator's trace hashes depend on those bytes); and the Raft core
// carries the address from proposeMembership() into the configuration entry, its `membership` getter,
// its followers, and a restart from its log.
import test from "ava";
import { AssertionError } from "../../src/assert.ts";
import { changeMembership, checkMembership, decodeMembership, encodeMembership, memberAddress, MEMBERS_MAX } from "../../src/core/membership.ts";
import type { Raft } from "../../src/core/raft.ts";
import type { Entry, Membership } from "../../src/core/types.ts";
import { drainReadies as drain, standaloneRaft as raft } from "./harness.ts";

const three: Membership = { voters: [1, 2, 3], learners: [] };

function changed(current: Membership, request: Parameters<typeof changeMembership>[1]): Membership {
  const result = changeMembership(current, request);
  if (!result.ok) throw new Error(`changeMembership() refused ${JSON.stringify(request)}: ${result.reason}`);
  return result.membership;
}

// ---------------------------------------------------------------------------------------------------
// changeMembership()

test("changeMembership() records the address of a node added with one, under its id as a string", (t) => {
  const result = changeMembership(three, { type: "add", nodeId: 4, address: "10.0.0.4:7004" });
  t.deepEqual(result, { ok: true, membership: { voters: [1, 2, 3], learners: [4], addresses: { "4": "10.0.0.4:7004" } } });
  t.deepEqual(three, { voters: [1, 2, 3], learners: [] }, "the current membership is not modified");
});

test("changeMembership() accepts host names, IPv4 and bracketed IPv6 addresses", (t) => {
  for (const address of ["db-4.example.com:7004", "127.0.0.1:1", "[::1]:2380", "[fe80::1:2]:65535", "localhost:7001"]) {
    const membership = changed(three, { type: "add", nodeId: 4, address });
    t.is(memberAddress(membership, 4), address, address);
  }
});

test("changeMembership() adds without an address as before: no addresses field at all", (t) => {
  const membership = changed(three, { type: "add", nodeId: 4 });
  t.deepEqual(membership, { voters: [1, 2, 3], learners: [4] });
  t.false(Object.hasOwn(membership, "addresses"));
});

test("changeMembership() keeps the other members' addresses when adding another node", (t) => {
  const withFour = changed(three, { type: "add", nodeId: 4, address: "h4:7004" });
  const promoted = changed(withFour, { type: "promote", nodeId: 4 });
  const withFive = changed(promoted, { type: "add", nodeId: 5, address: "h5:7005" });
  t.deepEqual(withFive.addresses, { "4": "h4:7004", "5": "h5:7005" });
  const withSix = changed(promoted, { type: "add", nodeId: 6 });
  t.deepEqual(withSix.addresses, { "4": "h4:7004" }, "an add without an address keeps the others");
  t.deepEqual(promoted.addresses, { "4": "h4:7004" }, "the input of a change is not modified");
});

test("changeMembership() keeps the address when it promotes the learner", (t) => {
  const added = changed(three, { type: "add", nodeId: 4, address: "h4:7004" });
  const promoted = changeMembership(added, { type: "promote", nodeId: 4 });
  t.deepEqual(promoted, { ok: true, membership: { voters: [1, 2, 3, 4], learners: [], addresses: { "4": "h4:7004" } } });
});

test("changeMembership() drops the removed node's address, and the field with the last one", (t) => {
  const four = changed(changed(three, { type: "add", nodeId: 4, address: "h4:7004" }), { type: "promote", nodeId: 4 });
  const five = changed(four, { type: "add", nodeId: 5, address: "h5:7005" });
  t.deepEqual(changed(five, { type: "remove", nodeId: 4 }), { voters: [1, 2, 3], learners: [5], addresses: { "5": "h5:7005" } });
  t.deepEqual(changed(five, { type: "remove", nodeId: 2 }).addresses, { "4": "h4:7004", "5": "h5:7005" }, "removing a founding member keeps the others' addresses");
  const back = changed(four, { type: "remove", nodeId: 4 });
  t.deepEqual(back, { voters: [1, 2, 3], learners: [] });
  t.false(Object.hasOwn(back, "addresses"), "no empty addresses object is left behind");
  t.is(encodeMembership(back), '{"voters":[1,2,3],"learners":[]}');
});

test("changeMembership() refuses an address that is not host:port, with a reason naming it", (t) => {
  for (const address of ["no-port", "host:", "a b:1", ":7001", "host:port", "host:123456", "", "http://h:1", "h:1/x", "::1:7001", "h:0", "h:65536"]) {
    const result = changeMembership(three, { type: "add", nodeId: 4, address });
    t.deepEqual(
      result,
      { ok: false, reason: `the address of node 4 must be host:port with a port from 1 to 65535, at most 262 characters; received "${address}"` },
      JSON.stringify(address),
    );
  }
});

test("changeMembership() checks membership before the address: a member's add is refused as a member", (t) => {
  const result = changeMembership(three, { type: "add", nodeId: 2, address: "a b:1" });
  t.deepEqual(result, { ok: false, reason: "node 2 is already a voting member" });
});

// ---------------------------------------------------------------------------------------------------
// Encoding

test("encodeMembership() without addresses is byte-identical to the format before addresses", (t) => {
  t.is(encodeMembership({ voters: [1, 2, 3], learners: [4] }), '{"voters":[1,2,3],"learners":[4]}');
  t.is(encodeMembership({ voters: [7], learners: [] }), '{"voters":[7],"learners":[]}');
  t.is(encodeMembership({ voters: [1, 2], learners: [], addresses: {} }), '{"voters":[1,2],"learners":[]}', "an empty addresses object is left out");
  t.is(encodeMembership({ voters: [1], learners: [], addresses: undefined }), '{"voters":[1],"learners":[]}');
  // What the core wrote before this change: JSON.stringify of the two lists in this order.
  const old = { voters: [1, 3, 9], learners: [4, 5] };
  t.is(encodeMembership(old), JSON.stringify(old));
});

test("encodeMembership() writes addresses after the lists, and decodeMembership() round-trips them", (t) => {
  const membership: Membership = { voters: [1, 2, 3], learners: [4], addresses: { "4": "[::1]:7004" } };
  const text = encodeMembership(membership);
  t.is(text, '{"voters":[1,2,3],"learners":[4],"addresses":{"4":"[::1]:7004"}}');
  t.deepEqual(decodeMembership(text), membership);
  const changedTwice = changed(changed(membership, { type: "promote", nodeId: 4 }), { type: "add", nodeId: 5, address: "h5:1" });
  t.deepEqual(decodeMembership(encodeMembership(changedTwice)), changedTwice);
});

test("decodeMembership() reads entries of the old format without an addresses field", (t) => {
  const decoded = decodeMembership('{"voters":[1,2],"learners":[3]}');
  t.deepEqual(decoded, { voters: [1, 2], learners: [3] });
  t.false(Object.hasOwn(decoded, "addresses"));
  const empty = decodeMembership('{"voters":[1,2],"learners":[],"addresses":{}}');
  t.false(Object.hasOwn(empty, "addresses"), "an empty addresses object decodes as none");
});

test("decodeMembership() asserts on malformed addresses", (t) => {
  for (const addresses of ["null", '"h:1"', "7", '{"2":7}', '{"2":null}', '{"2":"h:1","3":{}}']) {
    const data = `{"voters":[1,2,3],"learners":[],"addresses":${addresses}}`;
    t.throws(() => decodeMembership(data), { instanceOf: AssertionError, message: /^malformed addresses in configuration entry: / }, addresses);
  }
  t.throws(() => decodeMembership('{"voters":[1]}'), { instanceOf: AssertionError, message: /^malformed configuration entry/ });
});

// ---------------------------------------------------------------------------------------------------
// memberAddress() and checkMembership()

test("memberAddress() gives a member's address, or undefined for a member without one", (t) => {
  const membership: Membership = { voters: [1, 2], learners: [12], addresses: { "12": "h12:7012" } };
  t.is(memberAddress(membership, 12), "h12:7012");
  t.is(memberAddress(membership, 1), undefined);
  t.is(memberAddress(membership, 2), undefined, "node 2 is not confused with 12");
  t.is(memberAddress({ voters: [1], learners: [] }, 1), undefined);
});

test("checkMembership() accepts addresses of voters and learners and asserts on one for a non-member", (t) => {
  t.notThrows(() => checkMembership({ voters: [1, 4], learners: [5], addresses: { "4": "h:4", "5": "h:5" } }));
  t.notThrows(() => checkMembership({ voters: [1], learners: [] }));
  t.throws(() => checkMembership({ voters: [1, 2], learners: [3], addresses: { "3": "h:3", "9": "h:9" } }), {
    instanceOf: AssertionError,
    message: "membership has an address for node 9, which is not a member",
  });
});

// ---------------------------------------------------------------------------------------------------
// The Raft core

const command = (index: number, term: number): Entry => ({ index, term, kind: "command", data: `x${index}` });

/** Node 1 leader of term 2 over voters 1 and 2, with its no-op (index 2) committed. */
function leader(): Raft {
  const node = raft(1, { voters: [1, 2], learners: [] }, [command(1, 1)], 1, 1);
  drain(node);
  node.campaign();
  drain(node);
  node.step({ type: "MsgVoteResp", from: 2, to: 1, term: 2, reject: false });
  drain(node);
  node.step({ type: "MsgAppResp", from: 2, to: 1, term: 2, reject: false, index: 2, hintIndex: 0, hintTerm: 0 });
  drain(node);
  return node;
}

test("Raft.membership and Raft.configIndex start from the initial membership at index 0", (t) => {
  const node = raft(1, { voters: [1, 2, 3], learners: [] }, [], 0, 0);
  t.deepEqual(node.membership, { voters: [1, 2, 3], learners: [] });
  t.is(node.configIndex, 0);
  t.deepEqual(node.membership, node.status().membership);
});

test("proposeMembership() puts the address into the configuration entry it appends", (t) => {
  const node = leader();
  t.is(node.status().commit, 2);
  const result = node.proposeMembership({ type: "add", nodeId: 3, address: "10.1.2.3:7003" });
  t.deepEqual(result, { ok: true, index: 3, term: 2 });
  const expected = { voters: [1, 2], learners: [3], addresses: { "3": "10.1.2.3:7003" } };
  t.deepEqual(node.membership, expected);
  t.is(node.configIndex, 3);
  const out = drain(node);
  const entry = out.entries.find((candidate) => candidate.index === 3);
  t.deepEqual(entry, { index: 3, term: 2, kind: "config", data: '{"voters":[1,2],"learners":[3],"addresses":{"3":"10.1.2.3:7003"}}' });
  const append = out.messages.find((message) => message.type === "MsgApp" && message.to === 2);
  t.truthy(append, "the entry is replicated to the voter");
  if (append?.type === "MsgApp") t.deepEqual(append.entries.at(-1), entry);
});

test("proposeMembership() without an address appends the old configuration format", (t) => {
  const node = leader();
  t.true(node.proposeMembership({ type: "add", nodeId: 3 }).ok);
  const entry = drain(node).entries.find((candidate) => candidate.kind === "config");
  t.is(entry?.data, '{"voters":[1,2],"learners":[3]}');
  t.deepEqual(node.membership, { voters: [1, 2], learners: [3] });
});

test("proposeMembership() refuses an invalid address and appends nothing", (t) => {
  const node = leader();
  const before = node.status().lastIndex;
  const result = node.proposeMembership({ type: "add", nodeId: 3, address: "no-port" });
  t.deepEqual(result, { ok: false, reason: "invalid", message: 'the address of node 3 must be host:port with a port from 1 to 65535, at most 262 characters; received "no-port"' });
  t.is(node.status().lastIndex, before);
  t.is(node.configIndex, 0);
  t.deepEqual(drain(node).entries, []);
});

test("the leader's promotion of the learner keeps its address, and the removal drops it", (t) => {
  const node = leader();
  t.true(node.proposeMembership({ type: "add", nodeId: 3, address: "h3:7003" }).ok);
  drain(node);
  node.step({ type: "MsgAppResp", from: 2, to: 1, term: 2, reject: false, index: 3, hintIndex: 0, hintTerm: 0 });
  drain(node);
  t.is(node.status().commit, 3, "the add commits with the voters alone");
  node.step({ type: "MsgAppResp", from: 3, to: 1, term: 2, reject: false, index: 3, hintIndex: 0, hintTerm: 0 });
  const promotion = drain(node).entries.find((candidate) => candidate.kind === "config");
  t.deepEqual(promotion, { index: 4, term: 2, kind: "config", data: '{"voters":[1,2,3],"learners":[],"addresses":{"3":"h3:7003"}}' });
  t.is(node.configIndex, 4);
  t.deepEqual(node.membership, { voters: [1, 2, 3], learners: [], addresses: { "3": "h3:7003" } });
  for (const from of [2, 3]) node.step({ type: "MsgAppResp", from, to: 1, term: 2, reject: false, index: 4, hintIndex: 0, hintTerm: 0 });
  drain(node);
  t.is(node.status().commit, 4);
  t.true(node.proposeMembership({ type: "remove", nodeId: 3 }).ok);
  const removal = drain(node).entries.find((candidate) => candidate.kind === "config");
  t.is(removal?.data, '{"voters":[1,2],"learners":[]}');
  t.is(node.configIndex, 5);
});

test("a follower takes the address from the leader's configuration entry", (t) => {
  const follower = raft(2, { voters: [1, 2], learners: [] }, [command(1, 1)], 1, 1);
  drain(follower);
  const data = '{"voters":[1,2],"learners":[3],"addresses":{"3":"h3:7003"}}';
  follower.step({ type: "MsgApp", from: 1, to: 2, term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [{ index: 2, term: 2, kind: "config", data }], commit: 1 });
  drain(follower);
  t.deepEqual(follower.membership, { voters: [1, 2], learners: [3], addresses: { "3": "h3:7003" } });
  t.is(follower.configIndex, 2);
  // A new leader replaces the uncommitted entry: the follower falls back to the initial membership.
  follower.step({ type: "MsgApp", from: 1, to: 2, term: 3, prevLogIndex: 1, prevLogTerm: 1, entries: [{ index: 2, term: 3, kind: "noop", data: "" }], commit: 1 });
  drain(follower);
  t.deepEqual(follower.membership, { voters: [1, 2], learners: [] });
  t.is(follower.configIndex, 0);
});

test("a node restarted from its log finds the added member's address in the latest configuration entry", (t) => {
  const log: Entry[] = [
    command(1, 1),
    { index: 2, term: 1, kind: "config", data: '{"voters":[1,2],"learners":[3],"addresses":{"3":"h3:7003"}}' },
    { index: 3, term: 1, kind: "config", data: '{"voters":[1,2,3],"learners":[],"addresses":{"3":"h3:7003"}}' },
    command(4, 1),
  ];
  const node = raft(1, { voters: [1, 2], learners: [] }, log, 1, 4);
  t.is(node.configIndex, 3);
  t.deepEqual(node.membership, { voters: [1, 2, 3], learners: [], addresses: { "3": "h3:7003" } });
  t.is(memberAddress(node.membership, 3), "h3:7003");
});

test("changeMembership() refuses an add beyond MEMBERS_MAX members, saying what to do", (t) => {
  const voters = Array.from({ length: MEMBERS_MAX - 1 }, (_, i) => i + 1);
  const full = changeMembership({ voters, learners: [] }, { type: "add", nodeId: MEMBERS_MAX, address: "h:1" });
  t.true(full.ok, "the last one fits");
  if (!full.ok) return;
  t.deepEqual(changeMembership(full.membership, { type: "add", nodeId: MEMBERS_MAX + 1, address: "h:2" }), {
    ok: false,
    reason: `the cluster already has ${MEMBERS_MAX} members, the most pgraft supports; remove one first`,
  });
});

test("decodeMembership() reads an address the current rules refuse, so an older log still starts", (t) => {
  const decoded = decodeMembership('{"voters":[1,2],"learners":[],"addresses":{"2":"h:0"}}');
  t.deepEqual(decoded.addresses, { "2": "h:0" });
});
