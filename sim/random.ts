/**
 * The simulator's only source of randomness: seedrandom's alea generator behind a small API.
 * Independent streams are forked by label, so adding draws in one part of the simulator (say, the
 * workload) does not shift the draws of another (the network) for the same seed.
 */
import seedrandom from "seedrandom";
import { assert } from "../src/assert.ts";

export class Random {
  readonly #next: () => number;
  readonly seed: string;

  constructor(seed: string | number) {
    this.seed = String(seed);
    this.#next = seedrandom.alea(this.seed);
  }

  /** A new independent stream derived from this seed and `label`. */
  fork(label: string): Random {
    return new Random(`${this.seed}/${label}`);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.#next();
  }

  /** Uniform integer in [min, max], inclusive. */
  int(min: number, max: number): number {
    assert(Number.isInteger(min) && Number.isInteger(max) && max >= min, `Random.int(${min}, ${max})`);
    return min + Math.floor(this.#next() * (max - min + 1));
  }

  /** Uniform real in [min, max). */
  real(min: number, max: number): number {
    return min + this.#next() * (max - min);
  }

  chance(probability: number): boolean {
    return probability > 0 && this.#next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, "Random.pick() from an empty list");
    return items[Math.floor(this.#next() * items.length)]!;
  }

  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.#next() * (i + 1));
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }

  /** Exponentially distributed with the given mean (for intervals between independent events). */
  exponential(mean: number): number {
    return -Math.log(1 - this.#next()) * mean;
  }
}
