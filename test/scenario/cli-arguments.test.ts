// The scenario flags of `npm run sim`: --scenario, --shrink, --shrink-runs and --render parse, and
// the combinations that cannot work are refused with a message naming both flags.
import test from "ava";
import { parseSimArguments, SimUsageError } from "../../sim/arguments.ts";

test("parseSimArguments() reads --scenario with a seed range, --shrink and --render with one seed", (t) => {
  t.like(parseSimArguments(["--scenario", "scenarios/bridge.yaml", "--seeds", "1..20", "--json"]), {
    scenarioFile: "scenarios/bridge.yaml",
    seedFirst: 1,
    seedLast: 20,
    seedGiven: true,
    json: true,
  });
  t.like(parseSimArguments(["--scenario", "x.yaml"]), { seedGiven: false, shrinkFile: undefined, renderFile: undefined });
  t.like(parseSimArguments(["--scenario", "x.yaml", "--seed", "7", "--shrink", "small.yaml", "--shrink-runs", "50"]), {
    shrinkFile: "small.yaml",
    shrinkRunsMax: 50,
  });
  t.like(parseSimArguments(["--seed", "7", "--faults", "swarm", "--shrink", "s.yaml", "--render", "s.svg"]), { shrinkFile: "s.yaml", renderFile: "s.svg" });
});

const refusals: [string[], RegExp][] = [
  [["--scenario", "x.yaml", "--nodes", "5"], /Cannot use --scenario with --nodes: the scenario file sets the cluster/],
  [["--scenario", "x.yaml", "--faults", "swarm"], /Cannot use --scenario with --faults/],
  [["--scenario", "x.yaml", "--duration", "10s"], /Cannot use --scenario with --duration/],
  [["--scenario", "x.yaml", "--seeds", "1..3", "--shrink", "o.yaml"], /Cannot use --shrink with a range of seeds/],
  [["--seed", "3", "--shrink", "o.yaml"], /Cannot use --shrink without faults to shrink: add --scenario FILE or --faults swarm/],
  [["--seeds", "1..2", "--render", "o.svg"], /Cannot use --render with a range of seeds/],
  [["--scenario"], /Missing value for --scenario/],
  [["--shrink-runs", "0"], /Invalid value for --shrink-runs: "0" must be an integer from 1/],
];

for (const [argv, message] of refusals) {
  test(`parseSimArguments() refuses ${argv.join(" ")}`, (t) => {
    t.throws(() => parseSimArguments(argv), { instanceOf: SimUsageError, message });
  });
}
