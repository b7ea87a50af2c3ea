/**
 * One simulated run, top-down (after TigerBeetle's VOPR): take the seed, draw the world from it, run a
 * safety phase under faults with client load, heal everything and run a liveness phase, then check the
 * client history for linearizability. The result says what failed and how to replay it.
 */
import { performance } from "node:perf_hooks";
import { AssertionError } from "../src/assert.ts";
import { SimCluster } from "./cluster.ts";
import { type ClockBounds, SimulationBoundError } from "./clock.ts";
import { checkLinearizable } from "./checkers/linearizability.ts";
import { checkLiveness, livenessBoundMs } from "./checkers/liveness.ts";
import { SafetyViolation } from "./checkers/safety.ts";
import { Random } from "./random.ts";
import { describeKnobs, drawKnobs, FaultScheduler, type Knobs, quietKnobs } from "./swarm.ts";
import { Trace } from "./trace.ts";
import { Workload } from "./workload.ts";

export interface RunOptions {
  readonly seed: number;
  readonly nodeCount?: number;
  /** Length of the fault phase in simulated ms. */
  readonly durationMs: number;
  readonly faults: "none" | "swarm";
  readonly keepTrace?: boolean;
  readonly traceMessages?: boolean;
  readonly electionTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  /** Bound on simulated events, so a runaway run fails instead of hanging. */
  readonly eventsMax?: number;
  /**
   * Events at one simulated instant, wall time and heap the seed may use (CLOCK_BOUNDS_DEFAULT where
   * left out); passing one fails the seed as a liveness failure that names the bound.
   */
  readonly bounds?: Partial<ClockBounds>;
  /**
   * Told of every action the fault scheduler takes on the cluster (method name and arguments), at the
   * simulated time it takes it: the shrinker turns a failing swarm seed into a scenario timeline this way.
   */
  readonly onFaultAction?: (timeMs: number, action: FaultAction) => void;
}

/** One call the swarm's fault scheduler made on the cluster. */
export interface FaultAction {
  readonly method: (typeof FAULT_METHODS)[number];
  readonly args: readonly unknown[];
}

/** The SimCluster methods that change the world; a recorded swarm run is a list of these calls. */
export const FAULT_METHODS = [
  "crash",
  "restart",
  "pause",
  "resume",
  "partition",
  "cutOneWay",
  "isolate",
  "setLink",
  "heal",
  "corruptDisk",
  "addHost",
  "changeMembership",
  "transferLeadership",
  "setDiskLatency",
  "failDisk",
  "repairDisk",
  "setClockRate",
] as const;

/** The cluster as the fault scheduler sees it: every fault method call is reported, then made. */
function recordingCluster(cluster: SimCluster, record: (timeMs: number, action: FaultAction) => void): SimCluster {
  const methods: readonly string[] = FAULT_METHODS;
  return new Proxy(cluster, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof property !== "string" || !methods.includes(property)) return method.bind(target);
      return (...args: unknown[]) => {
        record(target.clock.nowMs, { method: property as FaultAction["method"], args });
        return method.apply(target, args);
      };
    },
  });
}

export interface RunResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violations: string[];
  readonly traceHash: string;
  readonly simulatedMs: number;
  readonly wallMs: number;
  readonly events: number;
  readonly knobs: string;
  readonly operations: number;
  readonly acknowledgedWrites: number;
  readonly elections: number;
  readonly faultActions: number;
  readonly recoveryMs: number | null;
  /** The most events run at one simulated instant (the stall bound is ClockBounds.eventsAtInstantMax). */
  readonly eventsAtInstantPeak?: number;
  /** Last lines of the trace when the run failed. */
  readonly recentEvents?: string[];
  readonly traceLines?: string[];
  readonly replay: string;
}

const TICK_MS = 10;
const LINEARIZABILITY_STEPS_MAX = 50_000_000;
const DRAIN_MS = 4_000;

export function runSeed(options: RunOptions): RunResult {
  const wallStart = performance.now();
  const random = new Random(options.seed);
  const knobs: Knobs = options.faults === "swarm" ? drawKnobs(random.fork("swarm"), options.nodeCount) : quietKnobs(options.nodeCount ?? 3);
  const trace = new Trace({ keepAll: options.keepTrace });
  trace.record(0, `seed ${options.seed} ${describeKnobs(knobs)}`);
  const electionTimeoutMs = options.electionTimeoutMs ?? 1_000;
  const cluster = new SimCluster(
    {
      nodeCount: knobs.nodeCount,
      tickMs: TICK_MS,
      electionTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 100,
      preVote: knobs.preVote,
      checkQuorum: knobs.checkQuorum,
      entriesPerAppendMax: knobs.entriesPerAppendMax,
      maxBatchDelayMs: 10,
      requestTimeoutMs: 2_500,
      network: knobs.network,
      driftMax: knobs.driftMax,
      tornWrites: knobs.tornWrites,
      connectionResetOnCrash: knobs.connectionResetOnCrash,
      snapshotIntervalEntries: knobs.snapshotIntervalEntries,
      logEntriesMax: knobs.logEntriesMax,
      traceMessages: options.traceMessages ?? true,
      bounds: options.bounds,
    },
    random,
    trace,
  );
  const workload = new Workload(cluster, random.fork("workload"), knobs.workload);
  const faultCluster = options.onFaultAction ? recordingCluster(cluster, options.onFaultAction) : cluster;
  const faults = new FaultScheduler(faultCluster, random.fork("faults"), knobs);
  const violations: string[] = [];
  let recoveryMs: number | null = null;
  const eventsMax = options.eventsMax ?? 20_000_000;

  try {
    cluster.start();
    workload.start();
    faults.start(options.durationMs);
    cluster.runForMs(options.durationMs, () => cluster.clock.eventsRun > eventsMax);
    if (cluster.clock.eventsRun > eventsMax) throw cluster.clock.eventCapError(eventsMax);
    // Liveness phase: heal everything a majority needs, then demand progress.
    faults.stop();
    healAll(cluster);
    const liveness = checkLiveness(cluster, {
      boundMs: livenessBoundMs(electionTimeoutMs, knobs.network.lossRate, votersMax(cluster)),
      probeKey: "liveness-probe",
    });
    if (liveness.ok) recoveryMs = liveness.recoveryMs;
    else violations.push(`Liveness: ${liveness.reason}`);
    for (const id of faults.corrupted) {
      if (cluster.state(id) !== "failed") violations.push(`Durability: node ${id}'s disk was corrupted but it started anyway`);
    }
    workload.stop();
    cluster.runForMs(DRAIN_MS);
    cluster.checker.finish();
  } catch (error) {
    // A stalled, too slow or too large run: nothing is wrong that a check saw, but the cluster made no
    // progress a run can wait for, so it counts as a liveness failure (exit 3).
    if (error instanceof SimulationBoundError) violations.push(`Liveness: ${error.message}`);
    else if (error instanceof SafetyViolation) violations.push(`${error.property}: ${error.detail}`);
    else if (error instanceof AssertionError) violations.push(`Assertion: ${error.message}`);
    else violations.push(`Crash: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }

  const operations = workload.history.operations();
  if (violations.length === 0) {
    // A step bound, not only a wall-clock budget, so an undecided verdict is the same on every replay.
    const linearizable = checkLinearizable(operations, { timeBudgetMs: 60_000, searchStepsMax: LINEARIZABILITY_STEPS_MAX });
    if (linearizable.ok === false) {
      violations.push(`Linearizability: ${linearizable.reason}`);
    } else if (linearizable.ok === "unknown") {
      violations.push(`Linearizability: undecided: ${linearizable.reason}`);
    }
  }
  const ok = violations.length === 0;
  const traceHash = trace.digest();
  let elections = 0;
  for (const _ of cluster.checker.leaders) elections++;
  return {
    seed: options.seed,
    ok,
    violations,
    traceHash,
    simulatedMs: Math.round(cluster.clock.nowMs),
    wallMs: Math.round(performance.now() - wallStart),
    events: cluster.clock.eventsRun,
    knobs: describeKnobs(knobs),
    operations: operations.length,
    acknowledgedWrites: workload.acknowledgedWrites,
    elections,
    faultActions: faults.actions,
    recoveryMs,
    eventsAtInstantPeak: cluster.clock.eventsAtInstantPeak,
    recentEvents: ok ? undefined : trace.recent(60),
    traceLines: trace.lines(),
    replay: `npm run sim -- --seed ${options.seed}${options.faults === "swarm" ? " --faults swarm" : ""}${options.nodeCount ? ` --nodes ${options.nodeCount}` : ""} --duration ${options.durationMs / 1000}s --trace seed-${options.seed}.trace`,
  };
}

/** The most voters any running node's configuration has: the largest quorum recovery may need. */
function votersMax(cluster: SimCluster): number {
  let voters = 1;
  for (const id of cluster.liveIds()) voters = Math.max(voters, cluster.node(id)?.status().membership.voters.length ?? 1);
  return voters;
}

function healAll(cluster: SimCluster): void {
  cluster.heal();
  cluster.disarmCrashes();
  for (const id of cluster.ids) cluster.setDiskLatency(id, 0);
  for (const id of cluster.ids) {
    if (cluster.state(id) === "paused") cluster.resume(id);
    if (cluster.state(id) === "down") cluster.restart(id);
  }
  cluster.trace.record(cluster.clock.nowMs, "all faults healed: liveness phase");
}
