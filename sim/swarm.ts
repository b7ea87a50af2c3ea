/**
 * Swarm testing: every seed draws its own world (cluster size, network quality, which fault kinds are
 * on and how often they strike, clock drift, client load) from the seed itself, so a sweep over seeds
 * covers many different mixes instead of one average one. The knobs are printed with the seed, and
 * the fault schedule below draws every fault from the same seed.
 */
import type { Membership, NodeId } from "../src/core/types.ts";
import type { SimCluster } from "./cluster.ts";
import type { LinkConditions } from "./network.ts";
import type { Random } from "./random.ts";
import type { WorkloadOptions } from "./workload.ts";
import { WORKLOAD_DEFAULTS } from "./workload.ts";

export type FaultKind =
  | "partition"
  | "isolate"
  | "one-way"
  | "link"
  | "crash"
  | "crash-during-write"
  | "pause"
  | "disk-corruption"
  | "transfer"
  | "replace-node"
  | "slow-disk"
  | "learner-partition"
  | "leader-leaves-partitioned"
  | "leader-churn";

export const FAULT_KINDS: readonly FaultKind[] = [
  "partition",
  "isolate",
  "one-way",
  "link",
  "crash",
  "crash-during-write",
  "pause",
  "disk-corruption",
  "transfer",
  "replace-node",
  "slow-disk",
  "learner-partition",
  "leader-leaves-partitioned",
  "leader-churn",
];

/** The fault kinds drawn one by one at the start of a world's draw (the first swarm's mix). */
const FAULT_KINDS_FIRST: readonly FaultKind[] = FAULT_KINDS.slice(0, 11);
/**
 * Kinds added later are drawn after every other knob, so that adding one leaves the worlds of
 * existing seeds as they were wherever the new kind is off (their failures stay reproducible).
 */
const FAULT_KINDS_LATER: readonly FaultKind[] = FAULT_KINDS.slice(11, 13);
/** Kinds drawn after pre_vote and check_quorum, so that the worlds of earlier seeds stay as they were where they are off. */
const FAULT_KINDS_LAST: readonly FaultKind[] = FAULT_KINDS.slice(13);

/** Hosts a swarm world may create by adding nodes, so membership faults cannot grow it without end. */
const HOSTS_MAX = 9;
/** pgraft.batch_size's default. */
const ENTRIES_PER_APPEND_DEFAULT = 100;
/** Leaders one leader-churn fault cuts off in a row, at most. */
const CHURN_ROUNDS_MAX = 5;
/** How often a leader-churn fault looks for the next leader, and for how many election timeouts at most. */
const CHURN_WATCH_MS = 5;
const CHURN_WATCH_ELECTION_TIMEOUTS_MAX = 10;

export interface Knobs {
  readonly nodeCount: number;
  readonly network: LinkConditions;
  readonly driftMax: number;
  readonly tornWrites: boolean;
  /** Peers see a crashed node's connections close (production over TCP) or only its silence. */
  readonly connectionResetOnCrash: boolean;
  /** pgraft.pre_vote and pgraft.check_quorum: on by default; operators may turn either off. */
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** pgraft.snapshot_interval and pgraft.max_log_entries, small so snapshots and compaction happen often. */
  readonly snapshotIntervalEntries: number;
  readonly logEntriesMax: number;
  /**
   * pgraft.batch_size: entries in one append. Small batches make a follower's log run past what an
   * append carries, where the rules about the "last new entry" (commit and acknowledgement) matter.
   */
  readonly entriesPerAppendMax: number;
  readonly faults: readonly FaultKind[];
  /** Mean time between two fault actions. */
  readonly faultIntervalMsMean: number;
  /** How long a fault lasts before it is healed (uniform up to this). */
  readonly faultDurationMsMax: number;
  readonly workload: WorkloadOptions;
}

export function quietKnobs(nodeCount: number): Knobs {
  return {
    nodeCount,
    network: { latencyMs: 2, jitterMs: 1, lossRate: 0, duplicateRate: 0 },
    driftMax: 0,
    tornWrites: false,
    connectionResetOnCrash: true,
    preVote: true,
    checkQuorum: true,
    snapshotIntervalEntries: 10_000,
    logEntriesMax: 10_000,
    entriesPerAppendMax: ENTRIES_PER_APPEND_DEFAULT,
    faults: [],
    faultIntervalMsMean: 0,
    faultDurationMsMax: 0,
    workload: WORKLOAD_DEFAULTS,
  };
}

export function drawKnobs(random: Random, nodeCount: number | undefined): Knobs {
  const latencyMs = random.int(1, 30);
  const faults = FAULT_KINDS_FIRST.filter(() => random.chance(0.55));
  if (faults.length === 0) faults.push(random.pick(FAULT_KINDS_FIRST));
  const knobs = {
    nodeCount: nodeCount ?? random.pick([3, 3, 5, 5, 4, 1, 2, 7]),
    network: {
      latencyMs,
      jitterMs: random.int(0, latencyMs),
      distribution: random.pick(["uniform", "uniform", "normal", "long-tail"] as const),
      lossRate: random.chance(0.5) ? random.real(0, 0.1) : 0,
      duplicateRate: random.chance(0.3) ? random.real(0, 0.05) : 0,
    },
    driftMax: random.chance(0.5) ? random.real(0, 0.05) : 0,
    tornWrites: random.chance(0.7),
    connectionResetOnCrash: random.chance(0.5),
    snapshotIntervalEntries: random.chance(0.7) ? random.int(20, 2_000) : 10_000,
    logEntriesMax: random.pick([0, 0, 5, 20, 100, 500]),
    faultIntervalMsMean: random.int(200, 5_000),
    faultDurationMsMax: random.int(500, 12_000),
    workload: {
      ...WORKLOAD_DEFAULTS,
      clients: random.int(1, 8),
      keys: random.int(1, 10),
      thinkTimeMsMean: random.int(2, 120),
      readRatio: random.real(0.1, 0.6),
      casRatio: random.real(0, 0.3),
      deleteRatio: random.real(0, 0.1),
    },
  };
  // Drawn after everything above (see FAULT_KINDS_LATER).
  for (const kind of FAULT_KINDS_LATER) if (random.chance(0.5)) faults.push(kind);
  const preVote = random.chance(0.8);
  // Off as often as on: only a leader without CheckQuorum keeps serving after it is cut off, which is
  // when a read confirmed by the wrong nodes shows (the learner mutation in test/sim/mutations.test.ts
  // is caught by swarm seeds only in such worlds).
  const checkQuorum = random.chance(0.5);
  for (const kind of FAULT_KINDS_LAST) if (random.chance(0.5)) faults.push(kind);
  const entriesPerAppendMax = random.chance(0.5) ? random.pick([1, 2, 3, 5]) : ENTRIES_PER_APPEND_DEFAULT;
  return { ...knobs, faults, preVote, checkQuorum, entriesPerAppendMax };
}

export function describeKnobs(knobs: Knobs): string {
  const n = knobs.network;
  return [
    `nodes=${knobs.nodeCount}`,
    `latency=${n.latencyMs}±${n.jitterMs}ms(${n.distribution ?? "uniform"})`,
    `loss=${n.lossRate.toFixed(3)}`,
    `dup=${n.duplicateRate.toFixed(3)}`,
    `drift=${knobs.driftMax.toFixed(3)}`,
    `torn=${knobs.tornWrites}`,
    `reset=${knobs.connectionResetOnCrash}`,
    `prevote=${knobs.preVote}`,
    `checkquorum=${knobs.checkQuorum}`,
    `snapshot=${knobs.snapshotIntervalEntries}/${knobs.logEntriesMax}`,
    `batch=${knobs.entriesPerAppendMax}`,
    `faults=${knobs.faults.join(",") || "none"}`,
    `every~${knobs.faultIntervalMsMean}ms`,
    `lasting<=${knobs.faultDurationMsMax}ms`,
    `clients=${knobs.workload.clients}`,
    `keys=${knobs.workload.keys}`,
    `think~${knobs.workload.thinkTimeMsMean}ms`,
  ].join(" ");
}

/**
 * Drives the faults of one seed during [0, untilMs): at exponential intervals it picks an enabled
 * fault kind and a victim, and schedules the matching repair. Never corrupts more than a minority of
 * disks, so a majority can always recover once the faults heal.
 */
export class FaultScheduler {
  #corrupted = new Set<NodeId>();
  /** Hosts created for an add that was refused or lost: never members, so not counted in HOSTS_MAX. */
  #orphans = new Set<NodeId>();
  #stopped = false;
  actions = 0;

  constructor(
    readonly cluster: SimCluster,
    readonly random: Random,
    readonly knobs: Knobs,
  ) {}

  start(untilMs: number): void {
    if (this.knobs.faults.length === 0) return;
    const next = (): void => {
      if (this.#stopped || this.cluster.clock.nowMs >= untilMs) return;
      this.#strike();
      this.cluster.clock.schedule(this.random.exponential(this.knobs.faultIntervalMsMean), next);
    };
    this.cluster.clock.schedule(this.random.exponential(this.knobs.faultIntervalMsMean), next);
  }

  stop(): void {
    this.#stopped = true;
  }

  get corrupted(): ReadonlySet<NodeId> {
    return this.#corrupted;
  }

  /**
   * Replaces a member, as an operator replaces a failed machine: remove it (a corrupted one first),
   * then add a brand-new node that catches up, by snapshot when the log was compacted. Skipped when
   * the removal could leave the live voters without a majority.
   */
  #replaceNode(): void {
    const cluster = this.cluster;
    const settled = this.#settledLeader(3);
    if (settled === undefined) return;
    const { leader, membership } = settled;
    const failed = membership.voters.filter((id) => this.#isLost(id));
    const victim = failed.length > 0 ? this.random.pick(failed) : this.random.pick(membership.voters.filter((id) => id !== leader));
    const remaining = membership.voters.filter((id) => id !== victim);
    const healthy = remaining.filter((id) => !this.#isLost(id)).length;
    if (healthy < Math.floor(remaining.length / 2) + 1) return;
    cluster.changeMembership(leader, { type: "remove", nodeId: victim }, 1, (removed) => {
      cluster.trace.record(cluster.clock.nowMs, `remove n${victim}: ${removed.ok ? "done" : removed.error.message}`);
      if (!removed.ok || this.#stopped) return;
      const added = cluster.addHost();
      const via = cluster.leader();
      if (via === undefined) return;
      cluster.changeMembership(via, { type: "add", nodeId: added }, 1, (result) =>
        cluster.trace.record(cluster.clock.nowMs, `add n${added}: ${result.ok ? "done" : result.error.message}`),
      );
    });
  }

  /**
   * Adds a brand-new node and, at the same moment, cuts the leader off from the other voters with only
   * that node, still a learner, on its side: the majority elects a new leader and writes, while the old
   * one (which keeps leading without CheckQuorum) must not count the learner towards anything, reads
   * included. Skipped while a change is in flight or when the world has grown to HOSTS_MAX hosts.
   */
  #learnerPartition(): void {
    const cluster = this.cluster;
    if (cluster.ids.length - this.#orphans.size >= HOSTS_MAX) return;
    const settled = this.#settledLeader(3);
    if (settled === undefined) return;
    const { leader, membership } = settled;
    const added = cluster.addHost();
    cluster.changeMembership(leader, { type: "add", nodeId: added }, 1, (result) => {
      cluster.trace.record(cluster.clock.nowMs, `add n${added}: ${result.ok ? "done" : result.error.message}`);
      if (!result.ok) this.#orphans.add(added);
    });
    // Sometimes with voters on the leader's side too, never a majority of the voters with it: then the
    // learner's copy is what would tip a commit or a read over the line, and must not count.
    const others = this.random.shuffle(membership.voters.filter((id) => id !== leader));
    const companions = this.random.chance(0.5) ? others.slice(0, Math.max(0, Math.floor(membership.voters.length / 2) - 1)) : [];
    cluster.partition([leader, added, ...companions], others.filter((id) => !companions.includes(id)));
    this.#repairLater(() => cluster.heal());
  }

  /**
   * The leader is asked to remove itself and, at once, is cut off with one other voter. It no longer
   * counts itself once the change is appended, so it must not confirm reads or commit with the other
   * alone; with four voters the rest (three in the new configuration) may elect a leader meanwhile.
   * Only from four voters up, so that three remain.
   */
  #leaderLeavesPartitioned(): void {
    const cluster = this.cluster;
    const settled = this.#settledLeader(4);
    if (settled === undefined) return;
    const { leader, membership } = settled;
    const others = membership.voters.filter((id) => id !== leader);
    const healthy = others.filter((id) => !this.#isLost(id)).length;
    if (healthy < Math.floor(others.length / 2) + 1) return;
    cluster.changeMembership(leader, { type: "remove", nodeId: leader }, 1, (result) =>
      cluster.trace.record(cluster.clock.nowMs, `remove n${leader} (the leader): ${result.ok ? "done" : result.error.message}`),
    );
    const companion = this.random.pick(others);
    cluster.partition([leader, companion], others.filter((id) => id !== companion));
    this.#repairLater(() => cluster.heal());
  }

  /**
   * Leader churn, a rotating partition: several leaders in a row are cut off (with a random minority of
   * the others, or crashed) within a few message latencies of winning, and each cut heals the one
   * before, so the previous leader, its log full of entries that reached only its side, rejoins the
   * rest just as they must elect again. Logs then hold interleaved terms that conflict at the same
   * indexes, and candidates with long logs of old terms stand against short logs of newer ones: the
   * histories of the paper's Figure 8 and of the election restriction (5.4), which plain random
   * partitions build only rarely. Everything heals, and crashed leaders restart, after the last round.
   */
  #leaderChurn(): void {
    const cluster = this.cluster;
    const rounds = this.random.int(2, CHURN_ROUNDS_MAX);
    const electionTimeoutMs = cluster.options.electionTimeoutMs;
    const latencyMs = Math.max(1, this.knobs.network.latencyMs);
    const deadlineMs = cluster.clock.nowMs + CHURN_WATCH_ELECTION_TIMEOUTS_MAX * electionTimeoutMs;
    const crashed = new Set<NodeId>();
    const restart = (id: NodeId): void => {
      crashed.delete(id);
      if (cluster.state(id) === "down" && !this.#corrupted.has(id)) cluster.restart(id);
    };
    let round = 0;
    let lastTerm = 0;
    const watch = (): void => {
      if (this.#stopped) return;
      if (round >= rounds || cluster.clock.nowMs > deadlineMs) {
        this.#repairLater(() => {
          cluster.heal();
          for (const id of [...crashed]) restart(id);
        });
        return;
      }
      const leader = this.#newestLeader(lastTerm);
      if (leader === undefined) {
        cluster.clock.schedule(CHURN_WATCH_MS, watch);
        return;
      }
      round++;
      lastTerm = leader.term;
      // Half the time the new leader is asked for a membership change first (sometimes two at once, as
      // an impatient operator retries): a configuration entry that the next leader may replace.
      if (this.random.chance(0.5)) {
        this.#requestMembershipChange(leader.id);
        if (this.random.chance(0.3)) this.#requestMembershipChange(leader.id);
      }
      cluster.clock.schedule(this.random.real(0, 3 * latencyMs), () => {
        if (this.#stopped) return;
        cluster.heal();
        for (const id of [...crashed]) if (this.random.chance(0.5)) restart(id);
        if (cluster.state(leader.id) !== "up") {
          cluster.clock.schedule(CHURN_WATCH_MS, watch);
          return;
        }
        if (this.random.chance(0.5)) {
          const others = this.random.shuffle(cluster.ids.filter((id) => id !== leader.id));
          // Companions stay with the leader: never a majority with it, so the rest can elect.
          const companions = others.slice(0, this.random.int(0, Math.max(0, Math.floor(cluster.ids.length / 2) - 1)));
          cluster.partition([leader.id, ...companions], others.filter((id) => !companions.includes(id)));
        } else {
          cluster.crash(leader.id, { duringWrite: this.random.chance(0.5) });
          crashed.add(leader.id);
        }
        // Sometimes another node dies inside its next disk write: with no leader sending entries, that
        // write is likely its vote in the coming election (what a vote must not be answered before).
        const bystanders = cluster.liveIds().filter((id) => id !== leader.id);
        if (bystanders.length > 0 && this.random.chance(0.3)) {
          const victim = this.random.pick(bystanders);
          cluster.crash(victim, { duringWrite: true });
          crashed.add(victim);
        }
        cluster.clock.schedule(CHURN_WATCH_MS, watch);
      });
    };
    watch();
  }

  /**
   * Asks `via` to add a brand-new node or to remove a voter, without waiting for the cluster to settle.
   * A removal keeps a majority of healthy voters and at least three; an add respects HOSTS_MAX.
   */
  #requestMembershipChange(via: NodeId): void {
    const cluster = this.cluster;
    const status = cluster.node(via)?.status();
    if (status === undefined) return;
    const voters = status.membership.voters;
    const canAdd = cluster.ids.length - this.#orphans.size < HOSTS_MAX;
    const removable = voters.length > 3 ? voters.filter((id) => id !== via) : [];
    if (removable.length > 0 && (!canAdd || this.random.chance(0.5))) {
      const victim = this.random.pick(removable);
      const remaining = voters.filter((id) => id !== victim);
      if (remaining.filter((id) => !this.#isLost(id)).length < Math.floor(remaining.length / 2) + 1) return;
      cluster.changeMembership(via, { type: "remove", nodeId: victim }, 1, (result) =>
        cluster.trace.record(cluster.clock.nowMs, `remove n${victim} (churn): ${result.ok ? "done" : result.error.message}`),
      );
      return;
    }
    if (!canAdd) return;
    const added = cluster.addHost();
    cluster.changeMembership(via, { type: "add", nodeId: added }, 1, (result) => {
      cluster.trace.record(cluster.clock.nowMs, `add n${added} (churn): ${result.ok ? "done" : result.error.message}`);
      if (!result.ok) this.#orphans.add(added);
    });
  }

  /** The up node that leads at the highest term above `termAfter`, quorum or not (a leader just elected). */
  #newestLeader(termAfter: number): { id: NodeId; term: number } | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const id of this.cluster.ids) {
      if (this.cluster.state(id) !== "up") continue;
      const status = this.cluster.node(id)?.status();
      if (status === undefined || status.role !== "leader" || status.term <= termAfter) continue;
      if (best === undefined || status.term > best.term) best = { id, term: status.term };
    }
    return best;
  }

  /**
   * The leader and its configuration, when a membership fault may start: a leader exists, no learner
   * is joining, no change is uncommitted, and there are at least `votersMin` voters.
   */
  #settledLeader(votersMin: number): { leader: NodeId; membership: Membership } | undefined {
    const leader = this.cluster.leader();
    if (leader === undefined) return undefined;
    const status = this.cluster.node(leader)!.status();
    const membership = status.membership;
    if (membership.learners.length > 0 || membership.voters.length < votersMin || status.configIndex > status.commit) return undefined;
    return { leader, membership };
  }

  /** A node whose disk was corrupted or failed: gone for good. */
  #isLost(id: NodeId): boolean {
    return this.#corrupted.has(id) || this.cluster.state(id) === "failed";
  }

  #repairLater(repair: () => void): void {
    this.cluster.clock.schedule(this.random.real(100, this.knobs.faultDurationMsMax), () => {
      if (!this.#stopped) repair();
    });
  }

  #strike(): void {
    const cluster = this.cluster;
    const ids = cluster.ids;
    const kind = this.random.pick(this.knobs.faults);
    this.actions++;
    switch (kind) {
      case "partition": {
        if (ids.length < 2) return;
        const shuffled = this.random.shuffle(ids);
        const cut = this.random.int(1, ids.length - 1);
        cluster.partition(shuffled.slice(0, cut), shuffled.slice(cut));
        this.#repairLater(() => cluster.heal());
        return;
      }
      case "isolate": {
        if (ids.length < 2) return;
        cluster.isolate(this.random.pick(ids));
        this.#repairLater(() => cluster.heal());
        return;
      }
      case "one-way": {
        if (ids.length < 2) return;
        const shuffled = this.random.shuffle(ids);
        const cut = this.random.int(1, ids.length - 1);
        cluster.cutOneWay(shuffled.slice(0, cut), shuffled.slice(cut));
        this.#repairLater(() => cluster.heal());
        return;
      }
      case "link": {
        if (ids.length < 2) return;
        const [from, to] = this.random.shuffle(ids);
        const latencyMs = this.random.int(20, 400);
        cluster.setLink(from!, to!, {
          latencyMs,
          jitterMs: this.random.int(0, latencyMs),
          lossRate: this.random.real(0, 0.5),
          duplicateRate: 0,
        });
        this.#repairLater(() => cluster.heal());
        return;
      }
      case "crash":
      case "crash-during-write": {
        const live = cluster.liveIds();
        if (live.length === 0) return;
        const victim = this.random.pick(live);
        cluster.crash(victim, { duringWrite: kind === "crash-during-write" });
        this.#repairLater(() => cluster.restart(victim));
        return;
      }
      case "pause": {
        const live = cluster.liveIds();
        if (live.length === 0) return;
        const victim = this.random.pick(live);
        cluster.pause(victim);
        this.#repairLater(() => cluster.resume(victim));
        return;
      }
      case "transfer": {
        const leader = cluster.leader();
        if (leader === undefined) return;
        const voters = cluster.node(leader)!.status().membership.voters.filter((id) => id !== leader);
        if (voters.length === 0) return;
        const target = this.random.pick(voters);
        cluster.transferLeadership(leader, target, 1, (result) =>
          cluster.trace.record(cluster.clock.nowMs, `transfer to n${target}: ${result.ok ? "done" : result.error.message}`),
        );
        return;
      }
      case "replace-node": {
        this.#replaceNode();
        return;
      }
      case "learner-partition": {
        this.#learnerPartition();
        return;
      }
      case "leader-leaves-partitioned": {
        this.#leaderLeavesPartitioned();
        return;
      }
      case "leader-churn": {
        this.#leaderChurn();
        return;
      }
      case "slow-disk": {
        const victim = this.random.pick(ids);
        cluster.setDiskLatency(victim, this.random.int(5, 300));
        this.#repairLater(() => cluster.setDiskLatency(victim, 0));
        return;
      }
      case "disk-corruption": {
        // A corrupted disk is lost for good: only ever a minority of the current voters, counting
        // those lost before, so a majority can always recover.
        const leader = cluster.leader();
        if (leader === undefined) return;
        const status = cluster.node(leader)!.status();
        // While a membership change is uncommitted, two configurations are in play and the older one
        // may still be the one that counts: lose no disk until the change settles.
        if (status.configIndex > status.commit) return;
        const voters = status.membership.voters;
        const lost = voters.filter((id) => this.#isLost(id)).length;
        if (lost + 1 > Math.floor((voters.length - 1) / 2)) return;
        const live = voters.filter((id) => cluster.state(id) === "up" && !this.#corrupted.has(id));
        if (live.length === 0) return;
        const victim = this.random.pick(live);
        cluster.crash(victim);
        if (cluster.state(victim) !== "down" || !cluster.corruptDisk(victim)) return;
        this.#corrupted.add(victim);
        // The restart must refuse; the run checks that it did.
        this.#repairLater(() => cluster.restart(victim));
        return;
      }
    }
  }
}
