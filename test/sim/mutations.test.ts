// Mutation tests: put back a bug the project once had into a copy of the code, and require the
// simulator to catch it through the scenario or swarm seed written for it, while the real code passes
// the same run. This is how we know those scenarios and checkers can fail. Each mutation names the
// exact text it replaces; when the code moves on and that text is gone, the test fails and says so,
// so that the mutation is updated rather than silently testing nothing.
import test from "ava";
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { plantMutation } from "../../sim/mutate/plant.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");

interface Mutation {
  readonly bug: string;
  readonly file: string;
  /** [original, mutated] pairs; each original must occur exactly once. */
  readonly edits: readonly (readonly [string, string])[];
  /** `npm run sim` arguments of the run that must catch it. */
  readonly args: readonly string[];
  readonly caughtAs: RegExp;
}

const COUNT_EVERY_ACK = [
  "for (const id of read.acks) if (voters.includes(id)) confirmed++;",
  "confirmed = read.acks.size;",
] as const;

const MUTATIONS: readonly Mutation[] = [
  {
    bug: "ReadIndex counts a learner's confirmation",
    file: "src/core/raft.ts",
    edits: [["    if (!voters.includes(from)) return;\n", ""], COUNT_EVERY_ACK],
    args: ["--scenario", "scenarios/learner-with-old-leader.yaml", "--seeds", "1..2"],
    caughtAs: /^Linearizability: /,
  },
  {
    bug: "ReadIndex counts a leader that is removing itself",
    file: "src/core/raft.ts",
    edits: [["acks: new Set(this.#isVoter() ? [this.id] : [])", "acks: new Set([this.id])"], COUNT_EVERY_ACK],
    args: ["--scenario", "scenarios/leader-leaves-partitioned.yaml", "--seeds", "1..2"],
    caughtAs: /^Linearizability: /,
  },
  {
    bug: "a node that an uncommitted entry removes never campaigns",
    file: "src/core/raft.ts",
    edits: [["this.#randomizedElectionTicks && this.#mayCampaign()", "this.#randomizedElectionTicks && this.#isVoter()"]],
    args: ["--scenario", "scenarios/removed-leader-still-needed.yaml", "--seeds", "1..2"],
    caughtAs: /^Expectation: .*"leader: elected"/,
  },
];

interface SimLine {
  readonly ok?: boolean;
  readonly violations?: readonly string[];
  readonly summary?: { readonly seeds: number; readonly failed: number };
}

/**
 * Runs `npm run sim -- ARGS --json` in `cwd`. A run that found violations exits 3 (liveness only) or 4
 * (correctness), which is not an error here; anything else (a crash, a bad argument) is.
 */
async function sim(cwd: string, args: readonly string[]): Promise<SimLine[]> {
  let stdout: string;
  try {
    ({ stdout } = await run(process.execPath, ["--import", "tsx", "sim/cli.ts", ...args, "--json", "--workers", "1"], { cwd, maxBuffer: 64 * 1024 * 1024 }));
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; code?: number };
    if ((failed.code !== 3 && failed.code !== 4) || failed.stdout === undefined) throw new Error(`npm run sim ${args.join(" ")} failed to run (exit ${failed.code}): ${failed.stderr}`);
    stdout = failed.stdout;
  }
  return stdout.trim().split("\n").map((line) => JSON.parse(line) as SimLine);
}

for (const mutation of MUTATIONS) {
  test(`the simulator catches the planted bug: ${mutation.bug}`, async (t) => {
    const copy = plantMutation(ROOT, { id: mutation.bug, file: mutation.file, edits: mutation.edits });
    try {
      const [mutated, real] = await Promise.all([sim(copy, mutation.args), sim(ROOT, mutation.args)]);
      const violations = mutated.flatMap((line) => line.violations ?? []);
      t.true(mutated.at(-1)!.summary!.failed > 0, `the mutated code passed: npm run sim -- ${mutation.args.join(" ")}`);
      t.true(
        violations.some((violation) => mutation.caughtAs.test(violation)),
        `caught, but not as ${mutation.caughtAs}: ${violations.join(" | ").slice(0, 400)}`,
      );
      t.is(real.at(-1)!.summary!.failed, 0, `the real code fails the same run: ${real.flatMap((line) => line.violations ?? []).join(" | ").slice(0, 400)}`);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
}
