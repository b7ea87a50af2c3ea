// A small Figure 16 run on the real core, checked for the properties the full run must have: every
// trial sets up a leader and elects a new one after the crash; a fixed timeout (150-150) is far slower
// than a randomized one (150-300); no trial ends before the earliest possible moment (half the minimum
// timeout after the crash, plus an election); and a seed replays to the same result.
import test from "ava";
import { figure16TickMs, FIGURE16_MODELS, runFigure16Trial, summarizeFigure16, type Figure16Trial } from "../../sim/tune/figure16.ts";
import { planFigure16, figure16TrialCount, collectFigure16, figure16JsonLines } from "../../sim/tune/figure16-run.ts";
import { runJobs } from "../../sim/tune/pool.ts";
import { parseTimeoutRange } from "../../sim/tune/timeout-range.ts";

const SETTINGS = { ...FIGURE16_MODELS.paper.settings, durationMsMax: 10_000 };

function trials(range: string, count: number): Figure16Trial[] {
  return Array.from({ length: count }, (_, i) => runFigure16Trial(range, `test-${i}`, SETTINGS));
}

test("figure16TickMs() resolves each range into at least two tick counts with a whole heartbeat", (t) => {
  t.is(figure16TickMs(parseTimeoutRange("150-155")), 1);
  t.is(figure16TickMs(parseTimeoutRange("150-151")), 0.5);
  t.is(figure16TickMs(parseTimeoutRange("150-150")), 0.25);
  t.is(figure16TickMs(parseTimeoutRange("25-50")), 0.5, "a 12.5 ms heartbeat needs half-millisecond ticks");
  t.is(figure16TickMs(parseTimeoutRange("12-24")), 1);
});

test("a randomized range elects a leader in every trial, never sooner than physics allows", (t) => {
  const results = trials("150-300", 40);
  for (const trial of results) {
    t.true(trial.started);
    t.false(trial.censored);
    t.true(trial.heardMs >= trial.electedMs);
    // The survivors' timers started at the last heartbeat (at most 75 ms before the crash) and run at
    // least 150 ms; the election then needs a disk write and a round trip.
    t.true(trial.electedMs > 150 - 75 + 10, `elected after only ${trial.electedMs} ms`);
    t.true(trial.terms >= 1);
  }
  const summary = summarizeFigure16("150-300", results, SETTINGS.durationMsMax);
  t.is(summary.censored, 0);
  t.true(summary.heard!.median < 1_000);
});

test("150-150 ms is much slower than 150-300 ms: without randomness the votes keep splitting", (t) => {
  const fixed = summarizeFigure16("150-150", trials("150-150", 3), SETTINGS.durationMsMax);
  const random = summarizeFigure16("150-300", trials("150-300", 20), SETTINGS.durationMsMax);
  t.is(fixed.notStarted, 0);
  t.true(fixed.heard!.median > 4 * random.heard!.median, `150-150 median ${fixed.heard!.median} ms vs 150-300 ${random.heard!.median} ms`);
  t.true(fixed.termsMean! > 3 * random.termsMean!, "150-150 needs many more elections");
});

test("the shortest paper range (12-24 ms) sets up and elects", (t) => {
  for (const trial of trials("12-24", 10)) {
    t.true(trial.started);
    t.false(trial.censored);
  }
});

test("a Figure 16 trial replays exactly from its seed", (t) => {
  t.deepEqual(runFigure16Trial("150-175", "replay", SETTINGS), runFigure16Trial("150-175", "replay", SETTINGS));
  t.notDeepEqual(runFigure16Trial("150-175", "replay", SETTINGS), runFigure16Trial("150-175", "other", SETTINGS));
});

test("the plan runs a tenth of the trials for 150-150 and the JSON has one line per range", async (t) => {
  t.is(figure16TrialCount("paper", "150-150", 1000), 100);
  t.is(figure16TrialCount("paper", "150-155", 1000), 1000);
  t.is(figure16TrialCount("pre-vote", "150-155", 1000), 200);
  const plan = planFigure16({ trials: 10 }, 2_000);
  // Keep it small: only the 150-300 jobs of each model, the rest given empty results.
  const results = await runJobs(
    plan.jobs.map((job) => (job.kind === "figure16" && job.range === "150-300" ? job : { ...job, seeds: [] })),
    { workers: 1 },
  );
  const outcome = collectFigure16(plan, results);
  const lines = figure16JsonLines(outcome).map((line) => JSON.parse(line) as Record<string, unknown>);
  t.is(lines.length, 10);
  const row = lines.find((line) => line.range === "150-300")!;
  t.is(row.trials, 10);
  for (const field of ["medianMs", "meanMs", "p99Ms", "maxMs"]) t.is(typeof row[field], "number", field);
  t.true((row.medianMs as number) > 0);
});
