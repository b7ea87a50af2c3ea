// The split-brain checker (patroni/overlap.ts) on histories with and without two writing primaries.
import test from "ava";
import { overlaps, writePeriods, type WriteAttempt } from "../../patroni/overlap.ts";

const w = (node: string, startMs: number, ok = true): WriteAttempt => ({ node, startMs, endMs: startMs + 5, ok });

test("a failover with a gap between the two primaries' writes is no overlap", (t) => {
  const attempts = [w("a", 0), w("a", 10), w("a", 20, false), w("b", 15, false), w("b", 30), w("b", 40), w("a", 35, false)];
  t.deepEqual(overlaps(attempts), []);
  t.deepEqual(writePeriods(attempts).map((p) => [p.node, p.fromMs, p.toMs, p.writes]), [["a", 0, 15, 2], ["b", 30, 45, 2]]);
});

test("a node accepting a write between two consecutive writes of another is caught", (t) => {
  const attempts = [w("a", 0), w("a", 100), w("b", 50)];
  const found = overlaps(attempts);
  t.is(found.length, 1);
  t.deepEqual([found[0]!.a.node, found[0]!.b.node], ["a", "b"]);
});

test("two periods that interleave are caught, even when no single writes intersect", (t) => {
  const attempts = [w("a", 0), w("b", 10), w("a", 20), w("b", 30)];
  t.is(overlaps(attempts).length, 1);
});

test("a failed attempt ends a period: the node stopped accepting", (t) => {
  const attempts = [w("a", 0), w("a", 10, false), w("b", 20), w("a", 30)];
  t.deepEqual(overlaps(attempts), []);
});

test("an attempt that ends before it starts is refused", (t) => {
  t.throws(() => overlaps([{ node: "a", startMs: 10, endMs: 5, ok: true }]), { message: /ended \(5\) before it started \(10\)/ });
});
