/**
 * Writes a Scenario back as scenario YAML that parses to the same scenario (the shrinker writes its
 * result this way, and a test checks the round trip on every file in scenarios/). Defaults are left
 * out, node lists and groups are written inline, times carry their unit.
 */
import { Document, isScalar, isSeq, visit } from "yaml";
import {
  describeSelector,
  formatDuration,
  NETWORK_DEFAULTS,
  nodeName,
  PROBE_EVERY_MS_DEFAULT,
  PROBE_FAST_MS_DEFAULT,
  WORKLOAD_DEFAULTS,
  type Action,
  type Expectation,
  type NetworkConditions,
  type NodeSet,
  type Scenario,
  type Step,
} from "./scenario.ts";

/** The YAML text of `scenario`, with `header` lines (without "#") as a comment on top. */
export function writeScenario(scenario: Scenario, header: readonly string[] = []): string {
  const document = new Document(scenarioObject(scenario));
  visit(document, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item) || (isSeq(item) && item.items.every((inner) => isScalar(inner))))) node.flow = true;
    },
  });
  const body = document.toString({ lineWidth: 0, flowCollectionPadding: false });
  const comment = header.map((line) => `# ${line}`.trimEnd()).join("\n");
  return comment === "" ? body : `${comment}\n${body}`;
}

function scenarioObject(scenario: Scenario): Record<string, unknown> {
  const object: Record<string, unknown> = { name: scenario.name };
  if (scenario.description !== undefined) object.description = scenario.description.trim();
  if (scenario.source !== undefined) object.source = scenario.source;
  if (scenario.seed !== undefined) object.seed = scenario.seed;
  object.nodes = scenario.nodes;
  object.duration = formatDuration(scenario.durationMs);
  if (scenario.settings.length > 0) object.settings = Object.fromEntries(scenario.settings.map((entry) => [entry.name, entry.value]));
  const network = conditionsObject(scenario.network, NETWORK_DEFAULTS);
  if (!scenario.connectionResets) network.connection_resets = false;
  if (Object.keys(network).length > 0) object.network = network;
  if (scenario.clockDriftMax !== 0) object.clock = { drift: scenario.clockDriftMax };
  const disk: Record<string, unknown> = {};
  if (scenario.diskFsyncMs !== 0) disk.fsync = formatDuration(scenario.diskFsyncMs);
  if (scenario.tornWrites) disk.torn_writes = true;
  if (Object.keys(disk).length > 0) object.disk = disk;
  const workload = workloadObject(scenario);
  if (Object.keys(workload).length > 0) object.workload = workload;
  if (!scenario.liveness) object.liveness = false;
  object.timeline = scenario.timeline.map(stepObject);
  if (scenario.expectations.length > 0) object.expectations = scenario.expectations.map((e) => expectationObject(e, scenario.durationMs));
  return object;
}

function conditionsObject(conditions: Partial<NetworkConditions>, defaults: Partial<NetworkConditions>): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  if (conditions.latencyMs !== undefined && conditions.latencyMs !== defaults.latencyMs) object.latency = formatDuration(conditions.latencyMs);
  if (conditions.jitterMs !== undefined && conditions.jitterMs !== defaults.jitterMs) object.jitter = formatDuration(conditions.jitterMs);
  if (conditions.distribution !== undefined && conditions.distribution !== defaults.distribution) object.distribution = conditions.distribution;
  if (conditions.lossRate !== undefined && conditions.lossRate !== defaults.lossRate) object.loss = conditions.lossRate;
  if (conditions.duplicateRate !== undefined && conditions.duplicateRate !== defaults.duplicateRate) object.duplicate = conditions.duplicateRate;
  return object;
}

function workloadObject(scenario: Scenario): Record<string, unknown> {
  const w = scenario.workload;
  const d = WORKLOAD_DEFAULTS;
  const object: Record<string, unknown> = {};
  if (w.clients !== d.clients) object.clients = w.clients;
  if (w.keys !== d.keys) object.keys = w.keys;
  if (w.thinkTimeMsMean !== d.thinkTimeMsMean) object.think_time = formatDuration(w.thinkTimeMsMean);
  if (w.clientLatencyMs !== d.clientLatencyMs) object.client_latency = formatDuration(w.clientLatencyMs);
  if (w.clientTimeoutMs !== d.clientTimeoutMs) object.timeout = formatDuration(w.clientTimeoutMs);
  if (w.readRatio !== d.readRatio) object.reads = w.readRatio;
  if (w.casRatio !== d.casRatio) object.cas = w.casRatio;
  if (w.deleteRatio !== d.deleteRatio) object.deletes = w.deleteRatio;
  return object;
}

function nodes(set: NodeSet): string | string[] {
  const names = set.map(describeSelector);
  return names.length === 1 ? names[0]! : names;
}

function stepObject(step: Step): Record<string, unknown> {
  const object: Record<string, unknown> = { at: formatDuration(step.atMs) };
  if (step.everyMs !== undefined && step.untilMs !== undefined) {
    object.every = formatDuration(step.everyMs);
    object.until = formatDuration(step.untilMs);
  }
  if (step.id !== undefined) object.id = step.id;
  if (step.bind !== undefined) object.as = step.bind;
  object[step.action.verb] = actionValue(step.action);
  if (step.why !== undefined) object.why = step.why;
  return object;
}

function actionValue(action: Action): unknown {
  switch (action.verb) {
    case "crash":
      return action.duringWrite ? { nodes: nodes(action.nodes), during_write: true } : nodes(action.nodes);
    case "restart":
    case "pause":
    case "resume":
    case "isolate":
    case "fail_disk":
    case "repair_disk":
    case "corrupt_disk":
      return nodes(action.nodes);
    case "partition":
      return action.groups.map((group) => group.map(describeSelector));
    case "cut":
    case "hold":
    case "release":
      return { from: nodes(action.from), to: nodes(action.to) };
    case "heal":
      return "all";
    case "link":
      return {
        from: nodes(action.from),
        to: nodes(action.to),
        ...(action.bothWays ? {} : { both_ways: false }),
        ...conditionsObject(action.conditions, {}),
      };
    case "slow_disk":
      return { nodes: nodes(action.nodes), fsync: formatDuration(action.fsyncMs) };
    case "clock_drift":
      return { nodes: nodes(action.nodes), rate: action.rate };
    case "add_node":
      return action.via.kind === "leader" ? nodeName(action.node) : { node: nodeName(action.node), via: describeSelector(action.via) };
    case "remove_node":
      return action.via.kind === "leader" ? describeSelector(action.node) : { node: describeSelector(action.node), via: describeSelector(action.via) };
    case "transfer_leadership":
      return action.via.kind === "leader" ? describeSelector(action.to) : { to: describeSelector(action.to), via: describeSelector(action.via) };
  }
}

function expectationObject(expectation: Expectation, durationMs: number): Record<string, unknown> {
  const check = expectation.check;
  const object: Record<string, unknown> = {};
  switch (check.check) {
    case "leader":
      object.leader = check.state;
      if (check.is !== undefined) object.is = describeSelector(check.is);
      if (check.not !== undefined) object.not = nodes(check.not);
      break;
    case "elections":
      object.elections = { ...(check.min !== undefined ? { min: check.min } : {}), ...(check.max !== undefined ? { max: check.max } : {}) };
      break;
    case "term":
      object.term = check.state;
      break;
    case "writes":
    case "reads":
      object[check.check] = check.outcome;
      if (check.everyMs !== PROBE_EVERY_MS_DEFAULT) object.every = formatDuration(check.everyMs);
      if (check.on !== undefined) object.on = nodes(check.on);
      if (check.outcome === "read-only" && check.fastMs !== PROBE_FAST_MS_DEFAULT) object.fast = formatDuration(check.fastMs);
      if (check.outcome === "succeed" && check.ratioMin !== 1) object.ratio = check.ratioMin;
      break;
    case "acknowledged_writes":
      object.acknowledged_writes = check.state;
      break;
    case "request":
      object.request = check.id;
      object.result = check.result;
      if (check.error !== undefined) object.error = check.error;
      if (check.namesLeader !== undefined) object.names_leader = check.namesLeader;
      break;
    case "caught_up":
      object.caught_up = describeSelector(check.node);
      if (check.bySnapshot) object.by_snapshot = true;
      break;
    case "members":
      object.members = check.voters.map(describeSelector);
      break;
  }
  const window = expectation.window;
  if (window.fromMs === window.untilMs) object.at = window.fromMs === durationMs ? "end" : formatDuration(window.fromMs);
  else {
    if (window.fromMs !== 0) object.from = formatDuration(window.fromMs);
    object.until = window.untilMs === durationMs ? "end" : formatDuration(window.untilMs);
  }
  if (expectation.why !== undefined) object.why = expectation.why;
  return object;
}
