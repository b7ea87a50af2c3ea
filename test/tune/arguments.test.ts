// `npm run tune` flags: defaults per mode, and a clear refusal, naming the flag, the value received and
// what it takes, for every bad or contradictory combination. One case runs the real command to check
// that a bad flag exits with code 2 before any simulation starts.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { parseTuneArguments, parseTuneDuration, TuneUsageError } from "../../sim/tune/arguments.ts";

const run = promisify(execFile);

test("parseTuneArguments() defaults to profile verification", (t) => {
  const args = parseTuneArguments([]);
  t.is(args.mode, "profiles");
  t.is(args.seeds, 200);
  t.is(args.outDirectory, undefined, "no --out: no report is written anywhere");
  t.false(args.json);
  t.is(args.nodeCount, 3);
  t.true(args.workers >= 1);
});

test("parseTuneArguments() reads each mode and its options", (t) => {
  const figure = parseTuneArguments(["--figure16", "--trials", "200", "--json", "--out", "/tmp/x", "--workers", "1"]);
  t.like(figure, { mode: "figure16", trials: 200, json: true, outDirectory: "/tmp/x", workers: 1 });
  t.like(parseTuneArguments(["--figure16", "--quick"]), { trials: 100, quick: true });
  t.like(parseTuneArguments(["--rtt", "35ms", "--jitter", "10ms"]), { mode: "recommend", rttMs: 35, jitterMs: 10 });
  t.like(parseTuneArguments(["--rtt", "0.2s"]), { mode: "recommend", rttMs: 200, jitterMs: 0 });
  t.like(parseTuneArguments(["--profiles", "--long", "--seeds", "50", "--nodes", "5"]), { mode: "profiles", long: true, seeds: 50, nodeCount: 5 });
});

test("parseTuneDuration() takes ms, s and bare milliseconds", (t) => {
  t.is(parseTuneDuration("35ms", "--rtt"), 35);
  t.is(parseTuneDuration("1.5s", "--rtt"), 1500);
  t.is(parseTuneDuration("12", "--rtt"), 12);
  t.throws(() => parseTuneDuration("fast", "--rtt"), { instanceOf: TuneUsageError, message: 'Invalid value for --rtt: "fast" is not a duration; use milliseconds or seconds, like "35ms" or "0.5s"' });
});

const refusals: [string[], RegExp][] = [
  [["--rtt", "abc"], /--rtt: "abc" is not a duration/],
  [["--rtt", "0"], /--rtt: "0" must be above 0/],
  [["--rtt", "10ms", "--jitter", "20ms"], /--jitter: "20ms" must not exceed the round trip/],
  [["--rtt"], /Missing value for --rtt: give the measured round-trip time/],
  [["--rtt", "--json"], /Missing value for --rtt/],
  [["--trials", "5", "--figure16"], /--trials: "5" must be a whole number from 10 to 100000/],
  [["--figure16", "--trials", "2.5"], /--trials: "2.5" must be a whole number/],
  [["--seeds", "-3"], /--seeds: "-3" must be a whole number from 1 to 10000/],
  [["--seeds", "0"], /--seeds: "0" must be a whole number from 1/],
  [["--workers", "many"], /--workers: "many" must be a whole number/],
  [["--nodes", "2"], /--nodes: "2" must be a whole number from 3 to 9/],
  [["--figure16", "--rtt", "35ms"], /Cannot use --figure16 and --rtt together: pick one mode/],
  [["--profiles", "--figure16"], /Cannot use --profiles and --figure16 together/],
  [["--jitter", "5ms"], /Cannot use --jitter without --rtt/],
  [["--trials", "100"], /Cannot use --trials without --figure16/],
  [["--figure16", "--seeds", "100"], /Cannot use --seeds with --figure16: use --trials/],
  [["--figure16", "--long"], /Cannot use --long outside profile verification/],
  [["--quick", "--long"], /Cannot use --quick and --long together/],
  [["--figure16", "--nodes", "3"], /the paper's experiment uses 5 servers/],
  [["--json", "--json"], /Flag --json was given twice/],
  [["--json", "--out", ""], /Invalid value for --out: "" is not a directory/],
  [["--out"], /Missing value for --out: give a directory/],
  [["--figure-16"], /Unknown flag "--figure-16"/],
  [["figure16"], /Unknown flag "figure16"/],
];

for (const [argv, message] of refusals) {
  test(`parseTuneArguments() refuses ${argv.join(" ")}`, (t) => {
    t.throws(() => parseTuneArguments(argv), { instanceOf: TuneUsageError, message });
  });
}

test("npm run tune exits with code 2 and the reason on a bad flag", async (t) => {
  const error = await run("npx", ["tsx", "sim/tune/cli.ts", "--rtt", "fast"], { cwd: process.cwd() }).then(
    () => undefined,
    (failure: { code: number; stderr: string; stdout: string }) => failure,
  );
  t.truthy(error, "the command must fail");
  t.is(error!.code, 2);
  t.regex(error!.stderr, /Invalid value for --rtt: "fast" is not a duration/);
  t.is(error!.stdout, "");
});
