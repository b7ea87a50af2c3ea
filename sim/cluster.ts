/**
 * A simulated pgraft cluster: real RaftNode instances (the production runtime, unchanged) wired to the
 * simulated clock, network and disks. The fault verbs read like the failures they model:
 *
 *   cluster.crash(2)            kill -9: timers stop, unsynced writes are gone (maybe torn)
 *   cluster.crash(2, {duringWrite: true})   the kill lands inside the node's next write to disk
 *   cluster.restart(2)          a new process reads only node 2's disk
 *   cluster.pause(2) / resume   SIGSTOP / SIGCONT: nothing runs, messages wait
 *   cluster.partition([1], [2, 3]), cutOneWay, isolate(1), heal()
 *   cluster.corruptDisk(2)      bit rot inside synced data: node 2 must refuse to start
 *
 * Nodes start from a factory that reads only their disk, so every restart proves recovery. After every
 * event that touched a node the safety checker looks at it.
 */
import { assert } from "../src/assert.ts";
import type { Membership, Message, NodeId } from "../src/core/types.ts";
import type { AdminCallback, ClientCallback, MembershipChange } from "../src/node/raft-node.ts";
import { RaftNode } from "../src/node/raft-node.ts";
import type { KvWrite } from "../src/kv/command.ts";
import { RaftStorage, StorageCorruptionError } from "../src/storage/raft-storage.ts";
import { type ClockBounds, NodeTimers, SimClock } from "./clock.ts";
import { SimDisk } from "./disk.ts";
import { SafetyChecker } from "./checkers/safety.ts";
import type { LinkConditions } from "./network.ts";
import { describeMessage as describe, SimNetwork } from "./network.ts";
import type { Random } from "./random.ts";
import type { Trace } from "./trace.ts";

/** Simulated time each part of a node's own snapshot takes to write in the background. */
const SIM_SNAPSHOT_PART_MS = 1;

export interface ClusterOptions {
  readonly nodeCount: number;
  readonly tickMs: number;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly entriesPerAppendMax: number;
  readonly maxBatchDelayMs: number;
  readonly requestTimeoutMs: number;
  /** pgraft.snapshot_interval and pgraft.max_log_entries. */
  readonly snapshotIntervalEntries?: number;
  readonly logEntriesMax?: number;
  readonly network: LinkConditions;
  /** Each node's clock runs at a rate drawn from [1 - driftMax, 1 + driftMax]. */
  readonly driftMax: number;
  readonly tornWrites: boolean;
  /**
   * A crashed process's connections are closed by its kernel, so its peers learn of the crash after
   * one network latency (as TCP shows it in production). Off: peers find out only by silence.
   */
  readonly connectionResetOnCrash?: boolean;
  /** Every node's writes take this long to become durable (a disk's fsync time); default 0. */
  readonly fsyncMs?: number;
  /** Messages are traced one line each; off for speed in long tuning sweeps. */
  readonly traceMessages: boolean;
  /** Stall, wall-time and heap bounds of the run (CLOCK_BOUNDS_DEFAULT where left out). */
  readonly bounds?: Partial<ClockBounds>;
}

export type HostState = "up" | "down" | "paused" | "failed";

interface Host {
  readonly id: NodeId;
  readonly disk: SimDisk;
  rate: number;
  /** Every write takes this long to become durable; the node is blocked meanwhile (a slow disk). */
  fsyncMs: number;
  /** The node is inside a slow write until then: work waits, sends go out at its end. */
  busyUntilMs: number;
  /** Every write fails (a dead disk): the node stops at its next write and cannot start. */
  diskFailed: boolean;
  /** Started after the cluster formed: knows no membership until a leader replicates one. */
  readonly joining: boolean;
  state: HostState;
  node: RaftNode | undefined;
  timers: NodeTimers | undefined;
  /** Work that arrived while paused, run in order at resume. */
  deferred: (() => void)[];
  crashDuringWrite: boolean;
  incarnation: number;
  failure: string | undefined;
  /** "n2 waits for its disk": the label of a rescheduled event, made once (it is the hottest event of a slow-disk seed). */
  readonly waitLabel: string;
}

export class SimCluster {
  readonly clock: SimClock;
  readonly network: SimNetwork;
  readonly checker = new SafetyChecker();
  /** Every host ever created, in id order (members, joining nodes and removed ones). */
  #ids: NodeId[];
  /** The initial cluster, identical on every original node (pgraft.initial_cluster). */
  readonly membership: Membership;
  #hosts = new Map<NodeId, Host>();
  #random: Random;

  constructor(
    readonly options: ClusterOptions,
    random: Random,
    readonly trace: Trace,
  ) {
    assert(options.nodeCount >= 1 && options.nodeCount <= 9, `nodeCount ${options.nodeCount} outside 1..9`);
    this.clock = new SimClock(options.bounds);
    this.#random = random.fork("cluster");
    this.#ids = Array.from({ length: options.nodeCount }, (_, i) => i + 1);
    this.membership = { voters: [...this.#ids], learners: [] };
    this.network = new SimNetwork(
      this.clock,
      random.fork("network"),
      options.network,
      (message) => this.#deliver(message),
      options.traceMessages ? (message, reason) => this.#traceLine(`drop ${describe(message)} (${reason})`) : undefined,
    );
    this.#diskRandom = random.fork("disk");
    for (const id of this.#ids) this.#createHost(id, false);
  }

  #diskRandom: Random;

  #createHost(id: NodeId, joining: boolean): void {
    const rate = 1 + this.#random.real(-this.options.driftMax, this.options.driftMax);
    const diskRandom = this.#diskRandom;
    const disk = new SimDisk({ random: () => diskRandom.next(), tornWrites: this.options.tornWrites });
    this.#hosts.set(id, {
      id,
      disk,
      rate,
      fsyncMs: this.options.fsyncMs ?? 0,
      busyUntilMs: 0,
      diskFailed: false,
      joining,
      state: "down",
      node: undefined,
      timers: undefined,
      deferred: [],
      crashDuringWrite: false,
      incarnation: 0,
      failure: undefined,
      waitLabel: `n${id} waits for its disk`,
    });
  }

  get ids(): readonly NodeId[] {
    return this.#ids;
  }

  /**
   * Starts a brand-new node with an empty disk that knows no membership: it waits, without campaigning,
   * until a leader adds it (changeMembership) and replicates the configuration to it. Returns its id.
   */
  addHost(): NodeId {
    const id = Math.max(...this.#ids) + 1;
    this.#ids.push(id);
    this.#createHost(id, true);
    this.#traceLine(`n${id} created (joining)`);
    this.restart(id);
    return id;
  }

  start(): void {
    for (const id of this.ids) this.restart(id);
  }

  // -------------------------------------------------------------------------------------------------
  // Fault verbs

  crash(id: NodeId, options: { duringWrite?: boolean } = {}): void {
    const host = this.#host(id);
    if (host.state === "down" || host.state === "failed") return;
    if (options.duringWrite && host.state === "up") {
      host.crashDuringWrite = true;
      this.#traceLine(`n${id} will crash during its next disk write`);
      return;
    }
    this.#kill(host, "crash");
  }

  restart(id: NodeId): void {
    const host = this.#host(id);
    if (host.state !== "down") return;
    if (host.diskFailed) {
      this.#traceLine(`n${id} cannot start: its disk fails every write`);
      return;
    }
    host.incarnation++;
    let storage: RaftStorage;
    try {
      // Segments small enough that compaction (pgraft.max_log_entries) really drops files.
      storage = RaftStorage.open(host.disk, { segmentEntriesMax: Math.max(16, Math.floor((this.options.logEntriesMax ?? 10_000) / 2)) });
    } catch (error) {
      if (!(error instanceof StorageCorruptionError)) throw error;
      host.state = "failed";
      host.failure = error.message;
      this.#traceLine(`n${id} refused to start: ${error.message}`);
      return;
    }
    const state = storage.state();
    this.checker.restarted(id, {
      hardState: state.hardState,
      entries: state.entries,
      snapshotIndex: state.snapshot?.metadata.index ?? 0,
      snapshotTerm: state.snapshot?.metadata.term ?? 0,
    });
    const timers = new NodeTimers(this.clock, host.rate, (run) => this.#runOnHost(host, run), `n${id} timer`);
    const nodeRandom = this.#random.fork(`node-${id}-${host.incarnation}`);
    // A crash planned inside the next write, or a failed disk, makes that write's sync fail.
    const armDiskFault = (): void => {
      if (!host.crashDuringWrite && !host.diskFailed) return;
      host.crashDuringWrite = false;
      host.disk.failNextSync = true;
    };
    const node = new RaftNode({
      id,
      membership: host.joining ? { voters: [], learners: [] } : this.membership,
      tickMs: this.options.tickMs,
      electionTimeoutMs: this.options.electionTimeoutMs,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
      entriesPerAppendMax: this.options.entriesPerAppendMax,
      maxBatchDelayMs: this.options.maxBatchDelayMs,
      requestTimeoutMs: this.options.requestTimeoutMs,
      snapshotIntervalEntries: this.options.snapshotIntervalEntries,
      logEntriesMax: this.options.logEntriesMax,
      restored: state,
      persistence: {
        save: (batch) => {
          armDiskFault();
          storage.save(batch);
          if (host.fsyncMs > 0) host.busyUntilMs = Math.max(host.busyUntilMs, this.clock.nowMs) + host.fsyncMs;
        },
        compact: (throughIndex) => storage.compact(throughIndex),
        // The node's own snapshots go the way production saves them, in the background: each part and
        // the final sync take simulated time on this incarnation's timers (a crash cancels them, and
        // the snapshot is never committed), while the node goes on applying and answering.
        beginSnapshot: (metadata) => ({
          append: (_part, done) => void timers.after(SIM_SNAPSHOT_PART_MS, () => done()),
          finish: (done) => void timers.after(Math.max(SIM_SNAPSHOT_PART_MS, host.fsyncMs), () => done()),
          commit: (snapshot) => {
            if (storage.snapshotIndex() >= metadata.index) return false;
            armDiskFault();
            storage.save({ snapshot, entries: [] });
            return true;
          },
          abandon: () => undefined,
        }),
      },
      transport: { send: (message) => this.#sendFrom(host, message) },
      timers,
      random: () => nodeRandom.next(),
      logger: (line) => this.#traceLine(`n${line}`),
      observer: {
        persisting: (node, ready) => this.checker.persisting(node, ready),
        persisted: (node, ready) => this.checker.persisted(node, ready, host.node?.raft.role ?? "follower"),
        applied: (node, entry) => this.checker.applied(node, entry, host.node?.raft.term ?? 0),
        snapshotInstalled: (node, snapshot) => {
          this.checker.snapshotInstalled(node, snapshot.metadata.index);
          this.#traceLine(`n${node} installed snapshot ${snapshot.metadata.index}/${snapshot.metadata.term}`);
        },
        snapshotTaken: (node, snapshot, compactThrough) =>
          this.#traceLine(`n${node} took snapshot ${snapshot.metadata.index}/${snapshot.metadata.term}, log compacted through ${compactThrough}`),
      },
    });
    host.node = node;
    host.timers = timers;
    host.state = "up";
    this.#traceLine(`n${id} started (incarnation ${host.incarnation}): term ${state.hardState.term}, log ${state.entries.length} entries`);
    this.#guard(host, () => node.start());
  }

  pause(id: NodeId): void {
    const host = this.#host(id);
    if (host.state !== "up") return;
    host.state = "paused";
    this.#traceLine(`n${id} paused`);
  }

  resume(id: NodeId): void {
    const host = this.#host(id);
    if (host.state !== "paused") return;
    host.state = "up";
    this.#traceLine(`n${id} resumed with ${host.deferred.length} waiting events`);
    const deferred = host.deferred;
    host.deferred = [];
    for (const run of deferred) {
      if (host.state !== "up") break;
      this.#guard(host, run);
    }
  }

  partition(left: readonly NodeId[], right: readonly NodeId[]): void {
    this.network.partition(left, right);
    this.#traceLine(`partition [${left.join(",")}] | [${right.join(",")}]`);
  }

  cutOneWay(from: readonly NodeId[], to: readonly NodeId[]): void {
    this.network.cutOneWay(from, to);
    this.#traceLine(`cut one way [${from.join(",")}] -> [${to.join(",")}]`);
  }

  isolate(id: NodeId): void {
    this.partition([id], this.ids.filter((other) => other !== id));
  }

  setLink(from: NodeId, to: NodeId, conditions: LinkConditions): void {
    this.network.setLink(from, to, conditions);
    this.#traceLine(`link ${from}->${to} latency ${conditions.latencyMs}±${conditions.jitterMs} ms loss ${conditions.lossRate}`);
  }

  /** Every write on node `id` takes `fsyncMs` to become durable; the node waits for it (slow disk). */
  setDiskLatency(id: NodeId, fsyncMs: number): void {
    assert(fsyncMs >= 0 && Number.isFinite(fsyncMs), `setDiskLatency(): bad duration ${fsyncMs}`);
    this.#host(id).fsyncMs = fsyncMs;
    this.#traceLine(`n${id} disk writes take ${fsyncMs} ms`);
  }

  /** Every write on node `id` fails from now on: it stops at its next write and cannot start. */
  failDisk(id: NodeId): void {
    this.#host(id).diskFailed = true;
    this.#traceLine(`n${id} disk fails`);
  }

  /** Node `id`'s disk works again; a stopped node can then be restarted. */
  repairDisk(id: NodeId): void {
    this.#host(id).diskFailed = false;
    this.#traceLine(`n${id} disk repaired`);
  }

  /** Node `id`'s clock runs at `rate` times real time from now on (1.1: 10% fast). */
  setClockRate(id: NodeId, rate: number): void {
    const host = this.#host(id);
    host.rate = rate;
    host.timers?.setRate(rate);
    this.#traceLine(`n${id} clock rate ${rate}`);
  }

  /** Disarms crashes armed for a node's next disk write. */
  disarmCrashes(): void {
    for (const host of this.#hosts.values()) {
      host.crashDuringWrite = false;
      host.diskFailed = false;
      // An armed crash may already sit in the disk, waiting for a save that wrote nothing to sync
      // (seed 980 crashed a node 100 ms into its liveness phase that way).
      host.disk.failNextSync = false;
    }
  }

  heal(): void {
    this.network.heal();
    this.#traceLine("heal");
  }

  /**
   * Flips a byte in synced data on a stopped node's disk. Returns whether anything was damaged.
   *
   * The damage never touches the last record of the newest log segment: there it cannot be told apart
   * from a torn write, and the storage layer drops that record like one (as etcd's WAL does). Every
   * other synced byte is covered by a checksum that must stop the node from starting.
   */
  corruptDisk(id: NodeId): boolean {
    const host = this.#host(id);
    assert(host.state === "down", "corruptDisk() needs a stopped node");
    const segments = host.disk.list().filter((name) => /^log-\d+\.seg$/.test(name));
    const candidates = segments
      .map((name, i) => ({ name, bytesMax: i === segments.length - 1 ? lastRecordOffset(host.disk.read(name)!) : Infinity }))
      .filter((candidate) => candidate.bytesMax > 0);
    if (candidates.length === 0) return false;
    const target = this.#random.pick(candidates);
    const corruption = host.disk.corruptSynced(target.name, { bytesMax: target.bytesMax });
    if (!corruption) return false;
    this.#traceLine(`n${id} disk corrupted: ${corruption.name} byte ${corruption.offset}`);
    return true;
  }

  // -------------------------------------------------------------------------------------------------
  // Clients

  /** Delivers a client write to node `id` after `latencyMs`; the reply comes back after the same. */
  submitWrite(id: NodeId, write: KvWrite, latencyMs: number, callback: ClientCallback): void {
    this.#submit(id, latencyMs, callback, (node, reply) => node.write(write, reply));
  }

  submitRead(id: NodeId, key: string, latencyMs: number, callback: ClientCallback): void {
    this.#submit(id, latencyMs, callback, (node, reply) => node.read(key, reply));
  }

  /**
   * A request from outside the cluster: it reaches node `id` after `latencyMs` (lost if the node is
   * down, held while it is paused) and its answer comes back after the same latency.
   */
  #submit<R>(id: NodeId, latencyMs: number, callback: (result: R) => void, start: (node: RaftNode, reply: (result: R) => void) => void): void {
    const host = this.#host(id);
    this.clock.schedule(
      latencyMs,
      () => {
        this.#runOnHost(host, () => {
          const node = host.node;
          if (!node) return;
          start(node, (result) => this.clock.schedule(latencyMs, () => callback(result), `n${id} answers a client`));
        })();
      },
      `n${id} gets a client request`,
    );
  }

  /** Asks node `via` to add or remove a member; the reply comes back after `latencyMs`. */
  changeMembership(via: NodeId, change: MembershipChange, latencyMs: number, callback: AdminCallback): void {
    this.#submit(via, latencyMs, callback, (node, reply: AdminCallback) => node.changeMembership(change, reply));
  }

  /** Asks node `via` (the leader) to hand leadership to `target`. */
  transferLeadership(via: NodeId, target: NodeId, latencyMs: number, callback: AdminCallback): void {
    this.#submit(via, latencyMs, callback, (node, reply: AdminCallback) => node.transferLeadership(target, reply));
  }

  // -------------------------------------------------------------------------------------------------
  // Inspection

  state(id: NodeId): HostState {
    return this.#host(id).state;
  }

  node(id: NodeId): RaftNode | undefined {
    return this.#host(id).node;
  }

  failure(id: NodeId): string | undefined {
    return this.#host(id).failure;
  }

  disk(id: NodeId): SimDisk {
    return this.#host(id).disk;
  }

  liveIds(): NodeId[] {
    return this.ids.filter((id) => this.#host(id).state === "up");
  }

  /** The node that leads with a live quorum, if exactly one does at the highest such term. */
  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const id of this.ids) {
      const node = this.#host(id).node;
      if (!node || this.#host(id).state !== "up") continue;
      const status = node.status();
      if (status.role === "leader" && status.quorumActive && (!best || status.term > best.term)) best = { id, term: status.term };
    }
    return best?.id;
  }

  runForMs(durationMs: number, stop?: () => boolean): void {
    this.clock.runUntil(this.clock.nowMs + durationMs, stop);
  }

  // -------------------------------------------------------------------------------------------------

  #host(id: NodeId): Host {
    const host = this.#hosts.get(id);
    if (host === undefined) assert(false, `no node ${id}`);
    return host;
  }

  #deliver(message: Message): void {
    const host = this.#hosts.get(message.to);
    if (!host) {
      // A member that was added to the configuration but has no machine yet: like an address nobody
      // listens on, the message goes nowhere.
      if (this.options.traceMessages) this.#traceLine(`drop ${describe(message)} (no such host)`);
      return;
    }
    if (this.options.traceMessages) this.#traceLine(`deliver ${describe(message)}`);
    this.#runOnHostNow(host, host.incarnation, () => host.node?.receive(message));
  }

  /** Wraps work for a host: dropped when it is down, held while it is paused, checked after it ran. */
  #runOnHost(host: Host, run: () => void): () => void {
    const incarnation = host.incarnation;
    return () => this.#runOnHostNow(host, incarnation, run);
  }

  /**
   * Runs work wrapped by #runOnHost for the incarnation it was wrapped for. `waiting`: this is the
   * clock's running event, made below for work that waited for the disk (it can be requeued as it is).
   */
  #runOnHostNow(host: Host, incarnation: number, run: () => void, waiting = false): void {
    if (host.incarnation !== incarnation) return;
    if (host.state === "down" || host.state === "failed") return;
    if (host.state === "paused") {
      host.deferred.push(run);
      return;
    }
    if (host.busyUntilMs > this.clock.nowMs) {
      // Blocked in a slow write: the work runs when the write returns, in arrival order.
      const waitMs = host.busyUntilMs - this.clock.nowMs;
      if (waiting) this.clock.repeatCurrent(waitMs);
      else this.clock.schedule(waitMs, () => this.#runOnHostNow(host, incarnation, run, true), host.waitLabel);
      return;
    }
    this.#guard(host, run);
  }

  /** Messages leave once the write they depend on is durable; a crash before that loses them. */
  #sendFrom(host: Host, message: Message): void {
    const waitMs = host.busyUntilMs - this.clock.nowMs;
    if (waitMs <= 0) {
      this.network.send(message);
      return;
    }
    const incarnation = host.incarnation;
    this.clock.schedule(
      waitMs,
      () => {
        if (host.incarnation === incarnation && host.state !== "down" && host.state !== "failed") this.network.send(message);
      },
      () => `send ${describe(message)} once n${host.id}'s disk write is done`,
    );
  }

  #guard(host: Host, run: () => void): void {
    try {
      run();
    } catch (error) {
      if (!isSimulatedSyncFailure(error)) throw error;
      this.#kill(host, "crash during a disk write");
      return;
    }
    const node = host.node;
    if (node && host.state === "up") this.checker.observe(host.id, node.raft.role, node.raft.term, node.raft.log);
  }

  #kill(host: Host, how: string): void {
    host.node?.stop();
    host.timers?.cancelAll();
    host.node = undefined;
    host.timers = undefined;
    host.deferred = [];
    host.state = "down";
    host.crashDuringWrite = false;
    // A crash armed in the disk by a save that then synced nothing dies with this incarnation.
    host.disk.failNextSync = false;
    host.incarnation++;
    if (this.options.connectionResetOnCrash) {
      for (const peer of this.#hosts.values()) {
        if (peer === host || this.network.isCut(host.id, peer.id)) continue;
        const latencyMs = this.network.conditions(host.id, peer.id).latencyMs;
        this.clock.schedule(latencyMs, this.#runOnHost(peer, () => peer.node?.peerDown(host.id)), `n${peer.id} sees n${host.id}'s connection reset`);
      }
    }
    const fault = host.disk.crash();
    const torn = fault.kind === "crash" ? fault.tornFiles.map((file) => `${file.name}+${file.bytesKept}B`).join(" ") : "";
    this.#traceLine(`n${host.id} ${how}${torn ? ` (torn: ${torn})` : ""}`);
  }

  #traceLine(text: string): void {
    this.trace.record(this.clock.nowMs, text);
  }
}

/** Byte offset where the last complete record of a log segment starts (records: u32 length, u32 crc, payload). */
function lastRecordOffset(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  let last = 0;
  while (offset + 8 <= bytes.length) {
    const next = offset + 8 + view.getUint32(offset, true);
    if (next > bytes.length) break;
    last = offset;
    offset = next;
  }
  return last;
}

function isSimulatedSyncFailure(error: unknown): boolean {
  return error instanceof Error && error.name === "SimulatedCrash";
}
