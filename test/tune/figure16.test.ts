// A small Figure 16 run on the real core, checked for the properties the full run must have: every
// trial sets up a leader and elects a new one after the crash; a fixed timeout (150-150) is far slower
// than a randomized one (150-300); no trial ends before the earliest possible moment (half the minimum
// timeout after the crash, plus an election); and a seed replays to the same result.
import test from "ava";
import {
  broadcastTimeMs,
  figure16SweepCells,
  figure16TickMs,
  FIGURE16_MODELS,
  FIGURE16_SWEEP_BROADCASTS_MS,
  FIGURE16_SWEEP_LATENCIES_MS,
  FIGURE16_SWEEP_RANGES,
  runFigure16Trial,
  summarizeFigure16,
  type Figure16RangeSummary,
  type Figure16Trial,
} from "../../sim/tune/figure16.ts";
import { planFigure16, figure16TrialCount, collectFigure16, figure16JsonLines, figure16Markdown, figure16TerminalReport } from "../../sim/tune/figure16-run.ts";
import { compareWithPaper, isClose, PAPER_FIGURES } from "../../sim/tune/paper.ts";
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
    t.true(trial.campaignsMax >= 1 && trial.campaignsMax <= trial.terms, "someone campaigned, and each campaign was a new term");
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
  t.is(fixed.oneRound, 0, "with one fixed timeout the first round always splits, so somebody times out twice");
  t.true(random.oneRound > 0.5, `150-300 is mostly decided in one round (${random.oneRound})`);
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
  t.is(figure16TrialCount("sweep", "150-155", 1000), 200);
  const plan = planFigure16({ trials: 10 }, 2_000);
  t.is(plan.sweep.length, FIGURE16_SWEEP_LATENCIES_MS.length * FIGURE16_SWEEP_BROADCASTS_MS.length);
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
  // The sweep rides on the lines of the ranges it runs, one entry per cell, and on no other line.
  for (const line of lines) {
    const sweep = line.sweep as { latencyMs: number; broadcastMs: number; fsyncMs: number }[] | undefined;
    if (FIGURE16_SWEEP_RANGES.includes(line.range as string)) {
      t.is(sweep?.length, plan.sweep.length, `sweep entries on ${String(line.range)}`);
      for (const cell of sweep!) t.is(cell.fsyncMs + 2 * cell.latencyMs, cell.broadcastMs);
    } else {
      t.is(sweep, undefined, `no sweep on ${String(line.range)}`);
    }
  }
  // The reports render with empty cells (no trials) without throwing, and name every model.
  const terminal = figure16TerminalReport(outcome);
  for (const label of ["paper's setting", "LAN split", "PreVote on", "broadcast 15 ms"]) t.true(terminal.includes(label), label);
  t.true(figure16Markdown(outcome, { run: { command: "npm run tune -- --figure16", wallMs: 1, workers: 1, machine: "a test" }, trials: 10 }).includes("## Every split of the broadcast time"));
});

test("the sweep covers every split of the broadcast time in its grid, with jitter a fifth of the delay", (t) => {
  const cells = figure16SweepCells();
  t.is(cells.length, FIGURE16_SWEEP_LATENCIES_MS.length * FIGURE16_SWEEP_BROADCASTS_MS.length);
  for (const cell of cells) {
    t.is(broadcastTimeMs(cell.settings), cell.broadcastMs);
    t.is(cell.settings.latencyMs, cell.latencyMs);
    t.is(cell.settings.jitterMs, cell.latencyMs / 5);
    t.true(cell.settings.fsyncMs > 0);
    // Everything but the split is the paper's setting.
    t.deepEqual({ ...cell.settings, latencyMs: 0, jitterMs: 0, fsyncMs: 0 }, { ...FIGURE16_MODELS.paper.settings, latencyMs: 0, jitterMs: 0, fsyncMs: 0 });
  }
  t.is(new Set(cells.map((cell) => `${cell.latencyMs}/${cell.broadcastMs}`)).size, cells.length, "no cell twice");
  // The models are cells of the grid, so the map and the report agree.
  for (const model of [FIGURE16_MODELS.paper, FIGURE16_MODELS.lan]) {
    t.true(
      cells.some((cell) => cell.latencyMs === model.settings.latencyMs && cell.broadcastMs === broadcastTimeMs(model.settings)),
      `${model.name} is in the sweep`,
    );
  }
});

test("the comparison with the paper counts a figure close only within its tolerance, either way", (t) => {
  t.true(isClose(287 * 1.24, 287, { relative: 0.25 }));
  t.false(isClose(287 * 1.26, 287, { relative: 0.25 }));
  t.false(isClose(287 * 0.74, 287, { relative: 0.25 }), "beating the paper by more than the tolerance is not close");
  t.true(isClose(513 * 1.5, 513, { factor: 1.5 }));
  t.false(isClose(513 * 1.51, 513, { factor: 1.5 }));
  t.false(isClose(513 / 1.51, 513, { factor: 1.5 }));
  const summary = (heardMs: number[]): Figure16RangeSummary =>
    summarizeFigure16("150-150", heardMs.map((ms) => ({ started: true, electedMs: ms, heardMs: ms, terms: 2, campaignsMax: 2, censored: false })), 30_000);
  const mostAbove = PAPER_FIGURES.find((figure) => figure.statistic === "mostAbove1s")!;
  t.true(compareWithPaper(mostAbove, summary([1_500, 2_000, 900])).close);
  t.false(compareWithPaper(mostAbove, summary([1_500, 900, 900])).close);
  const median = PAPER_FIGURES.find((figure) => figure.range === "150-155")!;
  t.false(compareWithPaper(median, undefined).close, "no trials is never close");
});
