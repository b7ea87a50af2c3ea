/**
 * Tests for the linearizability checker (sim/checkers/linearizability.ts), the history it reads
 * (sim/history.ts) and the history generator (sim/checkers/history-generator.ts). Every violation here
 * is a real one, and the checker is also compared with a deliberately naive one on random histories.
 */
import test from "ava";
import seedrandom from "seedrandom";
import { isDeepStrictEqual } from "node:util";
import {
  HistoryRecorder,
  type KvInput,
  type KvOutput,
  type Operation,
} from "../../../sim/history.ts";
import {
  HistoryError,
  checkLinearizable,
  formatOperation,
  type LinearizabilityResult,
  type LinearizabilityViolation,
} from "../../../sim/checkers/linearizability.ts";
import { applyToStore, generateHistory } from "../../../sim/checkers/history-generator.ts";

// --- A small language for hand-written histories -------------------------------------------------

const put = (key: string, value: string): KvInput => ({ op: "put", key, value });
const get = (key: string): KvInput => ({ op: "get", key });
const del = (key: string): KvInput => ({ op: "delete", key });
const cas = (key: string, expectedVersion: number, value: string): KvInput => ({ op: "cas", key, expectedVersion, value });

const putOk = (version: number): KvOutput => ({ op: "put", version });
const read = (value: string | null, version: number): KvOutput => ({ op: "get", value, version });
const deleted = (wasPresent: boolean): KvOutput => ({ op: "delete", deleted: wasPresent });
const casOk = (version: number): KvOutput => ({ op: "cas", succeeded: true, version });
const casMismatch = (version: number): KvOutput => ({ op: "cas", succeeded: false, version });

/** Builds a history; ids follow the order of the calls to ok/unknown/failed. */
class Script {
  readonly ops: Operation[] = [];
  ok(client: number, input: KvInput, callMs: number, returnMs: number, output: KvOutput): Operation {
    return this.#add({ client, input, callMs, returnMs, outcome: "ok", output });
  }
  unknown(client: number, input: KvInput, callMs: number): Operation {
    return this.#add({ client, input, callMs, returnMs: null, outcome: "unknown", output: null });
  }
  failed(client: number, input: KvInput, callMs: number, returnMs: number): Operation {
    return this.#add({ client, input, callMs, returnMs, outcome: "failed", output: null });
  }
  #add(fields: Omit<Operation, "id">): Operation {
    const op = { id: this.ops.length, ...fields };
    this.ops.push(op);
    return op;
  }
}

function violation(t: { is(actual: unknown, expected: unknown): boolean; fail(message: string): void }, result: LinearizabilityResult): LinearizabilityViolation {
  t.is(result.ok, false);
  if (result.ok !== false) {
    t.fail(`Expected a violation, got ${JSON.stringify(result)}`);
    throw new Error("unreachable");
  }
  return result;
}

// --- Accepted histories ----------------------------------------------------------------------------

test("checkLinearizable() accepts a sequential history of every kind of operation", (t) => {
  // Goal: one client doing one thing at a time is trivially linearizable, including versions across
  // a delete and a re-create, and both cas outcomes.
  const s = new Script();
  s.ok(0, get("k"), 0, 1, read(null, 0));
  s.ok(0, put("k", "a"), 2, 3, putOk(1));
  s.ok(0, put("k", "b"), 4, 5, putOk(2));
  s.ok(0, cas("k", 2, "c"), 6, 7, casOk(3));
  s.ok(0, cas("k", 2, "d"), 8, 9, casMismatch(3));
  s.ok(0, get("k"), 10, 11, read("c", 3));
  s.ok(0, del("k"), 12, 13, deleted(true));
  s.ok(0, del("k"), 14, 15, deleted(false));
  s.ok(0, cas("k", 0, "e"), 16, 17, casOk(1));
  s.ok(0, get("k"), 18, 19, read("e", 1));
  t.deepEqual(checkLinearizable(s.ops), { ok: true, keysChecked: 1, operationsChecked: 10 });
});

test("checkLinearizable() accepts overlapping operations when some order explains them", (t) => {
  // Goal: concurrency is allowed to reorder. The put overlaps both reads; one read sees it and the
  // other does not, and the read that does not see it returns first, so put-after-first-read works.
  const s = new Script();
  s.ok(0, put("k", "a"), 0, 1, putOk(1));
  s.ok(1, put("k", "b"), 10, 30, putOk(2));
  s.ok(2, get("k"), 12, 14, read("a", 1));
  s.ok(3, get("k"), 16, 20, read("b", 2));
  s.ok(2, get("k"), 21, 25, read("b", 2));
  t.true(checkLinearizable(s.ops).ok);
});

test("checkLinearizable() treats operations that touch at the same millisecond as concurrent", (t) => {
  // Goal: document the tie rule. A put returning at 10 ms and a get called at 10 ms may be in either
  // order, so the get may miss the put; one called at 11 ms may not.
  const s = new Script();
  s.ok(0, put("k", "a"), 0, 10, putOk(1));
  s.ok(1, get("k"), 10, 12, read(null, 0));
  t.true(checkLinearizable(s.ops).ok);
  const later = new Script();
  later.ok(0, put("k", "a"), 0, 10, putOk(1));
  later.ok(1, get("k"), 11, 12, read(null, 0));
  t.is(checkLinearizable(later.ops).ok, false);
});

// --- Real violations -------------------------------------------------------------------------------

test("checkLinearizable() rejects a stale read after a completed write", (t) => {
  // Goal: once a put has returned, a read that starts later must see it (or something newer).
  const s = new Script();
  s.ok(0, put("k", "a"), 0, 5, putOk(1));
  s.ok(0, put("k", "b"), 6, 10, putOk(2));
  const stale = s.ok(1, get("k"), 20, 25, read("a", 1));
  const result = violation(t, checkLinearizable(s.ops));
  t.is(result.key, "k");
  t.deepEqual(result.minimalPrefix?.completing, [stale]);
  t.true(result.reason.includes(formatOperation(stale, { id: true })));
  t.log(result.reason);
});

test("checkLinearizable() rejects a read of a value that was never written", (t) => {
  // Goal: a read can only return what some write wrote.
  const s = new Script();
  s.ok(0, put("k", "a"), 0, 5, putOk(1));
  s.ok(1, get("k"), 2, 8, read("ghost", 1));
  const result = violation(t, checkLinearizable(s.ops));
  t.regex(result.reason, /read "ghost" at version 1/);
});

test("checkLinearizable() rejects a lost update: two successful cas operations from one version", (t) => {
  // Goal: compare-and-set from version 1 can succeed only once; two successes mean an update was lost.
  const s = new Script();
  s.ok(0, put("k", "a"), 0, 5, putOk(1));
  s.ok(1, cas("k", 1, "b"), 10, 20, casOk(2));
  s.ok(2, cas("k", 1, "c"), 11, 21, casOk(2));
  violation(t, checkLinearizable(s.ops));
});

test("checkLinearizable() rejects a read that sees a write before the write was invoked", (t) => {
  // Goal: real-time order: a get that returned at 8 ms cannot observe a put invoked at 10 ms. The
  // history is already broken at 8 ms, when nothing had yet asked to write "a".
  const s = new Script();
  const early = s.ok(0, get("k"), 0, 8, read("a", 1));
  s.ok(1, put("k", "a"), 10, 12, putOk(1));
  const result = violation(t, checkLinearizable(s.ops));
  t.is(result.minimalPrefix?.endMs, 8);
  t.deepEqual(result.minimalPrefix?.completing, [early]);
});

test("checkLinearizable() rejects a read of the old value after a completed delete", (t) => {
  // Goal: a delete that returned removes the key for every later read.
  const s = new Script();
  s.ok(0, put("k", "a"), 0, 2, putOk(1));
  s.ok(0, del("k"), 3, 5, deleted(true));
  s.ok(1, get("k"), 6, 9, read("a", 1));
  violation(t, checkLinearizable(s.ops));
});

test("checkLinearizable() rejects a version going backwards", (t) => {
  // Goal: versions only grow until a delete; a later read at a lower version than an earlier read
  // (with no delete in between) is a violation even when the values match.
  const s = new Script();
  s.ok(0, put("k", "a"), 0, 2, putOk(1));
  s.ok(0, put("k", "a"), 3, 5, putOk(2));
  s.ok(1, get("k"), 6, 8, read("a", 2));
  s.ok(1, get("k"), 9, 11, read("a", 1));
  violation(t, checkLinearizable(s.ops));
});

test("checkLinearizable() names the key whose history fails, among keys that pass", (t) => {
  // Goal: P-compositionality: keys are checked apart, and the result points at the broken one.
  const s = new Script();
  s.ok(0, put("k1", "a"), 0, 2, putOk(1));
  s.ok(0, get("k1"), 3, 4, read("a", 1));
  s.ok(1, put("k2", "a"), 0, 2, putOk(1));
  s.ok(1, get("k2"), 3, 4, read(null, 0));
  s.ok(2, put("k3", "x"), 0, 2, putOk(1));
  const result = violation(t, checkLinearizable(s.ops));
  t.is(result.key, "k2");
  t.regex(result.reason, /^Key "k2" is not linearizable/);
});

// --- Unknown and failed outcomes -------------------------------------------------------------------

test("checkLinearizable() lets a write with an unknown outcome take effect, late or never", (t) => {
  // Goal: a timed-out put may have happened (a later read sees it, even long after the client gave
  // up) or not (every later read misses it); both histories are linearizable.
  const seen = new Script();
  seen.ok(0, put("k", "a"), 0, 2, putOk(1));
  seen.unknown(1, put("k", "b"), 5);
  seen.ok(2, get("k"), 10, 12, read("a", 1));
  seen.ok(2, get("k"), 100, 102, read("b", 2));
  seen.ok(2, put("k", "c"), 103, 104, putOk(3));
  t.true(checkLinearizable(seen.ops).ok);
  const missed = new Script();
  missed.ok(0, put("k", "a"), 0, 2, putOk(1));
  missed.unknown(1, put("k", "b"), 5);
  missed.ok(2, get("k"), 100, 102, read("a", 1));
  missed.ok(2, put("k", "c"), 103, 104, putOk(2));
  t.true(checkLinearizable(missed.ops).ok);
});

test("checkLinearizable() rejects a read that sees an unknown write before the write was invoked", (t) => {
  // Goal: an unknown outcome widens when a write may take effect, but never to before its call.
  const s = new Script();
  s.ok(0, get("k"), 0, 4, read("b", 1));
  s.unknown(1, put("k", "b"), 5);
  violation(t, checkLinearizable(s.ops));
});

test("checkLinearizable() rejects a read that sees an unknown write take effect twice", (t) => {
  // Goal: an unknown write happens at most once: version 1 to 3 takes one increment besides the
  // known put, which the unknown put may supply; 1 to 4 would take two.
  const once = new Script();
  once.ok(0, put("k", "a"), 0, 2, putOk(1));
  once.unknown(1, put("k", "b"), 5);
  once.ok(2, put("k", "c"), 20, 22, putOk(3));
  t.true(checkLinearizable(once.ops).ok);
  const twice = new Script();
  twice.ok(0, put("k", "a"), 0, 2, putOk(1));
  twice.unknown(1, put("k", "b"), 5);
  twice.ok(2, put("k", "c"), 20, 22, putOk(4));
  violation(t, checkLinearizable(twice.ops));
});

test("checkLinearizable() ignores failed operations but rejects a read of a failed write's value", (t) => {
  // Goal: a failed operation definitely did not happen: it constrains nothing, and nothing may see it.
  const ignored = new Script();
  ignored.ok(0, put("k", "a"), 0, 2, putOk(1));
  ignored.failed(1, put("k", "b"), 3, 4);
  ignored.failed(1, del("k"), 5, 6);
  ignored.ok(2, get("k"), 7, 8, read("a", 1));
  t.deepEqual(checkLinearizable(ignored.ops), { ok: true, keysChecked: 1, operationsChecked: 2 });
  const seen = new Script();
  seen.ok(0, put("k", "a"), 0, 2, putOk(1));
  seen.failed(1, put("k", "b"), 3, 4);
  seen.ok(2, get("k"), 7, 8, read("b", 2));
  violation(t, checkLinearizable(seen.ops));
});

// --- Generated histories ---------------------------------------------------------------------------

test("checkLinearizable() accepts a generated 10,000-operation history and rejects it with one read changed", (t) => {
  // Goal: scale and sensitivity. The generator applies every operation atomically inside its interval
  // against a real store, with unknown and failed outcomes, so the history is linearizable. Then one
  // read, whose value a completed write produced, gets a version it never had: exactly one lie.
  const ops = generateHistory({ seed: 7, operations: 10_000, clients: 10, keys: 5 });
  t.is(ops.length, 10_000);
  t.true(ops.some((op) => op.outcome === "unknown"));
  t.true(ops.some((op) => op.outcome === "failed"));
  const startMs = performance.now();
  const result = checkLinearizable(ops);
  t.log(`10,000 operations on 5 keys checked in ${(performance.now() - startMs).toFixed(0)} ms`);
  t.true(result.ok, JSON.stringify(result));

  const writers = new Map(ops.filter((op) => op.outcome === "ok" && "value" in op.input).map((op) => [(op.input as { value: string }).value, op]));
  const target = ops.find((op, index) => index > 5_000 && op.output?.op === "get" && op.output.value !== null && writers.has(op.output.value));
  if (target?.output?.op !== "get") return t.fail("The generated history has a read of a completed write");
  const mutated = { ...target, output: { ...target.output, version: target.output.version + 1 } };
  const broken = violation(t, checkLinearizable(ops.map((op) => (op.id === target.id ? mutated : op))));
  t.is(broken.key, target.input.key);
  const writer = writers.get(target.output.value!)!;
  t.true(broken.minimalPrefix !== undefined && broken.minimalPrefix.endMs <= Math.max(target.returnMs!, writer.returnMs!));
  t.log(broken.reason);
});

test("generateHistory() is deterministic for a seed and differs across seeds", (t) => {
  // Goal: a benchmark or failing test can be replayed from its seed alone.
  const options = { operations: 500, clients: 4, keys: 3 };
  t.deepEqual(generateHistory({ seed: 3, ...options }), generateHistory({ seed: 3, ...options }));
  t.notDeepEqual(generateHistory({ seed: 3, ...options }), generateHistory({ seed: 4, ...options }));
});

// --- Budget ------------------------------------------------------------------------------------------

/**
 * A history that is hard on purpose: n puts (each read by its own get) and n + 1 successful deletes,
 * all concurrent on one key. No order exists (n + 1 deletes need n + 1 puts before them), but proving
 * it means trying the 2^n subsets of puts.
 */
function hardHistory(n: number): Operation[] {
  const s = new Script();
  for (let i = 0; i < n; i++) {
    s.ok(i, put("k", `a${i}`), 0, 1_000, putOk(1));
    s.ok(i, get("k"), 0, 1_000, read(`a${i}`, 1));
    s.ok(i, del("k"), 0, 1_000, deleted(true));
  }
  s.ok(n, del("k"), 0, 1_000, deleted(true));
  return s.ops;
}

test("checkLinearizable() reports unknown instead of hanging when the budget runs out", (t) => {
  // Goal: the search is exponential in the worst case, so it must stop at its budget and say so.
  const ops = hardHistory(40);
  const startMs = performance.now();
  const result = checkLinearizable(ops, { timeBudgetMs: 200 });
  const elapsedMs = performance.now() - startMs;
  t.is(result.ok, "unknown");
  if (result.ok === "unknown") {
    t.is(result.key, "k");
    t.regex(result.reason, /time budget \(200 ms\)/);
  }
  t.true(elapsedMs < 2_000, `took ${elapsedMs} ms`);
  // The same history, small enough to finish, is rejected.
  t.is(checkLinearizable(hardHistory(6)).ok, false);
});

test("checkLinearizable() with a step budget gives the same answer on every run", (t) => {
  // Goal: the simulator needs verdicts a seed determines; a step budget, unlike a clock, is exact.
  const ops = hardHistory(30);
  const first = checkLinearizable(ops, { searchStepsMax: 50_000, timeBudgetMs: 60_000 });
  const second = checkLinearizable(ops, { searchStepsMax: 50_000, timeBudgetMs: 60_000 });
  t.is(first.ok, "unknown");
  t.deepEqual(first, second);
});

// --- Against a naive checker ------------------------------------------------------------------------

/**
 * Linearizability by definition, with no cleverness: try every order of every subset of the
 * operations that includes all completed ones, where an operation may go next unless a completed one
 * not yet placed returned before it was called.
 */
function naiveLinearizable(ops: readonly Operation[]): boolean {
  const live = ops.filter((op) => op.outcome !== "failed");
  const placed = live.map(() => false);
  const search = (store: Map<string, { value: string; version: number }>): boolean => {
    if (live.every((op, index) => placed[index] || op.outcome !== "ok")) return true;
    for (let index = 0; index < live.length; index++) {
      const op = live[index]!;
      if (placed[index]) continue;
      const mustWait = live.some((other, j) => !placed[j] && other.outcome === "ok" && other.returnMs! < op.callMs);
      if (mustWait) continue;
      const next = new Map(store);
      const output = applyToStore(next, op.input);
      if (op.outcome === "ok" && !isDeepStrictEqual(output, op.output)) continue;
      placed[index] = true;
      const found = search(next);
      placed[index] = false;
      if (found) return true;
    }
    return false;
  };
  return search(new Map());
}

/** A small random history: generated correct, then maybe with values merged and one output changed. */
function randomSmallHistory(random: () => number): Operation[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  let ops = generateHistory({
    seed: Math.floor(random() * 2 ** 31),
    operations: 3 + Math.floor(random() * 6),
    clients: 2 + Math.floor(random() * 3),
    keys: random() < 0.7 ? 1 : 2,
    unknownFraction: 0.25,
    failedFraction: 0.1,
    latencyMsMax: 6,
    thinkMsMax: 2,
  });
  if (random() < 0.4) {
    // Merge values into a tiny alphabet, so several writes write the same value.
    const merge = (value: string): string => (Number(value.slice(1)) % 2 === 0 ? "x" : "y");
    ops = ops.map((op) => {
      const input = "value" in op.input ? { ...op.input, value: merge(op.input.value) } : op.input;
      const output = op.output?.op === "get" && op.output.value !== null ? { ...op.output, value: merge(op.output.value) } : op.output;
      return { ...op, input, output };
    });
  }
  const completed = ops.filter((op) => op.outcome === "ok");
  if (completed.length > 0 && random() < 0.6) {
    const target = pick(completed);
    const version = Math.floor(random() * 4);
    const outputs: Record<KvInput["op"], KvOutput> = {
      put: putOk(version + 1),
      get: random() < 0.3 ? read(null, 0) : read(pick(["x", "y", ...ops.map((op) => ("value" in op.input ? op.input.value : "x"))]), version),
      delete: deleted(random() < 0.5),
      cas: random() < 0.5 ? casOk(version + 1) : casMismatch(version),
    };
    ops = ops.map((op) => (op === target ? { ...op, output: outputs[op.input.op] } : op));
  }
  return ops;
}

test("checkLinearizable() agrees with a naive checker on 3,000 random small histories", (t) => {
  // Goal: the search prunes hard (classes of unknown writes, canonical runs, forced reads, twins);
  // every shortcut must keep the answer exact. Compare with the definition on histories small enough
  // to enumerate, half of them broken by one changed output.
  const random = seedrandom("linearizability-naive");
  let rejected = 0;
  for (let round = 0; round < 3_000; round++) {
    const ops = randomSmallHistory(random);
    const expected = naiveLinearizable(ops);
    const result = checkLinearizable(ops);
    if (result.ok !== expected) {
      t.fail(`Round ${round}: expected ${expected}, got ${JSON.stringify(result)}\n${ops.map((op) => formatOperation(op, { id: true })).join("\n")}`);
      return;
    }
    if (!expected) rejected++;
  }
  t.log(`${rejected} of 3,000 histories were not linearizable`);
  t.true(rejected > 300 && rejected < 2_700, `${rejected} rejected`);
});

// --- Recording and formatting -----------------------------------------------------------------------

test("HistoryRecorder records outcomes and reports still-pending operations as unknown", (t) => {
  // Goal: the workload's view of a run becomes the checker's input without translation.
  const recorder = new HistoryRecorder();
  const a = recorder.invoke(0, put("k", "a"), 10);
  const b = recorder.invoke(1, get("k"), 11);
  const c = recorder.invoke(2, del("k"), 12);
  const d = recorder.invoke(3, get("k"), 13);
  recorder.complete(a, putOk(1), 20);
  recorder.fail(b, 21);
  recorder.unknown(c);
  t.is(recorder.pendingCount, 1);
  t.deepEqual(recorder.operations(), [
    { id: a, client: 0, input: put("k", "a"), callMs: 10, returnMs: 20, outcome: "ok", output: putOk(1) },
    { id: b, client: 1, input: get("k"), callMs: 11, returnMs: 21, outcome: "failed", output: null },
    { id: c, client: 2, input: del("k"), callMs: 12, returnMs: null, outcome: "unknown", output: null },
    { id: d, client: 3, input: get("k"), callMs: 13, returnMs: null, outcome: "unknown", output: null },
  ]);
  t.throws(() => recorder.complete(a, putOk(2), 30), { name: "AssertionError" });
  t.throws(() => recorder.complete(d, putOk(1), 30), { name: "AssertionError" });
  t.throws(() => recorder.complete(d, read(null, 0), 5), { name: "AssertionError" });
});

test("formatOperation() prints one readable line per operation", (t) => {
  // Goal: violation reports are read by people; the format is part of the interface.
  const s = new Script();
  t.is(formatOperation(s.ok(3, put("k1", "v9"), 120, 134, putOk(4))), 'c3 put(k1,"v9") -> v4 @[120ms,134ms]');
  t.is(formatOperation(s.ok(1, get("k1"), 1, 2, read("v9", 4))), 'c1 get(k1) -> "v9" v4 @[1ms,2ms]');
  t.is(formatOperation(s.ok(1, get("k1"), 1, 2, read(null, 0))), "c1 get(k1) -> absent @[1ms,2ms]");
  t.is(formatOperation(s.ok(2, cas("k1", 3, "x"), 1, 2, casMismatch(5))), 'c2 cas(k1,v3,"x") -> mismatch v5 @[1ms,2ms]');
  t.is(formatOperation(s.unknown(2, del("k1"), 7), { id: true }), "c2 delete(k1) -> ? @[7ms,?] #4");
  t.is(formatOperation(s.failed(2, del("k1"), 7, 9)), "c2 delete(k1) -> not applied @[7ms,9ms]");
});

test("checkLinearizable() refuses a malformed history with a HistoryError", (t) => {
  // Goal: a recording bug is reported as such, not as a linearizability verdict.
  const s = new Script();
  s.ok(0, put("k", "a"), 10, 5, putOk(1));
  const error = t.throws(() => checkLinearizable(s.ops), { instanceOf: HistoryError });
  t.regex(error?.message ?? "", /operation 0 is malformed: returns at 5 ms, before its call at 10 ms/);
  t.throws(() => checkLinearizable([], { timeBudgetMs: -1 }), { instanceOf: RangeError });
});
