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
  broadcastTimeMs,
  summarizeFigure16,
  type Figure16ModelName,
  type Figure16RangeSummary,
  type Figure16Trial,
} from "./figure16.ts";
import { formatMs, formatPercent, markdownTable, summaryJson, textTable } from "./format.ts";
import { batches, type TuneJob, type TuneJobResult } from "./jobs.ts";
import { compareWithPaper, PAPER_FIGURES, PAPER_RECOMMENDATION, type PaperComparison } from "./paper.ts";
import { cdfPoints } from "./statistics.ts";
import { renderChart, type ChartSeries } from "./svg.ts";
import { parseTimeoutRange } from "./timeout-range.ts";

export const FIGURE16_DURATION_MS_MAX = 30_000;
const MODEL_ORDER: readonly Figure16ModelName[] = ["paper", "fast-votes", "pre-vote"];

export interface Figure16Plan {
  readonly jobs: TuneJob[];
  /** model -> range -> job indexes */
  readonly index: Map<Figure16ModelName, Map<string, number[]>>;
  readonly durationMsMax: number;
}

/** Trials for a range: the paper ran a tenth for 150-150 (100 of 1000); the variants run a fifth. */
export function figure16TrialCount(model: Figure16ModelName, range: string, trials: number): number {
  const base = model === "paper" ? trials : Math.ceil(trials / 5);
  return range === "150-150" ? Math.max(10, Math.ceil(base / 10)) : base;
}

export function planFigure16(args: Pick<TuneArguments, "trials">, durationMsMax = FIGURE16_DURATION_MS_MAX): Figure16Plan {
  const jobs: TuneJob[] = [];
  const index = new Map<Figure16ModelName, Map<string, number[]>>();
  for (const model of MODEL_ORDER) {
    const byRange = new Map<string, number[]>();
    for (const range of FIGURE16_RANGES) {
      const count = figure16TrialCount(model, range, args.trials);
      const seeds = Array.from({ length: count }, (_, i) => `${model}/${i}`);
      const { minMs, maxMs } = parseTimeoutRange(range);
      const batchSize = maxMs - minMs <= 1 ? 4 : 25;
      byRange.set(range, batches(seeds, batchSize).map((batch) => jobs.push({ kind: "figure16", model, range, seeds: batch, durationMsMax }) - 1));
    }
    index.set(model, byRange);
  }
  return { jobs, index, durationMsMax };
}

export interface Figure16Outcome {
  readonly summaries: Map<Figure16ModelName, Map<string, Figure16RangeSummary>>;
  /** Heard times per model and range, for the CDF charts. */
  readonly heardMs: Map<Figure16ModelName, Map<string, number[]>>;
  readonly comparisons: Map<Figure16ModelName, PaperComparison[]>;
  readonly durationMsMax: number;
}

export function collectFigure16(plan: Figure16Plan, results: readonly TuneJobResult[]): Figure16Outcome {
  const summaries = new Map<Figure16ModelName, Map<string, Figure16RangeSummary>>();
  const heardMs = new Map<Figure16ModelName, Map<string, number[]>>();
  const comparisons = new Map<Figure16ModelName, PaperComparison[]>();
  for (const [model, byRange] of plan.index) {
    const modelSummaries = new Map<string, Figure16RangeSummary>();
    const modelHeard = new Map<string, number[]>();
    for (const [range, indexes] of byRange) {
      const trials: Figure16Trial[] = indexes.flatMap((i) => {
        const result = results[i];
        if (result?.kind !== "figure16") throw new Error(`Tuning result mix-up: job ${i} is not a Figure 16 batch`);
        return [...result.trials];
      });
      modelSummaries.set(range, summarizeFigure16(range, trials, plan.durationMsMax));
      modelHeard.set(range, trials.filter((trial) => trial.started).map((trial) => trial.heardMs));
    }
    summaries.set(model, modelSummaries);
    heardMs.set(model, modelHeard);
    comparisons.set(model, PAPER_FIGURES.map((figure) => compareWithPaper(figure, modelSummaries.get(figure.range))));
  }
  return { summaries, heardMs, comparisons, durationMsMax: plan.durationMsMax };
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
      variants[model] = { trials: s.trials, censored: s.censored, notStarted: s.notStarted, heard: summaryJson(s.heard) };
    }
    const comparisons = outcome.comparisons.get("paper")!.filter((c) => c.figure.range === range);
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

const COMPARISON_HEADERS = ["range", "paper", "must land", "ours: paper's setting", "ours: fast vote path", "ours: PreVote on"];

export function figure16TerminalReport(outcome: Figure16Outcome): string {
  const lines = [
    `Figure 16 (Raft paper 9.3): crash to every survivor following a new leader, ${FIGURE16_MODELS.paper.title}`,
    "",
    textTable(RANGE_HEADERS, rangeRows(outcome)),
    "",
    "Beside the paper's figures:",
    "",
    textTable(COMPARISON_HEADERS, comparisonRows(outcome)),
    "",
    `Trials cut at ${formatMs(outcome.durationMsMax)} count as ${formatMs(outcome.durationMsMax)}.`,
  ];
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
  ["150-155", "150-200"].forEach((range, r) => {
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
      title: "What moves the result: vote path and PreVote",
      xLabel: "time without leader (ms, log scale)",
      yLabel: "cumulative percent of trials",
      series: models,
      xScale: "log",
      xMin: 100,
      xMax: 10_000,
      yMin: 0,
      yMax: 100,
      width: 820,
      notes: ["solid: 150-155 ms, dashed: 150-200 ms; paper: median 287 ms (150-155), worst 513 ms (150-200)"],
    }),
  );
  return charts;
}

const MODEL_LABELS: Record<Figure16ModelName, string> = { paper: "paper's setting", "fast-votes": "fast votes", "pre-vote": "PreVote on" };

function percentY(point: { x: number; y: number }): { x: number; y: number } {
  return { x: point.x, y: point.y * 100 };
}

// ---------------------------------------------------------------------------------------------------
// Markdown

export function figure16Markdown(outcome: Figure16Outcome, context: { wallMs: number; trials: number }): string {
  const paperSettings = FIGURE16_MODELS.paper.settings;
  const s = (model: Figure16ModelName, range: string): Figure16RangeSummary => outcome.summaries.get(model)!.get(range)!;
  const heard = (model: Figure16ModelName, range: string, statistic: "median" | "mean" | "max"): string => formatMs(s(model, range).heard?.[statistic]);
  const first = (model: Figure16ModelName, range: string): string => formatPercent(s(model, range).wonFirstElection);
  const firstShare = (model: Figure16ModelName, range: string): string =>
    s(model, range).wonFirstElection === 0
      ? "not one trial was decided by its first election"
      : `only ${first(model, range)} of trials were decided by their first election`;
  const closeCount = (model: Figure16ModelName): number => outcome.comparisons.get(model)!.filter((c) => c.close).length;
  const total = PAPER_FIGURES.length;
  const variantRows = FIGURE16_RANGES.map((range) => [
    range,
    ...MODEL_ORDER.map((model) => {
      const summary = s(model, range);
      if (summary.heard === undefined) return `no leader could be set up (${summary.notStarted} trials)`;
      return `${formatMs(summary.heard.median)} / ${formatMs(summary.heard.mean)} / ${formatMs(summary.heard.max)} / ${formatPercent(summary.wonFirstElection)}`;
    }),
  ]);
  const notStarted = FIGURE16_RANGES.map((range) => ({ range, count: s("paper", range).notStarted })).filter((x) => x.count > 0);
  const notStartedText =
    notStarted.length === 0
      ? ""
      : ` In ${notStarted.map((x) => `${x.count} trials of ${x.range} ms`).join(", ")} no leader held long enough to set up the crash (the timeout is close to the broadcast time); they are left out.`;
  return `# Figure 16 of the Raft paper, on pgraft's core

Generated by \`npm run tune -- --figure16\` (${context.trials} trials per range, ${formatMs(context.wallMs)} of wall time).
Method, model and limits: [README.md](README.md).

The experiment (Raft paper 9.3, thesis 9.3): five servers; the leader crashes at a uniformly random
point of its heartbeat interval, right after a heartbeat that lines up every follower's timer; two of
the four survivors have shorter logs and cannot win; PreVote and CheckQuorum are off; the heartbeat
interval is half the minimum timeout. We time each trial from the crash until every survivor follows
the new leader (the thesis's measure; the time until a survivor becomes leader is shown too).
Broadcast time ${broadcastTimeMs(paperSettings)} ms: one-way latency ${paperSettings.latencyMs} ms ± ${paperSettings.jitterMs} ms (a ${2 * paperSettings.latencyMs} ms round trip) and a
${paperSettings.fsyncMs} ms disk write before a vote or an append is answered. Trials still without a leader after
${formatMs(outcome.durationMsMax)} are cut there and counted at ${formatMs(outcome.durationMsMax)}; 150-150 ms runs a tenth of the trials, as in the paper.${notStartedText}

## Results (paper's setting)

${markdownTable(RANGE_HEADERS, rangeRows(outcome))}

"elections" is the mean number of terms a trial used (1 when the first election won).

![Figure 16 top panel](figure16-top.svg)

![Figure 16 bottom panel](figure16-bottom.svg)

## Beside the paper

${markdownTable(COMPARISON_HEADERS, comparisonRows(outcome))}

In the paper's setting ${closeCount("paper")} of ${total} of the paper's figures are reproduced within the stated tolerance; with
a fast vote path ${closeCount("fast-votes")} of ${total}; with PreVote on ${closeCount("pre-vote")} of ${total}. (A figure we beat by more than the
tolerance counts as not close.) The paper recommends ${PAPER_RECOMMENDATION}; pgraft's core draws
every timeout from [T, 2T), which is that shape.

## Where and why we differ

Median / mean / worst, and the share of trials decided by their first election, per model (the two
variants run a fifth of the trials):

${markdownTable(["range", "paper's setting", "fast vote path", "PreVote on"], variantRows)}

1. **A vote request reaches the others later than in the paper's runs.** pgraft's core persists its
   new term and vote before it sends a vote request (the Ready contract: persist, then send), so a
   request lands no sooner than a disk write plus a one-way delay after the candidate's timeout:
   ${paperSettings.fsyncMs + paperSettings.latencyMs} ms here, and at least half of any 15 ms broadcast time however it splits between disk and
   network. With 150-155 ms the survivors' timeouts all fall within 5 ms of each other, so the first
   candidate almost never reaches the others before they time out too: ${firstShare("paper", "150-155")},
   and the median is ${heard("paper", "150-155", "median")}. The paper's 287 ms median (about
   one extra round) implies requests that arrived within a millisecond or two. With a fast vote path
   (0.5 ms links, 1 ms disk writes: a vote request lands about 1.5 ms after the timeout) the same core
   gives a 150-155 median of ${heard("fast-votes", "150-155", "median")} and a 12-24 mean of ${heard("fast-votes", "12-24", "mean")} (longest ${heard("fast-votes", "12-24", "max")}), as the paper.
   At 12-24 ms with the paper's broadcast time, elections also overrun the timeout itself: a
   candidate often times out again before its votes are back (mean ${heard("paper", "12-24", "mean")}).
2. **A doomed candidate restarts everyone's timer.** Like etcd, the core restarts a node's election
   timer whenever it steps down to a higher term, even for a vote request it then refuses. The
   paper's rules (its Figure 2) and LogCabin keep the timer running: only the leader's messages and a
   granted vote restart it. Here two survivors cannot win; whenever one of them times out first
   (about half the time, by symmetry), its request restarts the timers of the two that could win, and
   the race starts over one timeout later. That is the staircase in the chart below and the long tail
   of 150-200 ms: worst ${heard("paper", "150-200", "max")} in the paper's setting and ${heard("fast-votes", "150-200", "max")} even with fast votes, against the
   paper's 513 ms; with fast votes only ${first("fast-votes", "150-200")} of 150-200 trials were decided by their first election.
3. **PreVote removes both effects where the timeout is well above the broadcast time.** A node with a
   short log cannot win a pre-vote, so it never raises the term and never restarts anyone's timer, and
   pre-vote requests need no disk write. With PreVote on (pgraft's default) and the paper's network,
   150-155 ms has a median of ${heard("pre-vote", "150-155", "median")} and 150-200 ms a worst case of ${heard("pre-vote", "150-200", "max")}; 150-150 ms a median of
   ${heard("pre-vote", "150-150", "median")}. The extra round trip costs where the timeout is close to the broadcast time: 12-24 ms
   has a mean of ${heard("pre-vote", "12-24", "mean")} (longest ${heard("pre-vote", "12-24", "max")}).
4. **150-150 ms** resolves only through network jitter that slowly pulls the candidates' timers apart:
   ${formatPercent(s("paper", "150-150").fractionAbove1s)} of trials took longer than 1 s and ${formatPercent(s("paper", "150-150").fractionAbove10s)} longer than 10 s (median ${heard("paper", "150-150", "median")}; the paper:
   consistently more than 10 s). 150-151 ms is hardly better (median ${heard("paper", "150-151", "median")}).

![Models compared](figure16-models.svg)
`;
}
