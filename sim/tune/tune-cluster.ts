/**
 * A SimCluster set up for timing experiments: the production RaftNode over the simulated clock and
 * network, plus what the tuning runs need and the plain simulator does not model.
 *
 * - Disk writes take time. The simulated disk answers at once, so a "broadcast time" (round trip plus
 *   disk write, Raft paper 5.6) would be only the round trip. Here a message that Raft may send only
 *   after an fsync waits `fsyncMs` before it enters the network, and is lost if its sender crashes
 *   meanwhile: MsgVote (the candidate saved its term and vote), MsgVoteResp (the voter saved its vote or
 *   new term), MsgApp carrying entries (the leader saved them) and MsgAppResp (the follower saved what
 *   it acknowledges; an answer to an empty append is delayed too, a small overestimate). Heartbeats,
 *   their answers and pre-votes change nothing durable and leave at once.
 * - Nodes start at staggered points within one tick, so their tick phases differ as real processes'
 *   timers do, instead of all firing on the same simulated microsecond.
 * - A message filter, for building logs of different lengths (Figure 16) and for partitions that drop
 *   only some message types.
 *
 * The disk delay and the filter wrap `cluster.network.send`, which SimCluster's transport looks up on
 * every send. That is the one place where this folder reaches inside SimCluster; a `ClusterOptions`
 * hook would be cleaner (see docs/tune/README.md, "Changes asked of sim/").
 */
import { assert } from "../../src/assert.ts";
import type { Message, NodeId } from "../../src/core/types.ts";
import type { RaftNode } from "../../src/node/raft-node.ts";
import { SimCluster } from "../cluster.ts";
import type { LinkConditions } from "../network.ts";
import { Random } from "../random.ts";
import { Trace } from "../trace.ts";
import { TimeoutRangeRandom, type TimeoutRangeTicks } from "./timeout-range.ts";

export interface TuneClusterOptions {
  readonly seed: string;
  readonly nodeCount: number;
  readonly tickMs: number;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly network: LinkConditions;
  /** Time a node's disk takes to make a write durable, before the messages that depend on it leave. */
  readonly fsyncMs: number;
  /** When set, election timeouts follow the paper's [min, max] range instead of the core's [T, 2T). */
  readonly timeoutRange?: TimeoutRangeTicks;
  readonly requestTimeoutMs?: number;
  /** Keep every trace line (node events, no messages), for debugging one trial. */
  readonly keepTrace?: boolean;
}

/** Messages that Raft sends only after making something durable (see the file header). */
export function sentAfterFsync(message: Message): boolean {
  // As src/node/raft-node.ts sends them: vote requests and a leader's appends leave while the sender
  // writes; vote grants and append answers wait for the write.
  switch (message.type) {
    case "MsgVoteResp":
    case "MsgAppResp":
      return true;
    default:
      return false;
  }
}

export class TuneCluster {
  readonly cluster: SimCluster;
  readonly options: TuneClusterOptions;
  #drop: ((message: Message) => boolean) | undefined;

  constructor(options: TuneClusterOptions) {
    assert(options.fsyncMs >= 0, `fsyncMs ${options.fsyncMs} must not be negative`);
    if (options.timeoutRange) {
      assert(
        options.timeoutRange.electionTicks * options.tickMs === options.electionTimeoutMs,
        "electionTimeoutMs must match the timeout range's electionTicks",
      );
    }
    this.options = options;
    const random = options.timeoutRange ? new TimeoutRangeRandom(options.seed, options.timeoutRange) : new Random(options.seed);
    this.cluster = new SimCluster(
      {
        nodeCount: options.nodeCount,
        tickMs: options.tickMs,
        electionTimeoutMs: options.electionTimeoutMs,
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        preVote: options.preVote,
        checkQuorum: options.checkQuorum,
        entriesPerAppendMax: 100,
        maxBatchDelayMs: 0,
        requestTimeoutMs: options.requestTimeoutMs ?? 4 * options.electionTimeoutMs,
        network: options.network,
        driftMax: 0,
        tornWrites: false,
        traceMessages: false,
      },
      random,
      new Trace({ keepAll: options.keepTrace }),
    );
    this.#wrapNetwork();
  }

  get nowMs(): number {
    return this.cluster.clock.nowMs;
  }

  /** Starts every node at its own random point within the first tick (drawn from `random`). */
  startStaggered(random: Random): void {
    for (const id of this.cluster.ids) {
      this.cluster.clock.schedule(random.real(0, this.options.tickMs), () => this.cluster.restart(id));
    }
    this.cluster.runForMs(this.options.tickMs);
    assert(this.cluster.liveIds().length === this.cluster.ids.length, "every node must be up after the staggered start");
  }

  /** Drops every message for which `filter` is true, until `clearDrop()`. */
  dropWhile(filter: (message: Message) => boolean): void {
    this.#drop = filter;
  }

  clearDrop(): void {
    this.#drop = undefined;
  }

  node(id: NodeId): RaftNode {
    const node = this.cluster.node(id);
    assert(node !== undefined, `node ${id} is not running`);
    return node;
  }

  /** A running node that is leader at a term above `termMin`, the highest such (no quorum check). */
  leaderAbove(termMin: number, among: readonly NodeId[] = this.cluster.ids): NodeId | undefined {
    let best: NodeId | undefined;
    let bestTerm = termMin;
    for (const id of among) {
      const raft = this.cluster.node(id)?.raft;
      if (raft && raft.role === "leader" && raft.term > bestTerm) {
        best = id;
        bestTerm = raft.term;
      }
    }
    return best;
  }

  /** True when every node in `among` is running and follows (or is) `leader` at the leader's term. */
  allFollow(leader: NodeId, among: readonly NodeId[]): boolean {
    const leaderRaft = this.cluster.node(leader)?.raft;
    if (!leaderRaft || leaderRaft.role !== "leader") return false;
    for (const id of among) {
      const raft = this.cluster.node(id)?.raft;
      if (!raft || raft.term !== leaderRaft.term || raft.leaderId !== leader) return false;
    }
    return true;
  }

  /** Runs until `stop()` holds (checked after every event) or `durationMsMax` passes; returns whether it held. */
  runUntil(stop: () => boolean, durationMsMax: number): boolean {
    if (stop()) return true;
    this.cluster.runForMs(durationMsMax, stop);
    return stop();
  }

  #wrapNetwork(): void {
    const cluster = this.cluster;
    const network = cluster.network;
    const send = network.send.bind(network);
    const fsyncMs = this.options.fsyncMs;
    network.send = (message: Message): void => {
      if (this.#drop?.(message)) {
        network.counters.sent++;
        network.counters.dropped++;
        return;
      }
      if (fsyncMs === 0 || !sentAfterFsync(message)) {
        send(message);
        return;
      }
      const sender = cluster.node(message.from);
      cluster.clock.schedule(fsyncMs, () => {
        // A crash during the write loses the message with the write.
        if (cluster.node(message.from) === sender && cluster.state(message.from) === "up") send(message);
      });
    };
  }
}
