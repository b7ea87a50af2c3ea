/**
 * Verifying the operations guide's three tuning profiles (src/config/setting-definitions.ts):
 * low 1000/100 ms for latency below 10 ms, medium 2000/200 ms for 10-50 ms, high 5000/500 ms above
 * 50 ms. Each profile runs on each latency of the sweep ("cells"), and each cell gets failover trials,
 * a long quiet run for spurious elections and the guide's failures (failover.ts). A cell is "ok" when
 * the timing works there: the quiet run saw no election at all, a leader held, and every failover
 * ended with a committed write. Separately, a cell meets the failover target when the p99 failover
 * stays within 3T (failoverBoundMs). A profile's verdict is the band of latencies, from the smallest,
 * in which every cell is ok (and the band that also meets the target), beside the band the guide claims.
 *
 * The guide does not say whether its "latency" is one-way or a round trip; we read it as one-way, the
 * stricter reading for the top of each band. Each one-way delay is drawn uniformly within ±25% of the
 * latency, and disk writes take 2 ms.
 */
import { TUNING_PROFILE_NAMES, TUNING_PROFILES, type TuningProfile } from "../../src/config/setting-definitions.ts";
import {
  FAILURE_KINDS,
  failoverBoundMs,
  type ExperimentCell,
  type FailoverTrial,
  type FailureKind,
  type FailureTrial,
  type NetworkModel,
  type QuietRun,
  type TimingConfig,
} from "./failover.ts";
import { batches, type TuneJob, type TuneJobResult } from "./jobs.ts";
import { summarize, type Summary } from "./statistics.ts";

export const PROFILE_LATENCIES_MS: readonly number[] = [1, 5, 10, 25, 50, 100, 200];
export const PROFILE_LATENCIES_MS_LONG: readonly number[] = [...PROFILE_LATENCIES_MS, 300, 500, 700, 1000, 1500, 2000, 3000];
export const JITTER_FRACTION = 0.25;
export const PROFILE_FSYNC_MS = 2;
/** The guide's promise after a complete cluster failure: "wait 10 seconds for election". */
export const GUIDE_RESTART_MS = 10_000;
const FAILOVER_BATCH = 25;
const FAILURE_BATCH = 10;

export function profileTiming(profile: TuningProfile): TimingConfig {
  return { name: profile.name, electionTimeoutMs: profile.electionTimeoutMs, heartbeatIntervalMs: profile.heartbeatIntervalMs };
}

export function profileTimings(): TimingConfig[] {
  return TUNING_PROFILE_NAMES.map((name) => profileTiming(TUNING_PROFILES[name]));
}

export function networkForLatency(latencyMs: number): NetworkModel {
  return { latencyMs, jitterMs: latencyMs * JITTER_FRACTION, fsyncMs: PROFILE_FSYNC_MS };
}

export interface CellCounts {
  readonly failoverSeeds: number;
  readonly failureSeeds: number;
  readonly quietDurationMs: number;
  readonly nodeCount: number;
}

/** Where a cell's jobs sit in the job list. */
export interface CellJobs {
  readonly cell: ExperimentCell;
  readonly failover: readonly number[];
  readonly quiet: number;
  readonly failures: Readonly<Record<FailureKind, readonly number[]>>;
}

/** Appends the jobs of one cell to `jobs` and says where they are. */
export function planCell(timing: TimingConfig, network: NetworkModel, counts: CellCounts, jobs: TuneJob[]): CellJobs {
  const cell: ExperimentCell = { timing, network, nodeCount: counts.nodeCount };
  const key = `${timing.name}/${timing.electionTimeoutMs}/${timing.heartbeatIntervalMs}/${network.latencyMs}/${network.jitterMs}`;
  const push = (job: TuneJob): number => jobs.push(job) - 1;
  const seeds = (count: number, label: string): string[] => Array.from({ length: count }, (_, i) => `${key}/${label}/${i}`);
  const failover = batches(seeds(counts.failoverSeeds, "failover"), FAILOVER_BATCH).map((batch) => push({ kind: "failover", cell, seeds: batch }));
  const quiet = push({ kind: "quiet", cell, seed: `${key}/quiet`, durationMs: counts.quietDurationMs });
  const failures = {} as Record<FailureKind, number[]>;
  for (const failure of FAILURE_KINDS) {
    failures[failure] = batches(seeds(counts.failureSeeds, failure), FAILURE_BATCH).map((batch) => push({ kind: "failure", failure, cell, seeds: batch }));
  }
  return { cell, failover, quiet, failures };
}

export interface FailureSummary {
  readonly trials: number;
  readonly notStarted: number;
  readonly censored: number;
  readonly outage: Summary | undefined;
  readonly stepDown?: Summary;
  readonly electionsAfterHeal?: number;
}

export interface CellResult {
  readonly timing: TimingConfig;
  readonly network: NetworkModel;
  readonly nodeCount: number;
  readonly failover: {
    readonly trials: number;
    readonly notStarted: number;
    readonly censored: number;
    readonly elected: Summary | undefined;
    readonly writable: Summary | undefined;
    /** Every writable time, for the distribution charts. */
    readonly writableMs: readonly number[];
  };
  readonly quiet: {
    readonly hours: number;
    readonly started: boolean;
    readonly elections: number;
    readonly preVotes: number;
    readonly electionsPerHour: number;
    readonly preVotesPerHour: number;
  };
  readonly failures: Readonly<Record<FailureKind, FailureSummary>>;
  /** The failover target: p99 within 3T (failoverBoundMs). */
  readonly boundMs: number;
  /** The timing works here: no spurious election, a stable leader, every failover committed a write. */
  readonly ok: boolean;
  /** Why the cell is not ok (empty when it is). */
  readonly reasons: readonly string[];
  /** ok, and the failover p99 stayed within the target. */
  readonly meetsTarget: boolean;
  readonly targetMisses: readonly string[];
}

export function summarizeCell(plan: CellJobs, results: readonly TuneJobResult[]): CellResult {
  const failoverTrials = plan.failover.flatMap((index) => expect(results[index], "failover").trials) as FailoverTrial[];
  const quietRun = expect(results[plan.quiet], "quiet").run as QuietRun;
  const failures = {} as Record<FailureKind, FailureSummary>;
  for (const failure of FAILURE_KINDS) {
    failures[failure] = summarizeFailures(plan.failures[failure].flatMap((index) => expect(results[index], "failure").trials) as FailureTrial[]);
  }
  const started = failoverTrials.filter((trial) => trial.started);
  const writableMs = started.map((trial) => trial.writableMs);
  const hours = quietRun.durationMs / 3_600_000;
  const failover = {
    trials: failoverTrials.length,
    notStarted: failoverTrials.length - started.length,
    censored: started.filter((trial) => trial.censored).length,
    elected: started.length > 0 ? summarize(started.map((trial) => trial.electedMs)) : undefined,
    writable: writableMs.length > 0 ? summarize(writableMs) : undefined,
    writableMs,
  };
  const quiet = {
    hours,
    started: quietRun.started,
    elections: quietRun.elections,
    preVotes: quietRun.preVotes,
    electionsPerHour: quietRun.elections / hours,
    preVotesPerHour: quietRun.preVotes / hours,
  };
  const boundMs = failoverBoundMs(plan.cell.timing);
  const reasons = cellProblems({ failover, quiet });
  const targetMisses = failoverTargetMisses(failover.writable, boundMs);
  return {
    timing: plan.cell.timing,
    network: plan.cell.network,
    nodeCount: plan.cell.nodeCount,
    failover,
    quiet,
    failures,
    boundMs,
    ok: reasons.length === 0,
    reasons,
    meetsTarget: reasons.length === 0 && targetMisses.length === 0,
    targetMisses,
  };
}

function expect<K extends TuneJobResult["kind"]>(result: TuneJobResult | undefined, kind: K): Extract<TuneJobResult, { kind: K }> {
  if (result === undefined || result.kind !== kind) throw new Error(`Tuning result mix-up: expected a ${kind} result, received ${result?.kind ?? "nothing"}`);
  return result as Extract<TuneJobResult, { kind: K }>;
}

function summarizeFailures(trials: readonly FailureTrial[]): FailureSummary {
  const started = trials.filter((trial) => trial.started);
  const stepDowns = started.flatMap((trial) => (trial.stepDownMs === undefined ? [] : [trial.stepDownMs]));
  const heals = started.flatMap((trial) => (trial.electionsAfterHeal === undefined ? [] : [trial.electionsAfterHeal]));
  return {
    trials: trials.length,
    notStarted: trials.length - started.length,
    censored: started.filter((trial) => trial.censored).length,
    outage: started.length > 0 ? summarize(started.map((trial) => trial.outageMs)) : undefined,
    ...(stepDowns.length > 0 ? { stepDown: summarize(stepDowns) } : {}),
    ...(heals.length > 0 ? { electionsAfterHeal: heals.reduce((a, b) => a + b, 0) } : {}),
  };
}

/** The reasons a timing does not work on a network (empty when it works); pure, tested directly. */
export function cellProblems(cell: {
  failover: { trials: number; notStarted: number; censored: number };
  quiet: { started: boolean; elections: number; hours: number };
}): string[] {
  const reasons: string[] = [];
  if (!cell.quiet.started) reasons.push("no stable leader to start the quiet run");
  else if (cell.quiet.elections > 0) reasons.push(`${cell.quiet.elections} spurious elections in ${formatHours(cell.quiet.hours)} without faults`);
  if (cell.failover.notStarted > 0) reasons.push(`no stable leader before the crash in ${cell.failover.notStarted} of ${cell.failover.trials} trials`);
  if (cell.failover.censored > 0) reasons.push(`${cell.failover.censored} of ${cell.failover.trials} failovers never committed a write`);
  return reasons;
}

/** Misses of the failover target (p99 within 3T); pure. */
export function failoverTargetMisses(writable: Summary | undefined, boundMs: number): string[] {
  if (writable === undefined) return ["no failover measured"];
  return writable.p99 > boundMs ? [`failover p99 ${Math.round(writable.p99)} ms exceeds 3T (${boundMs} ms)`] : [];
}

export function formatHours(hours: number): string {
  return hours >= 1 ? `${Number(hours.toFixed(2))} simulated hour${hours === 1 ? "" : "s"}` : `${Math.round(hours * 60)} simulated minutes`;
}

export interface ProfileVerdict {
  readonly profile: string;
  readonly timing: TimingConfig;
  readonly claimedText: string;
  readonly claimedMinMs: number;
  readonly claimedMaxMs: number | undefined;
  /** Largest latency up to which the timing works in every cell of the sweep. */
  readonly okUpToMs: number | undefined;
  /** First latency of the sweep where it does not work, and why. */
  readonly breaksAtMs: number | undefined;
  readonly breakReasons: readonly string[];
  /** Largest latency up to which it also meets the failover target (p99 within 3T). */
  readonly targetUpToMs: number | undefined;
  readonly targetMissAtMs: number | undefined;
  readonly targetMissReasons: readonly string[];
  /** The latency checked as the top of the claimed band (the issue sweep's largest for an open band). */
  readonly topOfBandMs: number;
  /** Works at every latency up to the top of the claimed band: no spurious election, every failover done. */
  readonly safeAtTop: boolean;
  readonly meetsTargetAtTop: boolean;
  /** When not safe at the top: the fastest profile that works there, if any. */
  readonly insteadAtTop: string | undefined;
  /** full-restart outage stayed within the guide's 10 s at every latency of the claimed band. */
  readonly restartWithinGuide: boolean;
}

/** How far up the sweep a condition holds from the smallest latency on, and where it first fails. */
function bandOf(cells: readonly CellResult[], holds: (cell: CellResult) => boolean): { upToMs?: number; failing?: CellResult } {
  let upToMs: number | undefined;
  for (const cell of cells) {
    if (!holds(cell)) return { upToMs, failing: cell };
    upToMs = cell.network.latencyMs;
  }
  return { upToMs };
}

export function profileVerdict(profile: TuningProfile, cells: readonly CellResult[], topOfOpenBandMs: number): ProfileVerdict {
  const own = cells.filter((cell) => cell.timing.name === profile.name).sort((a, b) => a.network.latencyMs - b.network.latencyMs);
  const works = bandOf(own, (cell) => cell.ok);
  const target = bandOf(own, (cell) => cell.meetsTarget);
  const topOfBandMs = profile.networkLatencyMsMax ?? topOfOpenBandMs;
  const upToTop = own.filter((cell) => cell.network.latencyMs <= topOfBandMs);
  const safeAtTop = upToTop.some((cell) => cell.network.latencyMs === topOfBandMs) && upToTop.every((cell) => cell.ok);
  const meetsTargetAtTop = safeAtTop && upToTop.every((cell) => cell.meetsTarget);
  const insteadAtTop = safeAtTop
    ? undefined
    : cells
        .filter((cell) => cell.network.latencyMs === topOfBandMs && cell.ok)
        .sort((a, b) => a.timing.electionTimeoutMs - b.timing.electionTimeoutMs)[0]?.timing.name;
  const inBand = own.filter((cell) => cell.network.latencyMs >= profile.networkLatencyMsMin && cell.network.latencyMs <= topOfBandMs);
  const restartWithinGuide = inBand.every((cell) => (cell.failures["full-restart"].outage?.max ?? Infinity) <= GUIDE_RESTART_MS);
  return {
    profile: profile.name,
    timing: profileTiming(profile),
    claimedText: claimedBand(profile),
    claimedMinMs: profile.networkLatencyMsMin,
    claimedMaxMs: profile.networkLatencyMsMax,
    okUpToMs: works.upToMs,
    breaksAtMs: works.failing?.network.latencyMs,
    breakReasons: works.failing?.reasons ?? [],
    targetUpToMs: target.upToMs,
    targetMissAtMs: target.failing?.network.latencyMs,
    targetMissReasons: target.failing ? [...target.failing.reasons, ...target.failing.targetMisses] : [],
    topOfBandMs,
    safeAtTop,
    meetsTargetAtTop,
    insteadAtTop,
    restartWithinGuide,
  };
}

export function claimedBand(profile: TuningProfile): string {
  if (profile.networkLatencyMsMax === undefined) return `above ${profile.networkLatencyMsMin} ms`;
  if (profile.networkLatencyMsMin === 0) return `below ${profile.networkLatencyMsMax} ms`;
  return `${profile.networkLatencyMsMin}-${profile.networkLatencyMsMax} ms`;
}
