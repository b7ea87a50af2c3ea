/**
 * A scenario's expectations checked on real nodes, with the simulator's meanings
 * (sim/scenario/expectations.ts) and what an operator sees: samples of every node's /health (the
 * observer), probe writes and reads through the client API, the replies to membership and transfer
 * requests, the leader's member list, and a node's metrics (snapshots installed).
 *
 * Windows are sampled at the observer's interval (100 ms) rather than every 10 ms; each window also gets
 * a sample at its opening (taken when it opens) so that short windows are never empty.
 */
import { describeCheck, describeWindow, nodeName, type Check, type Expectation, type NodeSelector, type NodeSet, type Scenario } from "../../sim/scenario/index.ts";
import { describeProbe, type Clients, type Probe } from "./clients.ts";
import type { Sample } from "./observer.ts";
// The sample-driven checks are the simulator's own, so both runners judge leaders and terms alike.
import { electionsEvaluator, leaderEvaluator, termEvaluator } from "../../sim/scenario/expectations.ts";

export interface RequestReply {
  readonly atMs: number;
  readonly ok: boolean;
  /** "not_leader", "no_quorum", "change_in_progress", ... (from the reply), when refused. */
  readonly code: string | undefined;
  readonly message: string;
  readonly leaderId: number | undefined;
  /** Who led (observer) when the reply came. */
  readonly leaderAtReply: number | undefined;
}

export interface RequestRecord {
  readonly sentMs: number;
  readonly via: number | undefined;
  /** Why the request could not be sent at all. */
  unsent: string | undefined;
  reply: RequestReply | undefined;
}

export interface ExpectationContext {
  readonly scenario: Scenario;
  nowMs(): number;
  where(line: number): string;
  resolveOne(selector: NodeSelector): number | string;
  resolveSet(set: NodeSet): number[] | string;
  runningIds(): number[];
  readonly clients: Clients;
  readonly requests: ReadonlyMap<string, RequestRecord>;
  /** Voters and learners as the leader reports them (/v3/cluster/member/list). */
  members(leader: number): Promise<{ voters: number[]; learners: number[] } | string>;
  /** Snapshots node `id` installed, from its metrics; undefined when unknown. */
  snapshotsInstalled(id: number): Promise<number | undefined>;
}

interface Evaluator {
  open?(sample: Sample | undefined): void | Promise<void>;
  sample?(sample: Sample): void | Promise<void>;
  verdict(): string | undefined;
}

export class ExpectationMonitor {
  readonly #context: ExpectationContext;
  readonly #evaluators: Evaluator[];
  readonly #opened = new Set<number>();

  constructor(context: ExpectationContext) {
    this.#context = context;
    this.#evaluators = context.scenario.expectations.map((expectation) => evaluatorOf(context, expectation));
  }

  /** Opens expectation `index` (at its window's start) with the sample taken then. */
  async open(index: number, sample: Sample | undefined): Promise<void> {
    this.#opened.add(index);
    await this.#evaluators[index]!.open?.(sample);
    if (sample !== undefined) await this.#evaluators[index]!.sample?.(sample);
  }

  /** Feeds a sample to every opened expectation whose window holds it. */
  async sample(sample: Sample): Promise<void> {
    const expectations = this.#context.scenario.expectations;
    for (let index = 0; index < expectations.length; index++) {
      const window = expectations[index]!.window;
      if (!this.#opened.has(index) || sample.timeMs < window.fromMs || sample.timeMs > window.untilMs) continue;
      await this.#evaluators[index]!.sample?.(sample);
    }
  }

  verdicts(): { index: number; message: string }[] {
    const failures: { index: number; message: string }[] = [];
    this.#evaluators.forEach((evaluator, index) => {
      const expectation = this.#context.scenario.expectations[index]!;
      const problem = this.#opened.has(index) ? evaluator.verdict() : "the window never opened (the run ended first)";
      if (problem === undefined) return;
      failures.push({ index, message: `${this.#context.where(expectation.line)} "${describeCheck(expectation.check)}" ${describeWindow(expectation)}: ${problem}` });
    });
    return failures;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`;
}

function describeSample(sample: Sample): string {
  const terms = [...sample.terms].map(([id, term]) => `${nodeName(id)} t${term}`).join(", ");
  const roles = sample.leaderRoles.map((role) => `${nodeName(role.id)} leader of t${role.term}`).join(", ");
  return `${terms || "no node answering"}${roles ? `; ${roles}` : ""}`;
}

function evaluatorOf(context: ExpectationContext, expectation: Expectation): Evaluator {
  const check = expectation.check;
  switch (check.check) {
    case "leader":
      return leaderEvaluator(context, check);
    case "elections":
      return electionsEvaluator(check);
    case "term":
      return termEvaluator();
    case "writes":
    case "reads":
      return probeEvaluator(context, expectation, check);
    case "acknowledged_writes":
      return acknowledgedEvaluator(context);
    case "request":
      return requestEvaluator(context, expectation, check);
    case "caught_up":
      return caughtUpEvaluator(context, check);
    case "members":
      return membersEvaluator(context, expectation, check);
  }
}

/** Probes are sent by the runner's schedule (sendProbes), every `every` from the window's start. */
function probeEvaluator(context: ExpectationContext, expectation: Expectation, check: Check & { check: "writes" | "reads" }): Evaluator {
  const probes: Probe[] = [];
  const problems: string[] = [];
  const window = expectation.window;
  let timer: NodeJS.Timeout | undefined;
  const send = (): void => {
    if (context.nowMs() >= window.untilMs) return;
    let targets: (number | "leader")[];
    if (check.on !== undefined) {
      const resolved = context.resolveSet(check.on);
      if (typeof resolved === "string") {
        problems.push(`at ${seconds(context.nowMs())} the probe had no target: ${resolved}`);
        return;
      }
      targets = resolved;
    } else {
      targets = check.outcome === "succeed" ? ["leader"] : context.runningIds();
    }
    for (const target of targets) probes.push(check.check === "writes" ? context.clients.write(target) : context.clients.read(target));
  };
  return {
    open() {
      send();
      const next = (k: number): void => {
        const at = window.fromMs + k * check.everyMs;
        if (at >= window.untilMs) return;
        timer = setTimeout(() => {
          send();
          next(k + 1);
        }, Math.max(0, at - context.nowMs()));
      };
      next(1);
    },
    verdict() {
      if (timer !== undefined) clearTimeout(timer);
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

function acknowledgedEvaluator(context: ExpectationContext): Evaluator {
  let checks: { key: string; value: string; atMs: number; probe: Probe }[] | undefined;
  let openedMs = 0;
  return {
    open() {
      openedMs = context.nowMs();
      checks = context.clients.acknowledged.map((write) => ({ ...write, probe: context.clients.read("leader", write.key) }));
    },
    verdict() {
      if (checks === undefined) return "the check never ran";
      if (checks.length === 0) return `no probe write was acknowledged before ${seconds(openedMs)}, so there is nothing to check: add a "writes: succeed" window before it`;
      for (const { key, value, atMs, probe } of checks) {
        if (probe.status !== "ok") return `the read-back of ${key} (acknowledged at ${seconds(atMs)}) failed: ${describeProbe(probe)}`;
        if (probe.readValue !== value) return `${key}=${value} was acknowledged at ${seconds(atMs)} but read back as ${JSON.stringify(probe.readValue)}: an acknowledged write is lost`;
      }
      return undefined;
    },
  };
}

function requestEvaluator(context: ExpectationContext, expectation: Expectation, check: Check & { check: "request" }): Evaluator {
  return {
    verdict() {
      const record = context.requests.get(check.id);
      if (record === undefined) return `the step with id "${check.id}" never ran`;
      if (record.unsent !== undefined) return record.unsent;
      const reply = record.reply;
      if (reply === undefined || reply.atMs > expectation.window.untilMs) {
        return `no answer by ${seconds(expectation.window.untilMs)} to the request sent at ${seconds(record.sentMs)}${record.via !== undefined ? ` via ${nodeName(record.via)}` : ""}`;
      }
      if (check.result === "accepted") return reply.ok ? undefined : `it was rejected at ${seconds(reply.atMs)}: ${reply.code}: ${reply.message}`;
      if (reply.ok) return `it was accepted at ${seconds(reply.atMs)}, expected a refusal`;
      if (check.error !== undefined && reply.code !== check.error) return `it was rejected with ${reply.code}, expected ${check.error}: ${reply.message}`;
      if (check.namesLeader === true) {
        if (reply.leaderId === undefined) return `the refusal names no leader: ${reply.code}: ${reply.message}`;
        if (reply.leaderAtReply === undefined) return `the refusal names node ${reply.leaderId}, but no node led when it came back`;
        if (reply.leaderId !== reply.leaderAtReply) return `the refusal names node ${reply.leaderId}, but ${nodeName(reply.leaderAtReply)} led: ${reply.message}`;
      }
      return undefined;
    },
  };
}

function caughtUpEvaluator(context: ExpectationContext, check: Check & { check: "caught_up" }): Evaluator {
  let node: number | string | undefined;
  let targetIndex: number | undefined;
  let caughtMs: number | undefined;
  let snapshotsAtOpen: number | undefined;
  let snapshot: boolean | undefined;
  let lastSeen = "not answering";
  return {
    async open(sample) {
      node = context.resolveOne(check.node);
      if (sample === undefined) return;
      const leaderView = sample.leader !== undefined ? sample.views.get(sample.leader) : undefined;
      targetIndex = leaderView?.commit ?? Math.max(0, ...[...sample.views.values()].map((view) => view.commit));
      if (check.bySnapshot && typeof node === "number") snapshotsAtOpen = await context.snapshotsInstalled(node);
    },
    async sample(sample) {
      if (caughtMs !== undefined || targetIndex === undefined) return;
      if (typeof node !== "number") {
        node = context.resolveOne(check.node);
        if (typeof node !== "number") return;
      }
      const view = sample.views.get(node);
      lastSeen = view ? `applied ${view.applied}, commit ${view.commit}` : "not answering";
      if (view !== undefined && view.applied >= targetIndex) {
        caughtMs = sample.timeMs;
        if (check.bySnapshot) {
          const now = await context.snapshotsInstalled(node);
          snapshot = now !== undefined && now > (snapshotsAtOpen ?? 0);
        }
      }
    },
    verdict() {
      if (typeof node === "string") return `cannot tell which node: ${node}`;
      if (node === undefined || targetIndex === undefined) return "the window was never sampled";
      if (caughtMs === undefined) return `${nodeName(node)} never applied index ${targetIndex} (the commit index when the window opened); last seen: ${lastSeen}`;
      if (check.bySnapshot && snapshot !== true) return `${nodeName(node)} caught up at ${seconds(caughtMs)} without installing a snapshot (pgraft_snapshots_total{kind="installed"} did not rise)`;
      return undefined;
    },
  };
}

function membersEvaluator(context: ExpectationContext, expectation: Expectation, check: Check & { check: "members" }): Evaluator {
  let found: string | undefined = "the window was never sampled";
  let asked = false;
  const ask = async (sample: Sample): Promise<void> => {
    const wanted = context.resolveSet(check.voters);
    if (typeof wanted === "string") {
      found = `cannot tell the expected members: ${wanted}`;
      return;
    }
    if (sample.leader === undefined) {
      found = `at ${seconds(sample.timeMs)} no node led to report the membership (${describeSample(sample)})`;
      return;
    }
    const members = await context.members(sample.leader);
    if (typeof members === "string") {
      found = `at ${seconds(sample.timeMs)} the member list of ${nodeName(sample.leader)} could not be read: ${members}`;
      return;
    }
    const voters = [...members.voters].sort((a, b) => a - b);
    const expected = [...wanted].sort((a, b) => a - b);
    const same = voters.length === expected.length && voters.every((id, i) => id === expected[i]);
    found = same
      ? undefined
      : `at ${seconds(sample.timeMs)} leader ${nodeName(sample.leader)} reported voters ${voters.map(nodeName).join(",")}` +
        `${members.learners.length > 0 ? ` and learners ${members.learners.map(nodeName).join(",")}` : ""}, expected ${expected.map(nodeName).join(",")}`;
  };
  return {
    async sample(sample) {
      // The check is at the window's end: ask on the last samples only (bounded: once per sample near the end).
      if (sample.timeMs < expectation.window.untilMs - 1000 && asked) return;
      asked = true;
      await ask(sample);
    },
    verdict() {
      return found;
    },
  };
}
