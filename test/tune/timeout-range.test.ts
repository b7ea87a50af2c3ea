// The paper's timeout ranges mapped onto the production core: every draw must produce exactly the tick
// count the mapping promises in the real Raft core (not a copy of its formula), every tick count of the
// range must be reachable, ranges the core cannot express must be refused, and the mapping must reach
// the nodes inside SimCluster (which finds node streams by their fork labels).
import test from "ava";
import { Raft, RAFT_CONFIG_DEFAULTS } from "../../src/core/raft.ts";
import { Random } from "../../sim/random.ts";
import {
  coreTimeoutTicks,
  parseTimeoutRange,
  TimeoutRangeError,
  TimeoutRangeRandom,
  timeoutDraw,
  timeoutRangeTicks,
  type TimeoutRangeTicks,
} from "../../sim/tune/timeout-range.ts";
import { TuneCluster } from "../../sim/tune/tune-cluster.ts";

/** Ticks a fresh core waits before it campaigns, when its random() always returns `draw`. */
function coreTicksUntilCampaign(ticks: TimeoutRangeTicks, draw: number): number {
  const raft = new Raft(
    {
      ...RAFT_CONFIG_DEFAULTS,
      id: 1,
      electionTicks: ticks.electionTicks,
      heartbeatTicks: 1,
      preVote: false,
      checkQuorum: false,
      random: () => draw,
    },
    { hardState: { term: 0, vote: 0, commit: 0 }, entries: [], membership: { voters: [1, 2, 3], learners: [] }, applied: 0 },
  );
  for (let tick = 1; tick <= 4 * ticks.electionTicks; tick++) {
    raft.tick();
    if (raft.role === "candidate") return tick;
  }
  throw new Error("the core never campaigned");
}

test("parseTimeoutRange() reads the paper's notation and refuses a reversed range", (t) => {
  t.deepEqual(parseTimeoutRange("150-155"), { minMs: 150, maxMs: 155 });
  t.deepEqual(parseTimeoutRange(" 12-24ms "), { minMs: 12, maxMs: 24 });
  t.throws(() => parseTimeoutRange("155-150"), { instanceOf: TimeoutRangeError, message: /ends before it starts/ });
  t.throws(() => parseTimeoutRange("150"), { instanceOf: TimeoutRangeError, message: /MIN-MAX/ });
});

test("timeoutRangeTicks() puts T one tick above the minimum and refuses what the core cannot draw", (t) => {
  t.deepEqual(timeoutRangeTicks({ minMs: 150, maxMs: 155 }, 1), { electionTicks: 151, spreadTicks: 5, tickMs: 1 });
  t.deepEqual(timeoutRangeTicks({ minMs: 150, maxMs: 151 }, 0.5), { electionTicks: 301, spreadTicks: 2, tickMs: 0.5 });
  t.deepEqual(timeoutRangeTicks({ minMs: 150, maxMs: 150 }, 0.25), { electionTicks: 601, spreadTicks: 0, tickMs: 0.25 });
  t.notThrows(() => timeoutRangeTicks({ minMs: 150, maxMs: 300 }, 1));
  t.throws(() => timeoutRangeTicks({ minMs: 150, maxMs: 302 }, 1), { instanceOf: TimeoutRangeError, message: /at most as wide as its minimum/ });
  t.throws(() => timeoutRangeTicks({ minMs: 25, maxMs: 50 }, 2), { instanceOf: TimeoutRangeError, message: /whole ticks/ });
});

test("every draw makes the real core wait exactly T + k ticks, for every k of the range", (t) => {
  const cases: [string, number][] = [
    ["150-155", 1],
    ["150-300", 1],
    ["12-24", 1],
    ["25-50", 0.5],
    ["150-151", 0.5],
  ];
  for (const [text, tickMs] of cases) {
    const ticks = timeoutRangeTicks(parseTimeoutRange(text), tickMs);
    const seen = new Set<number>();
    for (let k = 0; k < ticks.spreadTicks; k++) {
      // Both ends of the uniform interval that selects k, and its middle.
      for (const uniform of [k / ticks.spreadTicks + 1e-12, (k + 0.5) / ticks.spreadTicks, (k + 1) / ticks.spreadTicks - 1e-12]) {
        const draw = timeoutDraw(ticks, uniform);
        t.true(draw >= 0 && draw < 1, `${text}: draw ${draw} outside [0, 1)`);
        t.is(coreTimeoutTicks(ticks.electionTicks, draw), ticks.electionTicks + k, `${text}: formula at k=${k}`);
        t.is(coreTicksUntilCampaign(ticks, draw), ticks.electionTicks + k, `${text}: real core at k=${k}, uniform ${uniform}`);
      }
      seen.add(ticks.electionTicks + k);
    }
    // The tick counts are min/tick + 1 ... max/tick: with the phase between ticks, a timeout in (min, max].
    const { minMs, maxMs } = parseTimeoutRange(text);
    t.is(Math.min(...seen) * tickMs, minMs + tickMs, text);
    t.is(Math.max(...seen) * tickMs, maxMs, text);
    t.is(seen.size, (maxMs - minMs) / tickMs, text);
  }
});

test("150-150 gives one fixed timeout: every draw is the same tick count", (t) => {
  const ticks = timeoutRangeTicks({ minMs: 150, maxMs: 150 }, 0.25);
  for (const uniform of [0, 0.3, 0.999999]) t.is(coreTicksUntilCampaign(ticks, timeoutDraw(ticks, uniform)), 601);
});

test("TimeoutRangeRandom maps only the node streams and leaves the others as a plain Random", (t) => {
  const ticks = timeoutRangeTicks({ minMs: 150, maxMs: 155 }, 1);
  const mapped = new TimeoutRangeRandom("seed", ticks);
  const plain = new Random("seed");
  t.is(mapped.fork("network").next(), plain.fork("network").next());
  t.is(mapped.fork("cluster").real(0, 1), plain.fork("cluster").real(0, 1));
  const node = mapped.fork("cluster").fork("node-3-1");
  for (let i = 0; i < 50; i++) {
    const draw = node.next();
    const k = draw * ticks.electionTicks - 0.5;
    t.true(Math.abs(k - Math.round(k)) < 1e-9, `draw ${draw} is not (k + 0.5) / T`);
    t.true(coreTimeoutTicks(ticks.electionTicks, draw) >= 151 && coreTimeoutTicks(ticks.electionTicks, draw) <= 155);
  }
});

test("inside SimCluster, a 150-150 range makes all five nodes campaign within one tick of each other", (t) => {
  // With a plain Random the five first timeouts would spread over [151, 302) ticks; if SimCluster's
  // stream labels change, the mapping silently stops applying and this test fails.
  const tune = new TuneCluster({
    seed: "label-coupling",
    nodeCount: 5,
    tickMs: 1,
    electionTimeoutMs: 151,
    heartbeatIntervalMs: 75,
    preVote: false,
    checkQuorum: false,
    network: { latencyMs: 5, jitterMs: 1, lossRate: 0, duplicateRate: 0 },
    fsyncMs: 5,
    timeoutRange: timeoutRangeTicks({ minMs: 150, maxMs: 150 }, 1),
  });
  tune.startStaggered(new Random("stagger"));
  tune.cluster.runForMs(150.5 - tune.nowMs);
  t.true(tune.cluster.ids.every((id) => tune.node(id).raft.role === "follower"), "nobody campaigns before 150 ms");
  tune.cluster.runForMs(152 - tune.nowMs);
  t.deepEqual(
    tune.cluster.ids.map((id) => tune.node(id).raft.term),
    [1, 1, 1, 1, 1],
    "every node timed out between 151 and 152 ms",
  );
});
