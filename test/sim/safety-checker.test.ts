// The safety checker must catch each Raft safety violation. Each test hand-builds the smallest trace
// of observations that breaks one property and checks the checker names that property; a valid trace
// must pass untouched.
import test from "ava";
import { SafetyChecker, SafetyViolation } from "../../sim/checkers/safety.ts";
import type { Entry, HardState, Ready } from "../../src/core/types.ts";

function entry(index: number, term: number, data = `v${index}`): Entry {
  return { index, term, kind: "command", data };
}

function ready(entries: Entry[], hardState?: HardState): Ready {
  return { entries, hardState, messages: [], committedEntries: [], readStates: [] };
}

function logView(terms: number[]) {
  return { snapshotIndex: 0, term: (index: number) => terms[index - 1] };
}

function violation(t: import("ava").ExecutionContext, run: () => void): SafetyViolation {
  const error = t.throws(run, { instanceOf: SafetyViolation });
  return error as SafetyViolation;
}

test("SafetyChecker accepts a valid history of replication, election and restart", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: 1, commit: 0 }), "leader");
  checker.observe(1, "leader", 1, logView([1, 1]));
  checker.persisted(2, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: 1, commit: 2 }), "follower");
  checker.applied(1, entry(1, 1), 1);
  checker.applied(2, entry(1, 1), 1);
  checker.applied(1, entry(2, 1), 1);
  checker.acknowledged(2, "command:v2");
  checker.restarted(2, { hardState: { term: 1, vote: 1, commit: 2 }, entries: [entry(1, 1), entry(2, 1)], snapshotIndex: 0 });
  checker.applied(2, entry(1, 1), 1);
  checker.applied(2, entry(2, 1), 1);
  checker.persisted(2, ready([entry(3, 2)], { term: 2, vote: 2, commit: 2 }), "leader");
  checker.observe(2, "leader", 2, logView([1, 1, 2]));
  checker.finish();
  t.true(checker.checks > 0);
});

test("SafetyChecker reports two leaders in one term (Election Safety)", (t) => {
  const checker = new SafetyChecker();
  checker.observe(1, "leader", 3, logView([]));
  const error = violation(t, () => checker.observe(2, "leader", 3, logView([])));
  t.is(error.property, "Election Safety");
  t.regex(error.detail, /nodes 1 and 2 are both leaders of term 3/);
});

test("SafetyChecker reports a vote changed within a term (Election Safety)", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([], { term: 2, vote: 2, commit: 0 }), "follower");
  const error = violation(t, () => checker.persisted(1, ready([], { term: 2, vote: 3, commit: 0 }), "follower"));
  t.is(error.property, "Election Safety");
});

test("SafetyChecker reports a leader that overwrites its log (Leader Append-Only)", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: 1, commit: 0 }), "leader");
  const error = violation(t, () => checker.persisted(1, ready([entry(2, 1, "other")]), "leader"));
  t.is(error.property, "Leader Append-Only");
});

test("SafetyChecker reports one index and term with two contents (Log Matching)", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1, "a")], { term: 1, vote: 1, commit: 0 }), "follower");
  const error = violation(t, () => checker.persisted(2, ready([entry(1, 1, "b")], { term: 1, vote: 1, commit: 0 }), "follower"));
  t.is(error.property, "Log Matching");
});

test("SafetyChecker reports equal entries over different prefixes (Log Matching)", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1), entry(2, 3, "x")], { term: 3, vote: 1, commit: 0 }), "follower");
  const error = violation(t, () => checker.persisted(2, ready([entry(1, 2), entry(2, 3, "x")], { term: 3, vote: 1, commit: 0 }), "follower"));
  t.is(error.property, "Log Matching");
  t.regex(error.detail, /after an entry of term 2/);
});

test("SafetyChecker lets a leader of an older term win late without an entry committed in a later term", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 4)], { term: 4, vote: 1, commit: 1 }), "leader");
  checker.applied(1, entry(1, 4), 4);
  // Node 3 was paused as a candidate of term 3; the votes it collected then let it win on resume.
  checker.observe(3, "leader", 3, logView([]));
  t.pass();
});

test("SafetyChecker reports a leader elected without a committed entry (Leader Completeness)", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: 1, commit: 2 }), "leader");
  checker.applied(1, entry(1, 1), 1);
  checker.applied(1, entry(2, 1), 1);
  const error = violation(t, () => checker.observe(3, "leader", 2, logView([1])));
  t.is(error.property, "Leader Completeness");
  t.regex(error.detail, /without committed entry 2/);
});

test("SafetyChecker reports a committed entry removed from a follower's log", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(2, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: 1, commit: 2 }), "follower");
  checker.applied(2, entry(1, 1), 1);
  checker.applied(2, entry(2, 1), 1);
  const error = violation(t, () => checker.persisted(2, ready([entry(2, 2, "new")], { term: 2, vote: 3, commit: 2 }), "follower"));
  t.is(error.property, "Leader Completeness");
});

test("SafetyChecker reports two different entries applied at one index (State Machine Safety)", (t) => {
  const checker = new SafetyChecker();
  checker.applied(1, entry(1, 1, "a"), 1);
  const error = violation(t, () => checker.applied(2, entry(1, 2, "b"), 1));
  t.is(error.property, "State Machine Safety");
});

test("SafetyChecker reports synced entries missing after a restart (Durability)", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: 1, commit: 0 }), "follower");
  const error = violation(t, () =>
    checker.restarted(1, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [entry(1, 1)], snapshotIndex: 0 }),
  );
  t.is(error.property, "Durability");
});

test("SafetyChecker reports a forgotten vote after a restart (Durability)", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([], { term: 4, vote: 2, commit: 0 }), "follower");
  const error = violation(t, () => checker.restarted(1, { hardState: { term: 4, vote: 0, commit: 0 }, entries: [], snapshotIndex: 0 }));
  t.is(error.property, "Durability");
});

test("SafetyChecker accepts a crash inside a save that leaves part of the new entries", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: 1, commit: 0 }), "follower");
  checker.persisting(1, ready([entry(2, 2, "n2"), entry(3, 2, "n3")], { term: 2, vote: 2, commit: 0 }));
  checker.restarted(1, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [entry(1, 1), entry(2, 2, "n2")], snapshotIndex: 0 });
  t.pass();
});

test("SafetyChecker reports an acknowledged write that is not at its index", (t) => {
  const checker = new SafetyChecker();
  checker.applied(1, entry(1, 1, "a"), 1);
  const error = violation(t, () => checker.acknowledged(1, "command:b"));
  t.is(error.property, "Acknowledged write");
});

test("SafetyChecker accepts a crash before an interrupted save truncated the old tail", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: 1, commit: 0 }), "follower");
  checker.persisting(1, ready([entry(2, 2, "n2")], { term: 2, vote: 2, commit: 0 }));
  checker.restarted(1, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [entry(1, 1), entry(2, 1)], snapshotIndex: 0 });
  t.pass();
});

test("SafetyChecker reports a recovered log that mixes the old tail and the interrupted save", (t) => {
  const checker = new SafetyChecker();
  checker.persisted(1, ready([entry(1, 1), entry(2, 1), entry(3, 1)], { term: 1, vote: 1, commit: 0 }), "follower");
  checker.persisting(1, ready([entry(2, 2, "n2"), entry(3, 2, "n3")], { term: 2, vote: 2, commit: 0 }));
  const error = violation(t, () =>
    checker.restarted(1, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [entry(1, 1), entry(2, 1), entry(3, 2, "n3")], snapshotIndex: 0 }),
  );
  t.is(error.property, "Durability");
});
