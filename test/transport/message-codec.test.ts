/**
 * The message codec: every message type round-trips, and every kind of malformed field is refused with
 * a MessageDecodeError that names the field. Each case starts from a valid encoded message and breaks
 * one thing, so a passing case proves that exact check exists.
 */
import test from "ava";
import { AssertionError } from "../../src/assert.ts";
import type { Message, MsgApp } from "../../src/core/types.ts";
import { checkMessageRoute, decodeMessage, encodeMessage, MessageDecodeError } from "../../src/transport/message-codec.ts";
import { SAMPLE_LIST, SAMPLE_MESSAGES } from "./fixtures.ts";

type Json = Record<string, any>;

function fields(message: Message): Json {
  return JSON.parse(new TextDecoder().decode(encodeMessage(message))) as Json;
}

function payload(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

test("decodeMessage() round-trips every message type exactly", (t) => {
  for (const message of SAMPLE_LIST) {
    t.deepEqual(decodeMessage(encodeMessage(message)), message, message.type);
  }
  const empty: MsgApp = { ...(SAMPLE_MESSAGES.MsgApp as MsgApp), entries: [] };
  t.deepEqual(decodeMessage(encodeMessage(empty)), empty);
});

test("encodeMessage() writes only the fields of the message's type", (t) => {
  const extra = { ...SAMPLE_MESSAGES.MsgTimeoutNow, leaked: "internal state" } as unknown as Message;
  t.deepEqual(Object.keys(fields(extra)), ["type", "from", "to", "term"]);
});

test("encodeMessage() asserts on an invalid message from our own core", (t) => {
  const gap = { ...(SAMPLE_MESSAGES.MsgApp as MsgApp), prevLogIndex: 3 };
  t.throws(() => encodeMessage(gap), { instanceOf: AssertionError, message: /the core produced an invalid MsgApp: field "entries\[0\]\.index" must be 4/ });
});

interface Case {
  readonly title: string;
  readonly base: Message;
  readonly mutate: (value: Json) => unknown;
  readonly error: RegExp;
}

const app = SAMPLE_MESSAGES.MsgApp;
const snap = SAMPLE_MESSAGES.MsgSnap;
const vote = SAMPLE_MESSAGES.MsgVote;

const CASES: readonly Case[] = [
  { title: "an unknown type", base: vote, mutate: (v) => ({ ...v, type: "MsgBogus" }), error: /field "type" must be one of "MsgPreVote", .*: received "MsgBogus"/ },
  { title: "a missing type", base: vote, mutate: ({ type: _, ...rest }) => rest, error: /field "type" is missing/ },
  { title: "a numeric type", base: vote, mutate: (v) => ({ ...v, type: 3 }), error: /field "type" must be one of/ },
  { title: "a missing field", base: vote, mutate: ({ transfer: _, ...rest }) => rest, error: /field "transfer" is missing/ },
  { title: "an extra field", base: vote, mutate: (v) => ({ ...v, admin: true }), error: /field "admin" is not allowed here/ },
  { title: "a field of another type", base: SAMPLE_MESSAGES.MsgTimeoutNow, mutate: (v) => ({ ...v, reject: false }), error: /field "reject" is not allowed/ },
  { title: "a fractional term", base: vote, mutate: (v) => ({ ...v, term: 5.5 }), error: /field "term" must be an integer >= 0: received 5\.5/ },
  { title: "a negative term", base: vote, mutate: (v) => ({ ...v, term: -1 }), error: /field "term" must be an integer >= 0: received -1/ },
  { title: "a string term", base: vote, mutate: (v) => ({ ...v, term: "5" }), error: /field "term" must be an integer >= 0: received "5"/ },
  { title: "an unsafe integer", base: vote, mutate: (v) => ({ ...v, term: 2 ** 53 }), error: /field "term" must be an integer/ },
  { title: "a null field", base: vote, mutate: (v) => ({ ...v, lastLogIndex: null }), error: /field "lastLogIndex" must be an integer >= 0: received null/ },
  { title: "node id 0 as sender", base: vote, mutate: (v) => ({ ...v, from: 0 }), error: /field "from" must be an integer >= 1: received 0/ },
  { title: "a message to its own sender", base: vote, mutate: (v) => ({ ...v, to: v["from"] }), error: /field "to" must differ from "from": both are 1/ },
  { title: "a last log term above the term", base: vote, mutate: (v) => ({ ...v, lastLogTerm: 6 }), error: /field "lastLogTerm" must be an integer from 0 to 5: received 6/ },
  { title: "a string boolean", base: vote, mutate: (v) => ({ ...v, transfer: "false" }), error: /field "transfer" must be true or false: received "false"/ },
  { title: "a numeric boolean", base: SAMPLE_MESSAGES.MsgVoteResp, mutate: (v) => ({ ...v, reject: 0 }), error: /field "reject" must be true or false: received 0/ },
  { title: "a negative hint", base: SAMPLE_MESSAGES.MsgAppResp, mutate: (v) => ({ ...v, hintIndex: -3 }), error: /field "hintIndex" must be an integer >= 0/ },
  { title: "a fractional heartbeat context", base: SAMPLE_MESSAGES.MsgHeartbeat, mutate: (v) => ({ ...v, context: 0.1 }), error: /field "context"/ },
  { title: "entries that are not an array", base: app, mutate: (v) => ({ ...v, entries: {} }), error: /field "entries" must be an array: received an object/ },
  { title: "an entry that is not an object", base: app, mutate: (v) => ({ ...v, entries: [1] }), error: /field "entries\[0\]" must be a JSON object: received 1/ },
  { title: "an entry with a bad kind", base: app, mutate: (v) => withEntry(v, 1, { kind: "blob" }), error: /field "entries\[1\]\.kind" must be one of "command", "noop", "config": received "blob"/ },
  { title: "an entry with non-string data", base: app, mutate: (v) => withEntry(v, 0, { data: { op: "put" } }), error: /field "entries\[0\]\.data" must be a string: received an object/ },
  { title: "an entry with an extra field", base: app, mutate: (v) => withEntry(v, 2, { checksum: 1 }), error: /field "entries\[2\]\.checksum" is not allowed here/ },
  { title: "an entry missing its term", base: app, mutate: (v) => withEntry(v, 2, { term: undefined }), error: /field "entries\[2\]\.term" is missing/ },
  { title: "a gap between entries", base: app, mutate: (v) => withEntry(v, 1, { index: 10 }), error: /field "entries\[1\]\.index" must be 9 \(entries follow prevLogIndex without gaps\): received 10/ },
  { title: "entries not following prevLogIndex", base: app, mutate: (v) => ({ ...v, prevLogIndex: 8 }), error: /field "entries\[0\]\.index" must be 9/ },
  { title: "a decreasing entry term", base: app, mutate: (v) => withEntry(v, 2, { term: 4 }), error: /field "entries\[2\]\.term" must be an integer from 5 to 5: received 4/ },
  { title: "an entry term above the message term", base: app, mutate: (v) => withEntry(v, 2, { term: 6 }), error: /field "entries\[2\]\.term" must be an integer from 5 to 5: received 6/ },
  { title: "an entry term below prevLogTerm", base: app, mutate: (v) => withEntry(v, 0, { term: 2 }), error: /field "entries\[0\]\.term" must be an integer from 3 to 5: received 2/ },
  { title: "a prevLogTerm above the term", base: app, mutate: (v) => ({ ...v, prevLogTerm: 9 }), error: /field "prevLogTerm" must be an integer from 0 to 5/ },
  { title: "a snapshot that is not an object", base: snap, mutate: (v) => ({ ...v, snapshot: "image" }), error: /field "snapshot" must be a JSON object: received "image"/ },
  { title: "a snapshot at index 0", base: snap, mutate: (v) => withSnapshot(v, { index: 0 }), error: /field "snapshot\.metadata\.index" must be an integer >= 1: received 0/ },
  { title: "a snapshot term above the message term", base: snap, mutate: (v) => withSnapshot(v, { term: 6 }), error: /field "snapshot\.metadata\.term" must be an integer from 1 to 5/ },
  { title: "a snapshot without voters", base: snap, mutate: (v) => withSnapshot(v, { membership: { voters: [], learners: [] } }), error: /field "snapshot\.metadata\.membership\.voters" must name at least one voter/ },
  { title: "a repeated voter", base: snap, mutate: (v) => withSnapshot(v, { membership: { voters: [1, 2, 1], learners: [] } }), error: /field "snapshot\.metadata\.membership\.voters\[2\]" repeats node 1/ },
  { title: "a learner that is also a voter", base: snap, mutate: (v) => withSnapshot(v, { membership: { voters: [1, 2], learners: [2] } }), error: /learners\[0\]" repeats node 2/ },
  { title: "a voter id that is not a positive integer", base: snap, mutate: (v) => withSnapshot(v, { membership: { voters: [1, "2"], learners: [] } }), error: /voters\[1\]" must be a positive integer node id: received "2"/ },
  { title: "snapshot data that is not a string", base: snap, mutate: (v) => ({ ...v, snapshot: { ...v["snapshot"], data: [1, 2] } }), error: /field "snapshot\.data" must be a string: received an array of 2 items/ },
  { title: "a JSON array instead of an object", base: vote, mutate: () => [1, 2], error: /the payload must be a JSON object: received an array of 2 items/ },
  { title: "JSON null", base: vote, mutate: () => null, error: /the payload must be a JSON object: received null/ },
];

function withEntry(value: Json, index: number, change: Json): Json {
  const entries = (value["entries"] as Json[]).map((entry, i) => (i === index ? { ...entry, ...change } : entry));
  return { ...value, entries };
}

function withSnapshot(value: Json, change: Json): Json {
  const snapshot = value["snapshot"] as Json;
  return { ...value, snapshot: { ...snapshot, metadata: { ...snapshot["metadata"], ...change } } };
}

for (const { title, base, mutate, error } of CASES) {
  test(`decodeMessage() refuses ${title}`, (t) => {
    const thrown = t.throws(() => decodeMessage(payload(mutate(fields(base))), { source: "n2 (127.0.0.1:7002)" }), { instanceOf: MessageDecodeError });
    t.regex(thrown?.message ?? "", /^Cannot decode Raft message from peer n2 \(127\.0\.0\.1:7002\): /);
    t.regex(thrown?.message ?? "", error);
  });
}

test("decodeMessage() refuses bytes that are not UTF-8 JSON", (t) => {
  t.throws(() => decodeMessage(Uint8Array.of(0xff, 0xfe)), { instanceOf: MessageDecodeError, message: /the payload is not valid UTF-8/ });
  t.throws(() => decodeMessage(new TextEncoder().encode('{"type":')), { instanceOf: MessageDecodeError, message: /the payload is not valid JSON/ });
  t.throws(() => decodeMessage(new Uint8Array(0)), { instanceOf: MessageDecodeError, message: /not valid JSON/ });
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  t.throws(() => decodeMessage(new TextEncoder().encode(deep)), { instanceOf: MessageDecodeError });
});

test("decodeMessage() treats __proto__ as an ordinary, unknown key", (t) => {
  const text = '{"type":"MsgTimeoutNow","from":1,"to":2,"term":5,"__proto__":{"polluted":true}}';
  t.throws(() => decodeMessage(new TextEncoder().encode(text)), { instanceOf: MessageDecodeError, message: /"__proto__" is not allowed/ });
  t.is(({} as Json)["polluted"], undefined);
});

test("checkMessageRoute() refuses a message from another sender or for another node", (t) => {
  const message = SAMPLE_MESSAGES.MsgHeartbeat;
  t.notThrows(() => checkMessageRoute(message, { from: 1, to: 2 }));
  t.throws(() => checkMessageRoute(message, { from: 3, to: 2, source: "n3" }), {
    instanceOf: MessageDecodeError,
    message: "Cannot decode Raft message from peer n3: a MsgHeartbeat claims to come from node 1, but the connection authenticated node 3",
  });
  t.throws(() => checkMessageRoute(message, { from: 1, to: 3 }), { message: /is addressed to node 2, but this is node 3/ });
});
