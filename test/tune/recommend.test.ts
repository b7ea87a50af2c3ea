// The decisions of the tuning tool, on made-up results so each rule is seen alone: when a timing works
// on a network, when it meets the 3T failover target, how a profile's verdict reads off a sweep, and
// which timing is recommended for a measured round trip.
import test from "ava";
import { TUNING_PROFILES } from "../../src/config/setting-definitions.ts";
import type { TimingConfig } from "../../sim/tune/failover.ts";
import { cellProblems, failoverTargetMisses, profileVerdict, type CellResult } from "../../sim/tune/profiles.ts";
import { chooseRecommendation, customTiming, hasMargin } from "../../sim/tune/recommend.ts";
import { summarize } from "../../sim/tune/statistics.ts";

const TIMINGS: Record<string, TimingConfig> = {
  low: { name: "low", electionTimeoutMs: 1000, heartbeatIntervalMs: 100 },
  medium: { name: "medium", electionTimeoutMs: 2000, heartbeatIntervalMs: 200 },
  high: { name: "high", electionTimeoutMs: 5000, heartbeatIntervalMs: 500 },
};

/** A cell whose failovers all took `failoverMs` (times T) and whose quiet hour saw `elections`. */
function cell(timing: TimingConfig, latencyMs: number, options: { failoverT?: number; elections?: number; started?: boolean; censored?: number; restartMs?: number } = {}): CellResult {
  const T = timing.electionTimeoutMs;
  const writableMs = Array.from({ length: 100 }, () => (options.failoverT ?? 1.5) * T);
  const writable = summarize(writableMs);
  const failover = { trials: 100, notStarted: 0, censored: options.censored ?? 0, elected: writable, writable, writableMs };
  const quiet = { hours: 1, started: options.started ?? true, elections: options.elections ?? 0, preVotes: 0, electionsPerHour: options.elections ?? 0, preVotesPerHour: 0 };
  const failure = { trials: 5, notStarted: 0, censored: 0, outage: summarize([options.restartMs ?? 2000]) };
  const reasons = cellProblems({ failover, quiet });
  const targetMisses = failoverTargetMisses(writable, 3 * T);
  return {
    timing,
    network: { latencyMs, jitterMs: latencyMs / 4, fsyncMs: 2 },
    nodeCount: 3,
    failover,
    quiet,
    failures: { "leader-isolated": failure, "follower-crash": failure, "quorum-lost": failure, "full-restart": failure },
    boundMs: 3 * T,
    ok: reasons.length === 0,
    reasons,
    meetsTarget: reasons.length === 0 && targetMisses.length === 0,
    targetMisses,
  };
}

test("cellProblems() names spurious elections, a missing leader and unfinished failovers", (t) => {
  t.deepEqual(cellProblems({ failover: { trials: 10, notStarted: 0, censored: 0 }, quiet: { started: true, elections: 0, hours: 1 } }), []);
  t.deepEqual(cellProblems({ failover: { trials: 10, notStarted: 0, censored: 0 }, quiet: { started: true, elections: 3, hours: 1 } }), [
    "3 spurious elections in 1 simulated hour without faults",
  ]);
  t.deepEqual(cellProblems({ failover: { trials: 10, notStarted: 2, censored: 1 }, quiet: { started: false, elections: 0, hours: 0.5 } }), [
    "no stable leader to start the quiet run",
    "no stable leader before the crash in 2 of 10 trials",
    "1 of 10 failovers never committed a write",
  ]);
});

test("failoverTargetMisses() holds the p99 failover to 3T", (t) => {
  t.deepEqual(failoverTargetMisses(summarize([1000, 2000, 2900]), 3000), []);
  t.deepEqual(failoverTargetMisses(summarize(Array.from({ length: 100 }, (_, i) => (i < 95 ? 1000 : 5000))), 3000), ["failover p99 5000 ms exceeds 3T (3000 ms)"]);
});

test("profileVerdict() reads the band where a profile works and where it breaks", (t) => {
  const cells = [
    cell(TIMINGS.low!, 1),
    cell(TIMINGS.low!, 10),
    cell(TIMINGS.low!, 25, { failoverT: 3.5 }),
    cell(TIMINGS.low!, 50, { elections: 2 }),
    cell(TIMINGS.medium!, 50),
  ];
  const verdict = profileVerdict(TUNING_PROFILES.low, cells, 200);
  t.like(verdict, { okUpToMs: 25, breaksAtMs: 50, targetUpToMs: 10, targetMissAtMs: 25, topOfBandMs: 10, safeAtTop: true, meetsTargetAtTop: true });
  t.deepEqual(verdict.breakReasons, ["2 spurious elections in 1 simulated hour without faults"]);
  const medium = profileVerdict(TUNING_PROFILES.medium, [cell(TIMINGS.medium!, 10), cell(TIMINGS.medium!, 50, { elections: 1 }), cell(TIMINGS.high!, 50)], 200);
  t.like(medium, { safeAtTop: false, insteadAtTop: "high", okUpToMs: 10, breaksAtMs: 50 });
  const high = profileVerdict(TUNING_PROFILES.high, [cell(TIMINGS.high!, 50), cell(TIMINGS.high!, 200, { restartMs: 12_000 })], 200);
  t.like(high, { topOfBandMs: 200, safeAtTop: true, restartWithinGuide: false });
});

test("customTiming() keeps 10x the worst round trip, whole 100 ms, at least 500/50 ms", (t) => {
  t.deepEqual(customTiming({ rttMs: 35, jitterMs: 10 }), { name: "custom", electionTimeoutMs: 500, heartbeatIntervalMs: 50 });
  t.deepEqual(customTiming({ rttMs: 2, jitterMs: 0.5 }), { name: "custom", electionTimeoutMs: 500, heartbeatIntervalMs: 50 });
  t.deepEqual(customTiming({ rttMs: 120, jitterMs: 15 }), { name: "custom", electionTimeoutMs: 1400, heartbeatIntervalMs: 140 });
  t.deepEqual(customTiming({ rttMs: 400, jitterMs: 100 }), { name: "custom", electionTimeoutMs: 5000, heartbeatIntervalMs: 500 });
  t.true(hasMargin(TIMINGS.low!, { rttMs: 90, jitterMs: 10 }));
  t.false(hasMargin(TIMINGS.low!, { rttMs: 95, jitterMs: 10 }));
});

test("chooseRecommendation() picks the fastest working profile and offers a faster custom timing", (t) => {
  const measured = { rttMs: 35, jitterMs: 10 };
  const custom = customTiming(measured);
  const cells = [cell(custom, 17.5), cell(TIMINGS.low!, 17.5), cell(TIMINGS.medium!, 17.5), cell(TIMINGS.high!, 17.5)];
  const recommendation = chooseRecommendation(measured, cells);
  t.is(recommendation.choice?.timing.name, "low");
  t.is(recommendation.alternative?.timing.name, "custom");
  t.is(recommendation.notes.length, 4);
});

test("chooseRecommendation() skips a profile with spurious elections or too small a margin", (t) => {
  const measured = { rttMs: 35, jitterMs: 10 };
  const spurious = chooseRecommendation(measured, [cell(TIMINGS.low!, 17.5, { elections: 4 }), cell(TIMINGS.medium!, 17.5), cell(TIMINGS.high!, 17.5)]);
  t.is(spurious.choice?.timing.name, "medium");
  t.regex(spurious.notes[0]!, /profile low .*: 4 spurious elections/);
  const far = { rttMs: 150, jitterMs: 30 };
  const margin = chooseRecommendation(far, [cell(customTiming(far), 75), cell(TIMINGS.low!, 75), cell(TIMINGS.medium!, 75), cell(TIMINGS.high!, 75)]);
  t.is(margin.choice?.timing.name, "medium", "low's 1000 ms is below 10x the 180 ms worst round trip");
  t.is(margin.alternative?.timing.electionTimeoutMs, 1800, "custom 1800/180 ms has the margin and is faster than medium");
});

test("chooseRecommendation() falls back to custom, or to nothing, when no profile works", (t) => {
  const measured = { rttMs: 900, jitterMs: 100 };
  const custom = customTiming(measured);
  const none = [cell(TIMINGS.low!, 450, { started: false }), cell(TIMINGS.medium!, 450, { elections: 9 }), cell(TIMINGS.high!, 450, { censored: 3 })];
  t.is(chooseRecommendation(measured, [cell(custom, 450), ...none]).choice?.timing.name, "custom");
  const nothing = chooseRecommendation(measured, none);
  t.is(nothing.choice, undefined);
  t.is(nothing.alternative, undefined);
});
