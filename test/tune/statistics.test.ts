// The statistics behind every number the tuning report prints: percentiles by linear interpolation
// (type 7), summaries, histograms and CDF points. Each case has a value worked out by hand.
import test from "ava";
import { cdfPoints, fractionAbove, histogram, percentile, summarize } from "../../sim/tune/statistics.ts";
import { formatDuration, formatProgress } from "../../sim/tune/progress.ts";
import { formatMs, textTable } from "../../sim/tune/format.ts";

test("percentile() interpolates between the closest ranks", (t) => {
  t.is(percentile([1, 2, 3, 4], 0.5), 2.5);
  t.is(percentile([1, 2, 3, 4], 0), 1);
  t.is(percentile([1, 2, 3, 4], 1), 4);
  t.is(percentile([10, 20], 0.25), 12.5);
  t.is(percentile([7], 0.99), 7);
  // p99 of 1..100: position 98.01 between 99 and 100.
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  t.true(Math.abs(percentile(hundred, 0.99) - 99.01) < 1e-9);
});

test("percentile() refuses an empty or unsorted sample and a fraction outside [0, 1]", (t) => {
  t.throws(() => percentile([], 0.5), { message: /empty/ });
  t.throws(() => percentile([3, 1, 2], 0.5), { message: /sorted/ });
  t.throws(() => percentile([1, 2], 1.5), { message: /outside/ });
});

test("summarize() sorts a copy and reports count, mean, median, p90, p99 and the extremes", (t) => {
  const values = [5, 1, 4, 2, 3];
  const summary = summarize(values);
  t.deepEqual(values, [5, 1, 4, 2, 3], "the input is not reordered");
  t.is(summary.count, 5);
  t.is(summary.mean, 3);
  t.is(summary.min, 1);
  t.is(summary.median, 3);
  t.true(Math.abs(summary.p90 - 4.6) < 1e-9);
  t.true(Math.abs(summary.p99 - 4.96) < 1e-9);
  t.is(summary.max, 5);
  t.throws(() => summarize([]), { message: /empty/ });
  t.throws(() => summarize([1, Number.NaN]), { message: /finite/ });
});

test("fractionAbove() counts strictly greater values", (t) => {
  t.is(fractionAbove([1, 2, 3, 4], 2), 0.5);
  t.is(fractionAbove([], 2), 0);
});

test("histogram() bins equal widths and clamps outliers into the end bins", (t) => {
  const bins = histogram([0, 1, 1.5, 2.5, 9.99, 10, -5, 50], { from: 0, to: 10, binCount: 5 });
  t.deepEqual(bins.map((bin) => bin.count), [4, 1, 0, 0, 3]);
  t.is(bins[0]!.from, 0);
  t.is(bins[4]!.to, 10);
});

test("cdfPoints() gives the fraction at or below each value, once per repeated value", (t) => {
  t.deepEqual(cdfPoints([3, 1, 2, 2]), [
    { x: 1, y: 0.25 },
    { x: 2, y: 0.75 },
    { x: 3, y: 1 },
  ]);
  const many = cdfPoints(Array.from({ length: 1000 }, (_, i) => i), 100);
  t.true(many.length <= 101);
  t.deepEqual(many[many.length - 1], { x: 999, y: 1 });
  for (let i = 1; i < many.length; i++) t.true(many[i]!.x > many[i - 1]!.x && many[i]!.y > many[i - 1]!.y);
  t.deepEqual(cdfPoints([]), []);
});

test("formatMs() and formatProgress() print durations for humans", (t) => {
  t.is(formatMs(3.25), "3.3 ms");
  t.is(formatMs(287), "287 ms");
  t.is(formatMs(1571), "1.57 s");
  t.is(formatMs(30_000), "30.0 s");
  t.is(formatMs(undefined), "-");
  t.is(formatDuration(125_000), "2m05s");
  t.is(formatProgress({ label: "Run", unit: "trials", done: 5, total: 10, elapsedMs: 10_000 }), "Run [###############...............] 50% 5/10 trials, 10s, about 10s left");
});

test("textTable() pads columns and right-aligns numbers", (t) => {
  t.is(textTable(["name", "ms"], [["a", "5 ms"], ["long", "120 ms"]]), "name      ms\n----  ------\na       5 ms\nlong  120 ms");
});
