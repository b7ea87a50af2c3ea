/**
 * `npm run tune -- --rtt 35ms --jitter 10ms`: which timing to use on a measured network.
 *
 * The candidates are the three profiles and one custom timing derived from the measurement. Each is
 * simulated on that network (failover trials and a quiet run, as in profile verification), and the
 * choice is then a pure function of those results (`chooseRecommendation`, tested directly):
 *
 * - A candidate is eligible when it works on that network (no spurious election, a stable leader,
 *   every failover ended with a committed write) and it keeps etcd's margin: an election timeout of at least 10x the worst round trip (RTT plus
 *   jitter). The margin covers what the simulator does not model: latency spikes, packet loss bursts,
 *   fsync stalls and process pauses.
 * - The recommendation is the eligible profile with the shortest election timeout (the fastest
 *   failover); the custom timing is offered beside it when it is eligible and faster, and recommended
 *   alone when no profile is eligible.
 *
 * The custom timing keeps the advised 10x ratio between timeout and heartbeat and never goes below
 * 500/50 ms: below that, pauses a PostgreSQL host routinely sees start to look like a dead leader.
 * The round trip measured is split evenly: each one-way delay is RTT/2 ± jitter/2.
 */
import type { NetworkModel, TimingConfig } from "./failover.ts";
import { PROFILE_FSYNC_MS, type CellResult } from "./profiles.ts";

export interface MeasuredNetwork {
  readonly rttMs: number;
  readonly jitterMs: number;
}

export const CUSTOM_ELECTION_TIMEOUT_MS_MIN = 500;
export const MARGIN_RTT_FACTOR = 10;

export function recommendationNetwork(measured: MeasuredNetwork): NetworkModel {
  return { latencyMs: measured.rttMs / 2, jitterMs: measured.jitterMs / 2, fsyncMs: PROFILE_FSYNC_MS };
}

export function worstRttMs(measured: MeasuredNetwork): number {
  return measured.rttMs + measured.jitterMs;
}

/** Election timeout of at least 10x the worst round trip, in whole 100 ms, at least 500 ms; heartbeat T/10. */
export function customTiming(measured: MeasuredNetwork): TimingConfig {
  const electionTimeoutMs = Math.max(CUSTOM_ELECTION_TIMEOUT_MS_MIN, Math.ceil((MARGIN_RTT_FACTOR * worstRttMs(measured)) / 100) * 100);
  return { name: "custom", electionTimeoutMs, heartbeatIntervalMs: electionTimeoutMs / 10 };
}

export function hasMargin(timing: TimingConfig, measured: MeasuredNetwork): boolean {
  return timing.electionTimeoutMs >= MARGIN_RTT_FACTOR * worstRttMs(measured);
}

export interface Recommendation {
  /** The timing to use; undefined when no candidate is eligible. */
  readonly choice: CellResult | undefined;
  /** A faster custom timing that is also eligible, offered beside a profile. */
  readonly alternative: CellResult | undefined;
  /** Why each candidate was or was not eligible, in candidate order. */
  readonly notes: readonly string[];
}

export function chooseRecommendation(measured: MeasuredNetwork, cells: readonly CellResult[]): Recommendation {
  const notes: string[] = [];
  const eligible: CellResult[] = [];
  for (const cell of cells) {
    const problems = [...cell.reasons];
    if (!hasMargin(cell.timing, measured)) {
      problems.push(`election timeout ${cell.timing.electionTimeoutMs} ms is below ${MARGIN_RTT_FACTOR}x the worst round trip (${worstRttMs(measured)} ms)`);
    }
    if (problems.length === 0) eligible.push(cell);
    notes.push(`${describeTiming(cell.timing)}: ${problems.length === 0 ? "eligible" : problems.join("; ")}`);
  }
  const byTimeout = (a: CellResult, b: CellResult): number => a.timing.electionTimeoutMs - b.timing.electionTimeoutMs;
  const profile = eligible.filter((cell) => cell.timing.name !== "custom").sort(byTimeout)[0];
  const custom = eligible.find((cell) => cell.timing.name === "custom");
  if (profile === undefined) return { choice: custom, alternative: undefined, notes };
  const faster = custom !== undefined && custom.timing.electionTimeoutMs < profile.timing.electionTimeoutMs ? custom : undefined;
  return { choice: profile, alternative: faster, notes };
}

export function describeTiming(timing: TimingConfig): string {
  const label = timing.name === "custom" ? "custom" : `profile ${timing.name}`;
  return `${label} (election_timeout ${timing.electionTimeoutMs} ms, heartbeat_interval ${timing.heartbeatIntervalMs} ms)`;
}
