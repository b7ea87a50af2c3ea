/**
 * The mutation suite (sim/mutate, `npm run mutate`) in `npm test`: the catalogue is whole and plants on
 * today's code, the hunter really runs the swarm on a planted copy and stops at the first failing seed,
 * and a fast subset of mutations, one per area, is caught by swarm seeds alone within a few seeds while
 * the unpatched code passes the same seeds. The full run (every mutation over 100 seeds) is
 * `npm run mutate`; its table is docs/mutations.md.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { MUTATIONS } from "../../sim/mutate/mutations.ts";
import { huntMutation, huntSeeds } from "../../sim/mutate/hunt.ts";
import { MutationError, mutatedText } from "../../sim/mutate/plant.ts";

const ROOT = resolve(import.meta.dirname, "../..");

test("the catalogue holds at least thirty mutations with distinct names, each planting on today's code", (t) => {
  t.true(MUTATIONS.length >= 30, `only ${MUTATIONS.length} mutations`);
  t.is(new Set(MUTATIONS.map((mutation) => mutation.id)).size, MUTATIONS.length, "two mutations share a name");
  for (const mutation of MUTATIONS) {
    const original = readFileSync(resolve(ROOT, mutation.file), "utf8");
    const mutated = mutatedText(ROOT, mutation);
    t.not(mutated, original, `${mutation.id} changes nothing`);
    t.true(mutation.edits.every(([before]) => before.length > 0), `${mutation.id} has an empty edit`);
  }
});

test("the catalogue covers every rule area the core depends on", (t) => {
  const rules = MUTATIONS.map((mutation) => mutation.rule).join("\n");
  for (const area of ["5.1", "5.2", "5.3", "5.4.1", "5.4.2", "Figure 2: persist", "6.4", "9.6", "6.2", "4.1", "4.2.1", "3.10", "7 "]) {
    t.true(rules.includes(area), `no mutation for ${area}`);
  }
  t.true(MUTATIONS.some((mutation) => mutation.file === "src/node/raft-node.ts"), "no mutation of the runtime's Ready order");
});

test("a mutation whose text is gone from the code is refused, naming the mutation", (t) => {
  const error = t.throws(() => mutatedText(ROOT, { id: "stale-example", file: "src/core/raft.ts", edits: [["this text is not in raft.ts", "x"]] }), { instanceOf: MutationError });
  t.regex(error.message, /Cannot plant mutation "stale-example": expected the text .* once in src\/core\/raft.ts, found it 0 times/);
});

/** One quick catch per area: each found within the first few swarm seeds by `npm run mutate`. */
const FAST_SUBSET: readonly { id: string; seedsMax: number }[] = [
  { id: "quorum-half", seedsMax: 6 },
  { id: "candidate-keeps-term", seedsMax: 3 },
  { id: "append-truncates-matching", seedsMax: 3 },
  { id: "heartbeat-commit-uncapped", seedsMax: 3 },
  { id: "apply-uncommitted", seedsMax: 3 },
  { id: "prevote-grant-records-vote", seedsMax: 3 },
];

test.serial("the unpatched code passes the seeds the fast subset runs", async (t) => {
  t.timeout(240_000);
  const seedsMax = Math.max(...FAST_SUBSET.map((entry) => entry.seedsMax));
  const baseline = await huntSeeds(ROOT, "baseline", { first: 1, last: seedsMax });
  t.is(baseline.caughtAtSeed, undefined, `the unpatched code fails: ${baseline.violation}`);
  t.is(baseline.seedsRun, seedsMax);
});

for (const { id, seedsMax } of FAST_SUBSET) {
  test.serial(`the swarm alone catches the planted bug ${id} within ${seedsMax} seeds`, async (t) => {
    t.timeout(240_000);
    const mutation = MUTATIONS.find((candidate) => candidate.id === id);
    if (mutation === undefined) return t.fail(`no mutation named ${id}`);
    const result = await huntMutation(ROOT, mutation, { first: 1, last: seedsMax });
    t.log(`${id}: seed ${result.caughtAtSeed ?? "none"}: ${result.violation ?? ""}`.slice(0, 300));
    t.not(result.caughtAtSeed, undefined, `${id} went through seeds 1..${seedsMax}`);
    t.notRegex(result.property ?? "", /^Crash$/, "caught by the swarm's checkers, not by failing to run");
  });
}
