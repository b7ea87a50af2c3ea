/**
 * Majority arithmetic, kept pure and separate from the state machine so it can be tested against a
 * deliberately naive version on random inputs (test/core/quorum.test.ts).
 */
import { assert } from "../assert.ts";
import type { NodeId } from "./types.ts";

export type VoteResult = "pending" | "won" | "lost";

/** Votes needed to win among `voterCount` voters. */
export function quorumSize(voterCount: number): number {
  assert(voterCount > 0, "quorumSize() needs at least one voter");
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index replicated on a majority, given each voter's match index. Voters missing from
 * `matchIndexes` count as 0.
 */
export function committedIndex(voters: readonly NodeId[], matchIndexes: ReadonlyMap<NodeId, number>): number {
  assert(voters.length > 0, "committedIndex() needs at least one voter");
  const matches = voters.map((id) => matchIndexes.get(id) ?? 0);
  matches.sort((a, b) => b - a);
  // With matches sorted descending, the quorum-th largest is held by at least a quorum of voters.
  return matches[quorumSize(voters.length) - 1]!;
}

/** Tallies granted and rejected votes among `voters`; votes from non-voters are ignored. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const needed = quorumSize(voters.length);
  if (granted >= needed) return "won";
  if (voters.length - rejected < needed) return "lost";
  return "pending";
}
