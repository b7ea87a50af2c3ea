/**
 * Runs a scenario's timeline on a SimCluster: every step is scheduled at its time (ties in file order),
 * resolves its node selectors when it runs, acts through the cluster's fault verbs, binds `as:` names,
 * and records the replies to membership and transfer requests for `request:` expectations. A step that
 * cannot run (no leader to crash, a cluster without the needed control) is a failure of the run, named
 * by its file and line.
 */
import type { NodeId } from "../../src/core/types.ts";
import type { AdminResult } from "../../src/node/raft-node.ts";
import { describeNodeSet, describeSelector, formatDuration, nodeName, stepTimes, type Action, type Step } from "./scenario.ts";
import type { RequestRecord, ScenarioContext } from "./scenario-context.ts";

/** Schedules every step of the timeline. Call before the cluster runs. */
export function scheduleTimeline(context: ScenarioContext): void {
  const occurrences: { timeMs: number; index: number; step: Step }[] = [];
  context.scenario.timeline.forEach((step, index) => {
    for (const timeMs of stepTimes(step)) occurrences.push({ timeMs, index, step });
  });
  occurrences.sort((a, b) => a.timeMs - b.timeMs || a.index - b.index);
  for (const occurrence of occurrences) {
    context.cluster.clock.schedule(occurrence.timeMs, () => runStep(context, occurrence.step, occurrence.index));
  }
}

/** One line per step for the trace: "scenario step lost-quorum.yaml:16: crash followers". */
export function describeAction(action: Action): string {
  switch (action.verb) {
    case "crash":
      return `crash ${describeNodeSet(action.nodes)}${action.duringWrite ? " during a write" : ""}`;
    case "partition":
      return `partition ${action.groups.map(describeNodeSet).join(" | ")}`;
    case "cut":
    case "hold":
    case "release":
      return `${action.verb} ${describeNodeSet(action.from)} -> ${describeNodeSet(action.to)}`;
    case "link":
      return `link ${describeNodeSet(action.from)} ${action.bothWays ? "<->" : "->"} ${describeNodeSet(action.to)} ${JSON.stringify(action.conditions)}`;
    case "heal":
      return "heal";
    case "slow_disk":
      return `slow_disk ${describeNodeSet(action.nodes)} fsync ${action.fsyncMs} ms`;
    case "clock_drift":
      return `clock_drift ${describeNodeSet(action.nodes)} rate ${action.rate}`;
    case "add_node":
      return `add_node ${nodeName(action.node)} via ${describeSelector(action.via)}`;
    case "remove_node":
      return `remove_node ${describeSelector(action.node)} via ${describeSelector(action.via)}`;
    case "transfer_leadership":
      return `transfer_leadership to ${describeSelector(action.to)} via ${describeSelector(action.via)}`;
    default:
      return `${action.verb} ${describeNodeSet(action.nodes)}`;
  }
}

function runStep(context: ScenarioContext, step: Step, index: number): void {
  context.stepsRun++;
  context.note(`scenario step ${context.where(step.line)}: ${describeAction(step.action)}`);
  const problem = act(context, step);
  if (problem === undefined) return;
  const kind = problem.startsWith("Cannot") ? "unsupported" : "step";
  context.fail({
    kind,
    index,
    message: `${context.where(step.line)} at ${formatDuration(Math.round(context.nowMs))}: ${describeAction(step.action)}: ${problem}`,
  });
}

/** Performs the step; returns why it could not, if it could not. */
function act(context: ScenarioContext, step: Step): string | undefined {
  const cluster = context.cluster;
  const action = step.action;
  const bind = (ids: readonly NodeId[]): void => {
    if (step.bind !== undefined) {
      context.bindings.set(step.bind, [...ids]);
      context.note(`scenario bound $${step.bind} = ${ids.map(nodeName).join(",") || "(none)"}`);
    }
  };
  const nodesOf = (set: Parameters<ScenarioContext["resolveSet"]>[0]): NodeId[] | string => context.resolveSet(set);
  switch (action.verb) {
    case "crash":
    case "restart":
    case "pause":
    case "resume":
    case "isolate":
    case "fail_disk":
    case "repair_disk":
    case "corrupt_disk":
    case "slow_disk":
    case "clock_drift": {
      const ids = nodesOf(action.nodes);
      if (typeof ids === "string") return ids;
      bind(ids);
      for (const id of ids) {
        const problem = actOnNode(context, action, id);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    case "partition": {
      const groups: NodeId[][] = [];
      for (const group of action.groups) {
        const ids = nodesOf(group);
        if (typeof ids === "string") return ids;
        groups.push(ids);
      }
      const all = groups.flat();
      if (new Set(all).size !== all.length) return `a node is in two groups: ${groups.map((g) => `[${g.map(nodeName).join(",")}]`).join(" | ")}`;
      bind(groups[0]!);
      for (let i = 0; i < groups.length; i++) {
        for (let j = i + 1; j < groups.length; j++) {
          if (groups[i]!.length > 0 && groups[j]!.length > 0) cluster.partition(groups[i]!, groups[j]!);
        }
      }
      return undefined;
    }
    case "cut":
    case "hold":
    case "release":
    case "link": {
      const from = nodesOf(action.from);
      if (typeof from === "string") return from;
      const to = nodesOf(action.to);
      if (typeof to === "string") return to;
      bind(from);
      linkAction(context, action, from, to);
      return undefined;
    }
    case "heal":
      cluster.heal();
      return undefined;
    case "add_node":
    case "remove_node":
    case "transfer_leadership":
      return request(context, step, bind);
  }
}

function actOnNode(context: ScenarioContext, action: Action, id: NodeId): string | undefined {
  const cluster = context.cluster;
  switch (action.verb) {
    case "crash":
      cluster.crash(id, { duringWrite: action.duringWrite });
      return undefined;
    case "restart":
      // Starts a stopped node; a running or paused one is left as it is (crash it first to bounce it).
      cluster.restart(id);
      return undefined;
    case "pause":
      cluster.pause(id);
      return undefined;
    case "resume":
      cluster.resume(id);
      return undefined;
    case "isolate":
      cluster.isolate(id);
      return undefined;
    case "fail_disk":
      return context.controls.failDisk(id);
    case "repair_disk":
      return context.controls.repairDisk(id);
    case "slow_disk":
      return context.controls.setFsync(id, action.fsyncMs);
    case "corrupt_disk":
      if (cluster.state(id) === "up" || cluster.state(id) === "paused") cluster.crash(id);
      if (cluster.state(id) !== "down") return undefined;
      if (cluster.corruptDisk(id)) context.corrupted.add(id);
      else context.note(`n${id} disk has nothing to corrupt yet`);
      return undefined;
    case "clock_drift":
      return context.controls.setClockRate(id, action.rate);
    default:
      return undefined;
  }
}

function linkAction(context: ScenarioContext, action: Action & { verb: "cut" | "hold" | "release" | "link" }, from: NodeId[], to: NodeId[]): void {
  const cluster = context.cluster;
  switch (action.verb) {
    case "cut":
      cluster.cutOneWay(from, to);
      return;
    case "hold":
    case "release":
      for (const a of from) {
        for (const b of to) {
          if (a === b) continue;
          if (action.verb === "hold") cluster.network.hold(a, b);
          else cluster.network.release(a, b);
        }
      }
      context.note(`${action.verb} [${from.join(",")}] -> [${to.join(",")}]`);
      return;
    case "link": {
      const conditions = { ...context.scenario.network, ...action.conditions };
      for (const a of from) {
        for (const b of to) {
          if (a === b) continue;
          cluster.setLink(a, b, conditions);
          if (action.bothWays) cluster.setLink(b, a, conditions);
        }
      }
      return;
    }
  }
}

/** add_node, remove_node, transfer_leadership: sends the request and records the reply. */
function request(context: ScenarioContext, step: Step, bind: (ids: readonly NodeId[]) => void): string | undefined {
  const cluster = context.cluster;
  const action = step.action;
  if (action.verb !== "add_node" && action.verb !== "remove_node" && action.verb !== "transfer_leadership") return undefined;
  if (typeof cluster.changeMembership !== "function" || typeof cluster.transferLeadership !== "function") {
    return "Cannot send membership or transfer requests: not supported by this cluster (SimCluster needs changeMembership and transferLeadership)";
  }
  const via = context.resolveOne(action.via);
  const id = step.id ?? `${context.where(step.line)}@${Math.round(context.nowMs)}`;
  const record: RequestRecord = {
    id,
    step,
    sentMs: context.nowMs,
    via: typeof via === "string" ? undefined : via,
    unsent: typeof via === "string" ? `the request was not sent to ${describeSelector(action.via)}: ${via}` : undefined,
    reply: undefined,
    leaderAtReply: undefined,
  };
  context.requests.set(id, record);
  let target: NodeId;
  if (action.verb === "add_node") {
    if (typeof cluster.addHost !== "function") return "Cannot start a new node: not supported by this cluster (SimCluster needs addHost())";
    // The first request for a node starts it (empty disk, no membership); a retry reuses it.
    target = cluster.ids.includes(action.node) ? action.node : cluster.addHost();
    if (target !== action.node) {
      return `the cluster started the new node as ${nodeName(target)}, not ${nodeName(action.node)}: add nodes in order`;
    }
  } else {
    const resolved = context.resolveOne(action.verb === "remove_node" ? action.node : action.to);
    if (typeof resolved === "string") {
      record.unsent = `the request was not sent: ${resolved}`;
      context.note(`scenario request ${id} not sent: ${resolved}`);
      return undefined;
    }
    target = resolved;
  }
  bind([target]);
  if (typeof via === "string") {
    context.note(`scenario request ${id} not sent: ${via}`);
    return undefined;
  }
  const latencyMs = context.scenario.workload.clientLatencyMs;
  const done = (result: AdminResult): void => {
    record.leaderAtReply = cluster.leader();
    record.reply = result.ok ? { ok: true, atMs: context.nowMs } : { ok: false, atMs: context.nowMs, error: result.error };
    context.note(`scenario request ${id} ${result.ok ? "accepted" : `rejected: ${result.error.code}: ${result.error.message}`}`);
  };
  context.note(`scenario request ${id}: ${action.verb} ${nodeName(target)} via ${nodeName(via)}`);
  if (action.verb === "transfer_leadership") cluster.transferLeadership(via, target, latencyMs, done);
  else cluster.changeMembership(via, { type: action.verb === "add_node" ? "add" : "remove", nodeId: target }, latencyMs, done);
  return undefined;
}
