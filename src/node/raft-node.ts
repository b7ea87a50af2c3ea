/**
 * One pgraft node's runtime: the Raft core, its storage and the key-value state machine, driven by the
 * loop every environment shares (persist, send, apply, advance). The simulator, the chaos runner and
 * production all run this class; only the Timers, Transport and Disk behind it differ.
 *
 * Client operations complete through callbacks, not promises: the simulator runs synchronously, and a
 * promise would resolve outside its event order. Production wraps them in promises (src/node/client.ts).
 */
import { assert } from "../assert.ts";
import { Raft, RAFT_CONFIG_DEFAULTS, type RaftStatus } from "../core/raft.ts";
import type { Entry, HardState, Membership, Message, NodeId, Ready, Snapshot, SnapshotMetadata } from "../core/types.ts";
import { NODE_NONE } from "../core/types.ts";
import { decodeMembership } from "../core/membership.ts";
import {
  BusyError,
  LeadershipTransferError,
  MembershipChangeInProgressError,
  InvalidRequestError,
  NoQuorumError,
  NotLeaderError,
  type PgraftError,
  RequestTimeoutError,
  SupersededError,
} from "../errors.ts";
import { decodeWrite, encodeWrite, validateWrite, type KvOutput, type KvWrite, type KvWriteOutput } from "../kv/command.ts";
import { KvStore } from "../kv/kv-store.ts";
import type { BackgroundSnapshotWrite } from "../storage/raft-storage.ts";
import type { TimerHandle, Timers, Transport } from "./environment.ts";

/** Lateness of a tick below this is clock rounding, not an event loop delay. */
const TICK_LATE_MS_MIN = 0.001;

export type ClientResult =
  | { readonly ok: true; readonly output: KvWriteOutput; readonly index: number }
  | { readonly ok: false; readonly error: PgraftError };

export type ClientCallback = (result: ClientResult) => void;

/** A membership change, one server at a time (thesis 4.1). */
export type MembershipChange =
  | { readonly type: "add"; readonly nodeId: NodeId; readonly address?: string; readonly name?: string; readonly clientUrl?: string }
  | { readonly type: "remove"; readonly nodeId: NodeId }
  /** A member's own name and client URL (etcd's member attribute update). */
  | { readonly type: "attributes"; readonly nodeId: NodeId; readonly name?: string; readonly clientUrl?: string };

export type AdminResult =
  | { readonly ok: true; readonly membership: Membership }
  | { readonly ok: false; readonly error: PgraftError };

export type AdminCallback = (result: AdminResult) => void;

/** Where the node persists the Ready batches (src/storage/raft-storage.ts, over any Disk). */
export interface LogPersistence {
  save(batch: { hardState?: HardState; snapshot?: Snapshot; entries: readonly Entry[] }): void;
  /** Drops stored entries up to `throughIndex`, which a saved snapshot covers. */
  compact(throughIndex: number): void;
  /**
   * Optional: saves this node's own snapshot off the event loop (RaftStorage.beginSnapshot); undefined,
   * or absent, and the snapshot is saved with save() at once.
   */
  beginSnapshot?(metadata: SnapshotMetadata): BackgroundSnapshotWrite | undefined;
}

/** Hooks for the simulator's checkers; production leaves them out. */
export interface NodeObserver {
  persisting?(node: NodeId, ready: Ready): void;
  persisted?(node: NodeId, ready: Ready): void;
  applied?(node: NodeId, entry: Entry): void;
  /** The state machine was replaced by a snapshot from the leader. */
  snapshotInstalled?(node: NodeId, snapshot: Snapshot): void;
  /** This node saved a snapshot of its own state and compacted its log. */
  snapshotTaken?(node: NodeId, snapshot: Snapshot, compactThrough: number): void;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly membership: Membership;
  readonly tickMs: number;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** pgraft.batch_size: proposals per batch and entries per append message. */
  readonly entriesPerAppendMax: number;
  /** pgraft.max_batch_delay: the longest a proposal waits to be batched (0: propose at once). */
  readonly maxBatchDelayMs: number;
  /** A write or read not answered within this time fails (a write's outcome is then unknown). */
  readonly requestTimeoutMs: number;
  readonly inflightAppendsMax?: number;
  /** pgraft.snapshot_interval: applied entries between two snapshots. */
  readonly snapshotIntervalEntries?: number;
  /** pgraft.max_log_entries: entries kept behind a snapshot for slow followers. */
  readonly logEntriesMax?: number;
  readonly pendingRequestsMax?: number;
  readonly restored: { hardState: HardState; snapshot?: Snapshot; entries: readonly Entry[] };
  readonly persistence: LogPersistence;
  readonly transport: Transport;
  readonly timers: Timers;
  readonly random: () => number;
  readonly logger?: (line: string) => void;
  readonly observer?: NodeObserver;
}

interface PendingWrite {
  readonly index: number;
  readonly term: number;
  readonly callback: ClientCallback;
  readonly deadlineMs: number;
}

interface PendingAdmin {
  readonly timeoutMs: number;
  readonly satisfied: (membership: Membership, leaderId: NodeId) => boolean;
  readonly callback: AdminCallback;
  readonly deadlineMs: number;
  readonly what: string;
}

interface PendingRead {
  readonly key: string;
  readonly callback: ClientCallback;
  readonly deadlineMs: number;
}

/** Ready batches processed in one turn before yielding; the core never needs more than a few. */
const READY_ROUNDS_MAX = 64;
const PENDING_REQUESTS_MAX_DEFAULT = 50_000;
const SNAPSHOT_INTERVAL_ENTRIES_DEFAULT = 10_000;
/** Records per part of a snapshot saved in the background: each part is one turn of the event loop. */
const SNAPSHOT_PART_RECORDS = 2_000;
const LOG_ENTRIES_MAX_DEFAULT = 10_000;
/** Expired leases being revoked at once (etcd revokes at most 1000 a second). */
const LEASE_REVOKES_INFLIGHT_MAX = 64;

export class RaftNode {
  readonly id: NodeId;
  readonly raft: Raft;
  #store: KvStore;
  /** Membership as of the applied index (what a snapshot taken now must record). */
  #appliedMembership: Membership;
  #snapshotIndex: number;
  /** After a failed snapshot, the applied index at which the next one is tried. */
  #snapshotRetryIndex = 0;
  /** This node's snapshot being saved in the background, if one is. */
  #snapshotJob: { readonly write: BackgroundSnapshotWrite; readonly parts: string[] } | undefined;
  #pendingMembership: PendingAdmin[] = [];
  #pendingTransfers: PendingAdmin[] = [];
  readonly #options: RaftNodeOptions;
  #pendingWrites = new Map<number, PendingWrite>();
  /** Reads waiting for their ReadIndex round, by request id. */
  #readRounds = new Map<number, PendingRead[]>();
  /** Reads whose round completed, waiting for the applied index to reach `index`. */
  #readsAwaitingApply: { index: number; reads: PendingRead[] }[] = [];
  #writeBatch: { write: KvWrite; callback: ClientCallback; deadlineMs: number }[] = [];
  #readBatch: PendingRead[] = [];
  #batchTimer: TimerHandle | undefined;
  #tickTimer: TimerHandle | undefined;
  /** When the next tick is due on this node's clock: ticks keep to a grid of tickMs from the start. */
  #tickDueMs: number | undefined;
  /** A Ready pass scheduled for the messages received in this event-loop turn (see receive()). */
  #readyTimer: TimerHandle | undefined;
  #readRequestId = 0;
  #stopped = false;
  /** The term in the last hard state this node persisted. */
  #durableTerm: number;
  /**
   * When each lease expires, on this node's clock: kept only while this node leads. A lease gets its
   * full TTL from the moment a leader first sees it (granted, or found on becoming leader: etcd's rule,
   * so a failover never expires a lease early) and again at each keep-alive.
   */
  #leaseExpiryMs = new Map<number, number>();
  /** Leases whose expiry (a revoke entry) is proposed and not yet settled. */
  #leasesExpiring = new Set<number>();
  #applyListeners: (() => void)[] = [];

  constructor(options: RaftNodeOptions) {
    assert(options.electionTimeoutMs % options.tickMs === 0, "election timeout must be a whole number of ticks");
    assert(options.heartbeatIntervalMs % options.tickMs === 0, "heartbeat interval must be a whole number of ticks");
    this.#options = options;
    this.id = options.id;
    const snapshot = options.restored.snapshot;
    this.#store = snapshot ? KvStore.restore(snapshot.data) : new KvStore();
    this.#appliedMembership = snapshot?.metadata.membership ?? options.membership;
    this.#snapshotIndex = snapshot?.metadata.index ?? 0;
    this.#durableTerm = options.restored.hardState.term;
    this.raft = new Raft(
      {
        ...RAFT_CONFIG_DEFAULTS,
        id: options.id,
        electionTicks: options.electionTimeoutMs / options.tickMs,
        heartbeatTicks: options.heartbeatIntervalMs / options.tickMs,
        preVote: options.preVote,
        checkQuorum: options.checkQuorum,
        entriesPerAppendMax: options.entriesPerAppendMax,
        inflightAppendsMax: options.inflightAppendsMax ?? RAFT_CONFIG_DEFAULTS.inflightAppendsMax,
        random: options.random,
        logger: options.logger,
      },
      { ...options.restored, membership: options.membership, applied: this.#snapshotIndex },
    );
  }

  /** The key-value state machine (replaced wholesale when a snapshot is installed). */
  get store(): KvStore {
    return this.#store;
  }

  /** Starts the tick timer. */
  start(): void {
    this.#scheduleTick();
    this.#processReady();
  }

  /** Stops timers; pending requests are left to their callers' own timeouts (a crash answers nobody). */
  stop(): void {
    this.#stopped = true;
    this.#tickTimer?.cancel();
    this.#batchTimer?.cancel();
    this.#readyTimer?.cancel();
    this.#abandonSnapshot();
  }

  /**
   * Steps a message from a peer. The Ready it produces is handled once for every message that arrives
   * in the same event-loop turn (with `timers.soon`), so a burst of appends costs one write and one
   * fsync, not one each (etcd's raft loop batches the same way). Nothing the core decided leaves the
   * node before that write, so this changes only how writes are grouped. Without batching, a follower
   * whose disk takes 50 ms per fsync handled at most 20 messages a second however many arrived: its
   * backlog grew without bound under a leader's pipeline (swarm seed 1465 livelocked on it).
   */
  receive(message: Message): void {
    if (this.#stopped) return;
    this.raft.step(message);
    const timers = this.#options.timers;
    if (timers.soon === undefined) {
      this.#processReady();
      return;
    }
    if (this.#readyTimer !== undefined) return;
    this.#readyTimer = timers.soon(() => {
      this.#readyTimer = undefined;
      if (!this.#stopped) this.#processReady();
    });
  }

  /** The transport lost its connection to `peer` (its process died): maybe campaign early. */
  peerDown(peer: NodeId): void {
    if (this.#stopped) return;
    this.raft.peerUnreachable(peer);
    this.#processReady();
  }

  tick(): void {
    if (this.#stopped) return;
    this.raft.tick();
    this.#expireRequests();
    this.#processReady();
    this.#expireLeases();
  }

  /**
   * Calls `listener` after every batch of applied entries and after a snapshot replaced the store
   * (watches read the new events from `store` then). Returns a function that removes it.
   */
  onApplied(listener: () => void): () => void {
    this.#applyListeners.push(listener);
    return () => {
      this.#applyListeners = this.#applyListeners.filter((other) => other !== listener);
    };
  }

  /** The shortest lease TTL granted, in seconds (etcd's: 1.5 election timeouts, rounded up). */
  get leaseTtlMinSec(): number {
    return Math.ceil((1.5 * this.#options.electionTimeoutMs) / 1000);
  }

  /**
   * Renews a lease for its full TTL (etcd's LeaseKeepAlive). Leader only: a ReadIndex round confirms
   * this node still leads before the renewal counts. Answers the TTL, or 0 when no such lease exists.
   */
  keepAlive(id: number, callback: (result: { ok: true; ttlSec: number } | { ok: false; error: PgraftError }) => void): void {
    this.read("", (result) => {
      if (!result.ok) return callback(result);
      if (this.raft.role !== "leader") return callback({ ok: false, error: this.#refusal("keep a lease alive")! });
      const lease = this.store.lease(id);
      if (lease === undefined) return callback({ ok: true, ttlSec: 0 });
      this.#leaseExpiryMs.set(id, this.#options.timers.nowMs() + lease.ttlSec * 1000);
      callback({ ok: true, ttlSec: lease.ttlSec });
    });
  }

  /**
   * The seconds a lease has left on the leader's clock (etcd's LeaseTimeToLive: whole seconds, rounded
   * down), or undefined when no such lease exists. Leader only: a follower refuses with NotLeaderError.
   */
  leaseRemainingSec(id: number): { ok: true; remainingSec: number | undefined } | { ok: false; error: PgraftError } {
    const refusal = this.#refusal("read a lease's time to live");
    if (refusal) return { ok: false, error: refusal };
    const lease = this.store.lease(id);
    if (lease === undefined) return { ok: true, remainingSec: undefined };
    const expiryMs = this.#leaseExpiryMs.get(id) ?? this.#options.timers.nowMs() + lease.ttlSec * 1000;
    return { ok: true, remainingSec: Math.max(0, Math.floor((expiryMs - this.#options.timers.nowMs()) / 1000)) };
  }

  status(): RaftStatus {
    return this.raft.status();
  }

  /** Proposes a write; the callback runs once it is applied, refused, or timed out. */
  write(write: KvWrite, callback: ClientCallback): void {
    const invalid = validateWrite(write);
    if (invalid !== undefined) return callback({ ok: false, error: new InvalidRequestError(invalid) });
    const refusal = this.#refusal("write");
    if (refusal) return callback({ ok: false, error: refusal });
    if (this.#pendingWrites.size + this.#writeBatch.length >= this.#pendingRequestsMax()) {
      return callback({ ok: false, error: new BusyError("pending writes", this.#pendingRequestsMax()) });
    }
    this.#writeBatch.push({ write, callback, deadlineMs: this.#options.timers.nowMs() + this.#options.requestTimeoutMs });
    this.#scheduleBatch(this.#writeBatch.length);
  }

  /** A linearizable read (ReadIndex); served locally once the applied index catches up. */
  read(key: string, callback: ClientCallback): void {
    const refusal = this.#refusal("read");
    if (refusal) return callback({ ok: false, error: refusal });
    this.#readBatch.push({ key, callback, deadlineMs: this.#options.timers.nowMs() + this.#options.requestTimeoutMs });
    this.#scheduleBatch(this.#readBatch.length);
  }

  /**
   * Adds or removes one node. Only the leader accepts it; the callback runs once the change is
   * committed (for an add: once the new node has caught up and been promoted to voter).
   */
  changeMembership(change: MembershipChange, callback: AdminCallback): void {
    const action = change.type === "attributes" ? `update the attributes of node ${change.nodeId}` : `${change.type} node ${change.nodeId}`;
    const result = this.raft.proposeMembership(change);
    if (!result.ok) return callback({ ok: false, error: this.#adminRefusal(result, action) });
    const satisfied =
      change.type === "add"
        ? (membership: Membership) => membership.voters.includes(change.nodeId)
        : change.type === "remove"
          ? (membership: Membership) => !membership.voters.includes(change.nodeId) && !membership.learners.includes(change.nodeId)
          : (membership: Membership) =>
              (change.name === undefined || membership.names?.[String(change.nodeId)] === change.name) &&
              (change.clientUrl === undefined || membership.clientUrls?.[String(change.nodeId)] === change.clientUrl);
    // Adding a node includes its catch-up (maybe by snapshot) and promotion: allow it more time.
    const timeoutMs = 4 * this.#options.requestTimeoutMs;
    const deadlineMs = this.#options.timers.nowMs() + timeoutMs;
    this.#pendingMembership.push({ timeoutMs, satisfied, callback, deadlineMs, what: action });
  }

  /** Hands leadership to `target` (planned maintenance); aborted after an election timeout. */
  transferLeadership(target: NodeId, callback: AdminCallback): void {
    const result = this.raft.transferLeadership(target);
    if (!result.ok) {
      const error =
        result.reason === "not_leader"
          ? new NotLeaderError(result.leaderId, "transfer leadership")
          : result.reason === "busy"
            ? new LeadershipTransferError(`Cannot transfer leadership to node ${target}: a transfer to node ${result.transferee} is under way; wait for it to finish`)
            : new InvalidRequestError(`Cannot transfer leadership to node ${target}: ${result.message}`);
      return callback({ ok: false, error });
    }
    const timeoutMs = 2 * this.#options.electionTimeoutMs;
    const deadlineMs = this.#options.timers.nowMs() + timeoutMs;
    this.#pendingTransfers.push({ timeoutMs, satisfied: (_, leaderId) => leaderId === target, callback, deadlineMs, what: `transfer leadership to node ${target}` });
  }

  #adminRefusal(result: Exclude<ReturnType<Raft["proposeMembership"]>, { ok: true }>, action: string): PgraftError {
    switch (result.reason) {
      case "not_leader":
        if (result.leaderId === NODE_NONE) return new NoQuorumError(action, `node ${this.id} knows no leader`);
        return new NotLeaderError(result.leaderId, action);
      case "transferring":
        return new NotLeaderError(result.transferee, action);
      case "change_in_progress":
        return new MembershipChangeInProgressError(result.configIndex);
      case "leader_not_ready":
        return new MembershipChangeInProgressError(undefined, `node ${this.id} became leader at term ${result.term} and has not yet committed an entry of that term`);
      case "invalid":
        return new InvalidRequestError(`Cannot ${action}: ${result.message}`);
      case "busy":
        return new BusyError("uncommitted entries", RAFT_CONFIG_DEFAULTS.uncommittedEntriesMax);
    }
  }

  /** A serializable read: this node's applied state, possibly stale, available on any node. */
  readLocal(key: string): KvOutput {
    return this.store.read(key);
  }

  // -------------------------------------------------------------------------------------------------

  #refusal(action: string): PgraftError | undefined {
    if (this.raft.role === "leader") return undefined;
    const leaderId = this.raft.leaderId;
    if (leaderId === NODE_NONE) return new NoQuorumError(action, `node ${this.id} knows no leader`);
    return new NotLeaderError(leaderId, action);
  }

  #pendingRequestsMax(): number {
    return this.#options.pendingRequestsMax ?? PENDING_REQUESTS_MAX_DEFAULT;
  }

  /**
   * Ticks keep to a grid of tickMs on the node's clock, as Go's time.Ticker behind etcd's ticks does.
   * A chain of after(tickMs) drifts: every timer fires late by the event loop's delay, and on a busy
   * machine 20 ticks of 10 ms took 250-300 ms, so a node's election timeout and CheckQuorum window
   * were longer than configured (the chaos run of frequent-elections saw a leader survive that the
   * configured window would have stepped down). A tick that comes too late is not made up for by a
   * burst of ticks (after a stall that would start elections at once); the next is due on the grid.
   * In the simulator timers fire on time, so the ticks are what they were, except after a pause.
   */
  #scheduleTick(): void {
    if (this.#stopped) return;
    const timers = this.#options.timers;
    const tickMs = this.#options.tickMs;
    const nowMs = timers.nowMs();
    // How late the tick that just ran came; never negative (a timer may fire a hair early), and
    // below a microsecond it is the rounding of a drifting simulated clock, not lateness.
    const lateMs = this.#tickDueMs === undefined ? 0 : nowMs - this.#tickDueMs;
    const delayMs = lateMs < TICK_LATE_MS_MIN ? tickMs : tickMs - (lateMs % tickMs);
    assert(delayMs > 0 && delayMs <= tickMs, `next tick in ${delayMs} ms, tick ${tickMs} ms, late ${lateMs} ms`);
    this.#tickDueMs = nowMs + delayMs;
    this.#tickTimer = timers.after(delayMs, () => {
      this.tick();
      this.#scheduleTick();
    });
  }

  #scheduleBatch(size: number): void {
    if (size >= this.#options.entriesPerAppendMax || this.#options.maxBatchDelayMs === 0) {
      this.#flushBatches();
      return;
    }
    if (this.#batchTimer) return;
    // Proposals that arrive together (in one event-loop turn: everything that queued up while the last
    // batch was being written) go out as one batch, one append and one fsync. That is well within
    // pgraft.max_batch_delay, so no proposal waits out a fixed timer (etcd batches the same way).
    const flush = (): void => {
      this.#batchTimer = undefined;
      if (!this.#stopped) this.#flushBatches();
    };
    const timers = this.#options.timers;
    this.#batchTimer = timers.soon ? timers.soon(flush) : timers.after(this.#options.maxBatchDelayMs, flush);
  }

  #flushBatches(): void {
    this.#batchTimer?.cancel();
    this.#batchTimer = undefined;
    this.#flushWrites();
    this.#flushReads();
    this.#processReady();
  }

  #flushWrites(): void {
    const batch = this.#writeBatch;
    this.#writeBatch = [];
    for (let start = 0; start < batch.length; start += this.#options.entriesPerAppendMax) {
      const chunk = batch.slice(start, start + this.#options.entriesPerAppendMax);
      const result = this.raft.propose(chunk.map((item) => encodeWrite(item.write)));
      if (!result.ok) {
        const error =
          result.reason === "busy"
            ? new BusyError("uncommitted entries", RAFT_CONFIG_DEFAULTS.uncommittedEntriesMax)
            : result.reason === "transferring"
              ? new NotLeaderError(result.transferee, "write")
              : this.#refusal("write")!;
        for (const item of chunk) item.callback({ ok: false, error });
        continue;
      }
      const first = result.index - chunk.length + 1;
      chunk.forEach((item, i) => {
        const index = first + i;
        // An older proposal at this index (from an earlier term of ours) was replaced when our log was
        // truncated: it will never apply.
        this.#pendingWrites.get(index)?.callback({ ok: false, error: new SupersededError(index) });
        this.#pendingWrites.set(index, { index, term: result.term, callback: item.callback, deadlineMs: item.deadlineMs });
      });
    }
  }

  #flushReads(): void {
    if (this.#readBatch.length === 0) return;
    const batch = this.#readBatch;
    this.#readBatch = [];
    const requestId = ++this.#readRequestId;
    const result = this.raft.readIndex(requestId);
    if (!result.ok) {
      const error = result.reason === "busy" ? new BusyError("pending reads", RAFT_CONFIG_DEFAULTS.pendingReadsMax) : this.#refusal("read")!;
      for (const read of batch) read.callback({ ok: false, error });
      return;
    }
    this.#readRounds.set(requestId, batch);
  }

  #processReady(): void {
    for (let round = 0; round < READY_ROUNDS_MAX && this.raft.hasReady(); round++) {
      const ready = this.raft.ready();
      // 0. Messages whose safety does not rest on this Ready's write go out while it is under way:
      // - a leader's appends, when their term is already durable (thesis 10.2.1): followers persist
      //   before they acknowledge, and the core counts the leader's own copy only after step 1;
      // - vote and pre-vote requests: a candidate's own vote counts only for itself, and it acts on
      //   answers only after step 1; were it to crash first, it never led, and after restarting it
      //   votes at most once more in that term. (Vote grants still wait for step 1.)
      const early = ready.messages.filter(
        (message) =>
          (message.type === "MsgApp" && message.term === this.#durableTerm) || message.type === "MsgVote" || message.type === "MsgPreVote",
      );
      for (const message of early) this.#options.transport.send(message);
      // 1. Persist before anything else that depends on it leaves the node.
      if (ready.hardState || ready.snapshot || ready.entries.length > 0) {
        this.#options.observer?.persisting?.(this.id, ready);
        this.#options.persistence.save({ hardState: ready.hardState, snapshot: ready.snapshot, entries: ready.entries });
        if (ready.hardState) this.#durableTerm = ready.hardState.term;
      }
      this.#options.observer?.persisted?.(this.id, ready);
      // 2. Send the rest.
      for (const message of ready.messages) if (!early.includes(message)) this.#options.transport.send(message);
      // 3. Apply.
      if (ready.snapshot) this.#installSnapshot(ready.snapshot);
      for (const entry of ready.committedEntries) this.#apply(entry);
      for (const readState of ready.readStates) this.#readRoundDone(readState.requestId, readState.index);
      if (ready.softState && ready.softState.role !== "leader") this.#lostLeadership();
      if (ready.softState) this.#leaseExpiryMs.clear(); // a new leader starts every lease afresh
      if (ready.softState) this.#settleAdmin(this.#pendingTransfers, this.#appliedMembership, ready.softState.leaderId);
      this.raft.advance(ready);
      this.#serveReads();
      this.#maybeSnapshot();
      if (ready.snapshot || ready.committedEntries.length > 0) for (const listener of this.#applyListeners) listener();
    }
  }

  /**
   * The leader expires leases: each lease not yet timed gets its full TTL from now; each one past its
   * expiry is revoked through the log (a `lease_revoke` entry), so every node deletes its keys at the
   * same index. A revoke that fails (leadership lost, timeout) is retried while this node leads.
   */
  #expireLeases(): void {
    if (this.#stopped || this.raft.role !== "leader") return;
    const nowMs = this.#options.timers.nowMs();
    const leases = this.store.leases();
    if (leases.length === 0 && this.#leaseExpiryMs.size === 0) return;
    const live = new Set<number>();
    for (const lease of leases) {
      live.add(lease.id);
      const expiryMs = this.#leaseExpiryMs.get(lease.id);
      if (expiryMs === undefined) {
        this.#leaseExpiryMs.set(lease.id, nowMs + lease.ttlSec * 1000);
        continue;
      }
      if (expiryMs > nowMs || this.#leasesExpiring.has(lease.id) || this.#leasesExpiring.size >= LEASE_REVOKES_INFLIGHT_MAX) continue;
      this.#leasesExpiring.add(lease.id);
      this.#options.logger?.(`lease ${lease.id} expired (TTL ${lease.ttlSec} s): revoking it`);
      this.write({ op: "lease_revoke", id: lease.id, expired: true }, () => this.#leasesExpiring.delete(lease.id));
    }
    for (const id of this.#leaseExpiryMs.keys()) if (!live.has(id)) this.#leaseExpiryMs.delete(id);
  }

  #apply(entry: Entry): void {
    if (entry.kind === "command") {
      const output = this.store.apply(entry.index, decodeWrite(entry.data));
      this.#options.observer?.applied?.(this.id, entry);
      const pending = this.#pendingWrites.get(entry.index);
      if (pending) {
        this.#pendingWrites.delete(entry.index);
        if (pending.term === entry.term) pending.callback({ ok: true, output, index: entry.index });
        else pending.callback({ ok: false, error: new SupersededError(entry.index) });
      }
    } else {
      this.store.skip(entry.index);
      this.#options.observer?.applied?.(this.id, entry);
      if (entry.kind === "config") {
        this.#appliedMembership = decodeMembership(entry.data);
        this.#settleAdmin(this.#pendingMembership, this.#appliedMembership, this.raft.leaderId);
      }
      const pending = this.#pendingWrites.get(entry.index);
      if (pending) {
        this.#pendingWrites.delete(entry.index);
        pending.callback({ ok: false, error: new SupersededError(entry.index) });
      }
    }
  }

  #installSnapshot(snapshot: Snapshot): void {
    this.#store = KvStore.restore(snapshot.data);
    this.#appliedMembership = snapshot.metadata.membership;
    this.#snapshotIndex = snapshot.metadata.index;
    this.#options.observer?.snapshotInstalled?.(this.id, snapshot);
  }

  /**
   * Every pgraft.snapshot_interval applied entries, saves the state machine as a snapshot and compacts
   * the log, keeping pgraft.max_log_entries entries behind the snapshot for followers that lag a little.
   * With a persistence that saves in the background, the image is made and written a part per turn of
   * the event loop, so requests keep being served while a large store is saved (it took 300 ms and more
   * in one piece, the whole p99 tail of bench:node at 256 clients); one snapshot at a time.
   */
  #maybeSnapshot(): void {
    if (this.#snapshotJob !== undefined) return;
    const interval = this.#options.snapshotIntervalEntries ?? SNAPSHOT_INTERVAL_ENTRIES_DEFAULT;
    const applied = this.#store.appliedIndex;
    if (applied - this.#snapshotIndex < interval || applied < this.#snapshotRetryIndex) return;
    const term = this.raft.log.term(applied);
    assert(term !== undefined, `maybeSnapshot(): applied entry ${applied} is not in the log`);
    const metadata: SnapshotMetadata = { index: applied, term, membership: this.#appliedMembership };
    let background: BackgroundSnapshotWrite | undefined;
    try {
      background = this.#options.persistence.beginSnapshot?.(metadata);
    } catch (error) {
      return this.#snapshotFailed(metadata, error instanceof Error ? error : new Error(String(error)));
    }
    if (background !== undefined) return this.#snapshotInBackground(metadata, background);
    const snapshot: Snapshot = { metadata, data: this.#store.snapshot() };
    this.#options.persistence.save({ snapshot, entries: [] });
    this.#snapshotSaved(snapshot);
  }

  #snapshotInBackground(metadata: SnapshotMetadata, write: BackgroundSnapshotWrite): void {
    const { appliedIndex, parts } = this.#store.snapshotParts(SNAPSHOT_PART_RECORDS);
    assert(appliedIndex === metadata.index, `snapshot of index ${metadata.index} from a store at ${appliedIndex}`);
    const job = { write, parts: [] as string[] };
    this.#snapshotJob = job;
    const failed = (error: Error): void => {
      this.#snapshotJob = undefined;
      write.abandon();
      this.#snapshotFailed(metadata, error);
    };
    const next = (error?: Error): void => {
      if (this.#snapshotJob !== job) return; // abandoned: the node stopped
      if (error) return failed(error);
      const part = parts.next();
      if (!part.done) {
        job.parts.push(part.value);
        write.append(part.value, next);
        return;
      }
      write.finish((finishError) => {
        if (this.#snapshotJob !== job) return;
        if (finishError) return failed(finishError);
        this.#snapshotJob = undefined;
        // The leader's snapshot, newer, may be in the core already and not yet saved: the core restores
        // it when the message arrives, the storage saves it with the next Ready, and this callback can
        // come between the two (swarm seed 3234: a paused follower resumed, started its own snapshot,
        // then received the leader's). Ours is of no use then; committing it would hand the core a
        // snapshot below the start of its log.
        if (this.raft.log.snapshotIndex >= metadata.index) {
          write.abandon();
          return;
        }
        // Concatenated, not joined: V8 keeps the parts as a rope, flattened only if the image is read
        // (sent to a follower). join("") copied 37 MB in one 160 ms stall, the longest left.
        let data = "";
        for (const part of job.parts) data += part;
        const snapshot: Snapshot = { metadata, data };
        // Not committed when the leader's snapshot, newer, was installed meanwhile.
        if (write.commit(snapshot)) this.#snapshotSaved(snapshot);
      });
    };
    next();
  }

  /**
   * A background snapshot failed (a full disk, most likely): the log keeps its entries, and the next
   * try waits for another interval of applied entries rather than copying the store again at once.
   */
  #snapshotFailed(metadata: SnapshotMetadata, error: Error): void {
    const interval = this.#options.snapshotIntervalEntries ?? SNAPSHOT_INTERVAL_ENTRIES_DEFAULT;
    this.#snapshotRetryIndex = metadata.index + interval;
    this.#options.logger?.(
      `${this.id}: Cannot save this node's snapshot at index ${metadata.index}: ${error.message}; the log is not compacted and grows until ` +
        `a snapshot succeeds. Free space in the data directory (or fix what the error names); the next try is at index ${this.#snapshotRetryIndex}`,
    );
  }

  #abandonSnapshot(): void {
    const job = this.#snapshotJob;
    this.#snapshotJob = undefined;
    job?.write.abandon();
  }

  /** The snapshot is durable: compact the log behind it. */
  #snapshotSaved(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    const compactThrough = Math.max(0, index - (this.#options.logEntriesMax ?? LOG_ENTRIES_MAX_DEFAULT));
    if (compactThrough > 0) this.#options.persistence.compact(compactThrough);
    this.raft.snapshotCreated(snapshot, compactThrough);
    this.#snapshotIndex = Math.max(this.#snapshotIndex, index);
    this.#options.observer?.snapshotTaken?.(this.id, snapshot, compactThrough);
  }

  #settleAdmin(pending: PendingAdmin[], membership: Membership, leaderId: NodeId): void {
    for (let i = pending.length - 1; i >= 0; i--) {
      const item = pending[i]!;
      if (!item.satisfied(membership, leaderId)) continue;
      pending.splice(i, 1);
      item.callback({ ok: true, membership });
    }
  }

  #expireAdmin(nowMs: number): void {
    for (const [pending, outcome] of [
      [this.#pendingMembership, "unknown"],
      [this.#pendingTransfers, "failed"],
    ] as const) {
      for (let i = pending.length - 1; i >= 0; i--) {
        const item = pending[i]!;
        if (item.deadlineMs > nowMs) continue;
        pending.splice(i, 1);
        const error =
          outcome === "failed"
            ? new LeadershipTransferError(`Cannot ${item.what}: no election completed in time, so the transfer was aborted; this node still leads`)
            : new RequestTimeoutError(item.what, item.timeoutMs, "unknown", "check the members (pgraft member list) before retrying");
        item.callback({ ok: false, error });
      }
    }
  }

  #readRoundDone(requestId: number, index: number): void {
    const reads = this.#readRounds.get(requestId);
    if (!reads) return;
    this.#readRounds.delete(requestId);
    this.#readsAwaitingApply.push({ index, reads });
  }

  #serveReads(): void {
    const applied = this.store.appliedIndex;
    while (this.#readsAwaitingApply.length > 0 && this.#readsAwaitingApply[0]!.index <= applied) {
      const { index, reads } = this.#readsAwaitingApply.shift()!;
      for (const read of reads) read.callback({ ok: true, output: this.store.read(read.key), index });
    }
  }

  /** Reads in flight can no longer be confirmed: they change nothing, so they fail definitely. */
  #lostLeadership(): void {
    this.#leasesExpiring.clear();
    const error = this.#refusal("read") ?? new NoQuorumError("read");
    for (const reads of this.#readRounds.values()) for (const read of reads) read.callback({ ok: false, error });
    this.#readRounds.clear();
    for (const { reads } of this.#readsAwaitingApply) for (const read of reads) read.callback({ ok: false, error });
    this.#readsAwaitingApply = [];
    // Pending writes stay: their entries may still commit under the next leader. They resolve when
    // their index is applied (ok or superseded) or when they time out (outcome unknown).
  }

  #expireRequests(): void {
    const nowMs = this.#options.timers.nowMs();
    this.#expireAdmin(nowMs);
    const timeoutMs = this.#options.requestTimeoutMs;
    for (const [index, pending] of this.#pendingWrites) {
      if (pending.deadlineMs > nowMs) continue;
      this.#pendingWrites.delete(index);
      pending.callback({ ok: false, error: new RequestTimeoutError("write", timeoutMs, "unknown") });
    }
    for (const [requestId, reads] of this.#readRounds) {
      if (reads[0]!.deadlineMs > nowMs) continue;
      this.#readRounds.delete(requestId);
      for (const read of reads) read.callback({ ok: false, error: new RequestTimeoutError("read", timeoutMs, "failed") });
    }
  }
}
