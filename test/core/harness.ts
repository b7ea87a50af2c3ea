/**
 * A tiny deterministic test network for the Raft core (etcd's rafttest, much smaller).
 *
 * N `Raft` instances, each with in-memory "stable storage" that keeps exactly what its Readies asked to
 * persist, and one message queue that tests deliver explicitly: all of it, with a filter that drops the
 * rest, or only what goes to one node. Nothing happens by itself: no clock, no background delivery, so a
 * test reads as the sequence of events it describes.
 *
 * Every Ready goes through the contract written on the type: persist entries and hard state, then send
 * messages, then apply committed entries, then advance. While doing so the harness checks, for every
 * message, that what the message promises is already covered by persisted state (a vote, a term, stored
 * entries), that every node applies the same entry at each index, and that no term has two leaders.
 * A violation throws at once, so every test is also a test of those invariants.
 */
import { assert } from "../../src/assert.ts";
import { Raft, RAFT_CONFIG_DEFAULTS } from "../../src/core/raft.ts";
import type { RaftConfig } from "../../src/core/raft.ts";
import type { Entry, HardState, Membership, Message, MessageType, NodeId, ReadState, Ready } from "../../src/core/types.ts";
import { HARD_STATE_EMPTY, NODE_NONE } from "../../src/core/types.ts";

/** Every stabilize() loop and every "tick until" loop stops with a failure here instead of hanging. */
export const ROUNDS_MAX_STABILIZE = 10_000;

export type ConfigOverrides = Partial<Omit<RaftConfig, "id" | "random" | "logger">>;

/** The settings the tests start from: small timeouts so tick counts stay readable. */
export const TEST_CONFIG = {
  ...RAFT_CONFIG_DEFAULTS,
  electionTicks: 10,
  heartbeatTicks: 1,
} as const;

/** What one node's stable storage holds: only what some Ready asked to persist. */
export interface Storage {
  hardState: HardState;
  entries: Entry[];
}

export interface TestNode {
  readonly id: NodeId;
  /** Undefined while the node is crashed. */
  raft: Raft | undefined;
  readonly storage: Storage;
  /** Entries applied by the current incarnation, in order (a restart starts again from index 1). */
  applied: Entry[];
  readStates: ReadState[];
  /** Every Ready this node produced, in order, across restarts. */
  readonly readies: Ready[];
  /** Random source of the node: kept across restarts so a scripted sequence carries on. */
  readonly random: () => number;
}

export interface NetworkOptions {
  readonly nodeCount: number;
  /** The configuration every node starts with; by default every node is a voter. */
  readonly membership?: Membership;
  readonly config?: ConfigOverrides;
  /** The random source of each node; defaults to an LCG seeded by the node id. */
  readonly random?: (id: NodeId) => () => number;
  /** Starting persisted state per node (defaults to an empty log at term 0). */
  readonly storage?: (id: NodeId) => Partial<Storage> | undefined;
  /** Collects the core's log lines, each starting with the node id. */
  readonly logger?: (line: string) => void;
}

/** A deterministic [0, 1) source (Park-Miller), for tests that do not script the draws. */
export function lcg(seed: number): () => number {
  let state = (Math.abs(Math.floor(seed)) % 2_147_483_646) + 1;
  return () => {
    state = (state * 48_271) % 2_147_483_647;
    return (state - 1) / 2_147_483_646;
  };
}

/** A random source that replays `draws` in order, then repeats the last one. */
export function scripted(draws: readonly number[]): () => number {
  assert(draws.length > 0, "scripted() needs at least one draw");
  let next = 0;
  return () => draws[Math.min(next++, draws.length - 1)]!;
}

/**
 * One Raft on its own, started from a log, a term and a commit index (no vote), with the tests'
 * settings and PreVote and CheckQuorum off: for tests that step it by hand and read its Readies with
 * drainReadies().
 */
export function standaloneRaft(id: NodeId, membership: Membership, entries: Entry[], term: number, commit: number): Raft {
  return new Raft(
    { ...TEST_CONFIG, id, random: lcg(id * 7_919), preVote: false, checkQuorum: false },
    { hardState: { term, vote: 0, commit }, entries, membership, applied: 0 },
  );
}

/** Runs every Ready as a runtime would (persist, send, apply, advance) and returns what they held. */
export function drainReadies(raft: Raft): { messages: Message[]; entries: Entry[]; readStates: ReadState[] } {
  const messages: Message[] = [];
  const entries: Entry[] = [];
  const readStates: ReadState[] = [];
  while (raft.hasReady()) {
    const ready = raft.ready();
    messages.push(...ready.messages);
    entries.push(...ready.entries);
    readStates.push(...ready.readStates);
    raft.advance(ready);
  }
  return { messages, entries, readStates };
}

export function entry(index: number, term: number, data = `e${index}`): Entry {
  return { index, term, kind: "command", data };
}

/** Entries [from, to] all of one term. */
export function entries(from: number, to: number, term: number): Entry[] {
  const result: Entry[] = [];
  for (let index = from; index <= to; index++) result.push(entry(index, term));
  return result;
}

export class Network {
  readonly ids: readonly NodeId[];
  readonly membership: Membership;
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered or dropped, in send order. */
  queue: Message[] = [];
  /** Every message ever sent, in send order (for counting). */
  readonly sent: Message[] = [];
  /** How many sent messages of each type passed the persistence check. */
  readonly persistenceChecks = new Map<MessageType, number>();
  /** Nodes cut off from everyone: messages to or from them are dropped at delivery. */
  readonly isolated = new Set<NodeId>();
  /** The entry each index was first applied with, by any node (State Machine Safety). */
  readonly appliedByIndex = new Map<number, Entry>();
  /** The leader of each term (Election Safety). */
  readonly leaderByTerm = new Map<number, NodeId>();
  readonly #config: ConfigOverrides;
  readonly #logger: ((line: string) => void) | undefined;

  constructor(options: NetworkOptions) {
    assert(options.nodeCount >= 1, "Network needs at least one node");
    const ids: NodeId[] = [];
    for (let id = 1; id <= options.nodeCount; id++) ids.push(id);
    this.ids = ids;
    this.membership = options.membership ?? { voters: ids, learners: [] };
    this.#config = options.config ?? {};
    this.#logger = options.logger;
    for (const id of ids) {
      const initial = options.storage?.(id) ?? {};
      const node: TestNode = {
        id,
        raft: undefined,
        storage: { hardState: initial.hardState ?? HARD_STATE_EMPTY, entries: [...(initial.entries ?? [])] },
        applied: [],
        readStates: [],
        readies: [],
        random: options.random?.(id) ?? lcg(id * 7_919),
      };
      this.nodes.set(id, node);
      this.#start(node);
    }
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  raft(id: NodeId): Raft {
    const raft = this.node(id).raft;
    assert(raft !== undefined, `node ${id} is crashed`);
    return raft;
  }

  /** The single node that believes it leads in the highest term, or NODE_NONE. */
  leader(): NodeId {
    let leader = NODE_NONE;
    let term = -1;
    for (const node of this.nodes.values()) {
      if (node.raft?.role === "leader" && node.raft.term > term) {
        leader = node.id;
        term = node.raft.term;
      }
    }
    return leader;
  }

  // -------------------------------------------------------------------------------------------------
  // Ready handling

  /** Handles one Ready of node `id` if it has one. Returns whether it did. */
  processReady(id: NodeId): boolean {
    const node = this.node(id);
    const raft = node.raft;
    if (raft === undefined || !raft.hasReady()) return false;
    const ready = raft.ready();
    node.readies.push(ready);
    this.#persist(node, ready);
    for (const message of ready.messages) {
      this.#checkPersisted(node, message);
      this.queue.push(message);
      this.sent.push(message);
    }
    this.#apply(node, ready);
    node.readStates.push(...ready.readStates);
    if (ready.softState?.role === "leader") this.#noteLeader(id, raft.term);
    raft.advance(ready);
    return true;
  }

  /** Drains the Readies of every running node until none has one. */
  processAll(): void {
    for (let round = 0; ; round++) {
      assert(round < ROUNDS_MAX_STABILIZE, `processAll() still busy after ${ROUNDS_MAX_STABILIZE} rounds`);
      let any = false;
      for (const id of this.ids) any = this.processReady(id) || any;
      if (!any) return;
    }
  }

  #persist(node: TestNode, ready: Ready): void {
    assert(ready.snapshot === undefined, "the harness does not persist snapshots");
    const storage = node.storage;
    if (ready.entries.length > 0) {
      const first = ready.entries[0]!.index;
      assert(first >= 1 && first <= storage.entries.length + 1, `node ${node.id}: Ready entries start at ${first}, stored last is ${storage.entries.length}`);
      // A first index at or below the stored last one replaces the stored tail (Ready.entries contract).
      storage.entries.length = first - 1;
      for (const item of ready.entries) {
        assert(item.index === storage.entries.length + 1, `node ${node.id}: Ready entries not contiguous at ${item.index}`);
        storage.entries.push(item);
      }
    }
    if (ready.hardState) {
      assert(ready.hardState.term >= storage.hardState.term, `node ${node.id}: persisted term went down`);
      storage.hardState = ready.hardState;
    }
    assert(storage.hardState.commit <= storage.entries.length, `node ${node.id}: persisted commit ${storage.hardState.commit} beyond stored log ${storage.entries.length}`);
  }

  /**
   * A message may only promise what is durable: a vote request or grant needs the persisted term and
   * vote, a successful append answer needs the stored entries, an append needs the leader's own copy.
   */
  #checkPersisted(node: TestNode, message: Message): void {
    const { hardState, entries: stored } = node.storage;
    const where = `node ${node.id} sent ${message.type} to ${message.to} at term ${message.term}`;
    switch (message.type) {
      case "MsgPreVote":
        // Sent with the term it would campaign at: our persisted term must be just below it.
        assert(hardState.term === message.term - 1, `${where} with persisted term ${hardState.term}`);
        break;
      case "MsgPreVoteResp":
        // A granted pre-vote promises nothing durable; a rejection carries the sender's own term.
        if (message.reject) assert(hardState.term >= message.term, `${where} with persisted term ${hardState.term}`);
        break;
      case "MsgVote":
        assert(
          hardState.term > message.term || (hardState.term === message.term && hardState.vote === node.id),
          `${where} but persisted term ${hardState.term} vote ${hardState.vote}`,
        );
        break;
      case "MsgVoteResp":
        if (message.reject) assert(hardState.term >= message.term, `${where} but persisted term ${hardState.term}`);
        else {
          assert(
            hardState.term > message.term || (hardState.term === message.term && hardState.vote === message.to),
            `${where} granting but persisted term ${hardState.term} vote ${hardState.vote}`,
          );
        }
        break;
      case "MsgAppResp":
        assert(hardState.term >= message.term, `${where} but persisted term ${hardState.term}`);
        if (!message.reject && hardState.term === message.term) {
          assert(message.index <= stored.length, `${where} acknowledging ${message.index} but stored only ${stored.length}`);
        }
        break;
      case "MsgApp": {
        assert(hardState.term >= message.term, `${where} but persisted term ${hardState.term}`);
        const last = message.entries.length > 0 ? message.entries[message.entries.length - 1]! : undefined;
        if (last && hardState.term === message.term) assert(stored[last.index - 1]?.term === last.term, `${where} with entry ${last.index}/${last.term} not stored by the leader`);
        break;
      }
      case "MsgHeartbeat":
      case "MsgHeartbeatResp":
      case "MsgSnap":
      case "MsgTimeoutNow":
        assert(hardState.term >= message.term, `${where} but persisted term ${hardState.term}`);
        break;
    }
    this.persistenceChecks.set(message.type, (this.persistenceChecks.get(message.type) ?? 0) + 1);
  }

  #apply(node: TestNode, ready: Ready): void {
    for (const item of ready.committedEntries) {
      const expected = node.applied.length + 1;
      assert(item.index === expected, `node ${node.id} applied ${item.index}, expected ${expected}`);
      assert(node.storage.entries[item.index - 1]?.term === item.term, `node ${node.id} applied ${item.index} before persisting it`);
      const first = this.appliedByIndex.get(item.index);
      if (first) {
        assert(first.term === item.term && first.data === item.data, `node ${node.id} applied ${item.index}/${item.term} where another applied ${first.index}/${first.term}`);
      } else {
        this.appliedByIndex.set(item.index, item);
      }
      node.applied.push(item);
    }
  }

  #noteLeader(id: NodeId, term: number): void {
    const existing = this.leaderByTerm.get(term);
    assert(existing === undefined || existing === id, `two leaders in term ${term}: ${existing} and ${id}`);
    this.leaderByTerm.set(term, id);
  }

  // -------------------------------------------------------------------------------------------------
  // Delivery

  /**
   * Delivers every queued message that `filter` accepts and drops the others (messages to a crashed or
   * isolated node, or from an isolated one, are always dropped). Messages sent in response go to the
   * queue only after the next processReady(). Returns the delivered messages.
   */
  deliver(filter: (message: Message) => boolean = () => true): Message[] {
    const batch = this.queue;
    this.queue = [];
    const delivered: Message[] = [];
    for (const message of batch) {
      if (!filter(message) || !this.#reachable(message)) continue;
      this.raft(message.to).step(message);
      delivered.push(message);
    }
    return delivered;
  }

  /** Delivers the queued messages to `to` that `filter` accepts (unreachable ones are dropped); keeps the rest queued. */
  deliverTo(to: NodeId, filter: (message: Message) => boolean = () => true): Message[] {
    const delivered: Message[] = [];
    const kept: Message[] = [];
    for (const message of this.queue) {
      if (message.to !== to || !filter(message)) {
        kept.push(message);
        continue;
      }
      if (!this.#reachable(message)) continue;
      this.raft(to).step(message);
      delivered.push(message);
    }
    this.queue = kept;
    return delivered;
  }

  /** Drops every queued message that `filter` accepts (all of them by default). */
  drop(filter: (message: Message) => boolean = () => true): Message[] {
    const dropped = this.queue.filter(filter);
    this.queue = this.queue.filter((message) => !filter(message));
    return dropped;
  }

  #reachable(message: Message): boolean {
    if (this.isolated.has(message.from) || this.isolated.has(message.to)) return false;
    return this.node(message.to).raft !== undefined;
  }

  /**
   * Handles Readies and delivers messages (through `filter`) until nothing is left to do. Ticks never
   * happen here, so this ends unless nodes keep talking forever, which fails after a bounded count.
   */
  stabilize(filter: (message: Message) => boolean = () => true): void {
    for (let round = 0; round < ROUNDS_MAX_STABILIZE; round++) {
      this.processAll();
      if (this.queue.length === 0) return;
      this.deliver(filter);
    }
    assert(false, `stabilize() still busy after ${ROUNDS_MAX_STABILIZE} rounds`);
  }

  // -------------------------------------------------------------------------------------------------
  // Time, elections, faults

  /** Ticks node `id` `count` times (its Readies are left for the caller). */
  tick(id: NodeId, count = 1): void {
    const raft = this.raft(id);
    for (let i = 0; i < count; i++) raft.tick();
  }

  /** Ticks every running node once per round, handling Readies and delivering after each round. */
  tickAll(count: number, filter: (message: Message) => boolean = () => true): void {
    for (let i = 0; i < count; i++) {
      for (const node of this.nodes.values()) node.raft?.tick();
      this.stabilize(filter);
    }
  }

  /** Node `id` campaigns now, then the cluster settles. */
  campaign(id: NodeId): void {
    this.raft(id).campaign();
    this.stabilize();
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  heal(): void {
    this.isolated.clear();
  }

  /** kill -9: the node stops; its stable storage stays exactly as its last processed Ready left it. */
  crash(id: NodeId): void {
    const node = this.node(id);
    assert(node.raft !== undefined, `node ${id} is already crashed`);
    node.raft = undefined;
    this.queue = this.queue.filter((message) => message.to !== id);
  }

  /** A new Raft built only from the node's stable storage; it re-applies the log from index 1. */
  restart(id: NodeId): void {
    const node = this.node(id);
    assert(node.raft === undefined, `node ${id} is running`);
    node.applied = [];
    node.readStates = [];
    this.#start(node);
  }

  #start(node: TestNode): void {
    const config: RaftConfig = {
      ...TEST_CONFIG,
      ...this.#config,
      id: node.id,
      random: node.random,
      logger: this.#logger,
    };
    node.raft = new Raft(config, {
      hardState: node.storage.hardState,
      entries: [...node.storage.entries],
      membership: this.membership,
      applied: 0,
    });
  }
}

/** The messages in `messages` of one type, narrowed. */
export function ofType<T extends MessageType>(messages: readonly Message[], type: T): Extract<Message, { type: T }>[] {
  return messages.filter((message): message is Extract<Message, { type: T }> => message.type === type);
}

/** "1->2 MsgVote t1" lines, etcd style, for compact exact comparisons. */
export function describe(messages: readonly Message[]): string[] {
  return messages.map((message) => {
    let detail = "";
    switch (message.type) {
      case "MsgApp":
        detail = ` prev ${message.prevLogIndex}/${message.prevLogTerm} [${message.entries.map((item) => `${item.index}/${item.term}`).join(",")}] commit ${message.commit}`;
        break;
      case "MsgAppResp":
        detail = message.reject ? ` reject ${message.index} hint ${message.hintIndex}/${message.hintTerm}` : ` ${message.index}`;
        break;
      case "MsgVote":
      case "MsgPreVote":
        detail = ` log ${message.lastLogIndex}/${message.lastLogTerm}`;
        break;
      case "MsgVoteResp":
      case "MsgPreVoteResp":
        detail = message.reject ? " reject" : " grant";
        break;
      case "MsgHeartbeat":
        detail = ` commit ${message.commit} context ${message.context}`;
        break;
      case "MsgHeartbeatResp":
        detail = ` context ${message.context}`;
        break;
      default:
        break;
    }
    return `${message.from}->${message.to} ${message.type} t${message.term}${detail}`;
  });
}
