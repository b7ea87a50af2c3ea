/**
 * The payload of a `message` frame: one Raft Message as UTF-8 JSON.
 *
 * Encoding writes exactly the fields of the message's type, in a fixed order, whatever else the object
 * carries. Decoding is strict, because the core asserts its invariants and a bad message must never
 * reach it: the payload must be a JSON object with exactly the fields of a known `type`, every number a
 * safe non-negative integer (node ids positive), booleans real booleans, entries contiguous from
 * `prevLogIndex + 1` with kinds `command`, `noop` or `config` and terms that never decrease nor pass
 * the message's term, and a snapshot's membership made of distinct positive ids. Anything else throws
 * a MessageDecodeError (and nothing else): a decoded message is either wholly valid or not returned.
 *
 * Encoding checks the same rules (an AssertionError if the core produced an invalid message), so the
 * two ends agree on validity and a bug shows at the sender rather than as a closed connection.
 */
import { assert, unreachable } from "../assert.ts";
import type { Entry, EntryKind, Message, MessageType, NodeId, Snapshot } from "../core/types.ts";
import { MESSAGE_TYPES } from "../core/types.ts";
import { isMemberAddress, isMemberClientUrl, isMemberName, MEMBER_ADDRESS_LENGTH_MAX } from "../core/membership.ts";
import { describeValue, ObjectReader, PayloadError, parseJsonPayload } from "./payload-reader.ts";

/** A payload that is not a valid Raft message, or a message that may not arrive on this connection. */
export class MessageDecodeError extends Error {
  override name = "MessageDecodeError";
  constructor(
    /** What was wrong, without the "Cannot decode Raft message" preamble. */
    readonly problem: string,
    /** The peer's name or address, when known. */
    readonly source: string | undefined,
  ) {
    super(`Cannot decode Raft message${source === undefined ? "" : ` from peer ${source}`}: ${problem}`);
  }
}

export const ENTRY_KINDS: readonly EntryKind[] = ["command", "noop", "config"];

/** Bound on the voters and on the learners of a snapshot's membership. */
export const MEMBERSHIP_IDS_MAX = 1024;

const UTF8_ENCODER = new TextEncoder();

export interface DecodeMessageOptions {
  /** Names the peer in error messages. */
  readonly source?: string;
}

export function encodeMessage(message: Message): Uint8Array {
  const fields = canonicalFields(message);
  try {
    readMessage(fields);
  } catch (error) {
    assert(!(error instanceof PayloadError), `encodeMessage(): the core produced an invalid ${message.type}: ${(error as Error).message}`);
    throw error;
  }
  return UTF8_ENCODER.encode(JSON.stringify(fields));
}

export function decodeMessage(payload: Uint8Array, options: DecodeMessageOptions = {}): Message {
  try {
    return readMessage(parseJsonPayload(payload));
  } catch (error) {
    if (error instanceof PayloadError) throw new MessageDecodeError(error.problem, options.source);
    throw error;
  }
}

export interface MessageRoute {
  /** The authenticated peer the connection belongs to. */
  readonly from: NodeId;
  /** This node. */
  readonly to: NodeId;
  readonly source?: string;
}

/**
 * Checks that a decoded message came from the connection's authenticated peer and is addressed to
 * this node: a peer may not speak for another node, nor hand us someone else's mail.
 */
export function checkMessageRoute(message: Message, route: MessageRoute): void {
  if (message.from !== route.from) {
    throw new MessageDecodeError(`a ${message.type} claims to come from node ${message.from}, but the connection authenticated node ${route.from}`, route.source);
  }
  if (message.to !== route.to) {
    throw new MessageDecodeError(`a ${message.type} is addressed to node ${message.to}, but this is node ${route.to}`, route.source);
  }
}

// ---------------------------------------------------------------------------------------------------
// Encoding

function canonicalFields(message: Message): Record<string, unknown> {
  const base = { type: message.type, from: message.from, to: message.to, term: message.term };
  switch (message.type) {
    case "MsgPreVote":
      return { ...base, lastLogIndex: message.lastLogIndex, lastLogTerm: message.lastLogTerm };
    case "MsgVote":
      return { ...base, lastLogIndex: message.lastLogIndex, lastLogTerm: message.lastLogTerm, transfer: message.transfer };
    case "MsgPreVoteResp":
    case "MsgVoteResp":
      return { ...base, reject: message.reject };
    case "MsgApp": {
      const entries = message.entries.map((entry) => ({ index: entry.index, term: entry.term, kind: entry.kind, data: entry.data }));
      return { ...base, prevLogIndex: message.prevLogIndex, prevLogTerm: message.prevLogTerm, entries, commit: message.commit };
    }
    case "MsgAppResp":
      return { ...base, reject: message.reject, index: message.index, hintIndex: message.hintIndex, hintTerm: message.hintTerm };
    case "MsgHeartbeat":
      return { ...base, commit: message.commit, context: message.context };
    case "MsgHeartbeatResp":
      return { ...base, context: message.context };
    case "MsgSnap":
      return { ...base, snapshot: canonicalSnapshot(message.snapshot) };
    case "MsgTimeoutNow":
      return base;
    default:
      return unreachable(message, "message type");
  }
}

function canonicalSnapshot(snapshot: Snapshot): Record<string, unknown> {
  const { index, term, membership } = snapshot.metadata;
  const maps: Record<string, Record<string, string>> = {};
  for (const key of MEMBER_MAP_KEYS) {
    const map = membership[key];
    if (map !== undefined && Object.keys(map).length > 0) maps[key] = { ...map };
  }
  return {
    metadata: { index, term, membership: { voters: [...membership.voters], learners: [...membership.learners], ...maps } },
    data: snapshot.data,
  };
}

// ---------------------------------------------------------------------------------------------------
// Decoding: each reader checks the exact key set first, then every field.

const BASE_KEYS = ["type", "from", "to", "term"] as const;

const KEYS_BY_TYPE: Readonly<Record<MessageType, readonly string[]>> = {
  MsgPreVote: [...BASE_KEYS, "lastLogIndex", "lastLogTerm"],
  MsgPreVoteResp: [...BASE_KEYS, "reject"],
  MsgVote: [...BASE_KEYS, "lastLogIndex", "lastLogTerm", "transfer"],
  MsgVoteResp: [...BASE_KEYS, "reject"],
  MsgApp: [...BASE_KEYS, "prevLogIndex", "prevLogTerm", "entries", "commit"],
  MsgAppResp: [...BASE_KEYS, "reject", "index", "hintIndex", "hintTerm"],
  MsgHeartbeat: [...BASE_KEYS, "commit", "context"],
  MsgHeartbeatResp: [...BASE_KEYS, "context"],
  MsgSnap: [...BASE_KEYS, "snapshot"],
  MsgTimeoutNow: [...BASE_KEYS],
};

const NON_NEGATIVE = { min: 0 } as const;
const POSITIVE = { min: 1 } as const;

function readMessage(value: unknown): Message {
  const reader = new ObjectReader(value, "");
  const type = reader.literal("type", MESSAGE_TYPES);
  reader.expectKeys(KEYS_BY_TYPE[type]);
  const from = reader.integer("from", POSITIVE);
  const to = reader.integer("to", POSITIVE);
  if (from === to) reader.fail("to", `must differ from "from": both are ${from}`);
  const base = { from, to, term: reader.integer("term", NON_NEGATIVE) };
  switch (type) {
    case "MsgPreVote":
      return { type, ...base, ...readLastLog(reader, base.term) };
    case "MsgVote":
      return { type, ...base, ...readLastLog(reader, base.term), transfer: reader.boolean("transfer") };
    case "MsgPreVoteResp":
    case "MsgVoteResp":
      return { type, ...base, reject: reader.boolean("reject") };
    case "MsgApp":
      return readAppend(reader, base);
    case "MsgAppResp":
      return {
        type,
        ...base,
        reject: reader.boolean("reject"),
        index: reader.integer("index", NON_NEGATIVE),
        hintIndex: reader.integer("hintIndex", NON_NEGATIVE),
        hintTerm: reader.integer("hintTerm", NON_NEGATIVE),
      };
    case "MsgHeartbeat":
      return { type, ...base, commit: reader.integer("commit", NON_NEGATIVE), context: reader.integer("context", NON_NEGATIVE) };
    case "MsgHeartbeatResp":
      return { type, ...base, context: reader.integer("context", NON_NEGATIVE) };
    case "MsgSnap":
      return { type, ...base, snapshot: readSnapshot(reader.object("snapshot"), base.term) };
    case "MsgTimeoutNow":
      return { type, ...base };
    default:
      return unreachable(type, "message type");
  }
}

function readLastLog(reader: ObjectReader, term: number): { lastLogIndex: number; lastLogTerm: number } {
  const lastLogIndex = reader.integer("lastLogIndex", NON_NEGATIVE);
  // A log never holds an entry from a term later than its owner's current term.
  const lastLogTerm = reader.integer("lastLogTerm", { min: 0, max: term });
  return { lastLogIndex, lastLogTerm };
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

function readAppend(reader: ObjectReader, base: MessageBase): Message {
  const prevLogIndex = reader.integer("prevLogIndex", NON_NEGATIVE);
  const prevLogTerm = reader.integer("prevLogTerm", { min: 0, max: base.term });
  const commit = reader.integer("commit", NON_NEGATIVE);
  const items = reader.array("entries", Number.MAX_SAFE_INTEGER);
  if (prevLogIndex + items.length > Number.MAX_SAFE_INTEGER) reader.fail("entries", "run past the largest safe index");
  const entries: Entry[] = [];
  let termFloor = prevLogTerm;
  for (let i = 0; i < items.length; i++) {
    const entryReader = reader.item("entries", items, i);
    // The core appends entries at prevLogIndex + 1, + 2, ...; a gap or overlap would break its log.
    const entry = readEntry(entryReader, { index: prevLogIndex + 1 + i, termMin: Math.max(1, termFloor), termMax: base.term });
    termFloor = entry.term;
    entries.push(entry);
  }
  return { type: "MsgApp", ...base, prevLogIndex, prevLogTerm, entries, commit };
}

interface EntryRules {
  readonly index: number;
  /** Terms never decrease along a log, and no entry has term 0. */
  readonly termMin: number;
  readonly termMax: number;
}

function readEntry(reader: ObjectReader, rules: EntryRules): Entry {
  reader.expectKeys(["index", "term", "kind", "data"]);
  const index = reader.integer("index", POSITIVE);
  if (index !== rules.index) reader.fail("index", `must be ${rules.index} (entries follow prevLogIndex without gaps): received ${index}`);
  if (rules.termMin > rules.termMax) {
    reader.fail("term", `cannot be valid: the previous term ${rules.termMin} exceeds the message's term ${rules.termMax}`);
  }
  const term = reader.integer("term", { min: rules.termMin, max: rules.termMax });
  const kind = reader.literal("kind", ENTRY_KINDS);
  const data = reader.string("data");
  return { index, term, kind, data };
}

function readSnapshot(reader: ObjectReader, messageTerm: number): Snapshot {
  reader.expectKeys(["metadata", "data"]);
  const metadata = reader.object("metadata");
  metadata.expectKeys(["index", "term", "membership"]);
  const index = metadata.integer("index", POSITIVE);
  // A leader's snapshot never covers entries from a term after its own.
  if (messageTerm < 1) metadata.fail("term", "cannot be valid: a snapshot needs a message term of at least 1, received 0");
  const term = metadata.integer("term", { min: 1, max: messageTerm });
  const membership = metadata.object("membership");
  membership.expectKeys(["voters", "learners", ...MEMBER_MAP_KEYS.filter((key) => membership.has(key))]);
  const voters = readNodeIds(membership, "voters", new Set());
  if (voters.length === 0) membership.fail("voters", "must name at least one voter");
  const learners = readNodeIds(membership, "learners", new Set(voters));
  const data = reader.string("data");
  const members = new Set([...voters, ...learners]);
  const maps: { -readonly [K in (typeof MEMBER_MAP_KEYS)[number]]?: Record<string, string> } = {};
  for (const key of MEMBER_MAP_KEYS) if (membership.has(key)) maps[key] = readMemberMap(membership, key, members);
  return { metadata: { index, term, membership: { voters, learners, ...maps } }, data };
}

/** The per-member maps a snapshot's membership may carry, each optional (older snapshots have fewer). */
const MEMBER_MAP_KEYS = ["addresses", "names", "clientUrls"] as const;

const MEMBER_MAP_RULES: Record<(typeof MEMBER_MAP_KEYS)[number], { readonly lengthMax: number; readonly valid: (text: string) => boolean; readonly rule: string }> = {
  addresses: { lengthMax: MEMBER_ADDRESS_LENGTH_MAX, valid: isMemberAddress, rule: "host:port with a port from 1 to 65535" },
  names: { lengthMax: 63, valid: isMemberName, rule: "a pgraft.name (letters, digits, _ . -)" },
  clientUrls: { lengthMax: MEMBER_ADDRESS_LENGTH_MAX + "https://".length, valid: isMemberClientUrl, rule: "http://host:port or https://host:port" },
};

/** Peer addresses, names or client URLs by member id: at most one per member, each of bounded length. */
function readMemberMap(reader: ObjectReader, key: (typeof MEMBER_MAP_KEYS)[number], members: ReadonlySet<NodeId>): Record<string, string> {
  const { lengthMax, valid, rule } = MEMBER_MAP_RULES[key];
  const map = reader.object(key);
  const keys = map.keys();
  if (keys.length === 0) reader.fail(key, "must not be empty when present");
  const result: Record<string, string> = {};
  for (const id of keys) {
    if (!/^[1-9]\d*$/.test(id) || !members.has(Number(id))) map.fail(id, `must be the id of a member (one of ${[...members].join(", ")})`);
    const value = map.string(id, lengthMax);
    if (!valid(value)) map.fail(id, `must be ${rule}: received ${JSON.stringify(value)}`);
    result[id] = value;
  }
  return result;
}

/** Distinct positive node ids, none of them in `taken`. */
function readNodeIds(reader: ObjectReader, key: string, taken: ReadonlySet<NodeId>): NodeId[] {
  const items = reader.array(key, MEMBERSHIP_IDS_MAX);
  const ids: NodeId[] = [];
  const seen = new Set<NodeId>();
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (typeof item !== "number" || !Number.isSafeInteger(item) || item < 1) {
      reader.fail(`${key}[${i}]`, `must be a positive integer node id: received ${describeValue(item)}`);
    }
    if (seen.has(item) || taken.has(item)) reader.fail(`${key}[${i}]`, `repeats node ${item}`);
    seen.add(item);
    ids.push(item);
  }
  return ids;
}
