/**
 * The one source of randomness for toxics: toxicity decisions, latency jitter, slicer cut points.
 *
 * The real server's -seed flag builds a seeded generator and throws it away (toxics draw from Go's global
 * math/rand), so its faults cannot be replayed. Here every draw comes from one seeded alea generator, in
 * the order the server makes them: two servers with the same seed that see the same connections and
 * chunks in the same order make the same decisions. Without a seed, one is drawn and reported, so a run
 * can still be replayed.
 */
import { randomInt } from "node:crypto";
import seedrandom from "seedrandom";
import { assert } from "../../src/assert.ts";

/** Seeds are printed and passed on command lines: keep them exact as JavaScript numbers. */
export const SEED_MAX = Number.MAX_SAFE_INTEGER;

export class ToxicRandom {
  readonly seed: number;
  readonly #next: () => number;
  #draws = 0;

  constructor(seed: number = randomInt(0, 2 ** 48 - 1)) {
    assert(Number.isSafeInteger(seed) && seed >= 0 && seed <= SEED_MAX, `ToxicRandom: seed must be an integer from 0 to ${SEED_MAX}, got ${seed}`);
    this.seed = seed;
    this.#next = seedrandom.alea(String(seed));
  }

  /** How many draws were made: two servers that made the same draws agree on this. */
  get draws(): number {
    return this.#draws;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#draws += 1;
    const value = this.#next();
    assert(value >= 0 && value < 1, `ToxicRandom.next(): alea returned ${value}, outside [0, 1)`);
    return value;
  }

  /** Uniform integer in [0, bound), like Go's rand.Intn. */
  below(bound: number): number {
    assert(Number.isSafeInteger(bound) && bound > 0, `ToxicRandom.below(): bound must be a positive integer, got ${bound}`);
    return Math.floor(this.next() * bound);
  }

  /**
   * The per-connection toxicity decision: one draw, compared as the real server does
   * (`rand.Float32() < toxicity`), so 1 always applies and 0 never does. The draw is made whatever the
   * toxicity, so changing one toxic's toxicity does not shift the draws of the others.
   */
  decide(toxicity: number): boolean {
    assert(toxicity >= 0 && toxicity <= 1, `ToxicRandom.decide(): toxicity must be in [0, 1], got ${toxicity}`);
    return this.next() < toxicity;
  }
}
