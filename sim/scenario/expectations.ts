/**
 * Checks a scenario's expectations while it runs. Each expectation gets an evaluator that sees the
 * samples taken inside its window (every 10 ms of simulated time, and exactly at the window's edges)
 * or sends the probes its check needs, and after the run says what went wrong, if anything, with the
 * time it happened. Everything checked is something an operator can observe on real nodes: who leads
 * (pgraft_is_leader, pgraft_get_leader), the term (pgraft_get_term), applied indexes and membership
 * (pgraft_log_get_stats, pgraft_get_nodes), and what client writes and reads return.
 */
import type { NodeId } from "../../src/core/types.ts";
import { NotLeaderError } from "../../src/errors.ts";
import { describeNodeSet, describeSelector, nodeName, type Check, type Expectation } from "./scenario.ts";
import type { ScenarioContext } from "./scenario-context.ts";
import { describeProbe, formatSeconds, type Probe, type Prober } from "./probes.ts";

/** How often the cluster is sampled for leader, term and catch-up checks. */
export const SAMPLE_INTERVAL_MS = 10;

/** What an operator would see at one moment. */
export interface Sample {
  readonly timeMs: number;
  /** The node leading with a live quorum (pgraft_is_leader() true), if any. */
  readonly leader: NodeId | undefined;
  /** Running nodes in the leader role, with or without a quorum. */
  readonly leaderRoles: readonly { readonly id: NodeId; readonly term: number }[];
  /** The term of every running node. */
  readonly terms: ReadonlyMap<NodeId, number>;
  /** The highest term any node has reported so far in the run. */
  readonly termMax: number;
}

interface Evaluator {
  /** Called once when the window opens, before the sample at that moment. */
  open?(): void;
  /** Called for every sample taken inside the window. */
  sample?(sample: Sample): void;
  /** After the run: what went wrong, or undefined. */
  verdict(): string | undefined;
}

export class ExpectationMonitor {
  readonly #context: ScenarioContext;
  readonly #prober: Prober;
  readonly #evaluators: Evaluator[];
  #termMax = 0;

  constructor(context: ScenarioContext, prober: Prober) {
    this.#context = context;
    this.#prober = prober;
    this.#evaluators = context.scenario.expectations.map((expectation) => this.#evaluator(expectation));
  }

  /** Schedules window openings and samples. Call after the timeline is scheduled, so a step runs before a sample at the same moment. */
  schedule(): void {
    const scenario = this.#context.scenario;
    const clock = this.#context.cluster.clock;
    const times = new Set<number>();
    for (let t = 0; t <= scenario.durationMs; t += SAMPLE_INTERVAL_MS) times.add(t);
    for (const expectation of scenario.expectations) {
      times.add(expectation.window.fromMs);
      times.add(expectation.window.untilMs);
    }
    const sorted = [...times].sort((a, b) => a - b);
    for (const timeMs of sorted) {
      clock.schedule(timeMs, () => this.#sampleAt(timeMs));
    }
  }

  /** Every expectation's verdict; failures name the file, line, check and window. */
  verdicts(): { index: number; message: string }[] {
    const failures: { index: number; message: string }[] = [];
    this.#evaluators.forEach((evaluator, index) => {
      const problem = evaluator.verdict();
      if (problem === undefined) return;
      const expectation = this.#context.scenario.expectations[index]!;
      failures.push({
        index,
        message: `${this.#context.where(expectation.line)} "${describeCheck(expectation.check)}" ${describeWindow(expectation)}: ${problem}`,
      });
    });
    return failures;
  }

  #sampleAt(timeMs: number): void {
    const sample = this.#takeSample(timeMs);
    this.#context.scenario.expectations.forEach((expectation, index) => {
      const window = expectation.window;
      if (timeMs < window.fromMs || timeMs > window.untilMs) return;
      const evaluator = this.#evaluators[index]!;
      if (timeMs === window.fromMs) evaluator.open?.();
      evaluator.sample?.(sample);
    });
  }

  #takeSample(timeMs: number): Sample {
    const cluster = this.#context.cluster;
    const terms = new Map<NodeId, number>();
    const leaderRoles: { id: NodeId; term: number }[] = [];
    for (const id of cluster.liveIds()) {
      const raft = cluster.node(id)?.raft;
      if (!raft) continue;
      terms.set(id, raft.term);
      if (raft.role === "leader") leaderRoles.push({ id, term: raft.term });
      this.#termMax = Math.max(this.#termMax, raft.term);
    }
    return { timeMs, leader: cluster.leader(), leaderRoles, terms, termMax: this.#termMax };
  }

  #evaluator(expectation: Expectation): Evaluator {
    const check = expectation.check;
    switch (check.check) {
      case "leader":
        return leaderEvaluator(this.#context, check);
      case "elections":
        return electionsEvaluator(check);
      case "term":
        return termEvaluator();
      case "writes":
      case "reads":
        return probeEvaluator(this.#context, this.#prober, expectation, check);
      case "acknowledged_writes":
        return acknowledgedEvaluator(this.#context, this.#prober);
      case "request":
        return requestEvaluator(this.#context, expectation, check);
      case "caught_up":
        return caughtUpEvaluator(this.#context, check);
      case "members":
        return membersEvaluator(this.#context, check);
    }
  }
}

// -------------------------------------------------------------------------------------------------
// Leader, elections, term

/**
 * Who a check names. The simulator's ScenarioContext and the chaos runner's context both resolve
 * selectors, so the sample-driven evaluators below (leader, elections, term) serve both runners.
 */
export type SelectorResolver = Pick<ScenarioContext, "resolveOne" | "resolveSet">;

/** An evaluator fed with samples of the cluster, shared by the simulator and the chaos runner. */
export interface SampleEvaluator {
  sample(sample: Sample): void;
  verdict(): string | undefined;
}

export function leaderEvaluator(context: SelectorResolver, check: Check & { check: "leader" }): SampleEvaluator {
  let satisfied: number | undefined;
  let problem: string | undefined;
  let last: Sample | undefined;
  let stableLeader: NodeId | undefined;
  /** Why the last leader seen did not count (is/not). */
  let mismatch: string | undefined;
  const acceptable = (leader: NodeId): string | undefined => {
    if (check.is !== undefined) {
      const wanted = context.resolveOne(check.is);
      if (typeof wanted === "string") return `cannot tell who should lead: ${wanted}`;
      if (wanted !== leader) return `${nodeName(leader)} led, not ${describeSelector(check.is)} (${nodeName(wanted)})`;
    }
    if (check.not !== undefined) {
      const unwanted = context.resolveSet(check.not);
      if (typeof unwanted === "string") return `cannot tell who should not lead: ${unwanted}`;
      if (unwanted.includes(leader)) return `${nodeName(leader)} led, which ${describeNodeSet(check.not)} excludes`;
    }
    return undefined;
  };
  return {
    sample(sample) {
      last = sample;
      if (problem !== undefined) return;
      switch (check.state) {
        case "elected": {
          if (satisfied !== undefined || sample.leader === undefined) return;
          mismatch = acceptable(sample.leader);
          if (mismatch === undefined) satisfied = sample.timeMs;
          return;
        }
        case "none": {
          const leading = sample.leaderRoles[0];
          if (leading !== undefined) problem = `at ${formatSeconds(sample.timeMs)} ${nodeName(leading.id)} was still leader of term ${leading.term}`;
          return;
        }
        case "stable": {
          if (sample.leader === undefined) {
            problem = `at ${formatSeconds(sample.timeMs)} no node led with a live quorum (${describeSample(sample)})`;
            return;
          }
          if (stableLeader === undefined) {
            stableLeader = sample.leader;
            const wrong = acceptable(sample.leader);
            if (wrong !== undefined) problem = `at ${formatSeconds(sample.timeMs)} ${wrong}`;
          } else if (sample.leader !== stableLeader) {
            problem = `at ${formatSeconds(sample.timeMs)} the leader changed from ${nodeName(stableLeader)} to ${nodeName(sample.leader)}`;
          }
          return;
        }
      }
    },
    verdict() {
      if (last === undefined) return "the window was never sampled";
      if (problem !== undefined) return problem;
      if (check.state === "elected" && satisfied === undefined) {
        return mismatch !== undefined
          ? `no acceptable leader: ${mismatch}`
          : `no node led with a live quorum; at ${formatSeconds(last.timeMs)}: ${describeSample(last)}`;
      }
      return undefined;
    },
  };
}

export function electionsEvaluator(check: Check & { check: "elections" }): SampleEvaluator {
  let first: Sample | undefined;
  let last: Sample | undefined;
  return {
    sample(sample) {
      first ??= sample;
      last = sample;
    },
    verdict() {
      if (first === undefined || last === undefined) return "the window was never sampled";
      const elections = last.termMax - first.termMax;
      const span = `the term went from ${first.termMax} to ${last.termMax}: ${elections} election${elections === 1 ? "" : "s"}`;
      if (check.max !== undefined && elections > check.max) return `${span}, expected at most ${check.max}`;
      if (check.min !== undefined && elections < check.min) return `${span}, expected at least ${check.min}`;
      return undefined;
    },
  };
}

export function termEvaluator(): SampleEvaluator {
  let term: number | undefined;
  let problem: string | undefined;
  let samples = 0;
  return {
    sample(sample) {
      samples++;
      if (problem !== undefined) return;
      const terms = [...sample.terms.values()];
      if (terms.length === 0) return;
      term ??= Math.max(...terms);
      for (const [id, nodeTerm] of sample.terms) {
        if (nodeTerm !== term) {
          problem = `at ${formatSeconds(sample.timeMs)} ${nodeName(id)} was at term ${nodeTerm}, expected ${term} throughout (${describeSample(sample)})`;
          return;
        }
      }
    },
    verdict() {
      if (samples === 0) return "the window was never sampled";
      return problem;
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Probes

function probeEvaluator(
  context: ScenarioContext,
  prober: Prober,
  expectation: Expectation,
  check: Check & { check: "writes" | "reads" },
): Evaluator {
  const probes: Probe[] = [];
  const problems: string[] = [];
  const window = expectation.window;
  const send = (): void => {
    let targets: (NodeId | "leader")[];
    if (check.on !== undefined) {
      const resolved = context.resolveSet(check.on);
      if (typeof resolved === "string") {
        problems.push(`at ${formatSeconds(context.nowMs)} the probe had no target: ${resolved}`);
        return;
      }
      targets = resolved;
    } else {
      targets = check.outcome === "succeed" ? ["leader"] : context.cluster.liveIds();
    }
    for (const target of targets) probes.push(check.check === "writes" ? prober.write(target) : prober.read(target));
  };
  return {
    open() {
      const clock = context.cluster.clock;
      send();
      for (let t = window.fromMs + check.everyMs; t < window.untilMs; t += check.everyMs) {
        clock.schedule(t - window.fromMs, send);
      }
    },
    verdict() {
      if (problems.length > 0) return problems[0];
      const kind = check.check === "writes" ? "write" : "read";
      if (probes.length === 0) return `no ${kind} probe was sent (no node was running)`;
      if (check.outcome === "succeed") {
        const failed = probes.filter((probe) => probe.status !== "ok");
        const ratio = (probes.length - failed.length) / probes.length;
        if (ratio >= check.ratioMin && failed.length < probes.length) return undefined;
        return `${failed.length} of ${probes.length} ${kind} probes failed (${(ratio * 100).toFixed(1)}% succeeded, expected ${(check.ratioMin * 100).toFixed(0)}%); first: ${describeProbe(failed[0]!)}`;
      }
      const wrong = probes.filter((probe) => !(probe.status === "refused" && probe.code === "no_quorum" && probe.endMs! - probe.startMs <= check.fastMs));
      if (wrong.length === 0) return undefined;
      return `${wrong.length} of ${probes.length} ${kind} probes were not refused as read-only (no_quorum) within ${check.fastMs} ms; first: ${describeProbe(wrong[0]!)}`;
    },
  };
}

function acknowledgedEvaluator(context: ScenarioContext, prober: Prober): Evaluator {
  let checks: { key: string; value: string; atMs: number; probe: Probe }[] | undefined;
  let openedMs = 0;
  return {
    open() {
      openedMs = context.nowMs;
      checks = prober.acknowledged.map((write) => ({ ...write, probe: prober.read("leader", write.key) }));
    },
    verdict() {
      if (checks === undefined) return "the check never ran";
      if (checks.length === 0) {
        return `no probe write was acknowledged before ${formatSeconds(openedMs)}, so there is nothing to check: add a "writes: succeed" window before it`;
      }
      for (const { key, value, atMs, probe } of checks) {
        if (probe.status !== "ok") return `the read-back of ${key} (acknowledged at ${formatSeconds(atMs)}) failed: ${describeProbe(probe)}`;
        if (probe.readValue !== value) {
          return `${key}=${value} was acknowledged at ${formatSeconds(atMs)} but read back as ${JSON.stringify(probe.readValue)}: an acknowledged write is lost`;
        }
      }
      return undefined;
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Requests, catch-up, membership

function requestEvaluator(context: ScenarioContext, expectation: Expectation, check: Check & { check: "request" }): Evaluator {
  return {
    verdict() {
      const record = context.requests.get(check.id);
      if (record === undefined) return `the step with id "${check.id}" never ran`;
      if (record.unsent !== undefined) return record.unsent;
      const reply = record.reply;
      if (reply === undefined || reply.atMs > expectation.window.untilMs) {
        return `no answer by ${formatSeconds(expectation.window.untilMs)} to the request sent at ${formatSeconds(record.sentMs)} via ${nodeName(record.via!)}`;
      }
      if (check.result === "accepted") {
        return reply.ok ? undefined : `it was rejected at ${formatSeconds(reply.atMs)}: ${reply.error.code}: ${reply.error.message}`;
      }
      if (reply.ok) return `it was accepted at ${formatSeconds(reply.atMs)}, expected a refusal`;
      const error = reply.error;
      if (check.error !== undefined && error.code !== check.error) return `it was rejected with ${error.code}, expected ${check.error}: ${error.message}`;
      if (check.namesLeader === true) {
        if (!(error instanceof NotLeaderError) || error.leaderId === 0) return `the refusal names no leader: ${error.code}: ${error.message}`;
        if (record.leaderAtReply !== undefined && error.leaderId !== record.leaderAtReply) {
          return `the refusal names node ${error.leaderId}, but ${nodeName(record.leaderAtReply)} led: ${error.message}`;
        }
        if (record.leaderAtReply === undefined) return `the refusal names node ${error.leaderId}, but no node led when it came back`;
      }
      return undefined;
    },
  };
}

function caughtUpEvaluator(context: ScenarioContext, check: Check & { check: "caught_up" }): Evaluator {
  let node: NodeId | string | undefined;
  let targetIndex: number | undefined;
  let caughtMs: number | undefined;
  let snapshot = false;
  let lastSeen = "";
  return {
    open() {
      const cluster = context.cluster;
      node = context.resolveOne(check.node);
      const leader = cluster.leader();
      const commits = cluster.liveIds().map((id) => cluster.node(id)?.status().commit ?? 0);
      targetIndex = leader !== undefined ? cluster.node(leader)!.status().commit : Math.max(0, ...commits);
    },
    sample(sample) {
      if (caughtMs !== undefined || targetIndex === undefined) return;
      if (typeof node !== "number") {
        node = context.resolveOne(check.node);
        if (typeof node !== "number") return;
      }
      const status = context.cluster.state(node) === "up" ? context.cluster.node(node)?.status() : undefined;
      lastSeen = status ? `applied ${status.applied}, log ${status.firstIndex}..${status.lastIndex}` : `${context.cluster.state(node)}`;
      if (status !== undefined && status.applied >= targetIndex) {
        caughtMs = sample.timeMs;
        snapshot = context.controls.snapshotReceived(node);
      }
    },
    verdict() {
      if (typeof node === "string") return `cannot tell which node: ${node}`;
      if (node === undefined || targetIndex === undefined) return "the window was never sampled";
      if (caughtMs === undefined) return `${nodeName(node)} never applied index ${targetIndex} (the commit index when the window opened); last seen: ${lastSeen}`;
      if (check.bySnapshot && !snapshot) return `${nodeName(node)} caught up at ${formatSeconds(caughtMs)} without a snapshot from the leader`;
      return undefined;
    },
  };
}

function membersEvaluator(context: ScenarioContext, check: Check & { check: "members" }): Evaluator {
  let found: string | undefined = "the window was never sampled";
  return {
    sample(sample) {
      const wanted = context.resolveSet(check.voters);
      if (typeof wanted === "string") {
        found = `cannot tell the expected members: ${wanted}`;
        return;
      }
      if (sample.leader === undefined) {
        found = `at ${formatSeconds(sample.timeMs)} no node led to report the membership (${describeSample(sample)})`;
        return;
      }
      const membership = context.cluster.node(sample.leader)!.status().membership;
      const voters = [...membership.voters].sort((a, b) => a - b);
      const expected = [...wanted].sort((a, b) => a - b);
      const same = voters.length === expected.length && voters.every((id, i) => id === expected[i]);
      found = same
        ? undefined
        : `at ${formatSeconds(sample.timeMs)} leader ${nodeName(sample.leader)} reported voters ${voters.map(nodeName).join(",")}` +
          `${membership.learners.length > 0 ? ` and learners ${membership.learners.map(nodeName).join(",")}` : ""}, expected ${expected.map(nodeName).join(",")}`;
    },
    verdict() {
      return found;
    },
  };
}

// -------------------------------------------------------------------------------------------------

function describeSample(sample: Sample): string {
  const terms = [...sample.terms].map(([id, term]) => `${nodeName(id)} t${term}`).join(", ");
  const roles = sample.leaderRoles.map((role) => `${nodeName(role.id)} leader of t${role.term}`).join(", ");
  return `${terms || "no node running"}${roles ? `; ${roles}` : ""}`;
}

export function describeCheck(check: Check): string {
  switch (check.check) {
    case "leader":
      return `leader: ${check.state}${check.is ? ` is ${describeSelector(check.is)}` : ""}${check.not ? ` not ${describeNodeSet(check.not)}` : ""}`;
    case "elections":
      return `elections:${check.min !== undefined ? ` min ${check.min}` : ""}${check.max !== undefined ? ` max ${check.max}` : ""}`;
    case "term":
      return "term: stable";
    case "writes":
    case "reads":
      return `${check.check}: ${check.outcome}${check.on ? ` on ${describeNodeSet(check.on)}` : ""}`;
    case "acknowledged_writes":
      return "acknowledged_writes: present";
    case "request":
      return `request: ${check.id} ${check.result}${check.error ? ` with ${check.error}` : ""}${check.namesLeader ? " naming the leader" : ""}`;
    case "caught_up":
      return `caught_up: ${describeSelector(check.node)}${check.bySnapshot ? " by snapshot" : ""}`;
    case "members":
      return `members: ${describeNodeSet(check.voters)}`;
  }
}

export function describeWindow(expectation: Expectation): string {
  const window = expectation.window;
  if (window.fromMs === window.untilMs) return `at ${formatSeconds(window.fromMs)}`;
  return `from ${formatSeconds(window.fromMs)} until ${formatSeconds(window.untilMs)}`;
}
