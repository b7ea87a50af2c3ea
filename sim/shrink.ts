/**
 * Shrinking: from a failing run, find a smaller scenario that still fails the same way, and write it
 * as a scenario file that reproduces the failure by itself (`npm run sim -- --scenario OUT.yaml`; the
 * file carries its seed). No anchor system shrinks failing runs; this one does, by delta debugging
 * (Zeller's ddmin) over the things a person has to read:
 *
 * 1. expectations that did not fail are dropped;
 * 2. timeline steps are dropped, in halves, then quarters, down to single steps (ddmin);
 * 3. repeated steps repeat fewer times; the run gets shorter (binary search on its duration);
 * 4. the workload gets fewer clients and keys; settings fall back to defaults; the network to a quiet
 *    one; the liveness phase is dropped when it is not what fails; the cluster gets fewer nodes;
 *
 * and the passes repeat until none makes progress or the run budget is spent. "The same way" means one
 * of the original failures again: the same expectation or step (tracked through every rewrite), or the
 * same safety property (Election Safety, Linearizability, Liveness, ...).
 *
 * A failing swarm seed is first turned into a scenario: the seed's world (cluster size, network,
 * clocks, disks, workload, settings) becomes the scenario's, and the fault scheduler's every action,
 * recorded while the seed runs again, becomes its timeline. Every candidate is written out and parsed
 * back before it runs, so what is tested is exactly what the file says.
 */
import { performance } from "node:perf_hooks";
import { SHRINK_RUNS_MAX_DEFAULT } from "./arguments.ts";
import { drawKnobs } from "./swarm.ts";
import { Random } from "./random.ts";
import { runSeed, type FaultAction } from "./run.ts";
import {
  formatDuration,
  NETWORK_DEFAULTS,
  parseScenario,
  runScenario,
  stepTimes,
  WORKLOAD_DEFAULTS,
  writeScenario,
  type Action,
  type Expectation,
  type FailureSignature,
  type NodeSelector,
  type Scenario,
  type ScenarioRunResult,
  type Step,
} from "./scenario/index.ts";

export interface ShrinkOptions {
  readonly seed: number;
  /** The name the written file will have, for the messages of the runs (default: "<original>-shrunk.yaml"). */
  readonly file?: string;
  /** Runs the search may make (each candidate is one run). */
  readonly runsMax?: number;
  /** Progress lines, for stderr. */
  readonly log?: (line: string) => void;
}

export interface ShrinkResult {
  readonly original: Scenario;
  readonly shrunk: Scenario;
  /** The shrunk scenario as a file, with a header saying where it came from and how it fails. */
  readonly text: string;
  readonly runs: number;
  /** The shrunk scenario's run: it fails with one of the original failures. */
  readonly result: ScenarioRunResult;
  readonly originalSize: ScenarioSize;
  readonly shrunkSize: ScenarioSize;
}

export interface ScenarioSize {
  /** Step occurrences: a step repeated five times counts five. */
  readonly steps: number;
  readonly expectations: number;
  readonly durationMs: number;
  readonly clients: number;
  readonly nodes: number;
  readonly settings: number;
}

export class ShrinkError extends Error {
  override name = "ShrinkError";
}

/** A scenario with, for each expectation and step, its index in the scenario the search began with. */
interface Candidate {
  readonly scenario: Scenario;
  readonly expectationOrigins: readonly number[];
  readonly stepOrigins: readonly number[];
}

export function scenarioSize(scenario: Scenario): ScenarioSize {
  return {
    steps: scenario.timeline.reduce((sum, step) => sum + stepTimes(step).length, 0),
    expectations: scenario.expectations.length,
    durationMs: scenario.durationMs,
    clients: scenario.workload.clients,
    nodes: scenario.nodes,
    settings: scenario.settings.length,
  };
}

/** Shrinks a scenario that fails at `options.seed`. Throws a ShrinkError when it passes. */
export function shrinkScenario(scenario: Scenario, options: ShrinkOptions): ShrinkResult {
  const search = new ShrinkSearch(scenario, options);
  return search.run();
}

class ShrinkSearch {
  readonly #original: Scenario;
  readonly #seed: number;
  readonly #runsMax: number;
  readonly #log: (line: string) => void;
  #runs = 0;
  #targets: FailureSignature[] = [];
  #best: Candidate;
  #bestResult: ScenarioRunResult | undefined;

  constructor(scenario: Scenario, options: ShrinkOptions) {
    this.#original = scenario;
    this.#seed = options.seed;
    this.#runsMax = options.runsMax ?? SHRINK_RUNS_MAX_DEFAULT;
    this.#log = options.log ?? (() => {});
    const file = options.file ?? scenario.file.replace(/(\.ya?ml)?$/, "-shrunk.yaml");
    this.#best = {
      scenario: {
        ...scenario,
        name: scenario.name.endsWith("-shrunk") ? scenario.name : `${scenario.name}-shrunk`,
        description: undefined,
        source: `shrunk from ${scenario.file} at seed ${options.seed}`,
        seed: options.seed,
        file,
      },
      expectationOrigins: scenario.expectations.map((_, i) => i),
      stepOrigins: scenario.timeline.map((_, i) => i),
    };
  }

  run(): ShrinkResult {
    const startMs = performance.now();
    const first = this.#execute(this.#best);
    if (first === undefined || first.ok) {
      throw new ShrinkError(`Cannot shrink scenario ${this.#original.name} at seed ${this.#seed}: it passes, so there is no failure to keep`);
    }
    this.#targets = first.failures.map((failure) => this.#origin(failure, this.#best));
    this.#bestResult = first;
    this.#log(`shrink: seed ${this.#seed} fails with ${first.violations[0]!.split("\n")[0]!.slice(0, 200)}`);
    let progress = true;
    for (let pass = 1; progress && this.#budgetLeft(); pass++) {
      progress = false;
      for (const reduce of [
        () => this.#dropExpectations(),
        () => this.#dropSteps(),
        () => this.#fewerRepetitions(),
        () => this.#shorten(),
        () => this.#simplify(),
      ]) {
        if (!this.#budgetLeft()) break;
        if (reduce()) progress = true;
      }
      this.#log(`shrink: pass ${pass} done after ${this.#runs} runs: ${describeSize(scenarioSize(this.#best.scenario))}`);
    }
    const shrunk = this.#best.scenario;
    // The file must fail on its own, exactly as written: parse it back and run it as the command line does.
    const draft = this.#fileText(shrunk, this.#bestResult!);
    const reparsed = parseScenario(draft, shrunk.file);
    if (!reparsed.ok) throw new ShrinkError(`Cannot write the shrunk scenario: it does not parse back: ${reparsed.issues[0]!.message}`);
    const check = runScenario(reparsed.value, { seed: this.#seed });
    this.#runs++;
    if (check.ok) throw new ShrinkError(`Cannot write the shrunk scenario: run on its own at seed ${this.#seed} it passes`);
    // The header quotes the file's own failure (same number of lines, so its line numbers hold).
    const text = this.#fileText(shrunk, check);
    this.#log(`shrink: ${this.#runs} runs in ${((performance.now() - startMs) / 1000).toFixed(1)} s`);
    return {
      original: this.#original,
      shrunk: reparsed.value,
      text,
      runs: this.#runs,
      result: check,
      originalSize: scenarioSize(this.#original),
      shrunkSize: scenarioSize(reparsed.value),
    };
  }

  #fileText(shrunk: Scenario, result: ScenarioRunResult): string {
    const before = describeSize(scenarioSize(this.#original));
    const after = describeSize(scenarioSize(shrunk));
    const violation = result.violations[0]!.split("\n")[0]!;
    return writeScenario(shrunk, [
      `Shrunk from ${this.#original.file} (${this.#original.name}) at seed ${this.#seed} in ${this.#runs} runs:`,
      `  before: ${before}`,
      `  after:  ${after}`,
      `It fails on its own: npm run sim -- --scenario <this file> (the seed is in the file)`,
      `Failure: ${violation.length > 400 ? `${violation.slice(0, 400)}...` : violation}`,
    ]);
  }

  #budgetLeft(): boolean {
    return this.#runs < this.#runsMax;
  }

  #origin(failure: FailureSignature, candidate: Candidate): FailureSignature {
    if (failure.kind === "expectation") return { kind: "expectation", index: candidate.expectationOrigins[failure.index]! };
    if (failure.kind === "step") return { kind: "step", index: candidate.stepOrigins[failure.index]! };
    return failure;
  }

  /** Runs the candidate as its file says; undefined when it does not parse (an invalid reduction). */
  #execute(candidate: Candidate): ScenarioRunResult | undefined {
    const parsed = parseScenario(writeScenario(candidate.scenario), candidate.scenario.file);
    if (!parsed.ok) return undefined;
    this.#runs++;
    return runScenario(parsed.value, { seed: this.#seed, traceMessages: false });
  }

  /** Whether the candidate fails with one of the original failures; if so it becomes the best. */
  #try(candidate: Candidate): boolean {
    if (!this.#budgetLeft()) return false;
    const result = this.#execute(candidate);
    if (result === undefined || result.ok) return false;
    const same = result.failures.some((failure) => {
      const origin = this.#origin(failure, candidate);
      return this.#targets.some((target) => sameFailure(target, origin));
    });
    if (!same) return false;
    this.#best = candidate;
    this.#bestResult = result;
    return true;
  }

  #with(change: Partial<Scenario>, origins: Partial<Omit<Candidate, "scenario">> = {}): Candidate {
    return {
      scenario: { ...this.#best.scenario, ...change },
      expectationOrigins: origins.expectationOrigins ?? this.#best.expectationOrigins,
      stepOrigins: origins.stepOrigins ?? this.#best.stepOrigins,
    };
  }

  // -----------------------------------------------------------------------------------------------
  // Reductions; each returns whether it made the best candidate smaller.

  #dropExpectations(): boolean {
    const best = this.#best;
    const failing = new Set(this.#targets.filter((t) => t.kind === "expectation").map((t) => (t as { index: number }).index));
    const keep = best.scenario.expectations.map((_, i) => failing.has(best.expectationOrigins[i]!));
    if (keep.every((k) => k)) return false;
    const kept = (flags: boolean[]): Candidate =>
      this.#with(
        { expectations: best.scenario.expectations.filter((_, i) => flags[i]) },
        { expectationOrigins: best.expectationOrigins.filter((_, i) => flags[i]) },
      );
    if (this.#try(kept(keep))) return true;
    // Some passing expectation matters (its probes shape the load): remove them one at a time instead.
    return this.#ddmin(
      best.scenario.expectations.length,
      (flags) => kept(flags),
      (i) => !failing.has(best.expectationOrigins[i]!),
    );
  }

  #dropSteps(): boolean {
    const best = this.#best;
    return this.#ddmin(
      best.scenario.timeline.length,
      (flags) =>
        this.#with(
          { timeline: best.scenario.timeline.filter((_, i) => flags[i]) },
          { stepOrigins: best.stepOrigins.filter((_, i) => flags[i]) },
        ),
      () => true,
    );
  }

  /**
   * ddmin over `count` items: tries removing chunks (halves, then quarters, ... then single items) of
   * the items `removable` allows, keeping every removal after which the run still fails. `candidateOf`
   * builds a candidate from the items still kept, always relative to the lists ddmin started from.
   */
  #ddmin(count: number, candidateOf: (keep: boolean[]) => Candidate, removable: (index: number) => boolean): boolean {
    const keep = Array.from({ length: count }, () => true);
    let removedAny = false;
    let chunks = 2;
    while (this.#budgetLeft()) {
      const indexes = keep.map((kept, i) => (kept && removable(i) ? i : -1)).filter((i) => i >= 0);
      if (indexes.length === 0) break;
      const size = Math.max(1, Math.ceil(indexes.length / chunks));
      let removed = false;
      for (let start = 0; start < indexes.length && this.#budgetLeft(); start += size) {
        const chunk = indexes.slice(start, start + size);
        const trial = [...keep];
        for (const i of chunk) trial[i] = false;
        if (this.#try(candidateOf(trial))) {
          for (const i of chunk) keep[i] = false;
          removed = true;
          removedAny = true;
        }
      }
      if (removed) {
        chunks = Math.max(2, chunks - 1);
        continue;
      }
      if (size === 1) break;
      chunks = Math.min(indexes.length, chunks * 2);
    }
    return removedAny;
  }

  #fewerRepetitions(): boolean {
    let progress = false;
    const timeline = this.#best.scenario.timeline;
    for (let i = 0; i < timeline.length && this.#budgetLeft(); i++) {
      const step = this.#best.scenario.timeline[i]!;
      if (step.everyMs === undefined || step.untilMs === undefined) continue;
      const times = stepTimes(step).length;
      // Once, then half as many times.
      for (const count of [1, Math.floor(times / 2)]) {
        if (count < 1 || count >= times) continue;
        const replaced: Step = count === 1 ? { ...step, everyMs: undefined, untilMs: undefined } : { ...step, untilMs: step.atMs + count * step.everyMs };
        const next = [...this.#best.scenario.timeline];
        next[i] = replaced;
        if (this.#try(this.#with({ timeline: next }))) {
          progress = true;
          break;
        }
      }
    }
    return progress;
  }

  /** Binary search for the shortest duration that still fails; windows that ended at the end move with it. */
  #shorten(): boolean {
    const scenario = this.#best.scenario;
    const lastStepMs = Math.max(0, ...scenario.timeline.flatMap((step) => stepTimes(step)));
    const lastWindowMs = Math.max(
      0,
      ...scenario.expectations.filter((e) => e.window.untilMs !== scenario.durationMs).map((e) => e.window.untilMs),
    );
    let low = Math.max(1_000, Math.ceil(lastStepMs) + 1, lastWindowMs);
    let high = scenario.durationMs;
    let progress = false;
    while (high - low > Math.max(500, high / 20) && this.#budgetLeft()) {
      const middle = Math.round((low + high) / 2 / 100) * 100;
      if (middle <= low || middle >= high) break;
      if (this.#try(this.#withDuration(middle))) {
        high = middle;
        progress = true;
      } else {
        low = middle;
      }
    }
    return progress;
  }

  #withDuration(durationMs: number): Candidate {
    const scenario = this.#best.scenario;
    const old = scenario.durationMs;
    const expectations: Expectation[] = scenario.expectations.map((e) => ({
      ...e,
      window: {
        fromMs: e.window.fromMs === old ? durationMs : Math.min(e.window.fromMs, durationMs),
        untilMs: e.window.untilMs === old ? durationMs : e.window.untilMs,
      },
    }));
    const timeline = scenario.timeline.map((step) =>
      step.untilMs !== undefined && step.untilMs > durationMs ? { ...step, untilMs: durationMs } : step,
    );
    return this.#with({ durationMs, expectations, timeline });
  }

  #simplify(): boolean {
    const scenario = this.#best.scenario;
    const trials: Partial<Scenario>[] = [];
    const workload = scenario.workload;
    if (workload.clients > 0) trials.push({ workload: { ...workload, clients: 0 } });
    if (workload.clients > 1) trials.push({ workload: { ...workload, clients: Math.floor(workload.clients / 2) } });
    if (workload.clients > 1) trials.push({ workload: { ...workload, clients: workload.clients - 1 } });
    if (workload.keys > 1 && workload.clients > 0) trials.push({ workload: { ...workload, keys: 1 } });
    scenario.settings.forEach((_, i) => trials.push({ settings: scenario.settings.filter((__, j) => j !== i) }));
    if (JSON.stringify(scenario.network) !== JSON.stringify(NETWORK_DEFAULTS)) trials.push({ network: NETWORK_DEFAULTS });
    if (scenario.clockDriftMax !== 0) trials.push({ clockDriftMax: 0 });
    if (scenario.tornWrites) trials.push({ tornWrites: false });
    if (scenario.liveness && !this.#targets.some((t) => t.kind === "property" && t.name === "Liveness")) trials.push({ liveness: false });
    for (let nodes = 1; nodes < scenario.nodes; nodes++) trials.push({ nodes });
    let progress = false;
    for (const trial of trials) {
      if (!this.#budgetLeft()) break;
      // A trial may no longer fit after an earlier one was kept (fewer clients than it sets): rebase it.
      const rebased = rebase(trial, this.#best.scenario);
      if (rebased === undefined) continue;
      if (this.#try(this.#with(rebased))) progress = true;
    }
    return progress;
  }
}

/** Re-applies a workload trial to the current workload; drops trials that no longer make it smaller. */
function rebase(trial: Partial<Scenario>, current: Scenario): Partial<Scenario> | undefined {
  if (trial.workload !== undefined) {
    const w = current.workload;
    const clients = Math.min(trial.workload.clients, w.clients);
    const keys = clients === 0 ? w.keys : Math.min(trial.workload.keys, w.keys);
    if (clients === w.clients && keys === w.keys) return undefined;
    return { workload: { ...w, clients, keys } };
  }
  if (trial.nodes !== undefined && trial.nodes >= current.nodes) return undefined;
  if (trial.settings !== undefined && trial.settings.length >= current.settings.length) {
    return undefined;
  }
  return trial;
}

function sameFailure(a: FailureSignature, b: FailureSignature): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "property") return a.name === (b as { name: string }).name;
  return a.index === (b as { index: number }).index;
}

export function describeSize(size: ScenarioSize): string {
  return (
    `${size.steps} step${size.steps === 1 ? "" : "s"}, ${size.expectations} expectation${size.expectations === 1 ? "" : "s"}, ` +
    `${formatDuration(size.durationMs)}, ${size.clients} client${size.clients === 1 ? "" : "s"}, ${size.nodes} node${size.nodes === 1 ? "" : "s"}, ` +
    `${size.settings} setting${size.settings === 1 ? "" : "s"}`
  );
}

// -------------------------------------------------------------------------------------------------
// Swarm seeds as scenarios

export interface SwarmScenarioOptions {
  readonly seed: number;
  readonly nodeCount?: number;
  readonly durationMs: number;
}

/**
 * The scenario a swarm seed plays: its world as the scenario's settings, network and workload, and the
 * fault scheduler's actions (recorded while the seed runs) as the timeline.
 */
export function swarmScenario(options: SwarmScenarioOptions): { scenario: Scenario; result: ReturnType<typeof runSeed> } {
  const knobs = drawKnobs(new Random(options.seed).fork("swarm"), options.nodeCount);
  const actions: { timeMs: number; action: FaultAction }[] = [];
  const result = runSeed({
    seed: options.seed,
    nodeCount: options.nodeCount,
    durationMs: options.durationMs,
    faults: "swarm",
    traceMessages: false,
    onFaultAction: (timeMs, action) => actions.push({ timeMs, action }),
  });
  const timeline = actionsToTimeline(actions);
  const extra = knobs as unknown as { snapshotIntervalEntries?: number; logEntriesMax?: number; connectionResetOnCrash?: boolean };
  const settings = [
    ...(extra.snapshotIntervalEntries !== undefined ? [{ name: "pgraft.snapshot_interval", value: String(extra.snapshotIntervalEntries), line: 0 }] : []),
    ...(extra.logEntriesMax !== undefined ? [{ name: "pgraft.max_log_entries", value: String(extra.logEntriesMax), line: 0 }] : []),
    ...(knobs.entriesPerAppendMax !== 100 ? [{ name: "pgraft.batch_size", value: String(knobs.entriesPerAppendMax), line: 0 }] : []),
    // Worlds draw PreVote and CheckQuorum too; only "off" differs from the scenario defaults.
    ...(knobs.preVote ? [] : [{ name: "pgraft.pre_vote", value: "off", line: 0 }]),
    ...(knobs.checkQuorum ? [] : [{ name: "pgraft.check_quorum", value: "off", line: 0 }]),
  ];
  const file = `swarm-seed-${options.seed}.yaml`;
  const draft: Scenario = {
    name: `swarm-seed-${options.seed}`,
    description: `The world and fault schedule of swarm seed ${options.seed} (npm run sim -- --seed ${options.seed} --faults swarm${options.nodeCount ? ` --nodes ${options.nodeCount}` : ""} --duration ${formatDuration(options.durationMs)})`,
    source: undefined,
    seed: options.seed,
    nodes: knobs.nodeCount,
    durationMs: options.durationMs,
    settings,
    // Computed from the settings when the written file is parsed back, just below.
    timing: undefined as never,
    network: { ...NETWORK_DEFAULTS, ...knobs.network, distribution: knobs.network.distribution ?? "uniform" },
    connectionResets: extra.connectionResetOnCrash ?? true,
    clockDriftMax: knobs.driftMax,
    diskFsyncMs: 0,
    tornWrites: knobs.tornWrites,
    workload: { ...WORKLOAD_DEFAULTS, ...knobs.workload },
    liveness: true,
    timeline,
    expectations: [],
    file,
  };
  const parsed = parseScenario(writeScenario(draft), file);
  if (!parsed.ok) throw new ShrinkError(`Cannot turn swarm seed ${options.seed} into a scenario: ${parsed.issues[0]!.message}`);
  return { scenario: parsed.value, result };
}

function actionsToTimeline(actions: readonly { timeMs: number; action: FaultAction }[]): Step[] {
  const steps: Step[] = [];
  const node = (id: unknown): NodeSelector => ({ kind: "node", id: id as number });
  const set = (ids: unknown): NodeSelector[] => (Array.isArray(ids) ? ids : [ids]).map(node);
  const push = (timeMs: number, action: Action): void => {
    steps.push({ atMs: Number(timeMs.toFixed(3)), everyMs: undefined, untilMs: undefined, id: undefined, bind: undefined, why: undefined, action, line: 0 });
  };
  for (const { timeMs, action } of actions) {
    const [a, b, c] = action.args;
    switch (action.method) {
      case "crash":
        push(timeMs, { verb: "crash", nodes: set(a), duringWrite: (b as { duringWrite?: boolean } | undefined)?.duringWrite === true });
        break;
      case "restart":
      case "pause":
      case "resume":
      case "isolate":
        push(timeMs, { verb: action.method, nodes: set(a) });
        break;
      case "partition":
        push(timeMs, { verb: "partition", groups: [set(a), set(b)] });
        break;
      case "cutOneWay":
        push(timeMs, { verb: "cut", from: set(a), to: set(b) });
        break;
      case "setLink": {
        const conditions = c as { latencyMs: number; jitterMs: number; lossRate: number; duplicateRate: number; distribution?: "uniform" | "normal" | "long-tail" };
        push(timeMs, {
          verb: "link",
          from: set(a),
          to: set(b),
          bothWays: false,
          conditions: { ...conditions, distribution: conditions.distribution ?? "uniform" },
        });
        break;
      }
      case "heal":
        push(timeMs, { verb: "heal" });
        break;
      case "corruptDisk":
        push(timeMs, { verb: "corrupt_disk", nodes: set(a) });
        break;
      case "addHost":
        break; // The add_node step starts the new node itself, with the membership change that follows.
      case "changeMembership": {
        const change = b as { type: "add" | "remove"; nodeId: number };
        if (change.type === "add") push(timeMs, { verb: "add_node", node: change.nodeId, via: node(a) });
        else push(timeMs, { verb: "remove_node", node: node(change.nodeId), via: node(a) });
        break;
      }
      case "transferLeadership":
        push(timeMs, { verb: "transfer_leadership", to: node(b), via: node(a) });
        break;
      case "setDiskLatency":
        push(timeMs, { verb: "slow_disk", nodes: set(a), fsyncMs: b as number });
        break;
      case "failDisk":
        push(timeMs, { verb: "fail_disk", nodes: set(a) });
        break;
      case "repairDisk":
        push(timeMs, { verb: "repair_disk", nodes: set(a) });
        break;
      case "setClockRate":
        push(timeMs, { verb: "clock_drift", nodes: set(a), rate: b as number });
        break;
    }
  }
  return steps;
}

