/**
 * Election-timeout ranges as the Raft paper writes them ("150-155 ms": each timeout drawn uniformly
 * from [150, 155]), mapped onto the production core without changing it.
 *
 * The core (src/core/raft.ts) draws every timeout as `T + floor(draw * T)` ticks, where T is
 * `electionTicks` and `draw` comes from the injected `random()` in [0, 1): etcd's [T, 2T). To get the
 * paper's [min, max] instead, we keep the core and change only the numbers it is fed:
 *
 *   T    = min / tickMs + 1                       (electionTicks)
 *   k    = floor(u * S), S = (max - min) / tickMs (u uniform in [0, 1) from the seeded stream)
 *   draw = (k + 0.5) / T                          (what the core's random() returns)
 *
 * so the core computes `T + floor((k + 0.5) / T * T) = T + k` ticks exactly (the half keeps the floor
 * clear of rounding), that is one of the S whole tick counts min/tickMs + 1 ... max/tickMs, each with
 * probability 1/S. A follower resets its timer when a heartbeat arrives, at an arbitrary point between
 * two of its ticks, and fires on the (T + k)-th tick after that; the time from the reset to the firing
 * is therefore uniform over ((T + k - 1) tickMs, (T + k) tickMs], and over all k uniform over
 * (min, max]: the paper's continuous range. (A candidate resets on its own tick, so its retries land on
 * whole ticks of the same range.)
 *
 * The draw stays below 1, as the core asserts, while max - min < min + 1.5 ticks, that is for every
 * range no wider than its own minimum: all of the paper's ranges, up to 150-300. Wider ranges cannot be
 * expressed (the core cannot wait more than 2T), and `timeoutRangeTicks` refuses them. A range of zero
 * width (150-150) has S = 0: every draw is 0.5 / T, and the timeout is exactly T ticks, so the only
 * randomness left is where the reset fell between two ticks.
 */
import { assert } from "../../src/assert.ts";
import { Random } from "../random.ts";

export interface TimeoutRange {
  readonly minMs: number;
  readonly maxMs: number;
}

export interface TimeoutRangeTicks {
  /** `electionTicks` for the core: min / tickMs + 1. */
  readonly electionTicks: number;
  /** How many whole tick counts the timeout takes: (max - min) / tickMs (0 for a fixed timeout). */
  readonly spreadTicks: number;
  readonly tickMs: number;
}

export class TimeoutRangeError extends Error {
  override name = "TimeoutRangeError";
}

/** "150-155" (optionally with "ms") to { minMs: 150, maxMs: 155 }. */
export function parseTimeoutRange(text: string): TimeoutRange {
  const match = /^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*(ms)?\s*$/.exec(text);
  if (!match) throw new TimeoutRangeError(`Cannot parse timeout range "${text}": write it as MIN-MAX in milliseconds, like "150-300"`);
  const range = { minMs: Number(match[1]), maxMs: Number(match[2]) };
  if (range.maxMs < range.minMs) throw new TimeoutRangeError(`Cannot use timeout range "${text}": it ends before it starts`);
  return range;
}

export function formatTimeoutRange(range: TimeoutRange): string {
  return `${range.minMs}-${range.maxMs}`;
}

/** The core's tick counts for `range` at `tickMs`; refuses a range the core cannot express. */
export function timeoutRangeTicks(range: TimeoutRange, tickMs: number): TimeoutRangeTicks {
  const minTicks = range.minMs / tickMs;
  const maxTicks = range.maxMs / tickMs;
  if (!Number.isInteger(minTicks) || !Number.isInteger(maxTicks)) {
    throw new TimeoutRangeError(
      `Cannot express timeout range ${formatTimeoutRange(range)} ms at ${tickMs} ms ticks: both ends must be whole ticks`,
    );
  }
  const electionTicks = minTicks + 1;
  const spreadTicks = maxTicks - minTicks;
  if (spreadTicks - 1 + 0.5 >= electionTicks) {
    throw new TimeoutRangeError(
      `Cannot express timeout range ${formatTimeoutRange(range)} ms: the core draws timeouts from [T, 2T), so a range may be at most as wide as its minimum`,
    );
  }
  return { electionTicks, spreadTicks, tickMs };
}

/** What the core's random() must return so that it picks the (floor(uniform * S))-th tick count. */
export function timeoutDraw(ticks: TimeoutRangeTicks, uniform: number): number {
  assert(uniform >= 0 && uniform < 1, `timeoutDraw(): uniform ${uniform} outside [0, 1)`);
  const k = Math.floor(uniform * ticks.spreadTicks);
  const draw = (k + 0.5) / ticks.electionTicks;
  assert(draw < 1, `timeoutDraw(): draw ${draw} would break the core's [0, 1) contract`);
  return draw;
}

/** The core's formula, for tests and documentation (src/core/raft.ts, #randomizeElectionTimeout). */
export function coreTimeoutTicks(electionTicks: number, draw: number): number {
  return electionTicks + Math.floor(draw * electionTicks);
}

/**
 * A seeded Random for SimCluster whose node streams feed the core timeout draws over `ticks` instead of
 * plain uniforms. SimCluster forks "cluster" from the Random it is given, and from that one stream per
 * node incarnation labelled "node-ID-INCARNATION", whose `next()` becomes the core's random(). Only
 * those streams are mapped: the network, disk and cluster draws (drift, picks) stay exactly what a plain
 * Random of the same seed gives. (test/tune/timeout-range.test.ts fails if SimCluster's labels change.)
 */
export class TimeoutRangeRandom extends Random {
  readonly #ticks: TimeoutRangeTicks;

  constructor(seed: string | number, ticks: TimeoutRangeTicks) {
    super(seed);
    this.#ticks = ticks;
  }

  override fork(label: string): Random {
    if (label === "cluster") return new TimeoutRangeRandom(`${this.seed}/${label}`, this.#ticks);
    if (NODE_STREAM_LABEL.test(label)) return new TimeoutDrawStream(`${this.seed}/${label}`, this.#ticks);
    return super.fork(label);
  }
}

const NODE_STREAM_LABEL = /^node-\d+-\d+$/;

class TimeoutDrawStream extends Random {
  readonly #ticks: TimeoutRangeTicks;

  constructor(seed: string, ticks: TimeoutRangeTicks) {
    super(seed);
    this.#ticks = ticks;
  }

  override next(): number {
    return timeoutDraw(this.#ticks, super.next());
  }
}
