// `npm run sim` refuses every malformed or contradictory flag with a message naming the flag, the
// value it received and what it takes; good flags parse to the documented defaults and values.
import test from "ava";
import { parseSimArguments, SimUsageError } from "../../sim/arguments.ts";

test("parseSimArguments() defaults to seed 1, 60 s, no faults", (t) => {
  const args = parseSimArguments([]);
  t.is(args.seedFirst, 1);
  t.is(args.seedLast, 1);
  t.is(args.durationMs, 60_000);
  t.is(args.faults, "none");
  t.false(args.json);
  t.is(args.nodeCount, undefined);
});

test("parseSimArguments() reads a seed range, nodes, duration units, faults, trace and json", (t) => {
  const args = parseSimArguments(["--seeds", "1..500", "--nodes", "5", "--duration", "90s", "--faults", "swarm", "--trace", "x.trace", "--json"]);
  t.like(args, { seedFirst: 1, seedLast: 500, nodeCount: 5, durationMs: 90_000, faults: "swarm", traceFile: "x.trace", json: true });
  t.is(parseSimArguments(["--duration", "1500ms"]).durationMs, 1_500);
  t.is(parseSimArguments(["--duration", "2m"]).durationMs, 120_000);
});

const refusals: [string[], RegExp][] = [
  [["--seed", "1", "--seeds", "1..2"], /Cannot use --seed and --seeds together/],
  [["--seeds", "5..3"], /"5\.\.3" ends before it starts/],
  [["--seeds", "1-5"], /must be a range like "1\.\.500"/],
  [["--seed", "-4"], /Invalid value for --seed: "-4" must be an integer/],
  [["--nodes", "12"], /Invalid value for --nodes: "12" must be an integer from 1 to 9/],
  [["--duration", "soon"], /"soon" is not a duration/],
  [["--duration", "100ms"], /must be between 1s and 24h/],
  [["--faults", "swam"], /"swam" must be "none" or "swarm"/],
  [["--trace"], /Missing value for --trace/],
  [["--sed", "3"], /Unknown flag "--sed"/],
];

for (const [argv, message] of refusals) {
  test(`parseSimArguments() refuses ${argv.join(" ")}`, (t) => {
    t.throws(() => parseSimArguments(argv), { instanceOf: SimUsageError, message });
  });
}
