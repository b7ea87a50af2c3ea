/**
 * Quorum arithmetic (src/core/quorum.ts) against deliberately naive versions, after etcd's quorum
 * tests: the committed index by trying every candidate index and counting the voters that hold it,
 * and the vote result by enumerating every way the missing votes could still go. Thousands of random
 * configurations (seeded, so a failure replays), then the edge cases written out.
 */
import test from "ava";
import seedrandom from "seedrandom";
import { AssertionError } from "../../src/assert.ts";
import { committedIndex, quorumSize, voteResult } from "../../src/core/quorum.ts";
import type { VoteResult } from "../../src/core/quorum.ts";
import type { NodeId } from "../../src/core/types.ts";

const RANDOM_CASES = 5_000;

/** The largest index that strictly more than half of the voters hold (missing voters hold 0). */
function naiveCommittedIndex(voters: readonly NodeId[], matchIndexes: ReadonlyMap<NodeId, number>): number {
  const held = voters.map((id) => matchIndexes.get(id) ?? 0);
  let best = 0;
  for (const candidate of held) {
    const holders = held.filter((index) => index >= candidate).length;
    if (holders * 2 > voters.length && candidate > best) best = candidate;
  }
  return best;
}

/** Won if every completion of the missing votes wins, lost if every completion loses, else pending. */
function naiveVoteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const missing = voters.filter((id) => !votes.has(id));
  let wins = 0;
  const completions = 2 ** missing.length;
  for (let mask = 0; mask < completions; mask++) {
    let granted = 0;
    for (const id of voters) {
      const position = missing.indexOf(id);
      const vote = position >= 0 ? (mask & (1 << position)) !== 0 : votes.get(id)!;
      if (vote) granted++;
    }
    if (granted * 2 > voters.length) wins++;
  }
  if (wins === completions) return "won";
  if (wins === 0) return "lost";
  return "pending";
}

/** 1 to 9 distinct voter ids drawn from 1..20. */
function randomVoters(random: () => number): NodeId[] {
  const count = 1 + Math.floor(random() * 9);
  const ids = new Set<NodeId>();
  while (ids.size < count) ids.add(1 + Math.floor(random() * 20));
  return [...ids];
}

test("quorumSize is a strict majority", (t) => {
  // Goal: the exact table for small clusters, and a refusal for an empty one.
  t.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map(quorumSize), [1, 2, 2, 3, 3, 4, 4, 5, 5]);
  t.throws(() => quorumSize(0), { instanceOf: AssertionError });
});

test("committedIndex matches a naive count on random match indexes", (t) => {
  // Goal: the sort-based routine equals "the largest index held by a majority" for any voter set, with
  // voters missing from the map, non-voters present in it, and many ties. Method: seeded random inputs.
  const random = seedrandom("quorum-committed-index");
  const seen = new Set<number>();
  for (let i = 0; i < RANDOM_CASES; i++) {
    const voters = randomVoters(random);
    const matchIndexes = new Map<NodeId, number>();
    const spread = 1 + Math.floor(random() * 12);
    for (let id = 1; id <= 20; id++) {
      // Voters are sometimes missing; non-voters sometimes present with high indexes that must not count.
      if (random() < 0.8) matchIndexes.set(id, Math.floor(random() * spread) + (voters.includes(id) ? 0 : 100));
    }
    const before = JSON.stringify([...matchIndexes]);
    const expected = naiveCommittedIndex(voters, matchIndexes);
    t.is(committedIndex(voters, matchIndexes), expected, `voters ${JSON.stringify(voters)} matches ${before}`);
    t.is(JSON.stringify([...matchIndexes]), before, "the input map is left alone");
    seen.add(expected);
  }
  t.true(seen.has(0) && seen.has(5) && seen.size >= 10, `committed indexes seen: ${[...seen].sort((a, b) => a - b).join(",")}`);
});

test("committedIndex edge cases", (t) => {
  // Goal: exact values where off-by-one errors hide: one voter, even clusters, ties, missing voters.
  t.is(committedIndex([1], new Map([[1, 7]])), 7);
  t.is(committedIndex([1], new Map()), 0);
  t.is(committedIndex([1, 2], new Map([[1, 5], [2, 3]])), 3, "two voters need both");
  t.is(committedIndex([1, 2, 3], new Map([[1, 5], [2, 3], [3, 1]])), 3);
  t.is(committedIndex([1, 2, 3], new Map([[1, 5]])), 0, "missing voters hold 0");
  t.is(committedIndex([1, 2, 3, 4], new Map([[1, 9], [2, 8], [3, 2], [4, 1]])), 2, "four voters need three");
  t.is(committedIndex([1, 2, 3, 4, 5], new Map([[1, 4], [2, 4], [3, 4], [4, 9], [5, 9]])), 4);
  t.is(committedIndex([1, 2, 3, 4, 5], new Map([[1, 9], [2, 9], [6, 9], [7, 9]])), 0, "non-voters never count");
  t.is(committedIndex([3, 1, 2], new Map([[1, 2], [2, 2], [3, 2]])), 2);
  t.throws(() => committedIndex([], new Map()), { instanceOf: AssertionError });
});

test("voteResult matches a naive enumeration on random votes", (t) => {
  // Goal: "won" exactly when the granted votes already form a majority, "lost" exactly when no outcome
  // of the missing votes could reach one, "pending" otherwise; votes from non-voters never count.
  const random = seedrandom("quorum-vote-result");
  const outcomes = new Map<VoteResult, number>();
  for (let i = 0; i < RANDOM_CASES; i++) {
    const voters = randomVoters(random);
    const votes = new Map<NodeId, boolean>();
    const answerRate = random();
    const grantRate = random();
    for (let id = 1; id <= 20; id++) {
      if (random() < answerRate) votes.set(id, voters.includes(id) ? random() < grantRate : true);
    }
    const expected = naiveVoteResult(voters, votes);
    t.is(voteResult(voters, votes), expected, `voters ${JSON.stringify(voters)} votes ${JSON.stringify([...votes])}`);
    outcomes.set(expected, (outcomes.get(expected) ?? 0) + 1);
  }
  for (const outcome of ["won", "lost", "pending"] as const) {
    t.true((outcomes.get(outcome) ?? 0) > RANDOM_CASES / 20, `${outcome}: ${outcomes.get(outcome) ?? 0}`);
  }
});

test("voteResult edge cases", (t) => {
  // Goal: exact thresholds, in particular for even cluster sizes where a tie is a loss.
  const votes = (entries: [NodeId, boolean][]): Map<NodeId, boolean> => new Map(entries);
  t.is(voteResult([1], votes([])), "pending");
  t.is(voteResult([1], votes([[1, true]])), "won");
  t.is(voteResult([1], votes([[1, false]])), "lost");
  t.is(voteResult([1, 2, 3], votes([[1, true]])), "pending");
  t.is(voteResult([1, 2, 3], votes([[1, true], [2, true]])), "won");
  t.is(voteResult([1, 2, 3], votes([[1, true], [2, false]])), "pending");
  t.is(voteResult([1, 2, 3], votes([[1, true], [2, false], [3, false]])), "lost");
  t.is(voteResult([1, 2, 3, 4], votes([[1, true], [2, true]])), "pending", "2 of 4 is no majority yet");
  t.is(voteResult([1, 2, 3, 4], votes([[1, true], [2, true], [3, false]])), "pending");
  t.is(voteResult([1, 2, 3, 4], votes([[1, true], [2, true], [3, false], [4, false]])), "lost", "a 2-2 split loses");
  t.is(voteResult([1, 2, 3, 4], votes([[1, true], [3, false], [4, false]])), "lost");
  t.is(voteResult([1, 2, 3, 4], votes([[1, true], [2, true], [3, true]])), "won");
  t.is(voteResult([1, 2, 3], votes([[1, true], [7, true], [8, true]])), "pending", "non-voters do not count");
  t.is(voteResult([1, 2, 3, 4, 5], votes([[1, false], [2, false]])), "pending");
  t.is(voteResult([1, 2, 3, 4, 5], votes([[1, false], [2, false], [3, false]])), "lost");
});
