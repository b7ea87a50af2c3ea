// Members' names and client URLs in the configuration (etcd's member attributes): `add` may carry
// them, a member publishes its own later (the "attributes" change), removal drops them, the rules are
// the shared ones, and configuration entries and snapshots written before the fields existed decode
// and encode exactly as before. The wire codec carries them in a snapshot's membership.
import test from "ava";
import { changeMembership, decodeMembership, encodeMembership, isMemberClientUrl, memberClientUrl, memberName } from "../../src/core/membership.ts";
import type { Membership, MsgSnap } from "../../src/core/types.ts";
import { decodeMessage, encodeMessage } from "../../src/transport/message-codec.ts";
import { drainReadies as drain, standaloneRaft as raft } from "./harness.ts";

const three: Membership = { voters: [1, 2, 3], learners: [] };

function changed(current: Membership, request: Parameters<typeof changeMembership>[1]): Membership {
  const result = changeMembership(current, request);
  if (!result.ok) throw new Error(`changeMembership() refused ${JSON.stringify(request)}: ${result.reason}`);
  return result.membership;
}

test("add records the new node's name and client URL with its peer address", (t) => {
  const membership = changed(three, { type: "add", nodeId: 4, address: "127.0.0.1:7004", name: "n4", clientUrl: "http://127.0.0.1:2382" });
  t.deepEqual(membership, { voters: [1, 2, 3], learners: [4], addresses: { "4": "127.0.0.1:7004" }, names: { "4": "n4" }, clientUrls: { "4": "http://127.0.0.1:2382" } });
  const promoted = changed(membership, { type: "promote", nodeId: 4 });
  t.is(memberName(promoted, 4), "n4", "promotion keeps the name");
  t.is(memberClientUrl(promoted, 4), "http://127.0.0.1:2382", "promotion keeps the client URL");
});

test("a member publishes its attributes: voters and learners stay, the values replace the old ones", (t) => {
  const first = changed(three, { type: "attributes", nodeId: 2, name: "n2", clientUrl: "http://127.0.0.1:2380" });
  t.deepEqual(first, { voters: [1, 2, 3], learners: [], names: { "2": "n2" }, clientUrls: { "2": "http://127.0.0.1:2380" } });
  const moved = changed(first, { type: "attributes", nodeId: 2, clientUrl: "https://db2.example:2443" });
  t.is(memberClientUrl(moved, 2), "https://db2.example:2443");
  t.is(memberName(moved, 2), "n2", "a field left out stays");
});

test("attribute updates are refused for non-members, bad values, duplicate names and empty updates", (t) => {
  const named = changed(three, { type: "attributes", nodeId: 1, name: "n1" });
  const refusals: [Parameters<typeof changeMembership>[1], RegExp][] = [
    [{ type: "attributes", nodeId: 9, name: "n9" }, /node 9 is not a member/],
    [{ type: "attributes", nodeId: 2 }, /neither a name nor a client URL/],
    [{ type: "attributes", nodeId: 2, name: "n1" }, /already that of another member/],
    [{ type: "attributes", nodeId: 2, name: "-bad" }, /name of node 2 must be/],
    [{ type: "attributes", nodeId: 2, clientUrl: "127.0.0.1:2379" }, /client URL of node 2 must be http/],
    [{ type: "attributes", nodeId: 2, clientUrl: "http://127.0.0.1:2379/v3" }, /nothing after it/],
    [{ type: "attributes", nodeId: 2, clientUrl: "http://127.0.0.1:0" }, /port from 1 to 65535/],
    [{ type: "add", nodeId: 4, clientUrl: "ftp://h:1" }, /client URL of node 4/],
  ];
  for (const [request, reason] of refusals) {
    const result = changeMembership(named, request);
    t.false(result.ok, JSON.stringify(request));
    if (!result.ok) t.regex(result.reason, reason);
  }
});

test("removal drops the member's name and client URL with its address", (t) => {
  const membership = changed(changed(three, { type: "attributes", nodeId: 2, name: "n2", clientUrl: "http://h2:2379" }), { type: "attributes", nodeId: 3, name: "n3" });
  const removed = changed(membership, { type: "remove", nodeId: 2 });
  t.deepEqual(removed, { voters: [1, 3], learners: [], names: { "3": "n3" } });
});

test("the client URL rule: http or https, host:port, nothing else", (t) => {
  for (const ok of ["http://127.0.0.1:2379", "https://db.example.com:443", "http://[::1]:2379"]) t.true(isMemberClientUrl(ok), ok);
  for (const bad of ["127.0.0.1:2379", "http://h", "http://h:2379/", "http://u:p@h:1", "http://h:99999", `http://${"a".repeat(300)}:1`]) t.false(isMemberClientUrl(bad), bad);
});

test("entries written before names and client URLs existed decode, and re-encode byte for byte", (t) => {
  // Written by the previous version: with and without addresses.
  for (const old of ['{"voters":[1,2,3],"learners":[]}', '{"voters":[1,3,4],"learners":[],"addresses":{"4":"127.0.0.1:7004"}}']) {
    const membership = decodeMembership(old);
    t.is(memberName(membership, 4), undefined);
    t.is(encodeMembership(membership), old);
  }
  const current = changed(three, { type: "attributes", nodeId: 1, name: "n1", clientUrl: "http://127.0.0.1:2379" });
  t.deepEqual(decodeMembership(encodeMembership(current)), current);
  // A field a later version adds is ignored rather than fatal.
  t.deepEqual(decodeMembership('{"voters":[1],"learners":[],"future":{"1":true}}'), { voters: [1], learners: [] });
});

test("the Raft core carries a published client URL into the configuration entry and its followers", (t) => {
  const leader = raft(1, { voters: [1], learners: [] }, [], 1, 0);
  leader.campaign();
  drain(leader);
  t.is(leader.role, "leader");
  const result = leader.proposeMembership({ type: "attributes", nodeId: 1, name: "n1", clientUrl: "http://127.0.0.1:2379" });
  t.true(result.ok, JSON.stringify(result));
  const { entries } = drain(leader);
  const config = entries.find((entry) => entry.kind === "config");
  t.truthy(config);
  t.is(memberClientUrl(decodeMembership(config!.data), 1), "http://127.0.0.1:2379");
  t.is(memberClientUrl(leader.membership, 1), "http://127.0.0.1:2379");
  t.deepEqual(leader.membership.voters, [1], "an attribute update moves no voter");
});

test("the wire codec carries names and client URLs in a snapshot's membership, and checks them", (t) => {
  const membership: Membership = { voters: [1, 2], learners: [], addresses: { "2": "127.0.0.1:7002" }, names: { "1": "n1", "2": "n2" }, clientUrls: { "2": "http://127.0.0.1:2380" } };
  const message: MsgSnap = { type: "MsgSnap", from: 1, to: 2, term: 3, snapshot: { metadata: { index: 10, term: 3, membership }, data: "{}" } };
  t.deepEqual(decodeMessage(encodeMessage(message)), message);
  const old: MsgSnap = { ...message, snapshot: { ...message.snapshot, metadata: { ...message.snapshot.metadata, membership: { voters: [1, 2], learners: [] } } } };
  t.deepEqual(decodeMessage(encodeMessage(old)), old, "a snapshot without the fields, as before");
  const bad = { ...message, snapshot: { ...message.snapshot, metadata: { ...message.snapshot.metadata, membership: { ...membership, clientUrls: { "2": "ftp://x:1" } } } } };
  t.throws(() => decodeMessage(encodeMessage(bad as MsgSnap)), { message: /clientUrls.*http:\/\/host:port/ });
});
