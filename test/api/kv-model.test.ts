/**
 * etcd's key-value semantics without HTTP: prefix range ends as etcd computes them, byte ordering of
 * UTF-8 keys, compares on absent keys, transactions that see their own writes, etcd's one-write-per-key
 * rule with nested transactions, and the decoder's handling of compares.
 */
import test from "ava";
import { decodeTxnRequest } from "../../src/api/kv-json.ts";
import {
  applyTxn,
  checkTxnWrites,
  compareHolds,
  evaluateRange,
  keysInRange,
  prefixRangeEnd,
} from "../../src/api/kv-model.ts";
import type { RangeRequest, TxnRequest } from "../../src/api/kv-types.ts";
import { MemoryKvState } from "../../src/api/memory-backend.ts";
import { InvalidRequestError } from "../../src/errors.ts";
import { b64 } from "./fixtures.ts";

function stateWith(entries: Record<string, string>): MemoryKvState {
  const state = new MemoryKvState();
  let revision = 0;
  for (const [key, value] of Object.entries(entries)) {
    revision++;
    state.set(key, { value, version: 1, createIndex: revision, modIndex: revision });
  }
  state.revision = revision;
  return state;
}

function range(key: string, rangeEnd: Uint8Array, overrides: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key,
    rangeEnd,
    limit: 0,
    revision: 0,
    sortOrder: "NONE",
    sortTarget: "KEY",
    serializable: false,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
    ...overrides,
  };
}

test("prefixRangeEnd() increments the last byte below 0xff and cuts the rest, as etcd's GetPrefixRangeEnd", (t) => {
  t.deepEqual([...prefixRangeEnd(Buffer.from("foo"))], [...Buffer.from("fop")]);
  t.deepEqual([...prefixRangeEnd(Uint8Array.of(0x61, 0xff))], [0x62]);
  t.deepEqual([...prefixRangeEnd(Uint8Array.of(0xff, 0xff))], [0]);
});

test("keysInRange() orders keys by their bytes (byte strings of UTF-8 text order as the UTF-8 bytes)", (t) => {
  // U+FF61 sorts after U+1F600 in UTF-16 (0xFF61 > 0xD83D) but before it in UTF-8 (EF.. < F0..).
  const bytes = (text: string): string => Buffer.from(text, "utf8").toString("latin1");
  const state = stateWith({ [bytes("\u{1F600}")]: "emoji", [bytes("\uFF61")]: "halfwidth", a: "a", [bytes("\xff")]: "y-umlaut" });
  t.deepEqual(keysInRange(state, "a", Uint8Array.of(0)), ["a", bytes("\xff"), bytes("\uFF61"), bytes("\u{1F600}")]);
  t.deepEqual(keysInRange(state, "a", Buffer.from("\uFF62")), ["a", bytes("\xff"), bytes("\uFF61")]);
});

test("evaluateRange() counts before the limit and the revision filters, as etcd does", (t) => {
  const state = stateWith({ a: "1", b: "2", c: "3", d: "4" });
  const limited = evaluateRange(state, range("a", Uint8Array.of(0), { limit: 2 }), state.revision);
  t.deepEqual(limited.kvs.map((kv) => kv.key), ["a", "b"]);
  t.is(limited.count, 4);
  t.true(limited.more);
  const filtered = evaluateRange(state, range("a", Uint8Array.of(0), { minModRevision: 3 }), state.revision);
  t.deepEqual(filtered.kvs.map((kv) => kv.key), ["c", "d"]);
  t.is(filtered.count, 4);
  t.false(filtered.more);
});

test("compareHolds() treats an absent key as version 0 but fails a value compare on it", (t) => {
  const state = stateWith({ present: "v" });
  const base = { key: "absent", rangeEnd: new Uint8Array(), result: "EQUAL" as const };
  t.true(compareHolds(state, { ...base, target: "VERSION", operand: 0 }));
  t.true(compareHolds(state, { ...base, target: "CREATE", operand: 0 }));
  t.false(compareHolds(state, { ...base, target: "VALUE", operand: new Uint8Array() }));
  t.true(compareHolds(state, { ...base, key: "present", target: "VALUE", operand: Buffer.from("v") }));
  t.true(compareHolds(state, { ...base, key: "present", result: "GREATER", target: "VALUE", operand: Buffer.from("u") }));
});

test("applyTxn() applies the chosen branch in order at one revision, later ops seeing earlier writes", (t) => {
  const state = stateWith({ k: "old" });
  const request: TxnRequest = {
    compare: [{ target: "VALUE", result: "EQUAL", key: "k", rangeEnd: new Uint8Array(), operand: Buffer.from("old") }],
    success: [
      { type: "put", request: { key: "k", value: "new", prevKv: true } },
      { type: "range", request: range("k", new Uint8Array()) },
    ],
    failure: [],
  };
  const result = applyTxn(state, request, 9);
  t.true(result.succeeded);
  t.like(result.responses[0], { type: "put", result: { prevKv: { value: "old" } } });
  t.like(result.responses[1], { type: "range", result: { count: 1 } });
  t.deepEqual(state.get("k"), { value: "new", version: 2, createIndex: 1, modIndex: 9 });
});

test("checkTxnWrites() refuses a key put twice or put and deleted in one branch, but not across a nested txn's branches", (t) => {
  const put = (key: string) => ({ type: "put" as const, request: { key, value: "v", prevKv: false } });
  const del = (key: string, rangeEnd: Uint8Array = new Uint8Array()) => ({ type: "delete_range" as const, request: { key, rangeEnd, prevKv: false } });
  const txn = (success: TxnRequest["success"], failure: TxnRequest["failure"] = []): TxnRequest => ({ compare: [], success, failure });
  t.regex(checkTxnWrites(txn([put("a"), put("a")])) ?? "", /"a" is put twice in the success branch/);
  t.regex(checkTxnWrites(txn([put("a/1"), del("a/", prefixRangeEnd(Buffer.from("a/")))])) ?? "", /"a\/1" is both put and deleted/);
  t.is(checkTxnWrites(txn([put("a")], [put("a")])), undefined, "success and failure exclude each other");
  t.is(checkTxnWrites(txn([{ type: "txn", request: txn([put("a")], [put("a")]) }])), undefined);
  t.regex(checkTxnWrites(txn([put("a"), { type: "txn", request: txn([put("a")]) }])) ?? "", /put twice/);
  t.is(checkTxnWrites(txn([{ type: "txn", request: txn([put("a")], [del("a")]) }])), undefined);
});

test("decodeTxnRequest() refuses an operand in the wrong field for the target, and a request op holding two requests", (t) => {
  const wrongField = t.throws(
    () => decodeTxnRequest({ compare: [{ target: "VERSION", key: b64("k"), mod_revision: "4" }] }),
    { instanceOf: InvalidRequestError },
  );
  t.regex(wrongField?.message ?? "", /"target" is VERSION but the operand is in "mod_revision"/);
  t.notThrows(() => decodeTxnRequest({ compare: [{ target: "VERSION", key: b64("k"), version: "2", mod_revision: "0" }] }));
  const twoRequests = t.throws(
    () => decodeTxnRequest({ success: [{ request_put: { key: b64("k") }, request_range: { key: b64("k") } }] }),
    { instanceOf: InvalidRequestError },
  );
  t.regex(twoRequests?.message ?? "", /exactly one of .* it holds "request_range" and "request_put"/);
  const tooMany = t.throws(() => decodeTxnRequest({ success: Array.from({ length: 129 }, () => ({ request_range: { key: b64("k") } })) }));
  t.regex(tooMany?.message ?? "", /"success" has 129 items; at most 128/);
});
