/**
 * Peer addresses in a snapshot's membership on the wire: a MsgSnap whose membership carries addresses
 * round-trips; a membership without them encodes without the field (as before it existed); and the
 * decoder refuses addresses that name a non-member, that are not host:port, an empty addresses object
 * and a non-object, each with an error naming the field.
 */
import test from "ava";
import { AssertionError } from "../../src/assert.ts";
import { changeMembership } from "../../src/core/membership.ts";
import type { Membership, Message, MsgSnap } from "../../src/core/types.ts";
import { decodeMessage, encodeMessage, MessageDecodeError } from "../../src/transport/message-codec.ts";
import { SAMPLE_MESSAGES } from "./fixtures.ts";

type Json = Record<string, any>;

const snap = SAMPLE_MESSAGES.MsgSnap as MsgSnap;

function snapWith(membership: Membership): MsgSnap {
  return { ...snap, snapshot: { ...snap.snapshot, metadata: { ...snap.snapshot.metadata, membership } } };
}

function fields(message: Message): Json {
  return JSON.parse(new TextDecoder().decode(encodeMessage(message))) as Json;
}

function payload(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** The encoded sample MsgSnap (voters 1, 2, 3; learner 4) with its membership's addresses set to `addresses`. */
function withAddresses(addresses: unknown): Uint8Array {
  const value = fields(snap);
  value["snapshot"]["metadata"]["membership"]["addresses"] = addresses;
  return payload(value);
}

test("a MsgSnap whose membership has addresses round-trips through the codec", (t) => {
  const message = snapWith({ voters: [1, 2, 3], learners: [4], addresses: { "3": "db-3.example.com:7003", "4": "[::1]:7004" } });
  const decoded = decodeMessage(encodeMessage(message));
  t.deepEqual(decoded, message);
  t.deepEqual(fields(message)["snapshot"]["metadata"]["membership"], {
    voters: [1, 2, 3],
    learners: [4],
    addresses: { "3": "db-3.example.com:7003", "4": "[::1]:7004" },
  });
});

test("a membership without addresses encodes without the field, exactly as before", (t) => {
  const encoded = new TextDecoder().decode(encodeMessage(snap));
  t.true(encoded.includes('"membership":{"voters":[1,2,3],"learners":[4]}'), encoded);
  t.false(encoded.includes("addresses"));
  const decoded = decodeMessage(encodeMessage(snap)) as MsgSnap;
  t.deepEqual(decoded, snap);
  t.false(Object.hasOwn(decoded.snapshot.metadata.membership, "addresses"));
});

test("an empty addresses object in our own membership is left out of the encoding", (t) => {
  const message = snapWith({ voters: [1, 2, 3], learners: [4], addresses: {} });
  t.false(Object.hasOwn(fields(message)["snapshot"]["metadata"]["membership"], "addresses"));
  t.deepEqual(decodeMessage(encodeMessage(message)), snap);
});

test("encodeMessage() asserts when our own core puts an address for a non-member into a snapshot", (t) => {
  const message = snapWith({ voters: [1, 2, 3], learners: [4], addresses: { "9": "h9:7009" } });
  t.throws(() => encodeMessage(message), { instanceOf: AssertionError, message: /invalid MsgSnap: field "snapshot\.metadata\.membership\.addresses\.9" must be the id of a member/ });
});

interface Case {
  readonly title: string;
  readonly addresses: unknown;
  readonly error: RegExp;
}

const PREFIX = 'field "snapshot\\.metadata\\.membership\\.addresses';

const CASES: readonly Case[] = [
  { title: "an address for a node that is not a member", addresses: { "9": "h9:7009" }, error: new RegExp(`${PREFIX}\\.9" must be the id of a member \\(one of 1, 2, 3, 4\\)`) },
  { title: "an address under node id 0", addresses: { "0": "h:1" }, error: new RegExp(`${PREFIX}\\.0" must be the id of a member`) },
  { title: "an address under a zero-padded id", addresses: { "04": "h:1" }, error: new RegExp(`${PREFIX}\\.04" must be the id of a member`) },
  { title: "an address under a key that is not an id", addresses: { four: "h:1" }, error: new RegExp(`${PREFIX}\\.four" must be the id of a member`) },
  { title: "an address without a port", addresses: { "4": "no-port" }, error: new RegExp(`${PREFIX}\\.4" must be host:port with a port from 1 to 65535: received "no-port"`) },
  { title: "an address with an empty port", addresses: { "4": "host:" }, error: new RegExp(`${PREFIX}\\.4" must be host:port with a port from 1 to 65535: received "host:"`) },
  { title: "an address with a space", addresses: { "4": "a b:1" }, error: new RegExp(`${PREFIX}\\.4" must be host:port with a port from 1 to 65535: received "a b:1"`) },
  { title: "an address that is a URL", addresses: { "4": "http://h:1" }, error: new RegExp(`${PREFIX}\\.4" must be host:port`) },
  { title: "an address that is not a string", addresses: { "4": 7004 }, error: new RegExp(`${PREFIX}\\.4" must be a string of at most 262 characters: received 7004`) },
  { title: "an address longer than a DNS name allows", addresses: { "4": `${"a".repeat(300)}:1` }, error: new RegExp(`${PREFIX}\\.4" must be a string of at most 262 characters`) },
  { title: "an empty addresses object", addresses: {}, error: new RegExp(`${PREFIX}" must not be empty when present`) },
  { title: "addresses that are a string", addresses: "h:1", error: new RegExp(`${PREFIX}" must be a JSON object: received "h:1"`) },
  { title: "addresses that are an array", addresses: ["h:1"], error: new RegExp(`${PREFIX}" must be a JSON object: received an array of 1 items`) },
  { title: "addresses that are null", addresses: null, error: new RegExp(`${PREFIX}" must be a JSON object: received null`) },
];

for (const { title, addresses, error } of CASES) {
  test(`decodeMessage() refuses ${title}`, (t) => {
    const thrown = t.throws(() => decodeMessage(withAddresses(addresses), { source: "n2 (127.0.0.1:7002)" }), { instanceOf: MessageDecodeError, message: error });
    t.regex(thrown?.message ?? "", /^Cannot decode Raft message from peer n2 \(127\.0\.0\.1:7002\): /);
  });
}

test("decodeMessage() accepts the valid addresses that the failing cases break", (t) => {
  // The control for the cases above: only the broken part makes them fail.
  const decoded = decodeMessage(withAddresses({ "4": "h:1", "1": "[fe80::1]:65535" })) as MsgSnap;
  t.deepEqual(decoded.snapshot.metadata.membership, { voters: [1, 2, 3], learners: [4], addresses: { "4": "h:1", "1": "[fe80::1]:65535" } });
});

test("decodeMessage() still refuses unknown membership fields next to addresses", (t) => {
  const value = fields(snapWith({ voters: [1, 2, 3], learners: [4], addresses: { "4": "h:1" } }));
  value["snapshot"]["metadata"]["membership"]["ports"] = {};
  t.throws(() => decodeMessage(payload(value)), { instanceOf: MessageDecodeError, message: /field "snapshot\.metadata\.membership\.ports" is not allowed here/ });
});

// A bug a review found, fixed: changeMembership() once bounded neither an address's length nor its
// port, while the codec refuses addresses over 262 characters and encodeMessage() turns that into an
// AssertionError, so the first MsgSnap after such an add crashed the leader. One rule now serves both.
test("every membership changeMembership() accepts can be sent in a snapshot", (t) => {
  const result = changeMembership({ voters: [1, 2, 3], learners: [] }, { type: "add", nodeId: 4, address: `${"a".repeat(300)}:7004` });
  t.false(result.ok, "refused up front");
  for (const address of ["h:1", "h:65535", `${"a".repeat(256)}:65535`]) {
    const accepted = changeMembership({ voters: [1, 2, 3], learners: [] }, { type: "add", nodeId: 4, address });
    t.true(accepted.ok, address.slice(0, 20));
    if (accepted.ok) t.notThrows(() => encodeMessage(snapWith(accepted.membership)));
  }
  for (const address of ["h:0", "h:65536", "h:70000"]) t.false(changeMembership({ voters: [1, 2, 3], learners: [] }, { type: "add", nodeId: 4, address }).ok, address);
});
