/**
 * The Raft safety properties (paper Figure 3), checked on every step of a simulated run:
 *
 * - Election Safety: at most one leader per term.
 * - Leader Append-Only: a leader never overwrites or deletes entries in its log.
 * - Log Matching: logs that hold an entry with the same index and term are identical up to it. Checked
 *   inductively: an (index, term) pair must always carry the same content and the same previous term,
 *   so by induction the whole prefix is fixed.
 * - Leader Completeness: every committed entry is in the log of every later leader.
 * - State Machine Safety: no two nodes apply different entries at one index.
 * - Durability: what a node persisted (its storage returned) is what it recovers after a crash; no
 *   committed entry is ever removed; nothing acknowledged to a client is lost.
 *
 * The first violation throws a `SafetyViolation`, which the run reports with the seed and the events
 * that led to it.
 */
import type { Entry, HardState, NodeId, Ready, Role } from "../../src/core/types.ts";

export class SafetyViolation extends Error {
  override name = "SafetyViolation";
  constructor(
    readonly property: string,
    readonly detail: string,
  ) {
    super(`${property}: ${detail}`);
  }
}

interface ShadowEntry {
  readonly term: number;
  readonly content: string;
}

/** A node's persisted log as the checker saw it written: entries after a snapshot point. */
class ShadowLog {
  offset = 0;
  offsetTerm = 0;
  entries: ShadowEntry[] = [];

  get lastIndex(): number {
    return this.offset + this.entries.length;
  }

  at(index: number): ShadowEntry | undefined {
    return index > this.offset ? this.entries[index - this.offset - 1] : undefined;
  }

  termAt(index: number): number | undefined {
    return index === this.offset ? this.offsetTerm : this.at(index)?.term;
  }

  truncateFrom(index: number): void {
    this.entries.length = Math.max(0, index - this.offset - 1);
  }

  /** A snapshot at (index, term): entries after it are kept only if the log agrees at the snapshot. */
  snapshotAt(index: number, term: number): void {
    const keep = this.termAt(index) === term;
    this.entries = keep ? this.entries.slice(index - this.offset) : [];
    this.offset = index;
    this.offsetTerm = term;
  }

  static from(snapshotIndex: number, snapshotTerm: number, entries: readonly Entry[]): ShadowLog {
    const log = new ShadowLog();
    log.offset = snapshotIndex;
    log.offsetTerm = snapshotTerm;
    log.entries = entries.map((entry) => ({ term: entry.term, content: contentOf(entry) }));
    return log;
  }
}

interface NodeShadow {
  /** A Ready batch whose save started but has not returned (a crash may land inside it). */
  inFlight: Ready | undefined;
  /** The node's persisted log as the checker saw it written; index i at position i - 1 - offset. */
  log: ShadowLog;
  hardState: HardState;
  role: Role;
  term: number;
  appliedIndex: number;
}

function sameEntry(shadow: ShadowEntry | undefined, entry: Entry): boolean {
  return shadow !== undefined && shadow.term === entry.term && shadow.content === contentOf(entry);
}

function toShadow(entry: Entry | undefined): ShadowEntry | undefined {
  return entry ? { term: entry.term, content: contentOf(entry) } : undefined;
}

function contentOf(entry: Entry): string {
  return `${entry.kind}:${entry.data}`;
}

export interface LeaderLogView {
  term(index: number): number | undefined;
  readonly snapshotIndex: number;
}

export class SafetyChecker {
  #leaders = new Map<number, NodeId>();
  /** (index, term) -> content and previous term, as first persisted anywhere. */
  #entries = new Map<string, { content: string; previousTerm: number }>();
  /**
   * index -> applied entry (applied means committed), with an upper bound on the term in which it was
   * committed: the lowest term any node had when it applied it. Leader Completeness binds only leaders
   * of later terms; a leader of an older term may still win its election late (after a pause, say).
   */
  #committed = new Map<number, ShadowEntry & { commitTermMax: number }>();
  #committedMax = 0;
  #nodes = new Map<NodeId, NodeShadow>();
  #acknowledged = new Map<number, ShadowEntry>();
  checks = 0;

  #shadow(node: NodeId): NodeShadow {
    let shadow = this.#nodes.get(node);
    if (!shadow) {
      shadow = { inFlight: undefined, log: new ShadowLog(), hardState: { term: 0, vote: 0, commit: 0 }, role: "follower", term: 0, appliedIndex: 0 };
      this.#nodes.set(node, shadow);
    }
    return shadow;
  }

  /** A node is about to save a Ready batch; a crash inside the save may leave any prefix of it. */
  persisting(node: NodeId, ready: Ready): void {
    this.#shadow(node).inFlight = ready;
  }

  /** A node's Ready batch reached its storage (durably). */
  persisted(node: NodeId, ready: Ready, role: Role): void {
    this.checks++;
    const shadow = this.#shadow(node);
    shadow.inFlight = undefined;
    if (ready.hardState) {
      const before = shadow.hardState;
      const after = ready.hardState;
      if (after.term < before.term) this.#fail("Term monotonicity", `node ${node} persisted term ${after.term} after ${before.term}`);
      if (after.term === before.term && before.vote !== 0 && after.vote !== before.vote) {
        this.#fail("Election Safety", `node ${node} changed its vote in term ${after.term} from ${before.vote} to ${after.vote}`);
      }
      if (after.commit < before.commit) this.#fail("Commit monotonicity", `node ${node} persisted commit ${after.commit} after ${before.commit}`);
      shadow.hardState = after;
    }
    if (ready.snapshot) {
      // A snapshot replaces the log below its index; entries after it are kept only if they match.
      shadow.log.snapshotAt(ready.snapshot.metadata.index, ready.snapshot.metadata.term);
    }
    if (ready.entries.length > 0) this.#persistEntries(node, shadow, ready.entries, role);
  }

  #persistEntries(node: NodeId, shadow: NodeShadow, entries: readonly Entry[], role: Role): void {
    const first = entries[0]!.index;
    if (first <= shadow.log.lastIndex) {
      if (role === "leader") {
        this.#fail("Leader Append-Only", `leader ${node} at term ${shadow.hardState.term} replaced its log from index ${first}`);
      }
      for (let index = first; index <= shadow.log.lastIndex; index++) {
        const removed = shadow.log.at(index)!;
        const committed = this.#committed.get(index);
        if (committed && committed.term === removed.term && committed.content === removed.content) {
          this.#fail("Leader Completeness", `node ${node} removed committed entry ${index} (term ${removed.term}) from its log`);
        }
      }
      shadow.log.truncateFrom(first);
    }
    if (first !== shadow.log.lastIndex + 1) {
      this.#fail("Log Matching", `node ${node} persisted entry ${first} after a log ending at ${shadow.log.lastIndex}`);
    }
    for (const entry of entries) {
      const previousTerm = entry.index === 1 ? 0 : shadow.log.termAt(entry.index - 1)!;
      const content = contentOf(entry);
      const key = `${entry.index}:${entry.term}`;
      const known = this.#entries.get(key);
      if (!known) this.#entries.set(key, { content, previousTerm });
      else if (known.content !== content) {
        this.#fail("Log Matching", `entry ${entry.index} term ${entry.term} differs between nodes: ${known.content} vs ${content} (node ${node})`);
      } else if (known.previousTerm !== previousTerm) {
        this.#fail(
          "Log Matching",
          `node ${node} holds entry ${entry.index} term ${entry.term} after an entry of term ${previousTerm}; another log has term ${known.previousTerm} there`,
        );
      }
      if (entry.term > shadow.hardState.term && entry.term > shadow.term) {
        this.#fail("Term monotonicity", `node ${node} persisted entry ${entry.index} of future term ${entry.term}`);
      }
      shadow.log.entries.push({ term: entry.term, content });
    }
  }

  /** A node applied `entry` to its state machine. */
  applied(node: NodeId, entry: Entry, nodeTerm: number): void {
    this.checks++;
    const shadow = this.#shadow(node);
    if (entry.index !== shadow.appliedIndex + 1) {
      this.#fail("State Machine Safety", `node ${node} applied index ${entry.index} after ${shadow.appliedIndex}`);
    }
    shadow.appliedIndex = entry.index;
    const content = contentOf(entry);
    const known = this.#committed.get(entry.index);
    if (!known) {
      this.#committed.set(entry.index, { term: entry.term, content, commitTermMax: nodeTerm });
      this.#committedMax = Math.max(this.#committedMax, entry.index);
    } else if (known.term !== entry.term || known.content !== content) {
      this.#fail(
        "State Machine Safety",
        `node ${node} applied ${content} (term ${entry.term}) at index ${entry.index}, another node applied ${known.content} (term ${known.term})`,
      );
    } else if (nodeTerm < known.commitTermMax) {
      known.commitTermMax = nodeTerm;
    }
  }

  /** A node replaced its state machine with the leader's snapshot: it has applied up to its index. */
  snapshotInstalled(node: NodeId, index: number): void {
    const shadow = this.#shadow(node);
    if (index < shadow.appliedIndex) {
      this.#fail("State Machine Safety", `node ${node} installed snapshot ${index} after applying up to ${shadow.appliedIndex}`);
    }
    shadow.appliedIndex = index;
  }

  /**
   * A node restarted from its disk: it must recover exactly what it persisted, except that a save cut
   * short by the crash may have left any prefix of its own effects (new entries, the new hard state).
   */
  restarted(
    node: NodeId,
    recovered: { hardState: HardState; entries: readonly Entry[]; snapshotIndex: number; snapshotTerm?: number },
  ): void {
    this.checks++;
    const shadow = this.#shadow(node);
    const inFlight = shadow.inFlight;
    shadow.inFlight = undefined;
    const before = shadow.hardState;
    // Term and vote must survive; the commit index need not (storage writes it lazily, and Raft
    // relearns it from the leader), but it can never point past the recovered log (storage checks that).
    const hardStateOk = (expected: HardState): boolean =>
      recovered.hardState.term === expected.term && recovered.hardState.vote === expected.vote;
    if (!hardStateOk(before) && !(inFlight?.hardState && hardStateOk(inFlight.hardState))) {
      this.#fail(
        "Durability",
        `node ${node} recovered hard state ${JSON.stringify(recovered.hardState)} after persisting ${JSON.stringify(before)}`,
      );
    }
    // Entries below the interrupted save's first entry must be exactly what was persisted.
    const replacedFrom = inFlight && inFlight.entries.length > 0 ? inFlight.entries[0]!.index : Infinity;
    const keptMax = Math.min(shadow.log.lastIndex, replacedFrom - 1);
    const lastIndex = recovered.snapshotIndex + recovered.entries.length;
    if (lastIndex < keptMax) {
      this.#fail("Durability", `node ${node} recovered a log ending at ${lastIndex}; it had persisted up to ${keptMax}`);
    }
    // At and past `replacedFrom` the log is either untouched (the crash came before the save's
    // truncation) or a prefix of the interrupted save's entries; never a mix.
    const atReplaced = recovered.entries.find((entry) => entry.index === replacedFrom);
    const oldTailKept = atReplaced !== undefined && sameEntry(shadow.log.at(replacedFrom), atReplaced);
    for (const entry of recovered.entries) {
      const expected =
        entry.index < replacedFrom || oldTailKept ? shadow.log.at(entry.index) : toShadow(inFlight!.entries[entry.index - replacedFrom]);
      if (!expected || expected.term !== entry.term || expected.content !== contentOf(entry)) {
        const what = expected ? `term ${expected.term} ${expected.content.slice(0, 60)}` : "nothing";
        this.#fail(
          "Durability",
          `node ${node} recovered entry ${entry.index} (term ${entry.term} ${contentOf(entry).slice(0, 60)}) where it persisted ${what}` +
            (inFlight ? ` (a save from index ${replacedFrom} was interrupted)` : ""),
        );
      }
    }
    shadow.log = ShadowLog.from(recovered.snapshotIndex, recovered.snapshotTerm ?? 0, recovered.entries);
    shadow.hardState = recovered.hardState;
    shadow.appliedIndex = recovered.snapshotIndex;
    shadow.role = "follower";
  }

  /** Called after every event that touched `node`, with its current role and term. */
  observe(node: NodeId, role: Role, term: number, log: LeaderLogView): void {
    this.checks++;
    const shadow = this.#shadow(node);
    const becameLeader = role === "leader" && (shadow.role !== "leader" || shadow.term !== term);
    shadow.role = role;
    shadow.term = term;
    if (!becameLeader) return;
    const existing = this.#leaders.get(term);
    if (existing !== undefined && existing !== node) {
      this.#fail("Election Safety", `nodes ${existing} and ${node} are both leaders of term ${term}`);
    }
    this.#leaders.set(term, node);
    for (const [index, committed] of this.#committed) {
      if (index <= log.snapshotIndex || committed.commitTermMax >= term) continue;
      const held = log.term(index);
      if (held !== committed.term) {
        this.#fail(
          "Leader Completeness",
          `node ${node} became leader of term ${term} without committed entry ${index} (term ${committed.term}); it holds ${held === undefined ? "nothing" : `term ${held}`} there`,
        );
      }
    }
  }

  /** A client was told its write at `index` succeeded; `content` is the entry it expects there. */
  acknowledged(index: number, content: string): void {
    this.#acknowledged.set(index, { term: 0, content });
    const committed = this.#committed.get(index);
    if (!committed || committed.content !== content) {
      this.#fail("Acknowledged write", `a write was acknowledged at index ${index} but that index holds ${committed?.content ?? "nothing"}`);
    }
  }

  /** At the end: every acknowledged write is still committed. */
  finish(): void {
    for (const [index, acknowledged] of this.#acknowledged) {
      const committed = this.#committed.get(index);
      if (!committed || committed.content !== acknowledged.content) {
        this.#fail("Acknowledged write", `acknowledged write at index ${index} is no longer committed`);
      }
    }
  }

  get leaders(): ReadonlyMap<number, NodeId> {
    return this.#leaders;
  }

  get committedMax(): number {
    return this.#committedMax;
  }

  #fail(property: string, detail: string): never {
    throw new SafetyViolation(property, detail);
  }
}
