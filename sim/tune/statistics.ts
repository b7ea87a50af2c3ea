/**
 * Small statistics for the tuning experiments: percentiles, a summary of one sample, histograms and
 * empirical CDF points for the charts. Pure functions over plain arrays; nothing here draws randomness.
 *
 * Percentiles interpolate linearly between the two closest ranks (Hyndman and Fan's type 7, the default
 * of R and NumPy), so the median of [1, 2, 3, 4] is 2.5 and p100 is the maximum.
 */
import { assert } from "../../src/assert.ts";

/** The value below which `fraction` of the sorted sample lies (0 <= fraction <= 1). */
export function percentile(sorted: readonly number[], fraction: number): number {
  assert(sorted.length > 0, "percentile() of an empty sample");
  assert(fraction >= 0 && fraction <= 1, `percentile(): fraction ${fraction} outside [0, 1]`);
  for (let i = 1; i < sorted.length; i++) assert(sorted[i - 1]! <= sorted[i]!, "percentile() needs a sorted sample");
  const position = fraction * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  const weight = position - below;
  return sorted[below]! * (1 - weight) + sorted[above]! * weight;
}

export interface Summary {
  readonly count: number;
  readonly mean: number;
  readonly min: number;
  readonly median: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Count, mean, minimum, median, p90, p99 and maximum of a non-empty sample (in any order). */
export function summarize(values: readonly number[]): Summary {
  assert(values.length > 0, "summarize() of an empty sample");
  const sorted = [...values].sort((a, b) => a - b);
  let total = 0;
  for (const value of sorted) {
    assert(Number.isFinite(value), `summarize(): ${value} is not a finite number`);
    total += value;
  }
  return {
    count: sorted.length,
    mean: total / sorted.length,
    min: sorted[0]!,
    median: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1]!,
  };
}

/** Fraction of `values` strictly above `threshold`. */
export function fractionAbove(values: readonly number[], threshold: number): number {
  if (values.length === 0) return 0;
  let above = 0;
  for (const value of values) if (value > threshold) above++;
  return above / values.length;
}

export interface HistogramBin {
  /** Inclusive lower edge. */
  readonly from: number;
  /** Exclusive upper edge (the last bin includes it). */
  readonly to: number;
  readonly count: number;
}

/** `binCount` equal-width bins over [from, to]; values outside are clamped into the end bins. */
export function histogram(values: readonly number[], options: { from: number; to: number; binCount: number }): HistogramBin[] {
  const { from, to, binCount } = options;
  assert(Number.isInteger(binCount) && binCount >= 1, `histogram(): binCount ${binCount} must be a positive integer`);
  assert(to > from, `histogram(): empty range [${from}, ${to}]`);
  const width = (to - from) / binCount;
  const counts = new Array<number>(binCount).fill(0);
  for (const value of values) {
    const bin = Math.min(binCount - 1, Math.max(0, Math.floor((value - from) / width)));
    counts[bin]!++;
  }
  return counts.map((count, i) => ({ from: from + i * width, to: from + (i + 1) * width, count }));
}

/**
 * Points of the empirical CDF: for each distinct value v, the fraction of the sample at or below v.
 * At most `pointsMax` points are returned (evenly spaced in rank), always including the last.
 */
export function cdfPoints(values: readonly number[], pointsMax = 400): { x: number; y: number }[] {
  if (values.length === 0) return [];
  const sorted = [...values].sort((a, b) => a - b);
  const points: { x: number; y: number }[] = [];
  const step = Math.max(1, Math.ceil(sorted.length / pointsMax));
  for (let i = step - 1; i < sorted.length; i += step) {
    // Advance to the last copy of a repeated value, so y is the fraction at or below it.
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i]) i++;
    points.push({ x: sorted[i]!, y: (i + 1) / sorted.length });
  }
  const last = points[points.length - 1];
  if (!last || last.y < 1) points.push({ x: sorted[sorted.length - 1]!, y: 1 });
  return points;
}

/** Rounds for display: integers above 100, one decimal above 10, two below. */
export function round(value: number): number {
  const magnitude = Math.abs(value);
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : 2;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
