/**
 * Reconnect delays: exponential from `backoffMsMin`, capped at `backoffMsMax`, with "equal jitter"
 * (a delay is drawn between half the ceiling and the ceiling), so nodes restarted together do not
 * redial in lockstep, and a dead peer is never redialled faster than half the current ceiling.
 */
import { assert } from "../assert.ts";

export interface BackoffLimits {
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
}

/** Doublings beyond this cannot matter (2^30 times any sane minimum passes any sane maximum). */
const ATTEMPTS_COUNTED_MAX = 30;

/** The delay before redial number `attempt` (0 for the first redial after a failure or a drop). */
export function reconnectDelayMs(attempt: number, limits: BackoffLimits, random: () => number): number {
  assert(Number.isSafeInteger(attempt) && attempt >= 0, `reconnectDelayMs(): attempt must be a non-negative integer, got ${attempt}`);
  assert(limits.backoffMsMin >= 1 && limits.backoffMsMin <= limits.backoffMsMax, "reconnectDelayMs(): need 1 <= backoffMsMin <= backoffMsMax");
  const draw = random();
  assert(draw >= 0 && draw < 1, `reconnectDelayMs(): random() must return a number in [0, 1), got ${draw}`);
  const ceilingMs = Math.min(limits.backoffMsMax, limits.backoffMsMin * 2 ** Math.min(attempt, ATTEMPTS_COUNTED_MAX));
  const delayMs = Math.round(ceilingMs / 2 + (draw * ceilingMs) / 2);
  assert(delayMs >= 0 && delayMs <= limits.backoffMsMax, "reconnectDelayMs(): delay outside its bounds");
  return delayMs;
}
