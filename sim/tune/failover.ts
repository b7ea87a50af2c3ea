/**
 * What one timing configuration (election timeout, heartbeat) does on one network, measured on the
 * production RaftNode in simulation with PreVote and CheckQuorum on, as pgraft runs by default:
 *
 * - `runFailoverTrial`: the leader crashes at a random moment; how long until a new leader is elected,
 *   and until a write submitted to it commits ("writable").
 * - `runQuietRun`: no faults and no load for a long stretch; every election started after the first
 *   leader is a spurious one (pre-votes that went nowhere are counted apart: they disturb nobody).
 * - `runFailure`: the failures the operations guide documents, each measured as the write outage it
 *   causes: the leader cut off by a partition, a follower crash, a lost majority restored, and a
 *   complete cluster restart (the guide says "wait 10 seconds for election").
 *
 * Every run is a fresh cluster with its own seed. Ticks are 10 ms: the profiles' timeouts are multiples
 * of 100 ms, so timing resolution is 1% of the shortest timeout. Writes are probed by a client that
 * knows which node claims leadership (`WriteProbe`), so the outage measured is the cluster's, not a
 * client's leader discovery.
 */
import { assert } from "../../src/assert.ts";
import type { NodeId } from "../../src/core/types.ts";
import type { RaftNode } from "../../src/node/raft-node.ts";
import { Random } from "../random.ts";
import { TuneCluster } from "./tune-cluster.ts";

export const PROFILE_TICK_MS = 10;

export interface TimingConfig {
  /** "low", "medium", "high" or "custom". */
  readonly name: string;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
}

export interface NetworkModel {
  /** Mean one-way latency between nodes. */
  readonly latencyMs: number;
  /** Each one-way delay is uniform in [latencyMs - jitterMs, latencyMs + jitterMs]. */
  readonly jitterMs: number;
  /** Disk write before a vote or an append is answered (see tune-cluster.ts). */
  readonly fsyncMs: number;
}

export interface ExperimentCell {
  readonly timing: TimingConfig;
  readonly network: NetworkModel;
  readonly nodeCount: number;
}

/** Longest wait for any one outcome: many timeouts and many round trips, so only a broken setup hits it. */
export function measureCapMs(cell: ExperimentCell): number {
  return 20 * cell.timing.electionTimeoutMs + 20 * (2 * cell.network.latencyMs + cell.network.fsyncMs);
}

/**
 * The failover target for a timeout T: the survivors notice within 2T of the last heartbeat, and
 * pre-vote, vote and the first commit take a few round trips on top; 3T leaves a whole timeout for
 * those, or for one split vote. For the default profile (T = 1 s) that is the 1-3 s failover pgraft's
 * documentation claims. A p99 above it means split votes, not the timeout, set the failover time.
 */
export function failoverBoundMs(timing: TimingConfig): number {
  return 3 * timing.electionTimeoutMs;
}

/** For debugging one run: receives every trace line (node events) when the run ends. */
export interface RunDebug {
  readonly trace?: (lines: readonly string[]) => void;
}

function createCluster(cell: ExperimentCell, seed: string, debug?: RunDebug): TuneCluster {
  return new TuneCluster({
    keepTrace: debug?.trace !== undefined,
    seed,
    nodeCount: cell.nodeCount,
    tickMs: PROFILE_TICK_MS,
    electionTimeoutMs: cell.timing.electionTimeoutMs,
    heartbeatIntervalMs: cell.timing.heartbeatIntervalMs,
    preVote: true,
    checkQuorum: true,
    network: { latencyMs: cell.network.latencyMs, jitterMs: cell.network.jitterMs, lossRate: 0, duplicateRate: 0 },
    fsyncMs: cell.network.fsyncMs,
  });
}

/** Starts the cluster and waits for a leader backed by a quorum; undefined when none appears in time. */
function startWithLeader(tune: TuneCluster, random: Random, cell: ExperimentCell): NodeId | undefined {
  tune.startStaggered(random);
  const ok = tune.runUntil(() => tune.cluster.leader() !== undefined, measureCapMs(cell));
  return ok ? tune.cluster.leader() : undefined;
}

/**
 * A client that, every tick, sends one write to each node that claims leadership and has no write of
 * ours pending. It records when the first write submitted at or after `sinceMs` committed.
 */
export class WriteProbe {
  readonly #tune: TuneCluster;
  /** The node process each pending write went to: a crash forgets the write, a restart may take a new one. */
  readonly #pending = new Map<NodeId, RaftNode>();
  #sinceMs: number;
  #stopped = false;
  #sequence = 0;
  firstCommitMs: number | undefined;
  commits = 0;

  constructor(tune: TuneCluster, sinceMs: number) {
    this.#tune = tune;
    this.#sinceMs = sinceMs;
  }

  start(): void {
    const poll = (): void => {
      if (this.#stopped) return;
      this.#sendRound();
      this.#tune.cluster.clock.schedule(PROFILE_TICK_MS, poll);
    };
    poll();
  }

  stop(): void {
    this.#stopped = true;
  }

  /** Forget earlier successes and time from `sinceMs` again. */
  restartAt(sinceMs: number): void {
    this.#sinceMs = sinceMs;
    this.firstCommitMs = undefined;
  }

  #sendRound(): void {
    const cluster = this.#tune.cluster;
    for (const id of cluster.liveIds()) {
      const node = cluster.node(id);
      if (node === undefined || this.#pending.get(id) === node || node.raft.role !== "leader") continue;
      this.#pending.set(id, node);
      const submittedMs = cluster.clock.nowMs;
      cluster.submitWrite(id, { op: "put", key: "probe", value: `p${++this.#sequence}` }, 0, (result) => {
        if (this.#pending.get(id) === node) this.#pending.delete(id);
        if (!result.ok) return;
        this.commits++;
        if (submittedMs >= this.#sinceMs && this.firstCommitMs === undefined) this.firstCommitMs = cluster.clock.nowMs;
      });
    }
  }
}

export interface FailoverTrial {
  /** False when the cluster never had a stable leader to crash (the configuration cannot work here). */
  readonly started: boolean;
  readonly electedMs: number;
  readonly writableMs: number;
  /** True when a bound cut the trial; its times are then the bound. */
  readonly censored: boolean;
}

export function runFailoverTrial(cell: ExperimentCell, seed: string, debug?: RunDebug): FailoverTrial {
  const random = new Random(`failover/${seed}`);
  const tune = createCluster(cell, random.seed, debug);
  const capMs = measureCapMs(cell);
  const leader = startWithLeader(tune, random.fork("start"), cell);
  if (leader === undefined) return { started: false, electedMs: capMs, writableMs: capMs, censored: true };
  // Steady state for two to three timeouts, so the crash lands at a random point of the heartbeat cycle.
  const T = cell.timing.electionTimeoutMs;
  tune.cluster.runForMs(random.real(2 * T, 3 * T));
  const crashed = tune.cluster.leader() ?? leader;
  const termBefore = tune.node(crashed).raft.term;
  tune.cluster.crash(crashed);
  const crashMs = tune.nowMs;
  const probe = new WriteProbe(tune, crashMs);
  probe.start();
  const survivors = tune.cluster.liveIds();
  const elected = tune.runUntil(() => tune.leaderAbove(termBefore, survivors) !== undefined, capMs);
  const electedMs = elected ? tune.nowMs - crashMs : capMs;
  const writable = tune.runUntil(() => probe.firstCommitMs !== undefined, Math.max(0, crashMs + capMs - tune.nowMs));
  probe.stop();
  debug?.trace?.(tune.cluster.trace.lines() ?? []);
  return { started: true, electedMs, writableMs: writable ? probe.firstCommitMs! - crashMs : capMs, censored: !writable };
}

export interface QuietRun {
  readonly started: boolean;
  readonly durationMs: number;
  /** Elections (term increments by a candidate) started after the first leader. */
  readonly elections: number;
  /** Pre-vote campaigns started after the first leader (they change no term and depose nobody). */
  readonly preVotes: number;
  /** Times a node saw the leader change. */
  readonly leaderChanges: number;
}

export function runQuietRun(cell: ExperimentCell, seed: string, durationMs: number): QuietRun {
  const random = new Random(`quiet/${seed}`);
  const tune = createCluster(cell, random.seed);
  const leader = startWithLeader(tune, random.fork("start"), cell);
  if (leader === undefined) return { started: false, durationMs, elections: 0, preVotes: 0, leaderChanges: 0 };
  // Let the new leader's first heartbeats land before counting.
  tune.cluster.runForMs(cell.timing.electionTimeoutMs);
  const before = counterTotals(tune);
  tune.cluster.runForMs(durationMs);
  const after = counterTotals(tune);
  return {
    started: true,
    durationMs,
    elections: after.elections - before.elections,
    preVotes: after.preVotes - before.preVotes,
    leaderChanges: after.leaderChanges - before.leaderChanges,
  };
}

function counterTotals(tune: TuneCluster): { elections: number; preVotes: number; leaderChanges: number } {
  let elections = 0;
  let preVotes = 0;
  let leaderChanges = 0;
  for (const id of tune.cluster.ids) {
    const counters = tune.node(id).raft.counters;
    elections += counters.electionsStarted;
    preVotes += counters.preVotesStarted;
    leaderChanges += counters.leaderChanges;
  }
  return { elections, preVotes, leaderChanges };
}

/** The operations guide's failures ("Emergency Procedures", "Common Issues"). */
export const FAILURE_KINDS = ["leader-isolated", "follower-crash", "quorum-lost", "full-restart"] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

export const FAILURE_DESCRIPTIONS: Readonly<Record<FailureKind, string>> = {
  "leader-isolated": "a partition cuts the leader off; outage from the cut until the majority side commits",
  "follower-crash": "one follower crashes; outage from the crash until a write commits",
  "quorum-lost": "the leader and a follower crash (majority lost) and restart 2T later; outage from the restart",
  "full-restart": "every node crashes and restarts 1 s later; outage from the restart (the guide: wait 10 s)",
};

export interface FailureTrial {
  readonly started: boolean;
  /** The write outage the failure caused, measured as FAILURE_DESCRIPTIONS says. */
  readonly outageMs: number;
  readonly censored: boolean;
  /** leader-isolated only: time until the cut-off leader stopped claiming leadership (CheckQuorum). */
  readonly stepDownMs?: number;
  /** leader-isolated only: elections started after the partition healed (PreVote should prevent any). */
  readonly electionsAfterHeal?: number;
}

export function runFailure(kind: FailureKind, cell: ExperimentCell, seed: string, debug?: RunDebug): FailureTrial {
  const random = new Random(`failure/${kind}/${seed}`);
  const tune = createCluster(cell, random.seed, debug);
  const capMs = measureCapMs(cell);
  const leader = startWithLeader(tune, random.fork("start"), cell);
  if (leader === undefined) return { started: false, outageMs: capMs, censored: true };
  const T = cell.timing.electionTimeoutMs;
  tune.cluster.runForMs(random.real(2 * T, 3 * T));
  const current = tune.cluster.leader() ?? leader;
  const followers = tune.cluster.ids.filter((id) => id !== current);
  const probe = new WriteProbe(tune, tune.nowMs);
  probe.start();
  let result: FailureTrial;
  switch (kind) {
    case "leader-isolated":
      result = isolateLeader(tune, probe, current, capMs);
      break;
    case "follower-crash":
      tune.cluster.crash(random.pick(followers));
      result = timeOutage(tune, probe, tune.nowMs, capMs);
      break;
    case "quorum-lost": {
      const lost = [current, ...random.shuffle(followers).slice(0, Math.floor(tune.cluster.ids.length / 2))];
      for (const id of lost) tune.cluster.crash(id);
      tune.cluster.runForMs(2 * T);
      for (const id of lost) tune.cluster.restart(id);
      result = timeOutage(tune, probe, tune.nowMs, capMs);
      break;
    }
    case "full-restart":
      for (const id of tune.cluster.ids) tune.cluster.crash(id);
      tune.cluster.runForMs(1_000);
      for (const id of tune.cluster.ids) tune.cluster.restart(id);
      result = timeOutage(tune, probe, tune.nowMs, capMs);
      break;
  }
  probe.stop();
  debug?.trace?.(tune.cluster.trace.lines() ?? []);
  return result;
}

function timeOutage(tune: TuneCluster, probe: WriteProbe, sinceMs: number, capMs: number): FailureTrial {
  probe.restartAt(sinceMs);
  const ok = tune.runUntil(() => probe.firstCommitMs !== undefined, capMs);
  return { started: true, outageMs: ok ? probe.firstCommitMs! - sinceMs : capMs, censored: !ok };
}

function isolateLeader(tune: TuneCluster, probe: WriteProbe, leader: NodeId, capMs: number): FailureTrial {
  const cluster = tune.cluster;
  const others = cluster.ids.filter((id) => id !== leader);
  const termBefore = tune.node(leader).raft.term;
  cluster.partition([leader], others);
  const cutMs = tune.nowMs;
  probe.restartAt(cutMs);
  // Outage: until the majority side commits a write (the cut-off leader cannot). Meanwhile, note when
  // the cut-off leader stops claiming leadership.
  let stepDownMs: number | undefined;
  const noteStepDown = (): void => {
    if (stepDownMs === undefined && tune.node(leader).raft.role !== "leader") stepDownMs = tune.nowMs - cutMs;
  };
  const recovered = tune.runUntil(() => {
    noteStepDown();
    return probe.firstCommitMs !== undefined && tune.leaderAbove(termBefore, others) !== undefined;
  }, capMs);
  const outageMs = recovered ? probe.firstCommitMs! - cutMs : capMs;
  tune.runUntil(() => {
    noteStepDown();
    return stepDownMs !== undefined;
  }, Math.max(0, cutMs + capMs - tune.nowMs));
  // Heal, and count the elections the returning node causes over the next few timeouts.
  const before = counterTotals(tune).elections;
  cluster.heal();
  cluster.runForMs(5 * tune.options.electionTimeoutMs);
  const electionsAfterHeal = counterTotals(tune).elections - before;
  assert(electionsAfterHeal >= 0, "election counters never go down");
  return { started: true, outageMs, censored: !recovered, stepDownMs: stepDownMs ?? capMs, electionsAfterHeal };
}
