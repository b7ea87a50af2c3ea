/**
 * The mutation catalogue: one realistic bug per rule the Raft core and its runtime depend on, each a
 * few lines, each reachable in normal operation. `npm run mutate` plants each one alone into a copy of
 * the code and runs the swarm (`npm run sim -- --faults swarm`) until a seed catches it; a mutation the
 * swarm misses within its budget is a hole in the search, to be fixed in the search, not here.
 *
 * Each edit names the exact text it replaces. When the code moves on and that text is gone (or appears
 * twice), planting fails and says which mutation to update, so no mutation ever silently tests nothing.
 */

export interface Mutation {
  /** Short stable name, used by `--only`. */
  readonly id: string;
  /** The rule it breaks, with the paper or thesis section. */
  readonly rule: string;
  /** What the planted code does wrong, in a sentence. */
  readonly bug: string;
  readonly file: string;
  /** [original, mutated] pairs; each original must occur exactly once in `file`. */
  readonly edits: readonly (readonly [string, string])[];
}

const RAFT = "src/core/raft.ts";
const LOG = "src/core/raft-log.ts";
const NODE = "src/node/raft-node.ts";
const QUORUM = "src/core/quorum.ts";

export const MUTATIONS: readonly Mutation[] = [
  // ---------------------------------------------------------------------------------------------
  // Terms and votes (Figure 2; 5.1, 5.2, 5.4.1)
  {
    id: "vote-twice",
    rule: "5.2 a server votes for at most one candidate per term",
    bug: "a follower without a known leader grants a vote even when it already voted for another candidate in this term",
    file: RAFT,
    edits: [["(this.#vote === NODE_NONE && this.#leaderId === NODE_NONE) ||", "this.#leaderId === NODE_NONE ||"]],
  },
  {
    id: "vote-log-check-index-only",
    rule: "5.4.1 election restriction: compare last terms first, then lengths",
    bug: "the up-to-date check compares only the last index, so a longer log of older terms wins votes",
    file: LOG,
    edits: [["return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());", "return lastIndex >= this.lastIndex();"]],
  },
  {
    id: "vote-log-check-term-only",
    rule: "5.4.1 election restriction: with equal last terms the longer log is more up to date",
    bug: "the up-to-date check accepts any log whose last term is at least ours, however short",
    file: LOG,
    edits: [["return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());", "return lastTerm >= ourTerm;"]],
  },
  {
    id: "vote-ignores-log",
    rule: "5.4.1 election restriction",
    bug: "a vote is granted without looking at the candidate's log",
    file: RAFT,
    edits: [["const upToDate = this.#log.isUpToDate(message.lastLogIndex, message.lastLogTerm);", "const upToDate = message.lastLogIndex >= 0;"]],
  },
  {
    id: "candidate-keeps-term",
    rule: "5.2 a candidate increments its current term",
    bug: "a candidate campaigns in its current term instead of a new one",
    file: RAFT,
    edits: [["    this.#term++;\n    this.#vote = this.id;", "    this.#vote = this.id;"]],
  },
  {
    id: "stale-append-accepted",
    rule: "5.1 a request with a stale term is rejected",
    bug: "a follower accepts appends from a leader of an older term",
    file: RAFT,
    edits: [["} else if (message.term < this.#term) {", "} else if (message.term < this.#term && message.type !== \"MsgApp\") {"]],
  },
  {
    id: "vote-request-term-not-adopted",
    rule: "5.1 a server that sees a higher term in any request or response adopts it",
    bug: "a vote request with a higher term is answered without moving to that term, so the vote is recorded in the old one",
    file: RAFT,
    edits: [["    if (message.type === \"MsgPreVote\") return true; // Never changes our term.", "    if (message.type === \"MsgPreVote\" || message.type === \"MsgVote\") return true; // Never changes our term."]],
  },

  // ---------------------------------------------------------------------------------------------
  // Log replication (5.3) and commitment (5.4.2)
  {
    id: "append-skips-consistency-check",
    rule: "5.3 AppendEntries consistency check on prevLogIndex and prevLogTerm",
    bug: "a follower checks only that it has an entry at prevLogIndex, not its term",
    file: RAFT,
    edits: [["if (this.#log.matchTerm(message.prevLogIndex, message.prevLogTerm)) {\n      const lastNewIndex", "if (message.prevLogIndex <= this.#log.lastIndex()) {\n      const lastNewIndex"]],
  },
  {
    id: "append-truncates-matching",
    rule: "5.3 truncate only at a conflict: an entry held with the same term stays, and so does what follows it",
    bug: "a follower whose log runs past an append's entries drops its tail from the append's first entry on, even when the terms match",
    file: LOG,
    edits: [["      const existing = this.term(entry.index);\n", "      const existing = i === 0 && this.lastIndex() > prevLogIndex + entries.length ? -1 : this.term(entry.index);\n"]],
  },
  {
    id: "append-reply-claims-whole-log",
    rule: "5.3 a follower acknowledges only what the append made match the leader",
    bug: "a follower answers a successful append with its last index, though entries past the append may be from an old leader",
    file: RAFT,
    edits: [["      this.#send({ ...base, type: \"MsgAppResp\", reject: false, index: lastNewIndex });", "      this.#send({ ...base, type: \"MsgAppResp\", reject: false, index: this.#log.lastIndex() });"]],
  },
  {
    id: "follower-commit-past-new-entries",
    rule: "Figure 2: commitIndex = min(leaderCommit, index of last new entry)",
    bug: "a follower commits up to the leader's commit index within its whole log, past the entries the append confirmed",
    file: RAFT,
    edits: [["this.#log.commitTo(Math.min(message.commit, lastNewIndex));", "this.#log.commitTo(Math.min(message.commit, this.#log.lastIndex()));"]],
  },
  {
    id: "heartbeat-commit-uncapped",
    rule: "Figure 2: a follower commits only entries that match the leader's log",
    bug: "heartbeats carry the leader's commit index uncapped by the follower's match index",
    file: RAFT,
    edits: [["      const commit = Math.min(progress.match, this.#log.committed);\n", "      const commit = this.#log.committed;\n"]],
  },
  {
    id: "committed-prefix-claims-append",
    rule: "5.3 a follower acknowledges only entries it holds",
    bug: "an append below the follower's commit index is acknowledged as if all its entries were stored",
    file: RAFT,
    edits: [["      this.#send({ ...base, type: \"MsgAppResp\", reject: false, index: this.#log.committed });\n      return;\n    }\n    if (this.#log.matchTerm(message.prevLogIndex", "      this.#send({ ...base, type: \"MsgAppResp\", reject: false, index: Math.max(this.#log.committed, message.prevLogIndex + message.entries.length) });\n      return;\n    }\n    if (this.#log.matchTerm(message.prevLogIndex"]],
  },
  {
    id: "commit-entry-of-old-term",
    rule: "5.4.2 a leader commits by counting replicas only for entries of its own term (Figure 8)",
    bug: "a leader commits any entry a majority holds, whatever its term",
    file: RAFT,
    edits: [["if (index <= this.#log.committed || this.#log.term(index) !== this.#term) return false;", "if (index <= this.#log.committed) return false;"]],
  },
  {
    id: "quorum-half",
    rule: "5.2 a majority of the voters",
    bug: "a quorum is half the voters rounded up, so four voters split into two quorums",
    file: QUORUM,
    edits: [["return Math.floor(voterCount / 2) + 1;", "return Math.ceil(voterCount / 2);"]],
  },
  {
    id: "apply-uncommitted",
    rule: "Figure 2: apply only committed entries",
    bug: "entries are handed to the state machine as soon as they are in the log",
    file: LOG,
    edits: [["    const to = Math.min(this.committed, this.lastIndex());\n    return to < from ? [] : this.slice(from, to, countMax);", "    const to = this.lastIndex();\n    return to < from ? [] : this.slice(from, to, countMax);"]],
  },
  {
    id: "leader-counts-unwritten-copy",
    rule: "10.2.1 a leader counts its own copy toward the quorum only once it is durable",
    bug: "a leader counts a proposal's entries as its own replica before writing them",
    file: RAFT,
    edits: [["    this.counters.proposalsAccepted += commands.length;\n", "    this.counters.proposalsAccepted += commands.length;\n    this.#progress.get(this.id)!.maybeUpdate(this.#log.lastIndex());\n"]],
  },

  // ---------------------------------------------------------------------------------------------
  // Persistence order: nothing is answered before it is durable (Figure 2, "persistent state")
  {
    id: "vote-grant-before-write",
    rule: "Figure 2: persist votedFor before answering RequestVote",
    bug: "a vote grant leaves before the vote is written, so a crash lets the node vote again in the same term",
    file: NODE,
    edits: [["|| message.type === \"MsgVote\" || message.type === \"MsgPreVote\",", "|| message.type === \"MsgVote\" || message.type === \"MsgPreVote\" || message.type === \"MsgVoteResp\","]],
  },
  {
    id: "append-ack-before-write",
    rule: "Figure 2: persist log entries before acknowledging AppendEntries",
    bug: "a follower acknowledges an append before the entries are written",
    file: NODE,
    edits: [["|| message.type === \"MsgVote\" || message.type === \"MsgPreVote\",", "|| message.type === \"MsgVote\" || message.type === \"MsgPreVote\" || message.type === \"MsgAppResp\","]],
  },
  {
    id: "hard-state-only-with-entries",
    rule: "Figure 2: currentTerm and votedFor are persistent state",
    bug: "the hard state is written only when entries or a snapshot are written too",
    file: NODE,
    edits: [["if (ready.hardState || ready.snapshot || ready.entries.length > 0) {", "if (ready.snapshot || ready.entries.length > 0) {"]],
  },
  {
    id: "apply-before-write",
    rule: "runtime Ready order: persist, then send, then apply",
    bug: "committed entries are applied, and clients answered, before the Ready's entries and hard state are written",
    file: NODE,
    edits: [
      ["      // 1. Persist before anything else that depends on it leaves the node.\n", "      for (const entry of ready.committedEntries) this.#apply(entry);\n      // 1. Persist before anything else that depends on it leaves the node.\n"],
      ["      for (const entry of ready.committedEntries) this.#apply(entry);\n      for (const readState", "      for (const readState"],
    ],
  },

  // ---------------------------------------------------------------------------------------------
  // ReadIndex (6.4)
  {
    id: "read-without-quorum",
    rule: "6.4 a ReadIndex read waits for a quorum to confirm the leader",
    bug: "a leader serves reads at its commit index without confirming it still leads",
    file: RAFT,
    edits: [["if (this.#isVoter() && this.#voters().length === 1) {", "if (this.#isVoter()) {"]],
  },
  {
    id: "read-before-own-term-commit",
    rule: "6.4 step 1: a new leader serves reads only after committing an entry of its term",
    bug: "a new leader serves reads at a commit index that may lag the cluster's",
    file: RAFT,
    edits: [["    if (this.#log.term(this.#log.committed) !== this.#term) {\n      // Our commit index may lag", "    if (this.#log.term(this.#log.committed) === -1) {\n      // Our commit index may lag"]],
  },
  {
    id: "read-old-ack-confirms-new-read",
    rule: "6.4 step 3: only heartbeats sent after the read started confirm it",
    bug: "a heartbeat answer confirms reads started after that heartbeat was sent",
    file: RAFT,
    edits: [["      if (read.context > context) break;\n", ""]],
  },

  // ---------------------------------------------------------------------------------------------
  // PreVote (9.6) and CheckQuorum (6.2)
  {
    id: "prevote-counted-as-vote",
    rule: "9.6 pre-votes never count as votes",
    bug: "a candidate counts late pre-vote grants as votes of its election",
    file: RAFT,
    edits: [["      case \"MsgPreVoteResp\":\n        if (this.#role !== \"pre-candidate\") return;\n        this.#votes.set(message.from, !message.reject);\n        this.#tallyVotes(\"pre-vote\");", "      case \"MsgPreVoteResp\":\n        this.#votes.set(message.from, !message.reject);\n        this.#tallyVotes(this.#role === \"candidate\" ? \"election\" : \"pre-vote\");"]],
  },
  {
    id: "prevote-grant-records-vote",
    rule: "9.6 a pre-vote changes neither term nor vote",
    bug: "a follower that grants a pre-vote records it as its vote of the current term",
    file: RAFT,
    edits: [["      if (!preVote) {\n        this.#electionElapsed = 0;\n        this.#vote = message.from;\n      }", "      if (!preVote) this.#electionElapsed = 0;\n      this.#vote = message.from;"]],
  },
  {
    id: "checkquorum-never-steps-down",
    rule: "6.2 a leader that has not heard from a quorum within an election timeout steps down",
    bug: "a leader cut off from its quorum goes on leading",
    file: RAFT,
    edits: [["    if (this.#config.checkQuorum && !this.#quorumActive()) {\n      this.#logLine(`stepped down", "    if (this.#config.checkQuorum && !this.#quorumActive() && this.#tickCount < 0) {\n      this.#logLine(`stepped down"]],
  },

  // ---------------------------------------------------------------------------------------------
  // Membership changes (4.1-4.3)
  {
    id: "two-changes-at-once",
    rule: "4.1 one configuration change at a time",
    bug: "a leader accepts a membership change while the previous one is uncommitted",
    file: RAFT,
    edits: [["    if (this.#configIndex > this.#log.committed) return { ok: false, reason: \"change_in_progress\", configIndex: this.#configIndex };\n", ""]],
  },
  {
    id: "change-before-own-term-commit",
    rule: "4.1 (raft-dev 2015): a new leader changes the configuration only after committing an entry of its term",
    bug: "a new leader appends a configuration change before its no-op commits",
    file: RAFT,
    edits: [["    if (!this.#committedInTerm()) return { ok: false, reason: \"leader_not_ready\", term: this.#term };\n", ""]],
  },
  {
    id: "config-replaced-not-undone",
    rule: "4.1 a configuration entry takes effect when appended, and is undone when it is replaced",
    bug: "a follower refreshes its membership only when an append carries a configuration entry, not when one is truncated away",
    file: RAFT,
    edits: [["if (this.#configIndex > message.prevLogIndex || message.entries.some((entry) => entry.kind === \"config\")) {", "if (message.entries.some((entry) => entry.kind === \"config\")) {"]],
  },

  {
    id: "learner-counted-for-commit",
    rule: "4.2.1 learners do not count toward the commit quorum",
    bug: "the leader counts learners' copies when it computes the commit index",
    file: RAFT,
    edits: [["const index = committedIndex(this.#voters(), matches);", "const index = committedIndex([...this.#voters(), ...this.#membership.learners], matches);"]],
  },

  // ---------------------------------------------------------------------------------------------
  // Leadership transfer (3.10)
  {
    id: "transfer-vote-skips-log-check",
    rule: "3.10 a transfer's forced vote still obeys the election restriction",
    bug: "a vote request marked as a transfer is granted without the log check",
    file: RAFT,
    edits: [["    const upToDate = this.#log.isUpToDate(message.lastLogIndex, message.lastLogTerm);", "    const upToDate = (message.type === \"MsgVote\" && message.transfer) || this.#log.isUpToDate(message.lastLogIndex, message.lastLogTerm);"]],
  },

  // ---------------------------------------------------------------------------------------------
  // Snapshots and log compaction (chapter 5 of the thesis; paper 7)
  {
    id: "snapshot-matching-index-any-term",
    rule: "7 a follower keeps its log past a snapshot only when it holds the snapshot's last entry with the same term",
    bug: "a follower that holds any entry at the snapshot's index takes it as the snapshot's and commits it",
    file: RAFT,
    edits: [["    if (this.#log.matchTerm(index, term)) {\n      // We already hold the snapshot's last entry", "    if (this.#log.term(index) !== undefined) {\n      // We already hold the snapshot's last entry"]],
  },
  {
    id: "snapshot-keeps-old-membership",
    rule: "7 a snapshot carries the configuration in force at its index",
    bug: "a follower that installs a snapshot keeps the membership it had before",
    file: RAFT,
    edits: [["    this.#snapshot = message.snapshot;\n    this.#baseMembership = message.snapshot.metadata.membership;\n", "    this.#snapshot = message.snapshot;\n"]],
  },
  {
    id: "compaction-base-membership-latest",
    rule: "7 the membership below a compacted log is the one in force at the compaction point",
    bug: "after compaction the membership under the log is taken from the newest configuration entry, committed or not",
    file: RAFT,
    edits: [["this.#baseMembership = this.#membershipAt(compactThrough);", "this.#baseMembership = this.#membershipAt(this.#log.lastIndex());"]],
  },
  {
    id: "snapshot-answer-last-index",
    rule: "7 after a snapshot the follower acknowledges the snapshot's index only",
    bug: "a follower that already holds the snapshot's entry acknowledges its whole log",
    file: RAFT,
    edits: [["      this.#log.commitTo(index);\n      this.#send({ ...base, index });", "      this.#log.commitTo(index);\n      this.#send({ ...base, index: this.#log.lastIndex() });"]],
  },
];
