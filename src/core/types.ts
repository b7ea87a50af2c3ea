/**
 * The vocabulary of the Raft core: log entries, persistent state, messages and the Ready batch.
 *
 * Everything here is plain data (JSON-serialisable), because the same values travel through the
 * simulator's network, the production TCP transport and the on-disk log without conversion.
 */

/** Node ids are small positive integers (pgraft.node_id); 0 means "none". */
export type NodeId = number;
export const NODE_NONE: NodeId = 0;

/**
 * A log entry. `kind` says how the entry is applied:
 * - `command`: `data` is an encoded state-machine command (see src/kv/command.ts);
 * - `noop`: appended by every new leader so it can commit entries of earlier terms (Raft paper 5.4.2);
 * - `config`: `data` is an encoded membership change (the next issue adds them).
 */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: string;
}
export type EntryKind = "command" | "noop" | "config";

/** The state that must survive a crash: written (and synced) before any message that depends on it. */
export interface HardState {
  readonly term: number;
  /** The node voted for in `term`, or NODE_NONE. */
  readonly vote: NodeId;
  /** Highest index known committed. Never above the last persisted entry. */
  readonly commit: number;
}

export const HARD_STATE_EMPTY: HardState = Object.freeze({ term: 0, vote: NODE_NONE, commit: 0 });

/** The voting members, and learners: nodes that receive the log but do not vote yet (thesis 4.2.1). */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /**
   * Peer addresses ("host:port") of members added at run time, by node id, so that every node (and a
   * node restarted later) can reach them; members listed in pgraft.initial_cluster need none. The
   * core only carries them from the request into the configuration entry and on.
   */
  readonly addresses?: Readonly<Record<string, string>>;
  /**
   * Members' names (pgraft.name) and client URLs ("http://host:port"), by node id: given to
   * `member add` or published by each node when it starts (etcd's member attributes), so that
   * forwarding, status and member lists follow the cluster as it changes. Entries written before these
   * existed have neither.
   */
  readonly names?: Readonly<Record<string, string>>;
  readonly clientUrls?: Readonly<Record<string, string>>;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
}

/** A state-machine image covering every entry up to `metadata.index`. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: string;
}

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Volatile state, never persisted: reported so runtimes can notice leadership changes. */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId;
}

// ---------------------------------------------------------------------------------------------------
// Messages. Every message names its sender, its receiver and the sender's term. Role handlers switch
// on `type` with an exhaustive default, so a new message type breaks the build where it is unhandled.

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** Pre-vote (thesis 9.6): "would you vote for me in `term`?" Nobody's term changes. */
export interface MsgPreVote extends MessageBase {
  readonly type: "MsgPreVote";
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
}
export interface MsgPreVoteResp extends MessageBase {
  readonly type: "MsgPreVoteResp";
  readonly reject: boolean;
}
export interface MsgVote extends MessageBase {
  readonly type: "MsgVote";
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set by a leadership transfer: the voter must not ignore it on account of a live leader. */
  readonly transfer: boolean;
}
export interface MsgVoteResp extends MessageBase {
  readonly type: "MsgVoteResp";
  readonly reject: boolean;
}
/** AppendEntries (paper 5.3). `entries` may be empty (a probe). */
export interface MsgApp extends MessageBase {
  readonly type: "MsgApp";
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}
/**
 * Reply to MsgApp. On success `index` is the follower's new match index. On rejection `index` is the
 * rejected prevLogIndex and the hint lets the leader skip a whole term at once (fast backtracking):
 * `hintIndex`/`hintTerm` name the follower's last entry at or below prevLogIndex whose term is at most
 * prevLogTerm.
 */
export interface MsgAppResp extends MessageBase {
  readonly type: "MsgAppResp";
  readonly reject: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}
/** Heartbeat. `commit` is capped at the follower's match; `context` carries a ReadIndex round. */
export interface MsgHeartbeat extends MessageBase {
  readonly type: "MsgHeartbeat";
  readonly commit: number;
  readonly context: number;
}
export interface MsgHeartbeatResp extends MessageBase {
  readonly type: "MsgHeartbeatResp";
  readonly context: number;
}
/** InstallSnapshot: the leader no longer has the entries a follower needs. */
export interface MsgSnap extends MessageBase {
  readonly type: "MsgSnap";
  readonly snapshot: Snapshot;
}
/** Leadership transfer: "campaign now, without waiting for your election timeout". */
export interface MsgTimeoutNow extends MessageBase {
  readonly type: "MsgTimeoutNow";
}

export type Message =
  | MsgPreVote
  | MsgPreVoteResp
  | MsgVote
  | MsgVoteResp
  | MsgApp
  | MsgAppResp
  | MsgHeartbeat
  | MsgHeartbeatResp
  | MsgSnap
  | MsgTimeoutNow;

export type MessageType = Message["type"];

export const MESSAGE_TYPES: readonly MessageType[] = [
  "MsgPreVote",
  "MsgPreVoteResp",
  "MsgVote",
  "MsgVoteResp",
  "MsgApp",
  "MsgAppResp",
  "MsgHeartbeat",
  "MsgHeartbeatResp",
  "MsgSnap",
  "MsgTimeoutNow",
];

/** A ReadIndex answer: once the state machine has applied `index`, the read `requestId` may be served. */
export interface ReadState {
  readonly requestId: number;
  readonly index: number;
}

/**
 * One batch of work from the core. The caller handles the fields in this order, then calls
 * `advance(ready)`:
 * 1. `snapshot`, `entries`, `hardState`: persist and sync BEFORE any message is sent, with two
 *    exceptions: a leader's MsgApp may be sent while its own write is under way (thesis 10.2.1),
 *    provided its term is already durable (the runtime checks this), since the leader counts its own
 *    copy toward the quorum only after `advance()` reports the write done; and MsgVote/MsgPreVote
 *    requests, since a candidate's vote for itself counts only for itself and it handles answers only
 *    after `advance()`. Vote grants and append answers always wait for the write.
 * 2. `messages`: send only after step 1 is durable.
 * 3. `committedEntries`: apply in order, only after step 1 (they are always already persisted).
 * 4. `readStates`: serve once the applied index reaches each state's `index`.
 */
export interface Ready {
  /** New hard state to persist before sending; absent when unchanged. */
  readonly hardState?: HardState;
  /** Snapshot to install and persist before sending; absent when none arrived. */
  readonly snapshot?: Snapshot;
  /**
   * Entries to append to stable storage before sending. If `entries[0].index` is at or below the
   * stored last index, the stored tail from that index on is replaced (a follower's conflicting tail).
   */
  readonly entries: readonly Entry[];
  /** Messages to send after persisting. */
  readonly messages: readonly Message[];
  /** Entries to apply to the state machine, in index order. */
  readonly committedEntries: readonly Entry[];
  /** Completed ReadIndex requests. */
  readonly readStates: readonly ReadState[];
  /** Role or leader changed; absent when unchanged. */
  readonly softState?: SoftState;
}
