/**
 * `npm run tune -- --figure16`: plans the Figure 16 trials as jobs, collects the results and renders
 * them: a terminal table beside the paper's figures, JSON lines, the Markdown report and the two CDF
 * panels of the paper (plus one comparing the models on the ranges the paper quotes).
 */
import type { TuneArguments } from "./arguments.ts";
import {
  FIGURE16_MODELS,
  FIGURE16_RANGES,
  FIGURE16_RANGES_BOTTOM,
  FIGURE16_RANGES_TOP,
  FIGURE16_SWEEP_BROADCASTS_MS,
  FIGURE16_SWEEP_LATENCIES_MS,
  FIGURE16_SWEEP_RANGES,
  broadcastTimeMs,
  figure16SweepCells,
  summarizeFigure16,
  type Figure16ModelName,
  type Figure16RangeSummary,
  type Figure16Settings,
  type Figure16SweepCell,
  type Figure16Trial,
} from "./figure16.ts";
import { formatMs, formatPercent, markdownTable, summaryJson, textTable } from "./format.ts";
import { batches, type TuneJob, type TuneJobResult } from "./jobs.ts";
import { compareWithPaper, PAPER_FIGURES, PAPER_RECOMMENDATION, type PaperComparison } from "./paper.ts";
import { runDetails, type RunRecord } from "./reports.ts";
import { cdfPoints } from "./statistics.ts";
import { renderChart, type ChartSeries } from "./svg.ts";
import { parseTimeoutRange } from "./timeout-range.ts";

export const FIGURE16_DURATION_MS_MAX = 30_000;
const MODEL_ORDER: readonly Figure16ModelName[] = ["paper", "lan", "pre-vote"];

export interface Figure16Plan {
  readonly jobs: TuneJob[];
  /** model -> range -> job indexes */
  readonly index: Map<Figure16ModelName, Map<string, number[]>>;
  /** One entry per sweep cell: range -> job indexes. */
  readonly sweep: { readonly cell: Figure16SweepCell; readonly byRange: Map<string, number[]> }[];
  readonly durationMsMax: number;
}

/**
 * Trials for a range: the paper ran a tenth for 150-150 (100 of 1000); the variants and each sweep
 * cell run a fifth (the sweep maps where the figures land; the paper's setting gives the numbers).
 */
export function figure16TrialCount(model: Figure16ModelName | "sweep", range: string, trials: number): number {
  const base = model === "paper" ? trials : Math.ceil(trials / 5);
  return range === "150-150" ? Math.max(10, Math.ceil(base / 10)) : base;
}

export function planFigure16(args: Pick<TuneArguments, "trials">, durationMsMax = FIGURE16_DURATION_MS_MAX): Figure16Plan {
  const jobs: TuneJob[] = [];
  const addBatches = (label: string, range: string, count: number, settings: Figure16Settings): number[] => {
    const seeds = Array.from({ length: count }, (_, i) => `${label}/${i}`);
    const { minMs, maxMs } = parseTimeoutRange(range);
    const batchSize = maxMs - minMs <= 1 ? 4 : 25;
    return batches(seeds, batchSize).map((batch) => jobs.push({ kind: "figure16", label, range, seeds: batch, settings }) - 1);
  };
  const index = new Map<Figure16ModelName, Map<string, number[]>>();
  for (const model of MODEL_ORDER) {
    const settings = { ...FIGURE16_MODELS[model].settings, durationMsMax };
    const byRange = new Map<string, number[]>();
    for (const range of FIGURE16_RANGES) byRange.set(range, addBatches(model, range, figure16TrialCount(model, range, args.trials), settings));
    index.set(model, byRange);
  }
  const sweep = figure16SweepCells().map((cell) => {
    const settings = { ...cell.settings, durationMsMax };
    const label = `sweep-${cell.latencyMs}-${cell.broadcastMs}`;
    const byRange = new Map<string, number[]>();
    for (const range of FIGURE16_SWEEP_RANGES) byRange.set(range, addBatches(label, range, figure16TrialCount("sweep", range, args.trials), settings));
    return { cell, byRange };
  });
  return { jobs, index, sweep, durationMsMax };
}

export interface Figure16SweepResult {
  readonly cell: Figure16SweepCell;
  readonly summaries: Map<string, Figure16RangeSummary>;
  readonly comparisons: PaperComparison[];
}

export interface Figure16Outcome {
  readonly summaries: Map<Figure16ModelName, Map<string, Figure16RangeSummary>>;
  /** Heard times per model and range, for the CDF charts. */
  readonly heardMs: Map<Figure16ModelName, Map<string, number[]>>;
  readonly comparisons: Map<Figure16ModelName, PaperComparison[]>;
  readonly sweep: Figure16SweepResult[];
  readonly durationMsMax: number;
}

export function collectFigure16(plan: Figure16Plan, results: readonly TuneJobResult[]): Figure16Outcome {
  const trialsOf = (indexes: readonly number[]): Figure16Trial[] =>
    indexes.flatMap((i) => {
      const result = results[i];
      if (result?.kind !== "figure16") throw new Error(`Tuning result mix-up: job ${i} is not a Figure 16 batch`);
      return [...result.trials];
    });
  const summaries = new Map<Figure16ModelName, Map<string, Figure16RangeSummary>>();
  const heardMs = new Map<Figure16ModelName, Map<string, number[]>>();
  const comparisons = new Map<Figure16ModelName, PaperComparison[]>();
  for (const [model, byRange] of plan.index) {
    const modelSummaries = new Map<string, Figure16RangeSummary>();
    const modelHeard = new Map<string, number[]>();
    for (const [range, indexes] of byRange) {
      const trials = trialsOf(indexes);
      modelSummaries.set(range, summarizeFigure16(range, trials, plan.durationMsMax));
      modelHeard.set(range, trials.filter((trial) => trial.started).map((trial) => trial.heardMs));
    }
    summaries.set(model, modelSummaries);
    heardMs.set(model, modelHeard);
    comparisons.set(model, PAPER_FIGURES.map((figure) => compareWithPaper(figure, modelSummaries.get(figure.range))));
  }
  const sweep = plan.sweep.map(({ cell, byRange }) => {
    const cellSummaries = new Map<string, Figure16RangeSummary>();
    for (const [range, indexes] of byRange) cellSummaries.set(range, summarizeFigure16(range, trialsOf(indexes), plan.durationMsMax));
    return { cell, summaries: cellSummaries, comparisons: PAPER_FIGURES.map((figure) => compareWithPaper(figure, cellSummaries.get(figure.range))) };
  });
  return { summaries, heardMs, comparisons, sweep, durationMsMax: plan.durationMsMax };
}

/** How many of the paper's figures a sweep cell lands. */
export function sweepLanded(result: Figure16SweepResult): number {
  return result.comparisons.filter((c) => c.close).length;
}

// ---------------------------------------------------------------------------------------------------
// Terminal and JSON

export function figure16JsonLines(outcome: Figure16Outcome): string[] {
  const paper = outcome.summaries.get("paper")!;
  return FIGURE16_RANGES.map((range) => {
    const summary = paper.get(range)!;
    const variants: Record<string, unknown> = {};
    for (const model of MODEL_ORDER.filter((m) => m !== "paper")) {
      const s = outcome.summaries.get(model)!.get(range)!;
      variants[model] = { model: FIGURE16_MODELS[model].title, trials: s.trials, censored: s.censored, notStarted: s.notStarted, heard: summaryJson(s.heard) };
    }
    const comparisons = outcome.comparisons.get("paper")!.filter((c) => c.figure.range === range);
    const sweep = outcome.sweep
      .filter((result) => result.summaries.has(range))
      .map((result) => {
        const s = result.summaries.get(range)!;
        return {
          latencyMs: result.cell.latencyMs,
          broadcastMs: result.cell.broadcastMs,
          fsyncMs: result.cell.settings.fsyncMs,
          trials: s.trials,
          medianMs: round2(s.heard?.median),
          meanMs: round2(s.heard?.mean),
          maxMs: round2(s.heard?.max),
          fractionAbove1s: round2(s.fractionAbove1s),
          paperFiguresLanded: sweepLanded(result),
        };
      });
    return JSON.stringify({
      range,
      trials: summary.trials,
      medianMs: round2(summary.heard?.median),
      meanMs: round2(summary.heard?.mean),
      p99Ms: round2(summary.heard?.p99),
      maxMs: round2(summary.heard?.max),
      minMs: round2(summary.heard?.min),
      measure: "crash until every survivor follows the new leader",
      elected: summaryJson(summary.elected),
      termsMean: round2(summary.termsMean),
      censored: summary.censored,
      notStarted: summary.notStarted,
      durationMsMax: summary.durationMsMax,
      fractionAbove1s: round2(summary.fractionAbove1s),
      fractionAbove10s: round2(summary.fractionAbove10s),
      model: FIGURE16_MODELS.paper.title,
      paper: comparisons.map((c) => ({ statistic: c.figure.statistic, valueMs: c.figure.valueMs, reported: c.figure.reported, ours: round2(c.ours), close: c.close })),
      variants,
      ...(sweep.length > 0 ? { sweep } : {}),
    });
  });
}

function round2(value: number | undefined): number | null {
  return value === undefined ? null : Math.round(value * 100) / 100;
}

function rangeRows(outcome: Figure16Outcome): string[][] {
  const paper = outcome.summaries.get("paper")!;
  return FIGURE16_RANGES.map((range) => {
    const s = paper.get(range)!;
    const h = s.heard;
    const reported = PAPER_FIGURES.filter((f) => f.range === range).map((f) => f.reported).join("; ");
    return [
      range,
      String(s.trials - s.notStarted),
      formatMs(h?.median),
      formatMs(h?.mean),
      formatMs(h?.p99),
      formatMs(h?.max),
      formatPercent(s.fractionAbove10s),
      s.termsMean === undefined ? "-" : s.termsMean.toFixed(1),
      formatMs(s.elected?.median),
      reported || "-",
    ];
  });
}

const RANGE_HEADERS = ["range", "trials", "median", "mean", "p99", "max", ">10 s", "elections", "elected median", "paper"];

function comparisonRows(outcome: Figure16Outcome): string[][] {
  return PAPER_FIGURES.map((figure) => {
    const row = [figure.range, figure.reported, outcomeTolerance(outcome, figure.range, figure.statistic)];
    for (const model of MODEL_ORDER) {
      const c = outcome.comparisons.get(model)!.find((x) => x.figure === figure)!;
      row.push(`${describeOurs(c)} ${c.close ? "(close)" : "(not close)"}`);
    }
    return row;
  });
}

function outcomeTolerance(outcome: Figure16Outcome, range: string, statistic: string): string {
  const c = outcome.comparisons.get("paper")!.find((x) => x.figure.range === range && x.figure.statistic === statistic);
  return c?.toleranceText ?? "-";
}

function describeOurs(c: PaperComparison): string {
  if (c.ours === undefined) return "no trials";
  if (c.figure.statistic === "mostAbove1s") return `${formatPercent(c.ours)} above 1 s`;
  return `${c.figure.statistic} ${formatMs(c.ours)}`;
}

const MODEL_LABELS: Record<Figure16ModelName, string> = { paper: "paper's setting", lan: "LAN split", "pre-vote": "PreVote on" };
const COMPARISON_HEADERS = ["range", "paper", "must land", ...MODEL_ORDER.map((model) => `ours: ${MODEL_LABELS[model]}`)];

/** Rows of the sweep map: one per one-way delay, one column per broadcast time. */
function sweepRows(outcome: Figure16Outcome): string[][] {
  return FIGURE16_SWEEP_LATENCIES_MS.map((latencyMs) => [
    `${latencyMs} ms`,
    ...FIGURE16_SWEEP_BROADCASTS_MS.map((broadcastMs) => {
      const result = outcome.sweep.find((r) => r.cell.latencyMs === latencyMs && r.cell.broadcastMs === broadcastMs);
      if (result === undefined) return "-";
      const median = result.summaries.get("150-155")?.heard?.median;
      const mean = result.summaries.get("12-24")?.heard?.mean;
      return `${formatMs(median)} / ${formatMs(mean)}: ${sweepLanded(result)} of ${PAPER_FIGURES.length}`;
    }),
  ]);
}

const SWEEP_HEADERS = ["one way", ...FIGURE16_SWEEP_BROADCASTS_MS.map((ms) => `broadcast ${ms} ms`)];

export function figure16TerminalReport(outcome: Figure16Outcome): string {
  const lines = [
    `Figure 16 (Raft paper 9.3): crash to every survivor following a new leader, ${FIGURE16_MODELS.paper.title}`,
    "",
    textTable(RANGE_HEADERS, rangeRows(outcome)),
    "",
    "Beside the paper's figures:",
    "",
    textTable(COMPARISON_HEADERS, comparisonRows(outcome)),
  ];
  if (outcome.sweep.length > 0) {
    lines.push(
      "",
      "Every split of the broadcast time: 150-155 median / 12-24 mean (paper: 287 ms / 35 ms), and how many of the paper's 5 figures land:",
      "",
      textTable(SWEEP_HEADERS, sweepRows(outcome)),
    );
  }
  lines.push("", `Trials cut at ${formatMs(outcome.durationMsMax)} count as ${formatMs(outcome.durationMsMax)}.`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------
// Charts

export function figure16Charts(outcome: Figure16Outcome): Map<string, string> {
  const charts = new Map<string, string>();
  const heard = outcome.heardMs.get("paper")!;
  const paper = outcome.summaries.get("paper")!;
  const notes = [
    `${FIGURE16_MODELS.paper.title}; 5 servers, 2 of 4 survivors cannot win.`,
    `Trials per line as in the legend; trials cut at ${formatMs(outcome.durationMsMax)} sit at the right edge.`,
  ];
  const panel = (ranges: readonly string[]): ChartSeries[] =>
    ranges.map((range) => ({ name: `${range} ms (${paper.get(range)!.trials})`, points: cdfPoints(heard.get(range) ?? []).map(percentY), step: true }));
  charts.set(
    "figure16-top.svg",
    renderChart({
      title: "Figure 16, top: randomness in the election timeout",
      xLabel: "time without leader (ms, log scale)",
      yLabel: "cumulative percent of trials",
      series: panel(FIGURE16_RANGES_TOP),
      xScale: "log",
      xMin: 100,
      xMax: 100_000,
      yMin: 0,
      yMax: 100,
      notes,
    }),
  );
  charts.set(
    "figure16-bottom.svg",
    renderChart({
      title: "Figure 16, bottom: scaling the minimum election timeout",
      xLabel: "time without leader (ms, log scale)",
      yLabel: "cumulative percent of trials",
      series: panel(FIGURE16_RANGES_BOTTOM),
      xScale: "log",
      xMin: 10,
      xMax: 10_000,
      yMin: 0,
      yMax: 100,
      notes,
    }),
  );
  const models: ChartSeries[] = [];
  const colors = ["#1f77b4", "#d62728", "#2ca02c"];
  ["150-155", "12-24"].forEach((range, r) => {
    MODEL_ORDER.forEach((model, m) => {
      models.push({
        name: `${range}, ${MODEL_LABELS[model]}`,
        points: cdfPoints(outcome.heardMs.get(model)!.get(range) ?? []).map(percentY),
        step: true,
        color: colors[m],
        dashed: r === 1,
      });
    });
  });
  charts.set(
    "figure16-models.svg",
    renderChart({
      title: "What moves the result: how the broadcast time splits, and PreVote",
      xLabel: "time without leader (ms, log scale)",
      yLabel: "cumulative percent of trials",
      series: models,
      xScale: "log",
      xMin: 10,
      xMax: 10_000,
      yMin: 0,
      yMax: 100,
      width: 820,
      notes: ["solid: 150-155 ms, dashed: 12-24 ms; paper: median 287 ms (150-155), mean 35 ms (12-24)"],
    }),
  );
  return charts;
}

function percentY(point: { x: number; y: number }): { x: number; y: number } {
  return { x: point.x, y: point.y * 100 };
}

// ---------------------------------------------------------------------------------------------------
// Markdown

/** "2 ms (10, 12 ms), 2.5 ms (10 ms)": the sweep cells that land every figure, by one-way delay. */
function describeCells(cells: readonly Figure16SweepCell[]): string {
  if (cells.length === 0) return "none";
  const byLatency = new Map<number, number[]>();
  for (const cell of cells) byLatency.set(cell.latencyMs, [...(byLatency.get(cell.latencyMs) ?? []), cell.broadcastMs]);
  return [...byLatency].map(([latencyMs, broadcasts]) => `${latencyMs} ms one way (broadcast ${broadcasts.join(", ")} ms)`).join("; ");
}

export function figure16Markdown(outcome: Figure16Outcome, context: { run: RunRecord; trials: number }): string {
  const paperSettings = FIGURE16_MODELS.paper.settings;
  const lanSettings = FIGURE16_MODELS.lan.settings;
  const s = (model: Figure16ModelName, range: string): Figure16RangeSummary => outcome.summaries.get(model)!.get(range)!;
  const heard = (model: Figure16ModelName, range: string, statistic: "median" | "mean" | "max"): string => formatMs(s(model, range).heard?.[statistic]);
  const first = (model: Figure16ModelName, range: string): string => formatPercent(s(model, range).oneRound);
  const closeCount = (model: Figure16ModelName): number => outcome.comparisons.get(model)!.filter((c) => c.close).length;
  const total = PAPER_FIGURES.length;
  const variantRows = FIGURE16_RANGES.map((range) => [
    range,
    ...MODEL_ORDER.map((model) => {
      const summary = s(model, range);
      if (summary.heard === undefined) return `no leader could be set up (${summary.notStarted} trials)`;
      return `${formatMs(summary.heard.median)} / ${formatMs(summary.heard.mean)} / ${formatMs(summary.heard.max)} / ${formatPercent(summary.oneRound)}`;
    }),
  ]);
  const notStarted = FIGURE16_RANGES.map((range) => ({ range, count: s("paper", range).notStarted })).filter((x) => x.count > 0);
  const notStartedText =
    notStarted.length === 0
      ? ""
      : ` In ${notStarted.map((x) => `${x.count} trials of ${x.range} ms`).join(", ")} no leader held long enough to set up the crash (the timeout is close to the broadcast time); they are left out.`;
  const allLand = outcome.sweep.filter((result) => sweepLanded(result) === total).map((result) => result.cell);
  const fifteenLand = allLand.filter((cell) => cell.broadcastMs === 15);
  const sweepTrials = outcome.sweep[0]?.summaries.get("150-155")?.trials ?? 0;
  const sweepSection =
    outcome.sweep.length === 0
      ? ""
      : `
## Every split of the broadcast time

The paper gives the broadcast time (about 15 ms) but not how it splits between the network and the
disk, and the split moves two of its figures. Each cell below is the experiment at one split (the
disk write is the broadcast time less a round trip; jitter a fifth of the one-way delay; ${sweepTrials}
trials per range, 150-150 a tenth of that): the 150-155 median / the 12-24 mean (paper: 287 ms /
35 ms), and how many of the paper's ${total} figures land within their tolerance. Maxima from fewer
trials run lower, so a cell's count is a guide; the paper's setting above is the full run.

${markdownTable(SWEEP_HEADERS, sweepRows(outcome))}

All ${total} land at ${describeCells(allLand)}. ${
          fifteenLand.length === 0
            ? "No split of a full 15 ms lands all of them: a 15 ms vote round is too long for a 12 ms minimum timeout once the one-way delay is long enough for 150-155."
            : `At a full 15 ms: ${describeCells(fifteenLand)}.`
        }
`;
  return `# Figure 16 of the Raft paper, on pgraft's core

Generated by \`${context.run.command}\` (${context.trials} trials per range, ${runDetails(context.run)}).
Method, model and limits: [README.md](README.md).

The experiment (Raft paper 9.3, thesis 9.3): five servers; the leader crashes at a uniformly random
point of its heartbeat interval, right after a heartbeat that lines up every follower's timer; two of
the four survivors have shorter logs and cannot win; PreVote and CheckQuorum are off; the heartbeat
interval is half the minimum timeout. We time each trial from the crash until every survivor follows
the new leader (the thesis's measure; the time until a survivor becomes leader is shown too).
Broadcast time ${broadcastTimeMs(paperSettings)} ms: a one-way delay of ${paperSettings.latencyMs} ms ± ${paperSettings.jitterMs} ms and a ${paperSettings.fsyncMs} ms disk write
before a vote or an append is answered (why this split: "Where and why we differ" below). Trials still without a leader after
${formatMs(outcome.durationMsMax)} are cut there and counted at ${formatMs(outcome.durationMsMax)}; 150-150 ms runs a tenth of the trials, as in the paper.${notStartedText}

## Results (paper's setting)

${markdownTable(RANGE_HEADERS, rangeRows(outcome))}

"elections" is the mean number of terms a trial used (1 when the first election won).

![Figure 16 top panel](figure16-top.svg)

![Figure 16 bottom panel](figure16-bottom.svg)

## Beside the paper

${markdownTable(COMPARISON_HEADERS, comparisonRows(outcome))}

In the paper's setting ${closeCount("paper")} of ${total} of the paper's figures are reproduced within the stated tolerance; with
the LAN split ${closeCount("lan")} of ${total}; with PreVote on ${closeCount("pre-vote")} of ${total}. (A figure we beat by more than the
tolerance counts as not close.) The paper recommends ${PAPER_RECOMMENDATION}; pgraft's core draws
every timeout from [T, 2T), which is that shape.
${sweepSection}
## Where and why we differ

Median / mean / worst, and the share of trials in which no survivor had to time out twice, per model
(the two variants run a fifth of the trials):

${markdownTable(["range", ...MODEL_ORDER.map((model) => MODEL_LABELS[model])], variantRows)}

1. **The split of the broadcast time decides the narrow ranges, and a full 15 ms cannot land them
   all.** With 150-155 ms the four survivors' timeouts fall within 5 ms of each other. The first
   candidate's vote request reaches the others one one-way delay after its timeout (pgraft sends it
   while it writes its vote); every survivor that times out before then votes for itself, and once
   two of the three others have, nobody can win that term and the race starts again a whole timeout
   later. The paper's 287 ms median (about one timeout more than the fastest trials) says that more
   than half of its trials needed a second round of timeouts. With the LAN split (${lanSettings.latencyMs} ms one way, a
   ${lanSettings.fsyncMs} ms write) a request lands too soon for that: in ${first("lan", "150-155")} of trials no survivor timed out
   twice, and the median is ${heard("lan", "150-155", "median")}. With ${paperSettings.latencyMs} ms one way, ${first("paper", "150-155")}, and the median is ${heard("paper", "150-155", "median")}.
   At 12-24 ms what counts is the whole vote round (request, the voter's write, answer) against the
   candidate's own timeout of 12 ms or more: a candidate whose round outlasts its timeout starts
   another term and loses the votes in flight. A 15 ms round does that often once the one-way delay
   is long enough for 150-155 (the sweep above). Our setting keeps the round at
   ${broadcastTimeMs(paperSettings)} ms: 12-24 has a mean of ${heard("paper", "12-24", "mean")} (LAN split, 15 ms: ${heard("lan", "12-24", "mean")}). The paper's own servers
   (LogCabin) wrote a candidate's new term and vote to disk before their peer threads sent the
   requests, which is one way its requests could have landed 2-3 ms after a timeout on a LAN; what the
   paper measured as its broadcast time is not stated in more detail.
2. **The election timer keeps running when a vote request brings a higher term.** The paper's
   rules (its Figure 2) and LogCabin restart the timer only for the current leader's messages and a
   granted vote; etcd also restarts it on stepping down to a higher term, and pgraft's core did too
   until this experiment showed the cost: here two survivors cannot win, and whenever one of them
   timed out first (about half the time) its request restarted the timers of the two that could win,
   so the race started over a timeout later and the 150-200 worst case was several times the paper's.
   The core now follows Figure 2 (src/core/raft.ts, \`#acceptHigherTerm\`); 150-200 has a worst
   case of ${heard("paper", "150-200", "max")} against the paper's 513 ms.
3. **PreVote removes the split votes where the timeout is well above the broadcast time.** A node
   with a short log cannot win a pre-vote, so it never raises the term, and pre-votes need no disk
   write. With PreVote on (pgraft's default) and the paper's network, 150-155 ms has a median of
   ${heard("pre-vote", "150-155", "median")} and 150-200 ms a worst case of ${heard("pre-vote", "150-200", "max")}; 150-150 ms a median of ${heard("pre-vote", "150-150", "median")}. The extra
   round trip costs where the timeout is close to the broadcast time: 12-24 ms has a mean of
   ${heard("pre-vote", "12-24", "mean")} (longest ${heard("pre-vote", "12-24", "max")}).
4. **150-150 ms** resolves only through network jitter that slowly pulls the candidates' timers apart:
   ${formatPercent(s("paper", "150-150").fractionAbove1s)} of trials took longer than 1 s and ${formatPercent(s("paper", "150-150").fractionAbove10s)} longer than 10 s (median ${heard("paper", "150-150", "median")}; the paper:
   consistently more than 10 s). 150-151 ms is hardly better (median ${heard("paper", "150-151", "median")}).

![Models compared](figure16-models.svg)
`;
}
