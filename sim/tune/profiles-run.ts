/**
 * `npm run tune` (profile verification): plans every cell (profile x latency) as jobs, collects the
 * results, judges each profile, and renders the terminal tables, JSON lines, Markdown report and charts.
 *
 * The sweep: the issue's latencies (1 to 200 ms one-way) with the full number of trials, then further
 * latencies (300 ms to 3 s) with a fifth of them, to find where each profile breaks; --long runs the
 * far latencies with the full number too.
 */
import { TUNING_PROFILE_NAMES, TUNING_PROFILES } from "../../src/config/setting-definitions.ts";
import type { TuneArguments } from "./arguments.ts";
import { FAILURE_DESCRIPTIONS, FAILURE_KINDS, type FailureKind } from "./failover.ts";
import { formatMs, markdownTable, summaryJson, textTable } from "./format.ts";
import type { TuneJob, TuneJobResult } from "./jobs.ts";
import {
  GUIDE_RESTART_MS,
  JITTER_FRACTION,
  PROFILE_FSYNC_MS,
  PROFILE_LATENCIES_MS,
  PROFILE_LATENCIES_MS_LONG,
  formatHours,
  networkForLatency,
  planCell,
  profileTimings,
  profileVerdict,
  summarizeCell,
  type CellJobs,
  type CellResult,
  type ProfileVerdict,
} from "./profiles.ts";
import { chooseRecommendation, MARGIN_RTT_FACTOR } from "./recommend.ts";
import { runDetails, type RunRecord } from "./reports.ts";
import { cdfPoints } from "./statistics.ts";
import { renderChart, type ChartSeries } from "./svg.ts";

export interface ProfilesPlan {
  readonly jobs: TuneJob[];
  readonly cells: CellJobs[];
  readonly quietDurationMs: number;
}

export function planProfiles(args: Pick<TuneArguments, "seeds" | "quick" | "long" | "nodeCount">): ProfilesPlan {
  const jobs: TuneJob[] = [];
  const cells: CellJobs[] = [];
  const quietDurationMs = args.quick ? 600_000 : 3_600_000;
  for (const latencyMs of PROFILE_LATENCIES_MS_LONG) {
    const far = !PROFILE_LATENCIES_MS.includes(latencyMs);
    if (far && args.quick) continue;
    const failoverSeeds = far && !args.long ? Math.max(10, Math.ceil(args.seeds / 5)) : args.seeds;
    const counts = { failoverSeeds, failureSeeds: Math.max(5, Math.ceil(failoverSeeds / 8)), quietDurationMs, nodeCount: args.nodeCount };
    for (const timing of profileTimings()) cells.push(planCell(timing, networkForLatency(latencyMs), counts, jobs));
  }
  return { jobs, cells, quietDurationMs };
}

export interface ProfileSuggestion {
  readonly latencyMs: number;
  /** The recommendation for this latency (recommend.ts): the fastest profile that works with a 10x margin. */
  readonly recommended: string | undefined;
  /** The profile with the fastest median failover among those that work, margin or not. */
  readonly fastestWorking: string | undefined;
}

export interface ProfilesOutcome {
  readonly cells: CellResult[];
  readonly verdicts: ProfileVerdict[];
  readonly suggestions: ProfileSuggestion[];
}

export function collectProfiles(plan: ProfilesPlan, results: readonly TuneJobResult[]): ProfilesOutcome {
  const cells = plan.cells.map((cell) => summarizeCell(cell, results));
  const verdicts = TUNING_PROFILE_NAMES.map((name) => profileVerdict(TUNING_PROFILES[name], cells, Math.max(...PROFILE_LATENCIES_MS)));
  return { cells, verdicts, suggestions: suggestProfiles(cells) };
}

/** Per latency: what `--rtt` would recommend there (round trip 2L, jitter as simulated), and the fastest that works. */
export function suggestProfiles(cells: readonly CellResult[]): ProfileSuggestion[] {
  const latencies = [...new Set(cells.map((cell) => cell.network.latencyMs))].sort((a, b) => a - b);
  return latencies.map((latencyMs) => {
    const here = cells.filter((cell) => cell.network.latencyMs === latencyMs);
    const measured = { rttMs: 2 * latencyMs, jitterMs: 2 * latencyMs * JITTER_FRACTION };
    const fastest = here
      .filter((cell) => cell.ok && cell.failover.writable !== undefined)
      .sort((a, b) => a.failover.writable!.median - b.failover.writable!.median)[0];
    return { latencyMs, recommended: chooseRecommendation(measured, here).choice?.timing.name, fastestWorking: fastest?.timing.name };
  });
}

// ---------------------------------------------------------------------------------------------------
// Terminal and JSON

const CELL_HEADERS = ["profile", "latency", "elected p50", "writable p50", "p99", "max", "3T", "spurious", "pre-votes", "works", "p99 in 3T"];

function cellRows(cells: readonly CellResult[]): string[][] {
  return cells.map((cell) => [
    cell.timing.name,
    `${cell.network.latencyMs} ms`,
    formatMs(cell.failover.elected?.median),
    formatMs(cell.failover.writable?.median),
    formatMs(cell.failover.writable?.p99),
    formatMs(cell.failover.writable?.max),
    formatMs(cell.boundMs),
    cell.quiet.started ? `${Number(cell.quiet.electionsPerHour.toFixed(1))}/h` : "no leader",
    cell.quiet.started ? `${Number(cell.quiet.preVotesPerHour.toFixed(1))}/h` : "-",
    cell.ok ? "yes" : "NO",
    cell.meetsTarget ? "yes" : "no",
  ]);
}

const FAILURE_HEADERS = ["profile", "latency", "leader isolated p50/max", "old leader steps down", "follower crash p50/max", "quorum lost p50/max", "full restart p50/max"];

function failureRows(cells: readonly CellResult[]): string[][] {
  const pair = (cell: CellResult, kind: FailureKind): string => {
    const f = cell.failures[kind];
    if (f.outage === undefined) return "no leader";
    return `${formatMs(f.outage.median)} / ${formatMs(f.outage.max)}${f.censored > 0 ? ` (${f.censored} cut)` : ""}`;
  };
  return cells.map((cell) => [
    cell.timing.name,
    `${cell.network.latencyMs} ms`,
    pair(cell, "leader-isolated"),
    cell.failures["leader-isolated"].censored === cell.failures["leader-isolated"].trials ? "-" : formatMs(cell.failures["leader-isolated"].stepDown?.median),
    pair(cell, "follower-crash"),
    pair(cell, "quorum-lost"),
    pair(cell, "full-restart"),
  ]);
}

const VERDICT_HEADERS = ["profile", "timing", "guide claims", "works", "breaks at", "p99 within 3T", "misses at", "top of claimed band", "restart within 10 s"];

function verdictRows(verdicts: readonly ProfileVerdict[]): string[][] {
  return verdicts.map((v) => [
    v.profile,
    `${v.timing.electionTimeoutMs}/${v.timing.heartbeatIntervalMs} ms`,
    v.claimedText,
    v.okUpToMs === undefined ? "nowhere" : `up to ${v.okUpToMs} ms`,
    v.breaksAtMs === undefined ? "not in the sweep" : `${v.breaksAtMs} ms`,
    v.targetUpToMs === undefined ? "nowhere" : `up to ${v.targetUpToMs} ms`,
    v.targetMissAtMs === undefined ? "not in the sweep" : `${v.targetMissAtMs} ms`,
    `${v.topOfBandMs} ms: ${v.safeAtTop ? "safe" : `NOT safe${v.insteadAtTop ? `, use ${v.insteadAtTop}` : ""}`}`,
    v.restartWithinGuide ? "yes" : "no",
  ]);
}

const SUGGESTION_HEADERS = ["latency", "recommended (works, 10x margin)", "fastest failover that works"];

function suggestionRows(suggestions: readonly ProfileSuggestion[]): string[][] {
  return suggestions.map((s) => [`${s.latencyMs} ms`, s.recommended ?? "none: size a custom timing with --rtt", s.fastestWorking ?? "none"]);
}

/** "low below 40 ms, medium 50 ms, high 100-200 ms": the latencies of the sweep at which each profile is recommended. */
export function suggestedBands(suggestions: readonly ProfileSuggestion[]): string {
  const parts: string[] = [];
  for (const name of [...TUNING_PROFILE_NAMES, undefined]) {
    const latencies = suggestions.filter((s) => s.recommended === name).map((s) => s.latencyMs);
    if (latencies.length === 0) continue;
    const range = latencies.length === 1 ? `${latencies[0]} ms` : `${latencies[0]}-${latencies[latencies.length - 1]} ms`;
    parts.push(`${name ?? "no profile"}: ${range}`);
  }
  return parts.join("; ");
}

/**
 * Whether, among the profiles that work at a latency, a shorter timeout always gave a faster failover
 * (median and p99), said in a sentence with the exceptions.
 */
export function shorterIsFaster(cells: readonly CellResult[]): string {
  const exceptionsAt = (latencies: readonly number[]): string[] => {
    const exceptions: string[] = [];
    for (const latencyMs of latencies) {
      const working = cells
        .filter((cell) => cell.network.latencyMs === latencyMs && cell.ok && cell.failover.writable !== undefined)
        .sort((a, b) => a.timing.electionTimeoutMs - b.timing.electionTimeoutMs);
      for (let i = 1; i < working.length; i++) {
        const shorter = working[i - 1]!.failover.writable!;
        const longer = working[i]!.failover.writable!;
        for (const statistic of ["median", "p99"] as const) {
          if (shorter[statistic] > longer[statistic]) {
            exceptions.push(`${statistic} at ${latencyMs} ms (${working[i - 1]!.timing.name} ${formatMs(shorter[statistic])}, ${working[i]!.timing.name} ${formatMs(longer[statistic])})`);
          }
        }
      }
    }
    return exceptions;
  };
  const all = [...new Set(cells.map((cell) => cell.network.latencyMs))].sort((a, b) => a - b);
  const near = all.filter((latencyMs) => PROFILE_LATENCIES_MS.includes(latencyMs));
  const far = all.filter((latencyMs) => !PROFILE_LATENCIES_MS.includes(latencyMs));
  const nearExceptions = exceptionsAt(near);
  const farExceptions = exceptionsAt(far);
  const top = Math.max(...near);
  const head =
    nearExceptions.length === 0
      ? `Up to ${top} ms, among the profiles that work at a latency, the one with the shorter timeout fails over faster, at the median and at p99 alike: there a longer timeout buys no safety in these runs.`
      : `Up to ${top} ms, among the profiles that work at a latency, the one with the shorter timeout fails over faster, except for ${nearExceptions.join("; ")}.`;
  const tail =
    far.length === 0
      ? ""
      : farExceptions.length === 0
        ? ` Beyond ${top} ms the order holds too.`
        : ` Beyond ${top} ms, as the shorter timeouts near the latency where they break, the order turns in places: ${farExceptions.join("; ")}.`;
  return head + tail;
}

/** One sentence per profile: the verdict in words, with the reasons. */
export function verdictSentence(v: ProfileVerdict, quietHours: number): string {
  const top = `${v.topOfBandMs} ms`;
  const topWhy = v.claimedMaxMs === undefined ? ` (the band is open; ${top} is the top of the issue's sweep)` : "";
  const safe = v.safeAtTop
    ? `safe at ${top}, the top of its claimed band${topWhy}: no spurious election in ${formatHours(quietHours)}, a stable leader, every failover completed`
    : `NOT safe at ${top}, the top of its claimed band${topWhy}${v.insteadAtTop ? `: use ${v.insteadAtTop} there` : ""}`;
  const works = v.okUpToMs === undefined ? "works nowhere in the sweep" : `works from 1 ms up to ${v.okUpToMs} ms one-way`;
  const breaks = v.breaksAtMs === undefined ? "and does not break within the sweep" : `and breaks at ${v.breaksAtMs} ms (${v.breakReasons.join("; ")})`;
  const target =
    v.targetMissAtMs === undefined
      ? "Its failover p99 stays within 3T across the sweep"
      : `Its failover p99 stays within 3T up to ${v.targetUpToMs ?? "-"} ms and misses it at ${v.targetMissAtMs} ms: ${v.targetMissReasons.join("; ")}`;
  const restart = v.restartWithinGuide ? "within" : "NOT always within";
  return `**${v.profile}** (${v.timing.electionTimeoutMs}/${v.timing.heartbeatIntervalMs} ms; the guide: ${v.claimedText}) is ${safe}. It ${works} ${breaks}. ${target}. After a complete cluster failure, writes resumed ${restart} the guide's 10 s at every latency of its band.`;
}

export function profilesTerminalReport(outcome: ProfilesOutcome): string {
  return [
    "Profile verification: failover after a leader crash (elected, then first committed write), spurious elections without faults",
    "",
    textTable(CELL_HEADERS, cellRows(outcome.cells)),
    "",
    "The guide's failures: write outage",
    "",
    textTable(FAILURE_HEADERS, failureRows(outcome.cells)),
    "",
    "Verdicts",
    "",
    textTable(VERDICT_HEADERS, verdictRows(outcome.verdicts)),
    "",
    "Which profile to use, by one-way latency",
    "",
    textTable(SUGGESTION_HEADERS, suggestionRows(outcome.suggestions)),
  ].join("\n");
}

export function cellJson(cell: CellResult): Record<string, unknown> {
  const failures: Record<string, unknown> = {};
  for (const kind of FAILURE_KINDS) {
    const f = cell.failures[kind];
    failures[kind] = {
      trials: f.trials,
      censored: f.censored,
      notStarted: f.notStarted,
      outage: summaryJson(f.outage),
      ...(f.stepDown ? { stepDown: summaryJson(f.stepDown) } : {}),
      ...(f.electionsAfterHeal !== undefined ? { electionsAfterHeal: f.electionsAfterHeal } : {}),
    };
  }
  return {
    profile: cell.timing.name,
    electionTimeoutMs: cell.timing.electionTimeoutMs,
    heartbeatIntervalMs: cell.timing.heartbeatIntervalMs,
    latencyMs: cell.network.latencyMs,
    jitterMs: cell.network.jitterMs,
    fsyncMs: cell.network.fsyncMs,
    nodeCount: cell.nodeCount,
    failover: {
      trials: cell.failover.trials,
      censored: cell.failover.censored,
      notStarted: cell.failover.notStarted,
      elected: summaryJson(cell.failover.elected),
      writable: summaryJson(cell.failover.writable),
    },
    spurious: {
      simulatedHours: cell.quiet.hours,
      started: cell.quiet.started,
      elections: cell.quiet.elections,
      preVotes: cell.quiet.preVotes,
      electionsPerHour: cell.quiet.electionsPerHour,
    },
    failures,
    boundMs: cell.boundMs,
    ok: cell.ok,
    reasons: cell.reasons,
  };
}

export function profilesJsonLines(outcome: ProfilesOutcome): string[] {
  return [
    ...outcome.cells.map((cell) => JSON.stringify(cellJson(cell))),
    ...outcome.verdicts.map((verdict) => JSON.stringify({ verdict })),
    JSON.stringify({ suggestions: outcome.suggestions }),
  ];
}

// ---------------------------------------------------------------------------------------------------
// Charts

export function profilesCharts(outcome: ProfilesOutcome): Map<string, string> {
  const charts = new Map<string, string>();
  for (const name of TUNING_PROFILE_NAMES) {
    const cells = outcome.cells.filter((cell) => cell.timing.name === name && PROFILE_LATENCIES_MS.includes(cell.network.latencyMs));
    const profile = TUNING_PROFILES[name];
    const series: ChartSeries[] = cells.map((cell) => ({
      name: `${cell.network.latencyMs} ms`,
      points: cdfPoints(cell.failover.writableMs).map((p) => ({ x: p.x / 1000, y: p.y * 100 })),
      step: true,
    }));
    charts.set(
      `profiles-failover-${name}.svg`,
      renderChart({
        title: `Failover, profile ${name} (${profile.electionTimeoutMs}/${profile.heartbeatIntervalMs} ms): crash to first committed write`,
        xLabel: "seconds from the leader crash to the first committed write",
        yLabel: "cumulative percent of trials",
        series,
        xMin: 0,
        yMin: 0,
        yMax: 100,
        referenceLines: [{ axis: "x", value: (3 * profile.electionTimeoutMs) / 1000, label: "3T target" }],
        notes: [`3 nodes, PreVote and CheckQuorum on; one-way latency as in the legend, ±${JITTER_FRACTION * 100}%; ${PROFILE_FSYNC_MS} ms disk writes`],
      }),
    );
  }
  const latencies = [...new Set(outcome.cells.map((cell) => cell.network.latencyMs))].sort((a, b) => a - b);
  const perProfile = (value: (cell: CellResult) => number | undefined, scale = 1): ChartSeries[] =>
    TUNING_PROFILE_NAMES.map((name) => ({
      name,
      markers: true,
      points: latencies.flatMap((latencyMs) => {
        const cell = outcome.cells.find((c) => c.timing.name === name && c.network.latencyMs === latencyMs);
        const v = cell === undefined ? undefined : value(cell);
        return v === undefined ? [] : [{ x: latencyMs, y: v * scale }];
      }),
    }));
  charts.set(
    "profiles-spurious.svg",
    renderChart({
      title: "Spurious elections without any fault",
      xLabel: "one-way latency between nodes (ms, log scale)",
      yLabel: "elections per simulated hour",
      series: perProfile((cell) => (cell.quiet.started ? cell.quiet.electionsPerHour : undefined)),
      xScale: "log",
      yMin: 0,
      referenceLines: [
        { axis: "x", value: 10, label: "low's top" },
        { axis: "x", value: 50, label: "medium's top" },
      ],
      notes: [`${formatHours(outcome.cells[0]?.quiet.hours ?? 1)} per point, no client load; a missing point: no stable leader at all`],
    }),
  );
  const p99: ChartSeries[] = perProfile((cell) => cell.failover.writable?.p99, 1 / 1000);
  const bounds: ChartSeries[] = TUNING_PROFILE_NAMES.map((name, i) => ({
    name: `${name}: 3T target`,
    dashed: true,
    color: ["#1f77b4", "#d62728", "#2ca02c"][i],
    points: latencies.map((latencyMs) => ({ x: latencyMs, y: (3 * TUNING_PROFILES[name].electionTimeoutMs) / 1000 })),
  }));
  charts.set(
    "profiles-failover-p99.svg",
    renderChart({
      title: "Failover p99 (crash to first committed write) against latency",
      xLabel: "one-way latency between nodes (ms, log scale)",
      yLabel: "seconds (log scale)",
      series: [...p99.map((s, i) => ({ ...s, color: ["#1f77b4", "#d62728", "#2ca02c"][i] })), ...bounds],
      xScale: "log",
      yScale: "log",
      notes: [
        "A profile meets the failover target while its p99 stays under its dashed line.",
        "Where a profile no longer works, failovers stop at the measurement cap (20T plus 20 round trips).",
      ],
    }),
  );
  return charts;
}

// ---------------------------------------------------------------------------------------------------
// Markdown

export function profilesMarkdown(outcome: ProfilesOutcome, context: { run: RunRecord; seeds: number; quietDurationMs: number; long: boolean }): string {
  const near = outcome.cells.filter((cell) => PROFILE_LATENCIES_MS.includes(cell.network.latencyMs));
  const far = outcome.cells.filter((cell) => !PROFILE_LATENCIES_MS.includes(cell.network.latencyMs));
  const verdictLines = outcome.verdicts.map((v) => `- ${verdictSentence(v, context.quietDurationMs / 3_600_000)}`);
  const failureList = FAILURE_KINDS.map((kind) => `- **${kind}**: ${FAILURE_DESCRIPTIONS[kind]}.`);
  return `# Tuning profiles, verified

Generated by \`${context.run.command}\` (${context.seeds} failover trials per profile and latency${context.long ? "" : " up to 200 ms, a fifth of that beyond"};
${runDetails(context.run)}). Method, model and limits: [README.md](README.md).

Each profile of the operations guide runs on 3 simulated nodes (the production RaftNode, PreVote and
CheckQuorum on, 10 ms ticks) at one-way latencies from 1 ms up, each message delayed by the latency
±${JITTER_FRACTION * 100}% and every vote or append answered after a ${PROFILE_FSYNC_MS} ms disk write. For every profile and latency:
failover trials (the leader crashes at a random moment; we time the new leader's election and the
first write it commits), ${formatHours(context.quietDurationMs / 3_600_000)} without faults or load (every election there is
spurious), and the guide's failures. A profile **works** at a latency when the quiet run saw no
election, a leader held, and every failover ended with a committed write. It also **meets the
failover target** when the p99 failover stays within 3T (T the election timeout: detection takes up
to 2T, a third T covers pre-vote, vote and the first commit, or one split vote; for the default
profile that is the 1-3 s pgraft's documentation claims).

## Verdicts

${verdictLines.join("\n")}

${markdownTable(VERDICT_HEADERS, verdictRows(outcome.verdicts))}

## Which profile to use

${shorterIsFaster(outcome.cells)} What a longer timeout buys is headroom for what the simulator does not model (latency spikes, loss bursts, fsync stalls, pauses), which is why
the recommendation also keeps etcd's margin: an election timeout of at least ${MARGIN_RTT_FACTOR}x the worst round
trip (here 2.5x the one-way latency, with the ±${JITTER_FRACTION * 100}% jitter). By that rule the sweep recommends
${suggestedBands(outcome.suggestions)}; the guide says low below 10 ms, medium 10-50 ms, high above 50 ms.

${markdownTable(SUGGESTION_HEADERS, suggestionRows(outcome.suggestions))}

![Failover p99 against latency](profiles-failover-p99.svg)

![Spurious elections against latency](profiles-spurious.svg)

## Failover and spurious elections

${markdownTable(CELL_HEADERS, cellRows(near))}
${far.length > 0 ? `\nBeyond the issue's sweep (fewer trials), to find where each profile breaks:\n\n${markdownTable(CELL_HEADERS, cellRows(far))}\n` : ""}
"writable" is the time from the crash to the first committed write of a client that knows the new
leader (add your client's leader discovery); "3T" is the failover target.

![Failover distributions, low](profiles-failover-low.svg)

![Failover distributions, medium](profiles-failover-medium.svg)

![Failover distributions, high](profiles-failover-high.svg)

## The guide's failures

${failureList.join("\n")}

${markdownTable(FAILURE_HEADERS, failureRows(near))}

The old leader stepping down is CheckQuorum at work (the guide: "an old leader steps down within an
election timeout"). The guide's "wait 10 seconds for election" after a complete failure holds where
the full-restart maximum stays under ${formatMs(GUIDE_RESTART_MS)}.
`;
}
