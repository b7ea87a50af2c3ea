/**
 * The Raft state machine (Ongaro & Ousterhout; thesis chapters 3, 6, 9), pure and deterministic.
 *
 * It owns no clock, no randomness source, no timers and no I/O: the runtime calls `tick()` at a fixed
 * period, feeds it messages with `step()`, proposes with `propose()`, and drains its work through
 * `ready()` / `advance()` (the ordering rules are written on the Ready type). Randomness for election
 * timeouts comes from an injected function, so a simulator seed fixes every draw.
 *
 * Shape, after etcd-io/raft: one `step()` handles what every role shares (terms and votes), then hands
 * the message to `stepLeader`, `stepCandidate` or `stepFollower`, chosen by the `become*` transitions.
 */
import { assert, unreachable } from "../assert.ts";
import { changeMembership, decodeMembership, encodeMembership, type MembershipRequest } from "./membership.ts";
import { Progress } from "./progress.ts";
import { committedIndex, quorumSize, voteResult } from "./quorum.ts";
import { RaftLog } from "./raft-log.ts";
import type {
  Entry,
  HardState,
  Membership,
  Message,
  MsgApp,
  MsgAppResp,
  MsgHeartbeat,
  MsgHeartbeatResp,
  MsgPreVote,
  MsgSnap,
  MsgVote,
  NodeId,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SoftState,
} from "./types.ts";
import { NODE_NONE } from "./types.ts";

export interface RaftConfig {
  readonly id: NodeId;
  /** Minimum election timeout in ticks; each timeout is drawn uniformly from [T, 2T). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Thesis 9.6: a node first asks whether it could win before disrupting the cluster. */
  readonly preVote: boolean;
  /** Thesis 6.2: a leader that has not heard from a quorum within an election timeout steps down. */
  readonly checkQuorum: boolean;
  /** pgraft.batch_size: entries in one append message. */
  readonly entriesPerAppendMax: number;
  /** Append messages in flight to one follower before the leader waits for answers. */
  readonly inflightAppendsMax: number;
  /** Proposed but uncommitted entries before new proposals are refused as busy. */
  readonly uncommittedEntriesMax: number;
  /** Committed entries handed out in one Ready. */
  readonly committedEntriesPerReadyMax: number;
  /** Pending ReadIndex requests before new reads are refused as busy. */
  readonly pendingReadsMax: number;
  /** Uniform random number in [0, 1); the only source of randomness. */
  readonly random: () => number;
  /** Optional story of what the node does, one line per event, each starting with the node id. */
  readonly logger?: (line: string) => void;
}

export const RAFT_CONFIG_DEFAULTS = {
  preVote: true,
  checkQuorum: true,
  entriesPerAppendMax: 100,
  inflightAppendsMax: 256,
  uncommittedEntriesMax: 10_000,
  committedEntriesPerReadyMax: 1_000,
  pendingReadsMax: 10_000,
} as const;

/** What the runtime recovered from stable storage. */
export interface RaftRestoreState {
  readonly hardState: HardState;
  readonly snapshot?: Snapshot;
  readonly entries: readonly Entry[];
  /** Membership when no snapshot or config entry says otherwise (the initial cluster). */
  readonly membership: Membership;
  /** Highest index already applied to the state machine (0 when it is rebuilt from the log). */
  readonly applied: number;
}

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly reason: "not_leader"; readonly leaderId: NodeId }
  | { readonly ok: false; readonly reason: "busy" }
  /** A leadership transfer is under way: proposals wait for the new leader (thesis 3.10). */
  | { readonly ok: false; readonly reason: "transferring"; readonly transferee: NodeId };

export type MembershipProposeResult =
  | ProposeResult
  | { readonly ok: false; readonly reason: "change_in_progress"; readonly configIndex: number }
  /** A new leader has not yet committed an entry of its own term (see proposeMembership). */
  | { readonly ok: false; readonly reason: "leader_not_ready"; readonly term: number }
  | { readonly ok: false; readonly reason: "invalid"; readonly message: string };

export type TransferResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: "not_leader"; readonly leaderId: NodeId }
  | { readonly ok: false; readonly reason: "invalid"; readonly message: string }
  | { readonly ok: false; readonly reason: "busy"; readonly transferee: NodeId };

export type ReadIndexResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: "not_leader"; readonly leaderId: NodeId }
  | { readonly ok: false; readonly reason: "busy" };

/** Counters for metrics and the SQL status functions; monotonic for the life of the process. */
export interface RaftCounters {
  messagesReceived: number;
  messagesSent: number;
  heartbeatsSent: number;
  preVotesStarted: number;
  electionsStarted: number;
  electionsWon: number;
  leaderChanges: number;
  proposalsAccepted: number;
  proposalsRejected: number;
}

export interface PeerStatus {
  readonly id: NodeId;
  readonly match: number;
  readonly next: number;
  readonly state: Progress["state"];
  /** Ticks since the follower last answered the leader. */
  readonly ticksSinceResponse: number;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly leaderId: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly firstIndex: number;
  readonly membership: Membership;
  /** Index of the entry that set `membership` (0: the snapshot or the initial cluster). */
  readonly configIndex: number;
  /** Only on a leader: the node leadership is being handed to, or 0. */
  readonly leadTransferee: NodeId;
  /** Index of the latest local snapshot, 0 when none. */
  readonly snapshotIndex: number;
  /** Only on a leader: true while a quorum answered within the last election timeout. */
  readonly quorumActive: boolean;
  readonly peers: readonly PeerStatus[];
  readonly counters: Readonly<RaftCounters>;
}

interface PendingRead {
  readonly requestId: number;
  readonly index: number;
  readonly context: number;
  readonly acks: Set<NodeId>;
}

export class Raft {
  readonly id: NodeId;
  #config: RaftConfig;
  #membership: Membership;
  /** Index of the configuration entry behind #membership; 0 when it comes from below the log. */
  #configIndex = 0;
  /** Membership as of the log's start: the snapshot's, or the initial cluster's. */
  #baseMembership: Membership;
  /** The latest snapshot this node holds, sent to followers that need compacted entries. */
  #snapshot: Snapshot | undefined;
  #log: RaftLog;
  #leadTransferee: NodeId = NODE_NONE;
  #transferElapsed = 0;
  #timeoutNowSent = false;

  #term = 0;
  #vote: NodeId = NODE_NONE;
  #role: Role = "follower";
  #leaderId: NodeId = NODE_NONE;

  /** Ticks since the last election timeout reset (followers: since the leader was last heard). */
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTicks = 0;
  /** Total ticks seen; the leader's clock for follower activity. */
  #tickCount = 0;

  #votes = new Map<NodeId, boolean>();
  #progress = new Map<NodeId, Progress>();

  #messages: Message[] = [];
  #readStates: ReadState[] = [];
  #pendingReads: PendingRead[] = [];
  /** ReadIndex requests that arrived before this leader committed an entry of its own term. */
  #deferredReads: number[] = [];
  #readContext = 0;

  #previousHardState: HardState;
  #previousSoftState: SoftState;
  #readyOutstanding = false;

  readonly counters: RaftCounters = {
    messagesReceived: 0,
    messagesSent: 0,
    heartbeatsSent: 0,
    preVotesStarted: 0,
    electionsStarted: 0,
    electionsWon: 0,
    leaderChanges: 0,
    proposalsAccepted: 0,
    proposalsRejected: 0,
  };

  constructor(config: RaftConfig, restored: RaftRestoreState) {
    assert(config.id !== NODE_NONE, "Raft needs a non-zero node id");
    assert(config.heartbeatTicks >= 1, "heartbeatTicks must be at least 1");
    assert(config.electionTicks > config.heartbeatTicks, "electionTicks must exceed heartbeatTicks");
    assert(config.entriesPerAppendMax >= 1, "entriesPerAppendMax must be at least 1");
    this.id = config.id;
    this.#config = config;
    this.#baseMembership = restored.snapshot?.metadata.membership ?? restored.membership;
    this.#membership = this.#baseMembership;
    this.#snapshot = restored.snapshot;
    this.#log = RaftLog.restore({
      snapshot: restored.snapshot,
      entries: restored.entries,
      commit: restored.hardState.commit,
      applied: restored.applied,
    });
    this.#term = restored.hardState.term;
    this.#vote = restored.hardState.vote;
    this.#refreshMembership();
    this.#previousHardState = this.hardState();
    this.#becomeFollower(this.#term, NODE_NONE);
    this.#previousSoftState = this.softState();
  }

  // -------------------------------------------------------------------------------------------------
  // Inputs

  /** Advances logical time by one tick. */
  tick(): void {
    this.#tickCount++;
    if (this.#role === "leader") this.#tickLeader();
    else this.#tickElection();
  }

  /** Proposes commands for replication. Only a leader accepts them. */
  propose(commands: readonly string[], kind: Entry["kind"] = "command"): ProposeResult {
    assert(commands.length > 0, "propose() needs at least one command");
    if (this.#role !== "leader") {
      this.counters.proposalsRejected += commands.length;
      return { ok: false, reason: "not_leader", leaderId: this.#leaderId };
    }
    if (this.#leadTransferee !== NODE_NONE) {
      this.counters.proposalsRejected += commands.length;
      return { ok: false, reason: "transferring", transferee: this.#leadTransferee };
    }
    if (this.#log.lastIndex() - this.#log.committed + commands.length > this.#config.uncommittedEntriesMax) {
      this.counters.proposalsRejected += commands.length;
      return { ok: false, reason: "busy" };
    }
    const first = this.#log.lastIndex() + 1;
    const entries = commands.map((data, i): Entry => ({ index: first + i, term: this.#term, kind, data }));
    this.#log.append(entries);
    this.counters.proposalsAccepted += commands.length;
    // Replication starts at once, in parallel with the leader's own write (thesis 10.2.1): the leader
    // counts itself toward the quorum only once its write is done (see advance()).
    this.#broadcastAppend(false);
    return { ok: true, index: entries[entries.length - 1]!.index, term: this.#term };
  }

  /**
   * Proposes adding (as a learner, promoted once caught up) or removing one node, or updating a
   * member's name and client URL. One change at a time: a second waits until the first is committed.
   */
  proposeMembership(request: Exclude<MembershipRequest, { readonly type: "promote" }>): MembershipProposeResult {
    if (this.#role !== "leader") return { ok: false, reason: "not_leader", leaderId: this.#leaderId };
    if (this.#leadTransferee !== NODE_NONE) return { ok: false, reason: "transferring", transferee: this.#leadTransferee };
    if (this.#configIndex > this.#log.committed) return { ok: false, reason: "change_in_progress", configIndex: this.#configIndex };
    // A leader changes the configuration only after committing an entry of its own term (Ongaro,
    // raft-dev 2015, "bug in single-server membership changes"). Otherwise a change an earlier leader
    // left uncommitted on a few nodes, and this leader's own change, may each gather a majority of a
    // different configuration: two leaders of one term. The no-op of #becomeLeader commits soon.
    if (!this.#committedInTerm()) return { ok: false, reason: "leader_not_ready", term: this.#term };
    const change = changeMembership(this.#membership, request);
    if (!change.ok) return { ok: false, reason: "invalid", message: change.reason };
    const index = this.#appendConfig(change.membership);
    this.#logLine(`proposed ${request.type} of node ${request.nodeId} at index ${index}: voters ${change.membership.voters.join(",")} learners ${change.membership.learners.join(",") || "-"}`);
    return { ok: true, index, term: this.#term };
  }

  /** Hands leadership to `target` (thesis 3.10): catch it up, then tell it to campaign at once. */
  transferLeadership(target: NodeId): TransferResult {
    if (this.#role !== "leader") return { ok: false, reason: "not_leader", leaderId: this.#leaderId };
    if (target === this.id) return { ok: false, reason: "invalid", message: `node ${target} is already the leader` };
    if (!this.#membership.voters.includes(target)) return { ok: false, reason: "invalid", message: `node ${target} is not a voting member` };
    if (this.#leadTransferee !== NODE_NONE) {
      if (this.#leadTransferee === target) return { ok: true };
      return { ok: false, reason: "busy", transferee: this.#leadTransferee };
    }
    this.#leadTransferee = target;
    this.#transferElapsed = 0;
    this.#timeoutNowSent = false;
    this.#logLine(`transferring leadership to ${target} at term ${this.#term}`);
    this.#maybeSendTimeoutNow();
    if (!this.#timeoutNowSent) this.#sendAppend(target, true);
    return { ok: true };
  }

  /**
   * The runtime saved `snapshot` (covering every entry up to its index); the core keeps it to send to
   * followers that fall behind, and drops log entries up to `compactThrough` (log compaction).
   */
  snapshotCreated(snapshot: Snapshot, compactThrough: number): void {
    const index = snapshot.metadata.index;
    assert(index <= this.#log.applied, `snapshotCreated(): snapshot ${index} beyond applied ${this.#log.applied}`);
    assert(compactThrough <= index, `snapshotCreated(): compaction ${compactThrough} beyond the snapshot ${index}`);
    assert(this.#log.term(index) === snapshot.metadata.term || index === this.#log.snapshotIndex, "snapshotCreated(): wrong term");
    if (!this.#snapshot || index > this.#snapshot.metadata.index) this.#snapshot = snapshot;
    if (compactThrough > this.#log.snapshotIndex) {
      const term = this.#log.term(compactThrough);
      assert(term !== undefined, `snapshotCreated(): entry ${compactThrough} unknown`);
      // The membership below the log's new start is the one in force at `compactThrough`: the latest
      // configuration entry at or below it. A newer, uncommitted one above it may still be replaced,
      // and then #refreshMembership() must fall back to this one, not to an older one.
      this.#baseMembership = this.#membershipAt(compactThrough);
      this.#log.compactTo(compactThrough, term);
    }
  }

  /**
   * Starts a linearizable read (thesis 6.4, ReadIndex). The answer arrives in `Ready.readStates` once a
   * quorum has confirmed this node is still the leader.
   */
  readIndex(requestId: number): ReadIndexResult {
    if (this.#role !== "leader") return { ok: false, reason: "not_leader", leaderId: this.#leaderId };
    if (this.#pendingReads.length + this.#deferredReads.length >= this.#config.pendingReadsMax) {
      return { ok: false, reason: "busy" };
    }
    if (this.#log.term(this.#log.committed) !== this.#term) {
      // Our commit index may lag the cluster's until an entry of our own term commits (thesis 6.4 step 1).
      this.#deferredReads.push(requestId);
      return { ok: true };
    }
    this.#startRead(requestId);
    return { ok: true };
  }

  /** Feeds a message from a peer. */
  step(message: Message): void {
    if (message.to !== this.id) assert(false, `${this.id} got a message for ${message.to}`);
    assert(!this.#readyOutstanding, "step() between ready() and advance()");
    this.counters.messagesReceived++;
    if ((message.type === "MsgVote" || message.type === "MsgPreVote") && this.#ignoreOutsider(message)) return;
    if (message.term > this.#term) {
      if (!this.#acceptHigherTerm(message)) return;
    } else if (message.term < this.#term) {
      this.#answerStaleTerm(message);
      return;
    }
    switch (message.type) {
      case "MsgPreVote":
      case "MsgVote":
        this.#handleVoteRequest(message);
        return;
      default:
        break;
    }
    switch (this.#role) {
      case "leader":
        this.#stepLeader(message);
        return;
      case "candidate":
      case "pre-candidate":
        this.#stepCandidate(message);
        return;
      case "follower":
        this.#stepFollower(message);
        return;
      default:
        unreachable(this.#role, "role");
    }
  }

  /**
   * The runtime saw the connection to `peer` close, as it does at once when a process dies. If that
   * peer is our leader, stop waiting out the election timeout: forget the leader (and its lease) and
   * campaign after a short random delay, so that followers who all noticed at once rarely collide.
   * Safety does not depend on this: if the leader is in fact alive, the followers still in its lease
   * refuse our pre-vote (thesis 9.6), and without PreVote this only starts an election a little early.
   */
  peerUnreachable(peer: NodeId): void {
    if (this.#role !== "follower" || peer !== this.#leaderId || peer === NODE_NONE) return;
    this.#leaderId = NODE_NONE;
    const ticksLeft = 1 + Math.floor(this.#config.random() * 2 * this.#config.heartbeatTicks);
    this.#electionElapsed = Math.max(this.#electionElapsed, this.#randomizedElectionTicks - ticksLeft);
    this.#logLine(`lost the connection to leader ${peer} at term ${this.#term}: campaigning in ${ticksLeft} ticks`);
  }

  /** Starts an election now (tests and leadership transfer); honours PreVote. */
  campaign(): void {
    if (this.#role === "leader") return;
    this.#campaign(this.#config.preVote ? "pre-vote" : "election", false);
  }

  // -------------------------------------------------------------------------------------------------
  // Outputs

  hasReady(): boolean {
    return (
      this.#messages.length > 0 ||
      this.#readStates.length > 0 ||
      this.#log.pendingSnapshot !== undefined ||
      this.#log.unstableFrom <= this.#log.lastIndex() ||
      this.#log.applying < Math.min(this.#log.committed, this.#log.lastIndex()) ||
      !sameHardState(this.hardState(), this.#previousHardState) ||
      !sameSoftState(this.softState(), this.#previousSoftState)
    );
  }

  ready(): Ready {
    assert(!this.#readyOutstanding, "ready() called twice without advance()");
    this.#readyOutstanding = true;
    const hardState = this.hardState();
    const softState = this.softState();
    const committedEntries = this.#log.nextCommittedEntries(this.#config.committedEntriesPerReadyMax);
    if (committedEntries.length > 0) this.#log.applying = committedEntries[committedEntries.length - 1]!.index;
    const ready: Ready = {
      hardState: sameHardState(hardState, this.#previousHardState) ? undefined : hardState,
      softState: sameSoftState(softState, this.#previousSoftState) ? undefined : softState,
      snapshot: this.#log.pendingSnapshot,
      entries: this.#log.unstableEntries(),
      messages: this.#messages,
      committedEntries,
      readStates: this.#readStates,
    };
    this.#messages = [];
    this.#readStates = [];
    this.counters.messagesSent += ready.messages.length;
    return ready;
  }

  /** The runtime has persisted, sent and applied everything in `ready`. */
  advance(ready: Ready): void {
    assert(this.#readyOutstanding, "advance() without ready()");
    this.#readyOutstanding = false;
    if (ready.hardState) this.#previousHardState = ready.hardState;
    if (ready.softState) this.#previousSoftState = ready.softState;
    if (ready.snapshot) {
      this.#log.pendingSnapshot = undefined;
      this.#log.stableIndex = Math.max(this.#log.stableIndex, ready.snapshot.metadata.index);
    }
    if (ready.entries.length > 0) {
      const last = ready.entries[ready.entries.length - 1]!;
      // The log may have been truncated since (it cannot: step() is refused until advance()).
      assert(this.#log.term(last.index) === last.term, "advance(): persisted entries vanished");
      this.#log.stableIndex = last.index;
      this.#log.unstableFrom = last.index + 1;
      if (this.#role === "leader") {
        // Now durable here, the leader's own copy counts toward the quorum (thesis 10.2.1).
        this.#progress.get(this.id)!.maybeUpdate(last.index);
        if (this.#maybeCommit()) this.#broadcastAppend(true);
      }
    }
    if (ready.committedEntries.length > 0) {
      this.#log.applied = ready.committedEntries[ready.committedEntries.length - 1]!.index;
    }
  }

  hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed };
  }

  softState(): SoftState {
    return { role: this.#role, leaderId: this.#leaderId };
  }

  status(): RaftStatus {
    const peers: PeerStatus[] = [];
    if (this.#role === "leader") {
      for (const [id, progress] of this.#progress) {
        if (id === this.id) continue;
        peers.push({
          id,
          match: progress.match,
          next: progress.next,
          state: progress.state,
          ticksSinceResponse: this.#tickCount - progress.lastResponseTick,
        });
      }
    }
    return {
      id: this.id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leaderId: this.#leaderId,
      commit: this.#log.committed,
      applied: this.#log.applied,
      lastIndex: this.#log.lastIndex(),
      lastTerm: this.#log.lastTerm(),
      firstIndex: this.#log.firstIndex(),
      membership: this.#membership,
      configIndex: this.#configIndex,
      leadTransferee: this.#leadTransferee,
      snapshotIndex: this.#snapshot?.metadata.index ?? 0,
      quorumActive: this.#role === "leader" && this.#quorumActive(),
      peers,
      counters: { ...this.counters },
    };
  }

  get role(): Role {
    return this.#role;
  }
  get term(): number {
    return this.#term;
  }
  /** The configuration in force: the latest configuration entry in the log, committed or not. */
  get membership(): Membership {
    return this.#membership;
  }

  /**
   * The configuration before `membership` while that one is uncommitted (one change at a time, so this
   * is the committed one), else `membership` itself. Nodes of either may still be needed.
   */
  get committedMembership(): Membership {
    return this.#configIndex <= this.#log.committed ? this.#membership : this.#membershipAt(this.#configIndex - 1);
  }

  /** Index of the entry behind `membership` (0 when it comes from the initial settings or a snapshot). */
  get configIndex(): number {
    return this.#configIndex;
  }

  get leaderId(): NodeId {
    return this.#leaderId;
  }
  get log(): Readonly<RaftLog> {
    return this.#log;
  }

  // -------------------------------------------------------------------------------------------------
  // Timers

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#randomizedElectionTicks && this.#mayCampaign()) {
      this.#electionElapsed = 0;
      this.#campaign(this.#config.preVote ? "pre-vote" : "election", false);
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#config.checkQuorum && !this.#quorumActive()) {
      this.#logLine(`stepped down at term ${this.#term}: no quorum answered within ${this.#config.electionTicks} ticks`);
      this.#becomeFollower(this.#term, NODE_NONE);
      return;
    }
    if (this.#leadTransferee !== NODE_NONE && ++this.#transferElapsed >= this.#config.electionTicks) {
      this.#logLine(`aborted leadership transfer to ${this.#leadTransferee} at term ${this.#term}: no election within ${this.#config.electionTicks} ticks`);
      this.#leadTransferee = NODE_NONE;
    }
    for (const progress of this.#progress.values()) {
      // A snapshot that got no answer within an election timeout is presumed lost: probe again.
      if (progress.state === "snapshot" && this.#tickCount - progress.snapshotSentTick >= this.#config.electionTicks) progress.becomeProbe();
    }
    if (this.#heartbeatElapsed >= this.#config.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat(this.#pendingReads.length > 0 ? this.#readContext : 0);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Role transitions

  #becomeFollower(term: number, leaderId: NodeId): void {
    const previousLeader = this.#leaderId;
    if (term !== this.#term) {
      assert(term > this.#term, `becomeFollower(): term ${term} below ${this.#term}`);
      this.#term = term;
      this.#vote = NODE_NONE;
    }
    this.#reset();
    this.#role = "follower";
    this.#leaderId = leaderId;
    this.#noteLeader(previousLeader);
  }

  #becomePreCandidate(): void {
    assert(this.#role !== "leader", "leader cannot become pre-candidate");
    // Pre-candidates keep their term and vote: a lost pre-vote disturbs nobody.
    this.#votes.clear();
    this.#electionElapsed = 0;
    this.#randomizeElectionTimeout();
    this.#role = "pre-candidate";
    this.#leaderId = NODE_NONE;
  }

  #becomeCandidate(): void {
    assert(this.#role !== "leader", "leader cannot become candidate");
    this.#term++;
    this.#vote = this.id;
    this.#reset();
    this.#role = "candidate";
    this.#leaderId = NODE_NONE;
  }

  #becomeLeader(): void {
    assert(this.#role === "candidate", `only a candidate can become leader, not a ${this.#role}`);
    const previousLeader = this.#leaderId;
    this.#reset();
    this.#role = "leader";
    this.#leaderId = this.id;
    this.counters.electionsWon++;
    const next = this.#log.lastIndex() + 1;
    this.#syncProgress();
    const own = this.#progress.get(this.id);
    if (own) {
      own.match = this.#log.stableIndex;
      own.becomeReplicate();
    }
    this.#logLine(`became leader at term ${this.#term}`);
    this.#noteLeader(previousLeader);
    // A no-op of our own term lets us commit entries of earlier terms (paper 5.4.2, Figure 8).
    this.#log.append([{ index: next, term: this.#term, kind: "noop", data: "" }]);
    this.#broadcastAppend(false);
  }

  #reset(): void {
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizeElectionTimeout();
    this.#votes.clear();
    this.#progress.clear();
    this.#pendingReads = [];
    this.#deferredReads = [];
    this.#leadTransferee = NODE_NONE;
    this.#timeoutNowSent = false;
  }

  #randomizeElectionTimeout(): void {
    const electionTicks = this.#config.electionTicks;
    const draw = this.#config.random();
    assert(draw >= 0 && draw < 1, `random() must return a number in [0, 1), got ${draw}`);
    this.#randomizedElectionTicks = electionTicks + Math.floor(draw * electionTicks);
  }

  #noteLeader(previousLeader: NodeId): void {
    if (this.#leaderId !== previousLeader && this.#leaderId !== NODE_NONE) this.counters.leaderChanges++;
  }

  #campaign(kind: "pre-vote" | "election", transfer: boolean): void {
    let term: number;
    if (kind === "pre-vote") {
      this.#becomePreCandidate();
      this.counters.preVotesStarted++;
      term = this.#term + 1;
      this.#logLine(`became pre-candidate at term ${this.#term}`);
    } else {
      this.#becomeCandidate();
      this.counters.electionsStarted++;
      term = this.#term;
      this.#logLine(`became candidate at term ${this.#term}`);
    }
    this.#votes.set(this.id, true);
    if (this.#tallyVotes(kind)) return;
    for (const id of this.#voters()) {
      if (id === this.id) continue;
      const lastLogIndex = this.#log.lastIndex();
      const lastLogTerm = this.#log.lastTerm();
      if (kind === "pre-vote") {
        this.#send({ type: "MsgPreVote", from: this.id, to: id, term, lastLogIndex, lastLogTerm });
      } else {
        this.#send({ type: "MsgVote", from: this.id, to: id, term, lastLogIndex, lastLogTerm, transfer });
      }
    }
  }

  /** Counts votes; acts on a decided result. Returns true when the campaign ended. */
  #tallyVotes(kind: "pre-vote" | "election"): boolean {
    const result = voteResult(this.#voters(), this.#votes);
    if (result === "won") {
      if (kind === "pre-vote") this.#campaign("election", false);
      else this.#becomeLeader();
      return true;
    }
    if (result === "lost") {
      this.#logLine(`lost the ${kind} at term ${this.#term}`);
      this.#becomeFollower(this.#term, NODE_NONE);
      return true;
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------------
  // Terms and votes: what every role shares

  /** A message carries a higher term. Returns whether to go on processing it. */
  #acceptHigherTerm(message: Message): boolean {
    if (message.type === "MsgPreVote" || message.type === "MsgVote") {
      const forced = message.type === "MsgVote" && message.transfer;
      // A node that hears from a live leader ignores vote requests (thesis 4.2.3, 9.6): a partitioned
      // node rejoining cannot depose a working leader.
      if (this.#inLease() && !forced) {
        this.#logLine(`ignored ${message.type} from ${message.from} at term ${message.term}: leader ${this.#leaderId} is live`);
        return false;
      }
    }
    if (message.type === "MsgPreVote") return true; // Never changes our term.
    if (message.type === "MsgPreVoteResp" && !message.reject) return true; // Granted pre-votes carry the future term.
    const leaderId =
      message.type === "MsgApp" || message.type === "MsgHeartbeat" || message.type === "MsgSnap" ? message.from : NODE_NONE;
    this.#logLine(`received ${message.type} from ${message.from} at higher term ${message.term}; became follower`);
    // A vote request alone does not restart the election timer (paper, Figure 2: only hearing from the
    // leader or granting the vote does). Restarting it, as etcd does, lets candidates whose logs cannot
    // win keep pushing back the timers of those that can, which stretches elections out.
    const keepTimer = message.type === "MsgVote" && this.#role !== "leader";
    const electionElapsed = this.#electionElapsed;
    const randomizedElectionTicks = this.#randomizedElectionTicks;
    this.#becomeFollower(message.term, leaderId);
    if (keepTimer) {
      this.#electionElapsed = electionElapsed;
      this.#randomizedElectionTicks = randomizedElectionTicks;
    }
    return true;
  }

  #answerStaleTerm(message: Message): void {
    if ((this.#config.checkQuorum || this.#config.preVote) && (message.type === "MsgApp" || message.type === "MsgHeartbeat")) {
      // A stale leader, perhaps cut off while we moved on without it. With PreVote its term may never
      // catch up by itself, so tell it ours and let it step down.
      this.#send({ type: "MsgAppResp", from: this.id, to: message.from, term: this.#term, reject: false, index: 0, hintIndex: 0, hintTerm: 0 });
    } else if (message.type === "MsgPreVote") {
      this.#send({ type: "MsgPreVoteResp", from: this.id, to: message.from, term: this.#term, reject: true });
    } else if (message.type === "MsgVote") {
      // Figure 2: "reply false if term < currentTerm", with our term, so the candidate catches up. etcd
      // ignores it; then a candidate whose term stays behind never wins a voter that campaigns only
      // among its own (newer, uncommitted) configuration. Swarm seed 4967 (PreVote off): n2, whose log
      // had removed n3, campaigned only to a dead n1 and kept its term ahead; n3, holding the better
      // log, asked n2 with a lower term every time and was never answered.
      this.#send({ type: "MsgVoteResp", from: this.id, to: message.from, term: this.#term, reject: true });
    }
    // Anything else from an old term is ignored.
  }

  #handleVoteRequest(message: MsgPreVote | MsgVote): void {
    const preVote = message.type === "MsgPreVote";
    const canVote =
      this.#vote === message.from ||
      (this.#vote === NODE_NONE && this.#leaderId === NODE_NONE) ||
      (preVote && message.term > this.#term);
    const upToDate = this.#log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    const responseType = preVote ? "MsgPreVoteResp" : "MsgVoteResp";
    if (canVote && upToDate) {
      this.#logLine(`granted ${message.type} to ${message.from} at term ${message.term}`);
      // Answer with the request's term: a granted pre-vote must be counted by the pre-candidate.
      this.#send({ type: responseType, from: this.id, to: message.from, term: message.term, reject: false });
      if (!preVote) {
        this.#electionElapsed = 0;
        this.#vote = message.from;
      }
    } else {
      this.#send({ type: responseType, from: this.id, to: message.from, term: this.#term, reject: true });
    }
  }

  #inLease(): boolean {
    if (!this.#config.checkQuorum) return false;
    // A leader with CheckQuorum steps down as soon as its quorum goes quiet, so while it leads it is live.
    if (this.#role === "leader") return true;
    return this.#leaderId !== NODE_NONE && this.#electionElapsed < this.#config.electionTicks;
  }

  // -------------------------------------------------------------------------------------------------
  // Per-role message handling

  #stepLeader(message: Message): void {
    switch (message.type) {
      case "MsgAppResp":
        this.#handleAppendResponse(message);
        return;
      case "MsgHeartbeatResp":
        this.#handleHeartbeatResponse(message);
        return;
      case "MsgApp":
      case "MsgHeartbeat":
      case "MsgSnap":
        assert(false, `${this.id} is leader at term ${this.#term} and got ${message.type} from ${message.from} in the same term`);
        return;
      case "MsgPreVoteResp":
      case "MsgVoteResp":
      case "MsgTimeoutNow":
      case "MsgPreVote":
      case "MsgVote":
        return;
      default:
        unreachable(message, "message type");
    }
  }

  #stepCandidate(message: Message): void {
    switch (message.type) {
      case "MsgApp":
      case "MsgHeartbeat":
      case "MsgSnap":
        // Someone won this term: follow it.
        this.#logLine(`became follower of ${message.from} at term ${this.#term}`);
        this.#becomeFollower(this.#term, message.from);
        this.#stepFollower(message);
        return;
      case "MsgPreVoteResp":
        if (this.#role !== "pre-candidate") return;
        this.#votes.set(message.from, !message.reject);
        this.#tallyVotes("pre-vote");
        return;
      case "MsgVoteResp":
        if (this.#role !== "candidate") return;
        this.#votes.set(message.from, !message.reject);
        this.#tallyVotes("election");
        return;
      case "MsgAppResp":
      case "MsgHeartbeatResp":
      case "MsgTimeoutNow":
      case "MsgPreVote":
      case "MsgVote":
        return;
      default:
        unreachable(message, "message type");
    }
  }

  #stepFollower(message: Message): void {
    switch (message.type) {
      case "MsgApp":
        this.#electionElapsed = 0;
        this.#setLeader(message.from);
        this.#handleAppend(message);
        return;
      case "MsgHeartbeat":
        this.#electionElapsed = 0;
        this.#setLeader(message.from);
        this.#handleHeartbeat(message);
        return;
      case "MsgSnap":
        this.#electionElapsed = 0;
        this.#setLeader(message.from);
        this.#handleSnapshot(message);
        return;
      case "MsgTimeoutNow":
        if (!this.#isVoter()) return;
        this.#logLine(`received MsgTimeoutNow from ${message.from} at term ${this.#term}: campaigning now`);
        this.#campaign("election", true);
        return;
      case "MsgAppResp":
      case "MsgHeartbeatResp":
      case "MsgPreVoteResp":
      case "MsgVoteResp":
      case "MsgPreVote":
      case "MsgVote":
        return;
      default:
        unreachable(message, "message type");
    }
  }

  #setLeader(leaderId: NodeId): void {
    if (this.#leaderId === leaderId) return;
    const previousLeader = this.#leaderId;
    assert(previousLeader === NODE_NONE, `${this.id} saw two leaders in term ${this.#term}: ${previousLeader} and ${leaderId}`);
    this.#leaderId = leaderId;
    this.#noteLeader(previousLeader);
  }

  // -------------------------------------------------------------------------------------------------
  // Follower side of replication

  #handleAppend(message: MsgApp): void {
    const base = { from: this.id, to: message.from, term: this.#term, hintIndex: 0, hintTerm: 0 } as const;
    if (message.prevLogIndex < this.#log.committed) {
      // Everything up to our commit index matches the leader's log already.
      this.#send({ ...base, type: "MsgAppResp", reject: false, index: this.#log.committed });
      return;
    }
    if (this.#log.matchTerm(message.prevLogIndex, message.prevLogTerm)) {
      const lastNewIndex = this.#log.appendAfter(message.prevLogIndex, message.entries);
      // A configuration entry takes effect when it enters the log, and is undone if it is replaced.
      if (this.#configIndex > message.prevLogIndex || message.entries.some((entry) => entry.kind === "config")) {
        this.#refreshMembership();
      }
      this.#log.commitTo(Math.min(message.commit, lastNewIndex));
      this.#send({ ...base, type: "MsgAppResp", reject: false, index: lastNewIndex });
      return;
    }
    // The consistency check failed. Point the leader at our last entry whose term could match, so it
    // skips a whole conflicting term per round trip instead of one entry (paper 5.3, last paragraphs).
    const hintIndex = this.#log.lastIndexWithTermAtMost(message.prevLogIndex, message.prevLogTerm);
    const hintTerm = this.#log.term(hintIndex) ?? 0;
    this.#send({ ...base, type: "MsgAppResp", reject: true, index: message.prevLogIndex, hintIndex, hintTerm });
  }

  #handleHeartbeat(message: MsgHeartbeat): void {
    // The leader caps `commit` at our match index, so it never points past our log.
    this.#log.commitTo(Math.min(message.commit, this.#log.lastIndex()));
    this.#send({ type: "MsgHeartbeatResp", from: this.id, to: message.from, term: this.#term, context: message.context });
  }

  #handleSnapshot(message: MsgSnap): void {
    const { index, term } = message.snapshot.metadata;
    const base = { type: "MsgAppResp", from: this.id, to: message.from, term: this.#term, reject: false, hintIndex: 0, hintTerm: 0 } as const;
    if (index <= this.#log.committed) {
      this.#send({ ...base, index: this.#log.committed });
      return;
    }
    if (this.#log.matchTerm(index, term)) {
      // We already hold the snapshot's last entry: just learn that it is committed. Answer with the
      // snapshot's index, not our last: entries past it may differ from the leader's (etcd does so too).
      this.#log.commitTo(index);
      this.#send({ ...base, index });
      return;
    }
    this.#logLine(`restoring snapshot at index ${index} term ${term} from ${message.from}`);
    this.#log.restoreSnapshot(message.snapshot);
    this.#snapshot = message.snapshot;
    this.#baseMembership = message.snapshot.metadata.membership;
    this.#refreshMembership();
    this.#send({ ...base, index });
  }

  // -------------------------------------------------------------------------------------------------
  // Leader side of replication

  #handleAppendResponse(message: MsgAppResp): void {
    const progress = this.#progress.get(message.from);
    if (!progress) return;
    progress.lastResponseTick = this.#tickCount;
    if (message.reject) {
      // A snapshot is on its way; answers to appends sent before it tell us nothing new.
      if (progress.state === "snapshot") return;
      // Refine the follower's hint with our own log: skip every entry of a term the follower lacks.
      const hintIndex =
        message.hintTerm > 0 ? this.#log.lastIndexWithTermAtMost(message.hintIndex, message.hintTerm) : message.hintIndex;
      // (A fresh rejection in replicate state drops the follower to probe; every rejection of an append
      // still counted against inflightAppendsMax frees its slot: Progress.earlier.)
      if (progress.maybeDecreaseTo(message.index, hintIndex)) this.#sendAppend(message.from, true);
      return;
    }
    const wasPaused = progress.isPaused();
    // A probe answered at the match we already know (a follower with an empty log answering index 0)
    // still proves where the logs agree: leave probe state instead of waiting for a heartbeat (etcd
    // does the same: `pr.Match == m.Index && pr.State == StateProbe`).
    const probeConfirmed = progress.state === "probe" && message.index === progress.match;
    if (!progress.maybeUpdate(message.index) && !probeConfirmed) {
      if (wasPaused && !progress.isPaused()) this.#sendAppend(message.from, false);
      return;
    }
    if (progress.state === "probe") progress.becomeReplicate();
    else if (progress.state === "snapshot" && progress.match >= progress.pendingSnapshotIndex) progress.becomeProbe();
    if (message.from === this.#leadTransferee) this.#maybeSendTimeoutNow();
    this.#maybePromoteLearner(message.from, progress);
    if (this.#maybeCommit()) {
      this.#broadcastAppend(true);
    } else if (this.#role === "leader") {
      // (A leader whose own removal just committed has stepped down and sends nothing more.)
      // Keep the pipeline full: send what the follower still lacks.
      let sent = false;
      while (progress.match < this.#log.lastIndex() && !progress.isPaused() && progress.next <= this.#log.lastIndex()) {
        if (!this.#sendAppend(message.from, false)) break;
        sent = true;
      }
      // While paused the follower missed every commit broadcast: tell it the commit index now rather
      // than one heartbeat later (etcd: `oldPaused` / `CanBumpCommit`).
      if (!sent && wasPaused && this.#log.committed > 0) this.#sendAppend(message.from, true);
    }
  }

  #handleHeartbeatResponse(message: MsgHeartbeatResp): void {
    const progress = this.#progress.get(message.from);
    if (!progress) return;
    progress.lastResponseTick = this.#tickCount;
    progress.onHeartbeatResponse();
    // Send even when every entry was already sent once: those appends may all have been lost, and in
    // replicate state nothing else would resend them. An empty append at `next - 1` is rejected by a
    // follower that lacks it, which moves it to probe and resends (etcd sends here unconditionally too).
    if (progress.match < this.#log.lastIndex()) this.#sendAppend(message.from, true);
    if (message.context > 0) this.#acknowledgeReads(message.from, message.context);
  }

  /** Sends the follower the entries it lacks (or an empty probe). Returns whether a message went out. */
  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.#progress.get(to);
    assert(progress !== undefined, `sendAppend() to unknown peer ${to}`);
    if (progress.isPaused()) return false;
    const prevLogIndex = progress.next - 1;
    const prevLogTerm = this.#log.term(prevLogIndex);
    if (prevLogTerm === undefined) {
      // The entries this follower needs were compacted: send the snapshot that covers them.
      const snapshot = this.#snapshot;
      assert(snapshot !== undefined, `sendAppend(): entry ${prevLogIndex} for ${to} is compacted but there is no snapshot`);
      assert(snapshot.metadata.index >= this.#log.snapshotIndex, "sendAppend(): the snapshot is older than the compacted log");
      this.#send({ type: "MsgSnap", from: this.id, to, term: this.#term, snapshot });
      progress.becomeSnapshot(snapshot.metadata.index);
      progress.snapshotSentTick = this.#tickCount;
      this.#logLine(`sent snapshot ${snapshot.metadata.index}/${snapshot.metadata.term} to ${to}`);
      return true;
    }
    // A leader's entries may leave before its own write of them is done (thesis 10.2.1): it never
    // removes them, and it counts its own copy only once durable, so a commit never rests on it early.
    const entries = this.#log.slice(progress.next, this.#log.lastIndex(), this.#config.entriesPerAppendMax);
    if (entries.length === 0 && !sendIfEmpty && progress.state === "replicate") return false;
    this.#send({
      type: "MsgApp",
      from: this.id,
      to,
      term: this.#term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: this.#log.committed,
    });
    progress.sentAppend(entries.length, entries.length > 0 ? entries[entries.length - 1]!.index : prevLogIndex);
    return true;
  }

  #broadcastAppend(sendIfEmpty: boolean): void {
    for (const id of this.#progress.keys()) {
      if (id !== this.id) this.#sendAppend(id, sendIfEmpty);
    }
  }

  #broadcastHeartbeat(context: number): void {
    for (const [id, progress] of this.#progress) {
      if (id === this.id) continue;
      const commit = Math.min(progress.match, this.#log.committed);
      this.#send({ type: "MsgHeartbeat", from: this.id, to: id, term: this.#term, commit, context });
      this.counters.heartbeatsSent++;
    }
  }

  /** Commits the highest index a quorum holds, but only by counting entries of our own term (5.4.2). */
  #maybeCommit(): boolean {
    const matches = new Map<NodeId, number>();
    for (const [id, progress] of this.#progress) matches.set(id, progress.match);
    const index = committedIndex(this.#voters(), matches);
    if (index <= this.#log.committed || this.#log.term(index) !== this.#term) return false;
    this.#log.commitTo(index);
    this.#releaseDeferredReads();
    if (!this.#isVoter() && this.#configIndex <= index) {
      // Our own removal is committed: stop leading (thesis 4.2.2).
      this.#logLine(`stepped down at term ${this.#term}: removed from the cluster at index ${this.#configIndex}`);
      this.#becomeFollower(this.#term, NODE_NONE);
      return false;
    }
    return true;
  }

  #quorumActive(): boolean {
    let active = 0;
    for (const id of this.#voters()) {
      if (id === this.id) {
        active++;
        continue;
      }
      const progress = this.#progress.get(id);
      if (progress && this.#tickCount - progress.lastResponseTick < this.#config.electionTicks) active++;
    }
    return active >= quorumSize(this.#voters().length);
  }

  // -------------------------------------------------------------------------------------------------
  // ReadIndex

  #startRead(requestId: number): void {
    const index = this.#log.committed;
    // Only voters confirm leadership: a learner's answer proves nothing, and a leader that is removing
    // itself (no longer a voter once the change is appended) needs a quorum of the others.
    if (this.#isVoter() && this.#voters().length === 1) {
      this.#readStates.push({ requestId, index });
      return;
    }
    this.#readContext++;
    this.#pendingReads.push({ requestId, index, context: this.#readContext, acks: new Set(this.#isVoter() ? [this.id] : []) });
    this.#broadcastHeartbeat(this.#readContext);
  }

  #releaseDeferredReads(): void {
    if (this.#deferredReads.length === 0 || this.#log.term(this.#log.committed) !== this.#term) return;
    const deferred = this.#deferredReads;
    this.#deferredReads = [];
    for (const requestId of deferred) this.#startRead(requestId);
  }

  /** A heartbeat answer for `context` confirms leadership for every read started at or before it. */
  #acknowledgeReads(from: NodeId, context: number): void {
    const voters = this.#voters();
    if (!voters.includes(from)) return;
    const quorum = quorumSize(voters.length);
    let released = 0;
    for (let i = 0; i < this.#pendingReads.length; i++) {
      const read = this.#pendingReads[i]!;
      if (read.context > context) break;
      read.acks.add(from);
      // Count against the voters of now: the membership may have changed since the read started.
      let confirmed = 0;
      for (const id of read.acks) if (voters.includes(id)) confirmed++;
      if (confirmed >= quorum) released = i + 1;
    }
    // Reads are confirmed in order: once one is, every earlier one is too.
    for (const read of this.#pendingReads.splice(0, released)) {
      this.#readStates.push({ requestId: read.requestId, index: read.index });
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Membership and leadership transfer

  #appendConfig(membership: Membership): number {
    const index = this.#log.lastIndex() + 1;
    this.#log.append([{ index, term: this.#term, kind: "config", data: encodeMembership(membership) }]);
    this.#setMembership(membership, index);
    this.#broadcastAppend(false);
    return index;
  }

  /** The membership in force at `index`: the latest configuration entry at or below it. */
  #membershipAt(index: number): Membership {
    for (let at = Math.min(index, this.#log.lastIndex()); at > this.#log.snapshotIndex; at--) {
      const entry = this.#log.entry(at);
      if (entry.kind === "config") return decodeMembership(entry.data);
    }
    return this.#baseMembership;
  }

  /** Rebuilds the membership from the log: the latest configuration entry wins, committed or not. */
  #refreshMembership(): void {
    for (let index = this.#log.lastIndex(); index > this.#log.snapshotIndex; index--) {
      const entry = this.#log.entry(index);
      if (entry.kind === "config") {
        this.#setMembership(decodeMembership(entry.data), index);
        return;
      }
    }
    this.#setMembership(this.#baseMembership, 0);
  }

  #setMembership(membership: Membership, configIndex: number): void {
    this.#membership = membership;
    this.#configIndex = configIndex;
    if (this.#role === "leader") {
      this.#syncProgress();
      if (this.#leadTransferee !== NODE_NONE && !membership.voters.includes(this.#leadTransferee)) this.#leadTransferee = NODE_NONE;
    }
  }

  /** A leader tracks every voter and learner; nodes that left are forgotten. */
  #syncProgress(): void {
    const members = new Set([...this.#membership.voters, ...this.#membership.learners, this.id]);
    for (const id of [...this.#progress.keys()]) if (!members.has(id)) this.#progress.delete(id);
    for (const id of members) {
      if (!this.#progress.has(id)) this.#progress.set(id, new Progress(this.#log.lastIndex() + 1, this.#config.inflightAppendsMax, this.#tickCount));
    }
  }

  /** A learner that holds everything committed becomes a voter (thesis 4.2.1), one change at a time. */
  #maybePromoteLearner(id: NodeId, progress: Progress): void {
    if (!this.#membership.learners.includes(id)) return;
    if (progress.match < this.#log.committed || this.#configIndex > this.#log.committed) return;
    if (this.#leadTransferee !== NODE_NONE || !this.#committedInTerm()) return;
    const request: MembershipRequest = { type: "promote", nodeId: id };
    const change = changeMembership(this.#membership, request);
    assert(change.ok, `promotion of learner ${id} refused`);
    const index = this.#appendConfig(change.membership);
    this.#logLine(`promoted learner ${id} to voter at index ${index}: it holds every committed entry`);
  }

  #maybeSendTimeoutNow(): void {
    const target = this.#leadTransferee;
    if (target === NODE_NONE || this.#timeoutNowSent) return;
    const progress = this.#progress.get(target);
    if (!progress || progress.match !== this.#log.lastIndex()) return;
    this.#send({ type: "MsgTimeoutNow", from: this.id, to: target, term: this.#term });
    this.#timeoutNowSent = true;
  }

  // -------------------------------------------------------------------------------------------------
  // Helpers

  #voters(): readonly NodeId[] {
    return this.#membership.voters;
  }

  /**
   * Whether to ignore a vote request from a node outside both configurations that may be in force here
   * (the latest one and, while that is uncommitted, the committed one before it). Thesis 4.2.3: a
   * server ignores vote requests while it has heard from a current leader within the minimum election
   * timeout. That is the thesis's answer to removed servers: a node removed while cut off never learns
   * that its removal committed (the new leader no longer replicates to it, and a restart may forget the
   * commit), so #mayCampaign lets it go on campaigning, and without PreVote and CheckQuorum each
   * request carries a higher term that would depose a working leader. With CheckQuorum #inLease already
   * does this for every candidate; for outsiders it applies always.
   *
   * Outsiders are not refused outright (thesis 4.1: servers process RequestVote "without consulting
   * their current configurations"). A voter that lags may hold a committed configuration older than
   * the only node able to win, and must vote for it once no leader is live: refusing it left swarm
   * seed 21744 without a leader for good (scenarios/lagging-voter-old-configuration.yaml). A removed node
   * heard while no leader is live may raise the term, and wins only with a majority of the
   * configuration that removes it whose logs are no more complete than its own; then, as any leader an
   * entry of its log removes, it commits its removal and steps down (#maybeCommit).
   * A transfer's vote request is never ignored (thesis 3.10; the leader checked the target is a voter).
   */
  #ignoreOutsider(message: MsgPreVote | MsgVote): boolean {
    if (message.type === "MsgVote" && message.transfer) return false;
    if (this.#isMember(this.#membership, message.from) || this.#isMember(this.committedMembership, message.from)) return false;
    if (!this.#leaderLive()) return false;
    const leader = this.#role === "leader" ? "we lead with a live quorum" : `leader ${this.#leaderId} was heard within the election timeout`;
    this.#logLine(`ignored ${message.type} from ${message.from} at term ${message.term}: it is not a member and ${leader}`);
    return true;
  }

  #isMember(membership: Membership, id: NodeId): boolean {
    return membership.voters.includes(id) || membership.learners.includes(id);
  }

  /**
   * Thesis 4.2.3's "heard from a current leader within the minimum election timeout", whatever the
   * settings: a follower heard its leader within electionTicks; a leader heard from a quorum within
   * electionTicks (it is its own current leader only while it could still commit).
   */
  #leaderLive(): boolean {
    if (this.#role === "leader") return this.#quorumActive();
    return this.#leaderId !== NODE_NONE && this.#electionElapsed < this.#config.electionTicks;
  }

  /** Whether this leader's term has an entry committed (its no-op, once a quorum holds it). */
  #committedInTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term;
  }

  #isVoter(): boolean {
    return this.#membership.voters.includes(this.id);
  }

  /**
   * A voter campaigns; so does a node that an uncommitted configuration entry removes but that was a
   * voter before it (thesis 4.2.2: such a server "might still be needed until the C_new entry is
   * committed"). Without that, a cluster can stall for good: a leader appends its own removal, loses
   * its leadership before the entry commits, and is then the only node whose log is complete enough to
   * win, yet it no longer counts itself a voter and waits, while it refuses the others as less up to
   * date (the swarm found this: seeds 39, 116 and 217 with leader-leaves-partitioned). It still needs
   * a majority of the configuration that removes it, its own vote not counted, so elections stay safe;
   * once it leads and the entry commits, it steps down (#maybeCommit).
   */
  #mayCampaign(): boolean {
    if (this.#isVoter()) return true;
    if (this.#configIndex <= this.#log.committed) return false;
    return this.#membershipAt(this.#configIndex - 1).voters.includes(this.id);
  }

  #send(message: Message): void {
    if (message.to === this.id) assert(false, `${this.id} tried to send ${message.type} to itself`);
    this.#messages.push(message);
  }

  #logLine(text: string): void {
    this.#config.logger?.(`${this.id} ${text}`);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId;
}
