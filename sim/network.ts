/**
 * The simulated network between nodes. Each message draws its own latency (so messages reorder when
 * the spread is wide), may be lost or duplicated, and is subject to the fault verbs, which read like the
 * failures they model (after turmoil):
 *
 * - `partition(a, b)` / `heal()`: no message crosses between the groups, in either direction; those
 *   sent meanwhile never arrive.
 * - `cutOneWay(from, to)`: messages from `from` to `to` are dropped; the other direction works.
 * - `hold(from, to)` / `release(from, to)`: messages queue on the link and all arrive at release.
 * - `setLink(from, to, conditions)`: latency, jitter and loss for one direction of one link.
 */
import { assert } from "../src/assert.ts";
import type { Message, NodeId } from "../src/core/types.ts";
import type { SimClock } from "./clock.ts";
import type { Random } from "./random.ts";

/**
 * How one-way latency is drawn around `latencyMs`:
 * - `uniform`: uniformly in [latencyMs - jitterMs, latencyMs + jitterMs] (the default);
 * - `normal`: a normal distribution with standard deviation jitterMs / 2, cut at ±jitterMs;
 * - `long-tail`: latencyMs plus an exponential delay of mean jitterMs, unbounded: mostly fast, now and
 *   then very slow, as links behave under congestion.
 */
export type LatencyDistribution = "uniform" | "normal" | "long-tail";

export interface LinkConditions {
  /** Centre of the one-way latency; never below 0 once drawn. */
  readonly latencyMs: number;
  readonly jitterMs: number;
  readonly distribution?: LatencyDistribution;
  /** Probability that a message is dropped. */
  readonly lossRate: number;
  /** Probability that a message is delivered twice (the copy with its own latency). */
  readonly duplicateRate: number;
}

export const LINK_PERFECT: LinkConditions = { latencyMs: 1, jitterMs: 0, lossRate: 0, duplicateRate: 0 };

export interface NetworkCounters {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
}

function linkKey(from: NodeId, to: NodeId): number {
  return from * 65536 + to;
}

export class SimNetwork {
  #defaults: LinkConditions;
  #links = new Map<number, LinkConditions>();
  #cuts = new Set<number>();
  #held = new Map<number, Message[]>();
  readonly counters: NetworkCounters = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };

  constructor(
    readonly clock: SimClock,
    readonly random: Random,
    defaults: LinkConditions,
    /** Hands a message to the receiving node (which may be down or paused: the cluster decides). */
    readonly deliver: (message: Message) => void,
    readonly onDrop?: (message: Message, reason: string) => void,
  ) {
    this.#defaults = defaults;
  }

  get defaults(): LinkConditions {
    return this.#defaults;
  }

  setDefaults(conditions: LinkConditions): void {
    this.#defaults = conditions;
  }

  setLink(from: NodeId, to: NodeId, conditions: LinkConditions | undefined): void {
    if (conditions) this.#links.set(linkKey(from, to), conditions);
    else this.#links.delete(linkKey(from, to));
  }

  conditions(from: NodeId, to: NodeId): LinkConditions {
    return this.#links.get(linkKey(from, to)) ?? this.#defaults;
  }

  /** Symmetric partition: nothing crosses between `left` and `right`. */
  partition(left: readonly NodeId[], right: readonly NodeId[]): void {
    for (const a of left) {
      for (const b of right) {
        assert(a !== b, `partition(): node ${a} is on both sides`);
        this.#cuts.add(linkKey(a, b));
        this.#cuts.add(linkKey(b, a));
      }
    }
  }

  cutOneWay(from: readonly NodeId[], to: readonly NodeId[]): void {
    for (const a of from) for (const b of to) if (a !== b) this.#cuts.add(linkKey(a, b));
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.#cuts.has(linkKey(from, to));
  }

  /** Removes every cut and per-link condition and releases held messages. */
  heal(): void {
    this.#cuts.clear();
    this.#links.clear();
    for (const key of [...this.#held.keys()]) this.#releaseKey(key);
  }

  hold(from: NodeId, to: NodeId): void {
    if (!this.#held.has(linkKey(from, to))) this.#held.set(linkKey(from, to), []);
  }

  release(from: NodeId, to: NodeId): void {
    this.#releaseKey(linkKey(from, to));
  }

  heldCount(): number {
    let count = 0;
    for (const queue of this.#held.values()) count += queue.length;
    return count;
  }

  send(message: Message): void {
    this.counters.sent++;
    const key = linkKey(message.from, message.to);
    if (this.#cuts.has(key)) {
      this.#drop(message, "partitioned");
      return;
    }
    const held = this.#held.get(key);
    if (held) {
      held.push(message);
      return;
    }
    const conditions = this.#links.get(key) ?? this.#defaults;
    if (this.random.chance(conditions.lossRate)) {
      this.#drop(message, "lost");
      return;
    }
    this.#schedule(message, conditions);
    if (this.random.chance(conditions.duplicateRate)) {
      this.counters.duplicated++;
      this.#schedule(message, conditions);
    }
  }

  #schedule(message: Message, conditions: LinkConditions): void {
    const latencyMs = Math.max(0, conditions.latencyMs + this.#drawJitter(conditions));
    this.clock.schedule(
      latencyMs,
      () => {
        this.counters.delivered++;
        this.deliver(message);
      },
      () => `deliver ${describeMessage(message)}`,
    );
  }

  #drawJitter(conditions: LinkConditions): number {
    const spread = conditions.jitterMs;
    if (spread <= 0) return 0;
    switch (conditions.distribution ?? "uniform") {
      case "uniform":
        return this.random.real(-spread, spread);
      case "normal": {
        // Box-Muller, cut at two standard deviations so the bound stays jitterMs.
        const u = 1 - this.random.next();
        const v = this.random.next();
        const gaussian = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
        return Math.max(-spread, Math.min(spread, (gaussian * spread) / 2));
      }
      case "long-tail":
        return this.random.exponential(spread);
    }
  }

  #drop(message: Message, reason: string): void {
    this.counters.dropped++;
    this.onDrop?.(message, reason);
  }

  #releaseKey(key: number): void {
    const queue = this.#held.get(key);
    if (!queue) return;
    this.#held.delete(key);
    for (const message of queue) this.#schedule(message, this.#links.get(key) ?? this.#defaults);
  }
}

/** A message in one short line, for traces: "1->2 MsgApp t3 prev 4/2 n2 c4". */
export function describeMessage(message: Message): string {
  const head = `${message.from}->${message.to} ${message.type} t${message.term}`;
  switch (message.type) {
    case "MsgApp":
      return `${head} prev ${message.prevLogIndex}/${message.prevLogTerm} n${message.entries.length} c${message.commit}`;
    case "MsgAppResp":
      return message.reject ? `${head} reject ${message.index} hint ${message.hintIndex}/${message.hintTerm}` : `${head} ${message.index}`;
    case "MsgVote":
    case "MsgPreVote":
      return `${head} log ${message.lastLogIndex}/${message.lastLogTerm}`;
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      return `${head}${message.reject ? " reject" : ""}`;
    case "MsgHeartbeat":
      return `${head} c${message.commit} x${message.context}`;
    case "MsgHeartbeatResp":
      return `${head} x${message.context}`;
    case "MsgSnap":
      return `${head} snap ${message.snapshot.metadata.index}/${message.snapshot.metadata.term}`;
    case "MsgTimeoutNow":
      return head;
  }
}
