/**
 * What the Raft paper reports for its leader-election experiment (extended paper section 9.3 and
 * Figure 16; thesis chapter 9), as collected in shared/reference/raft-timing-facts.md, and how close a
 * reproduction must land to count as reproducing it. These are the published numbers we are held
 * against; they are only ever printed beside ours and compared, never fed into a simulation.
 */
import type { Figure16RangeSummary } from "./figure16.ts";

export type PaperStatistic = "median" | "mean" | "max" | "mostAbove1s";

export interface PaperFigure {
  readonly range: string;
  readonly statistic: PaperStatistic;
  /** The paper's value in ms (for "mostAbove1s", the 10 s it reports trials exceeding). */
  readonly valueMs: number;
  /** The paper's words. */
  readonly reported: string;
  /** How close we must land: within `relative` of the value, or within a `factor` either way. */
  readonly tolerance: { readonly relative?: number; readonly factor?: number };
}

export const PAPER_FIGURES: readonly PaperFigure[] = [
  { range: "150-150", statistic: "mostAbove1s", valueMs: 10_000, reported: "consistently more than 10 s (repeated split votes)", tolerance: {} },
  { range: "150-155", statistic: "median", valueMs: 287, reported: "median 287 ms", tolerance: { relative: 0.25 } },
  { range: "150-200", statistic: "max", valueMs: 513, reported: "worst of 1000 trials 513 ms", tolerance: { factor: 1.5 } },
  { range: "12-24", statistic: "mean", valueMs: 35, reported: "mean 35 ms", tolerance: { relative: 0.3 } },
  { range: "12-24", statistic: "max", valueMs: 152, reported: "longest 152 ms", tolerance: { factor: 2 } },
];

export const PAPER_RECOMMENDATION = "150-300 ms (a range about 10-20x the one-way latency)";

export interface PaperComparison {
  readonly figure: PaperFigure;
  /** Our value for the statistic (ms; for "mostAbove1s", the fraction of trials above 1 s). */
  readonly ours: number | undefined;
  readonly close: boolean;
  readonly toleranceText: string;
}

export function compareWithPaper(figure: PaperFigure, summary: Figure16RangeSummary | undefined): PaperComparison {
  const toleranceText =
    figure.statistic === "mostAbove1s"
      ? "most trials longer than 1 s"
      : figure.tolerance.relative !== undefined
        ? `within ${Math.round(figure.tolerance.relative * 100)}%`
        : `within ${figure.tolerance.factor}x`;
  if (summary === undefined || summary.heard === undefined) return { figure, ours: undefined, close: false, toleranceText };
  if (figure.statistic === "mostAbove1s") {
    return { figure, ours: summary.fractionAbove1s, close: summary.fractionAbove1s > 0.5, toleranceText };
  }
  const ours = summary.heard[figure.statistic];
  return { figure, ours, close: isClose(ours, figure.valueMs, figure.tolerance), toleranceText };
}

export function isClose(ours: number, paper: number, tolerance: PaperFigure["tolerance"]): boolean {
  if (tolerance.relative !== undefined) return Math.abs(ours - paper) <= tolerance.relative * paper;
  if (tolerance.factor !== undefined) return ours <= paper * tolerance.factor && ours >= paper / tolerance.factor;
  return false;
}
