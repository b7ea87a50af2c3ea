/**
 * What the Raft paper reports for its leader-election experiment, and how close a reproduction must
 * land to count as reproducing it. These are the published numbers we are held against; they are only
 * ever printed beside ours and compared, never fed into a simulation.
 *
 * Sources: Diego Ongaro and John Ousterhout, "In Search of an Understandable Consensus Algorithm
 * (Extended Version)", section 9.3 and Figure 16; Diego Ongaro, "Consensus: Bridging Theory and
 * Practice" (PhD thesis, Stanford, 2014), chapter 9.
 *
 * The experiment as published: five servers; the leader is crashed again and again, each time at a
 * uniformly random point of its heartbeat interval and right after it sent every follower a heartbeat
 * (which lines up their timers and invites split votes); the servers' logs differ in length so that
 * some candidates cannot win (two of the four survivors, in the thesis); the heartbeat interval is half
 * the smallest election timeout; the broadcast time (a round trip plus a disk write) is about 15 ms,
 * with no split between the two given. A range "150-155 ms" means each timeout is drawn uniformly from
 * 150 to 155 ms. 1000 trials per range, 100 for 150-150. Each trial runs from the crash until a new
 * leader is elected (the thesis: until the others hear its first heartbeat). What it reports:
 *
 *   150-150 ms (no randomness)  consistently more than 10 s, from repeated split votes
 *   150-155 ms                  median 287 ms
 *   150-200 ms                  the worst of 1000 trials 513 ms
 *   12-24 ms                    mean 35 ms, longest 152 ms
 *
 * and it recommends 150-300 ms, a range of about 10-20 times the one-way network latency.
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
