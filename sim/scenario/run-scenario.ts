/**
 * Runs one scenario on a SimCluster for one seed, top-down like a swarm seed (sim/run.ts): build the
 * cluster from the scenario's settings, network, clocks and disks; start the workload; run the timeline
 * while the expectations sample and probe; then (unless `liveness: off`) heal every fault and require a
 * committed write within 12 election timeouts; drain; and check safety (at every step, as always),
 * acknowledged writes and linearizability. The result has the shape `npm run sim` prints, with every
 * failed expectation or step named by file, line and time.
 */
import { performance } from "node:perf_hooks";
import { AssertionError } from "../../src/assert.ts";
import { SimCluster, type ClusterOptions } from "../cluster.ts";
import { SimulationBoundError } from "../clock.ts";
import { checkLinearizable } from "../checkers/linearizability.ts";
import { checkLiveness, LIVENESS_ELECTION_TIMEOUTS_MAX } from "../checkers/liveness.ts";
import { SafetyViolation } from "../checkers/safety.ts";
import { Random } from "../random.ts";
import type { RunResult } from "../run.ts";
import { Trace } from "../trace.ts";
import { Workload } from "../workload.ts";
import { ClusterControls } from "./cluster-controls.ts";
import { ExpectationMonitor } from "./expectations.ts";
import { Prober } from "./probes.ts";
import { formatDuration, type Scenario } from "./scenario.ts";
import { ScenarioContext } from "./scenario-context.ts";
import { scheduleTimeline } from "./timeline.ts";

export interface ScenarioRunOptions {
  readonly seed: number;
  readonly keepTrace?: boolean;
  readonly traceMessages?: boolean;
  /** Bound on simulated events, so a runaway run fails instead of hanging. */
  readonly eventsMax?: number;
}

/** What failed, in a form that survives rewriting the file (for shrinking). */
export type FailureSignature =
  | { readonly kind: "expectation"; readonly index: number }
  | { readonly kind: "step"; readonly index: number }
  | { readonly kind: "property"; readonly name: string };

export interface ScenarioRunResult extends RunResult {
  readonly scenario: string;
  readonly failures: readonly FailureSignature[];
}

const LINEARIZABILITY_STEPS_MAX = 50_000_000;
const DRAIN_MS_MIN = 4_000;
const EVENTS_MAX_DEFAULT = 20_000_000;

export function runScenario(scenario: Scenario, options: ScenarioRunOptions): ScenarioRunResult {
  const wallStart = performance.now();
  const random = new Random(options.seed);
  const trace = new Trace({ keepAll: options.keepTrace });
  trace.record(0, `seed ${options.seed} scenario ${scenario.name} ${describeScenario(scenario)}`);
  const cluster = new SimCluster(clusterOptions(scenario, options), random, trace);
  const workload = new Workload(cluster, random.fork("workload"), scenario.workload);
  const controls = new ClusterControls(cluster, scenario.diskFsyncMs);
  const context = new ScenarioContext(scenario, cluster, random.fork("scenario"), workload, controls);
  const monitor = new ExpectationMonitor(context, new Prober(context, random.fork("probes")));
  const violations: string[] = [];
  const failures: FailureSignature[] = [];
  const eventsMax = options.eventsMax ?? EVENTS_MAX_DEFAULT;
  let recoveryMs: number | null = null;
  /** Set when the run was stopped at a bound: the expectations after that point were never checked. */
  let stopped = false;

  try {
    cluster.start();
    if (scenario.workload.clients > 0) workload.start();
    scheduleTimeline(context);
    if (scenario.expectations.length > 0) monitor.schedule();
    cluster.runForMs(scenario.durationMs, () => cluster.clock.eventsRun > eventsMax);
    if (cluster.clock.eventsRun > eventsMax) throw cluster.clock.eventCapError(eventsMax);
    if (scenario.liveness) {
      healAll(context);
      const liveness = checkLiveness(cluster, {
        boundMs: LIVENESS_ELECTION_TIMEOUTS_MAX * scenario.timing.electionTimeoutMs,
        probeKey: "liveness-probe",
      });
      if (liveness.ok) recoveryMs = liveness.recoveryMs;
      else {
        violations.push(`Liveness: ${liveness.reason}`);
        failures.push({ kind: "property", name: "Liveness" });
      }
    }
    for (const id of context.corrupted) {
      if (cluster.state(id) === "up" || cluster.state(id) === "paused") {
        violations.push(`Durability: node ${id}'s disk was corrupted but it started anyway`);
        failures.push({ kind: "property", name: "Durability" });
      }
    }
    workload.stop();
    cluster.runForMs(Math.max(DRAIN_MS_MIN, scenario.workload.clientTimeoutMs + 1_000));
    cluster.checker.finish();
  } catch (error) {
    if (error instanceof SimulationBoundError) {
      // A stalled, too slow or too large run reports as a liveness failure, as a swarm seed's does.
      stopped = true;
      violations.push(`Liveness: ${error.message}`);
      failures.push({ kind: "property", name: "Liveness" });
    } else if (error instanceof SafetyViolation) {
      violations.push(`${error.property}: ${error.detail}`);
      failures.push({ kind: "property", name: error.property });
    } else if (error instanceof AssertionError) {
      violations.push(`Assertion: ${error.message}`);
      failures.push({ kind: "property", name: "Assertion" });
    } else {
      violations.push(`Crash: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      failures.push({ kind: "property", name: "Crash" });
    }
  }

  for (const failure of context.failures) {
    violations.push(`${failure.kind === "unsupported" ? "Unsupported" : "Step"}: ${failure.message}`);
    failures.push({ kind: "step", index: failure.index });
  }
  for (const failure of stopped ? [] : monitor.verdicts()) {
    violations.push(`Expectation: ${failure.message}`);
    failures.push({ kind: "expectation", index: failure.index });
  }
  const operations = workload.history.operations();
  if (!failures.some((f) => f.kind === "property")) {
    // A step bound, not only a wall-clock budget, so an undecided verdict is the same on every replay.
    const linearizable = checkLinearizable(operations, { timeBudgetMs: 60_000, searchStepsMax: LINEARIZABILITY_STEPS_MAX });
    if (linearizable.ok !== true) {
      violations.push(`Linearizability: ${linearizable.ok === false ? "" : "undecided: "}${linearizable.reason}`);
      failures.push({ kind: "property", name: "Linearizability" });
    }
  }
  const ok = violations.length === 0;
  const traceHash = trace.digest();
  return {
    seed: options.seed,
    scenario: scenario.name,
    ok,
    violations,
    failures,
    traceHash,
    simulatedMs: Math.round(cluster.clock.nowMs),
    wallMs: Math.round(performance.now() - wallStart),
    events: cluster.clock.eventsRun,
    knobs: `scenario=${scenario.name} ${describeScenario(scenario)}`,
    operations: operations.length,
    acknowledgedWrites: workload.acknowledgedWrites,
    elections: cluster.checker.leaders.size,
    faultActions: context.stepsRun,
    recoveryMs,
    recentEvents: ok ? undefined : trace.recent(60),
    traceLines: trace.lines(),
    replay: `npm run sim -- --scenario ${scenario.file} --seed ${options.seed} --trace seed-${options.seed}.trace`,
  };
}

/** The cluster a scenario describes: its pgraft settings, network, clocks and disks. */
export function clusterOptions(scenario: Scenario, options: { traceMessages?: boolean }): ClusterOptions {
  const timing = scenario.timing;
  const tickMs = gcd(gcd(10, timing.electionTimeoutMs), timing.heartbeatIntervalMs);
  const cluster: ClusterOptions = {
    nodeCount: scenario.nodes,
    tickMs,
    electionTimeoutMs: timing.electionTimeoutMs,
    heartbeatIntervalMs: timing.heartbeatIntervalMs,
    preVote: timing.preVote,
    checkQuorum: timing.checkQuorum,
    entriesPerAppendMax: timing.entriesPerAppendMax,
    maxBatchDelayMs: timing.maxBatchDelayMs,
    // Long enough for a commit across an election; the client's own timeout usually comes first.
    requestTimeoutMs: Math.max(2_500, 2 * timing.electionTimeoutMs),
    network: scenario.network,
    driftMax: scenario.clockDriftMax,
    tornWrites: scenario.tornWrites,
    connectionResetOnCrash: scenario.connectionResets,
    fsyncMs: scenario.diskFsyncMs,
    traceMessages: options.traceMessages ?? true,
    snapshotIntervalEntries: timing.snapshotIntervalEntries,
    logEntriesMax: timing.logEntriesMax,
  };
  return cluster;
}

/** The end of the timeline: every partition, cut, link condition, pause, crash and disk fault healed. */
function healAll(context: ScenarioContext): void {
  const cluster = context.cluster;
  cluster.heal();
  cluster.disarmCrashes();
  context.controls.healAll();
  for (const id of cluster.ids) {
    if (cluster.state(id) === "paused") cluster.resume(id);
    if (cluster.state(id) === "down") cluster.restart(id);
  }
  context.note("all faults healed: liveness phase");
}

export function describeScenario(scenario: Scenario): string {
  const n = scenario.network;
  const t = scenario.timing;
  return [
    `nodes=${scenario.nodes}`,
    `election=${t.electionTimeoutMs}ms heartbeat=${t.heartbeatIntervalMs}ms${t.profile ? ` profile=${t.profile}` : ""}`,
    `latency=${n.latencyMs}±${n.jitterMs}ms(${n.distribution})`,
    `loss=${n.lossRate}`,
    `clients=${scenario.workload.clients}`,
    `steps=${scenario.timeline.length}`,
    `expectations=${scenario.expectations.length}`,
    `duration=${formatDuration(scenario.durationMs)}`,
  ].join(" ");
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
