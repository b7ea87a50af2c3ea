/**
 * `npm run tune -- --rtt 35ms --jitter 10ms`: simulates the candidate timings (recommend.ts) on the
 * measured network, then renders the recommendation with the expected failover time and its spread.
 */
import type { TuneArguments } from "./arguments.ts";
import { formatMs, markdownTable, textTable } from "./format.ts";
import type { TuneJob, TuneJobResult } from "./jobs.ts";
import { formatHours, planCell, profileTimings, summarizeCell, type CellJobs, type CellResult } from "./profiles.ts";
import { cellJson } from "./profiles-run.ts";
import {
  chooseRecommendation,
  customTiming,
  describeTiming,
  hasMargin,
  recommendationNetwork,
  worstRttMs,
  type MeasuredNetwork,
  type Recommendation,
} from "./recommend.ts";
import { runDetails, type RunRecord } from "./reports.ts";
import { cdfPoints } from "./statistics.ts";
import { renderChart } from "./svg.ts";

export interface RecommendPlan {
  readonly jobs: TuneJob[];
  readonly cells: CellJobs[];
  readonly measured: MeasuredNetwork;
  readonly quietDurationMs: number;
}

export function planRecommendation(args: Pick<TuneArguments, "rttMs" | "jitterMs" | "seeds" | "quick" | "nodeCount">): RecommendPlan {
  const measured: MeasuredNetwork = { rttMs: args.rttMs!, jitterMs: args.jitterMs };
  const network = recommendationNetwork(measured);
  const custom = customTiming(measured);
  const profiles = profileTimings();
  const same = profiles.some((p) => p.electionTimeoutMs === custom.electionTimeoutMs && p.heartbeatIntervalMs === custom.heartbeatIntervalMs);
  const timings = same ? profiles : [custom, ...profiles];
  const quietDurationMs = args.quick ? 600_000 : 3_600_000;
  const counts = { failoverSeeds: args.seeds, failureSeeds: Math.max(5, Math.ceil(args.seeds / 8)), quietDurationMs, nodeCount: args.nodeCount };
  const jobs: TuneJob[] = [];
  const cells = timings.map((timing) => planCell(timing, network, counts, jobs));
  return { jobs, cells, measured, quietDurationMs };
}

export interface RecommendOutcome {
  readonly measured: MeasuredNetwork;
  readonly cells: CellResult[];
  readonly recommendation: Recommendation;
}

export function collectRecommendation(plan: RecommendPlan, results: readonly TuneJobResult[]): RecommendOutcome {
  const cells = plan.cells.map((cell) => summarizeCell(cell, results));
  return { measured: plan.measured, cells, recommendation: chooseRecommendation(plan.measured, cells) };
}

/** "p50 1.31 s, 90% within 1.45 s, p99 1.50 s, worst 1.51 s (100 trials)" */
export function describeFailover(cell: CellResult): string {
  const w = cell.failover.writable;
  if (w === undefined) return "no failover measured (no stable leader)";
  return `median ${formatMs(w.median)}, 90% within ${formatMs(w.p90)}, p99 ${formatMs(w.p99)}, worst ${formatMs(w.max)} (${w.count} trials)`;
}

export function recommendationLines(outcome: RecommendOutcome): string[] {
  const { choice, alternative } = outcome.recommendation;
  if (choice === undefined) {
    return [
      "No candidate works on this network: every one either held no stable leader, had spurious elections or an unbounded failover.",
      `Use an election timeout of at least ${10 * worstRttMs(outcome.measured)} ms and measure again.`,
    ];
  }
  const lines = [`Recommended: ${describeTiming(choice.timing)}.`, `  Expected failover (leader crash to first committed write): ${describeFailover(choice)}.`];
  if (choice.timing.name !== "custom") lines.push(`  In postgresql.conf: pgraft.profile = ${choice.timing.name}`);
  else lines.push(`  In postgresql.conf: pgraft.election_timeout = ${choice.timing.electionTimeoutMs}ms, pgraft.heartbeat_interval = ${choice.timing.heartbeatIntervalMs}ms`);
  if (alternative !== undefined) {
    lines.push(
      `Faster, if you accept a smaller margin for pauses: ${describeTiming(alternative.timing)}: ${describeFailover(alternative)}.`,
      `  In postgresql.conf: pgraft.election_timeout = ${alternative.timing.electionTimeoutMs}ms, pgraft.heartbeat_interval = ${alternative.timing.heartbeatIntervalMs}ms`,
    );
  }
  return lines;
}

const HEADERS = ["candidate", "timing", "failover p50", "p90", "p99", "max", "spurious", "works", "p99 in 3T", "10x margin"];

function candidateRows(outcome: RecommendOutcome): string[][] {
  return outcome.cells.map((cell) => [
    cell.timing.name,
    `${cell.timing.electionTimeoutMs}/${cell.timing.heartbeatIntervalMs} ms`,
    formatMs(cell.failover.writable?.median),
    formatMs(cell.failover.writable?.p90),
    formatMs(cell.failover.writable?.p99),
    formatMs(cell.failover.writable?.max),
    cell.quiet.started ? `${Number(cell.quiet.electionsPerHour.toFixed(1))}/h` : "no leader",
    cell.ok ? "yes" : "NO",
    cell.meetsTarget ? "yes" : "no",
    hasMargin(cell.timing, outcome.measured) ? "yes" : "no",
  ]);
}

function networkLine(outcome: RecommendOutcome): string {
  const network = recommendationNetwork(outcome.measured);
  return (
    `Network: round trip ${outcome.measured.rttMs} ms ± ${outcome.measured.jitterMs} ms, simulated as one-way ${network.latencyMs} ms ± ${network.jitterMs} ms ` +
    `with ${network.fsyncMs} ms disk writes, ${outcome.cells[0]?.nodeCount ?? 3} nodes`
  );
}

export function recommendationTerminalReport(outcome: RecommendOutcome): string {
  return [networkLine(outcome), "", textTable(HEADERS, candidateRows(outcome)), "", ...recommendationLines(outcome)].join("\n");
}

export function recommendationJsonLines(outcome: RecommendOutcome): string[] {
  const { choice, alternative, notes } = outcome.recommendation;
  const pick = (cell: CellResult | undefined): Record<string, unknown> | null =>
    cell === undefined
      ? null
      : {
          name: cell.timing.name,
          electionTimeoutMs: cell.timing.electionTimeoutMs,
          heartbeatIntervalMs: cell.timing.heartbeatIntervalMs,
          failoverMedianMs: cell.failover.writable?.median ?? null,
          failoverP90Ms: cell.failover.writable?.p90 ?? null,
          failoverP99Ms: cell.failover.writable?.p99 ?? null,
          failoverMaxMs: cell.failover.writable?.max ?? null,
        };
  return [
    ...outcome.cells.map((cell) => JSON.stringify({ candidate: cellJson(cell), margin: hasMargin(cell.timing, outcome.measured) })),
    JSON.stringify({ recommendation: { rttMs: outcome.measured.rttMs, jitterMs: outcome.measured.jitterMs, choice: pick(choice), alternative: pick(alternative), notes } }),
  ];
}

export function recommendationChart(outcome: RecommendOutcome): string {
  return renderChart({
    title: `Failover on a ${outcome.measured.rttMs} ms ± ${outcome.measured.jitterMs} ms round trip`,
    xLabel: "seconds from the leader crash to the first committed write",
    yLabel: "cumulative percent of trials",
    series: outcome.cells.map((cell) => ({
      name: `${cell.timing.name} ${cell.timing.electionTimeoutMs}/${cell.timing.heartbeatIntervalMs}`,
      points: cdfPoints(cell.failover.writableMs).map((p) => ({ x: p.x / 1000, y: p.y * 100 })),
      step: true,
    })),
    xMin: 0,
    yMin: 0,
    yMax: 100,
    notes: [networkLine(outcome)],
  });
}

export function recommendationMarkdown(outcome: RecommendOutcome, context: { run: RunRecord; quietDurationMs: number }): string {
  return `# Timing recommendation for a ${outcome.measured.rttMs} ms ± ${outcome.measured.jitterMs} ms round trip

Generated by \`${context.run.command}\` (${runDetails(context.run)}).
Method and limits: [README.md](README.md).

${networkLine(outcome)}. Each candidate: failover trials and ${formatHours(context.quietDurationMs / 3_600_000)} without faults.

${recommendationLines(outcome).map((line) => line.trim()).join("\n\n")}

${markdownTable(HEADERS, candidateRows(outcome))}

Why each candidate was or was not eligible:

${outcome.recommendation.notes.map((note) => `- ${note}`).join("\n")}

![Failover distributions](recommendation-failover.svg)
`;
}
