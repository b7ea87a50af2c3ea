/**
 * What a scenario file says, once parsed and checked: a cluster (size and pgraft settings), the
 * network, clocks and disks it starts with, the client workload, a timeline of fault and heal steps, and
 * the expectations checked during windows and at the end.
 *
 * The format is shared by the simulator (sim/scenario/run-scenario.ts) and the chaos runner, so nothing
 * here assumes a simulator: time is milliseconds from the scenario's start, nodes are named n1..nN,
 * faults are verbs, and expectations are checks on things an operator can observe (the leader, terms,
 * the outcome of writes and reads, membership). scenarios/README.md documents the YAML.
 */
import type { WorkloadOptions } from "../workload.ts";

/** A node as a step or an expectation names it; selectors resolve when the step runs. */
export type NodeSelector =
  /** A node by name: `n3` is id 3. */
  | { readonly kind: "node"; readonly id: number }
  /** The node leading with a live quorum at that moment. */
  | { readonly kind: "leader" }
  /** One running node that is not the leader, drawn from the seed. */
  | { readonly kind: "follower" }
  /** Every running node that is not the leader. */
  | { readonly kind: "followers" }
  /** Every node the scenario has named so far. */
  | { readonly kind: "all" }
  /** The nodes an earlier step bound with `as: name`, written `$name`. */
  | { readonly kind: "bound"; readonly name: string };

export type NodeSet = readonly NodeSelector[];

export type LatencyDistributionName = "uniform" | "normal" | "long-tail";

/** Conditions of one direction of a link; `link` steps may leave fields out to keep the baseline's. */
export interface NetworkConditions {
  readonly latencyMs: number;
  readonly jitterMs: number;
  readonly distribution: LatencyDistributionName;
  readonly lossRate: number;
  readonly duplicateRate: number;
}

export type Action =
  | { readonly verb: "crash"; readonly nodes: NodeSet; readonly duringWrite: boolean }
  | { readonly verb: "restart"; readonly nodes: NodeSet }
  | { readonly verb: "pause"; readonly nodes: NodeSet }
  | { readonly verb: "resume"; readonly nodes: NodeSet }
  | { readonly verb: "partition"; readonly groups: readonly NodeSet[] }
  | { readonly verb: "cut"; readonly from: NodeSet; readonly to: NodeSet }
  | { readonly verb: "isolate"; readonly nodes: NodeSet }
  | { readonly verb: "heal" }
  | { readonly verb: "hold"; readonly from: NodeSet; readonly to: NodeSet }
  | { readonly verb: "release"; readonly from: NodeSet; readonly to: NodeSet }
  | {
      readonly verb: "link";
      readonly from: NodeSet;
      readonly to: NodeSet;
      readonly bothWays: boolean;
      readonly conditions: Partial<NetworkConditions>;
    }
  | { readonly verb: "slow_disk"; readonly nodes: NodeSet; readonly fsyncMs: number }
  | { readonly verb: "fail_disk"; readonly nodes: NodeSet }
  | { readonly verb: "repair_disk"; readonly nodes: NodeSet }
  | { readonly verb: "corrupt_disk"; readonly nodes: NodeSet }
  | { readonly verb: "clock_drift"; readonly nodes: NodeSet; readonly rate: number }
  | { readonly verb: "add_node"; readonly node: number; readonly via: NodeSelector }
  | { readonly verb: "remove_node"; readonly node: NodeSelector; readonly via: NodeSelector }
  | { readonly verb: "transfer_leadership"; readonly to: NodeSelector; readonly via: NodeSelector };

export type Verb = Action["verb"];

export const VERBS: readonly Verb[] = [
  "crash",
  "restart",
  "pause",
  "resume",
  "partition",
  "cut",
  "isolate",
  "heal",
  "hold",
  "release",
  "link",
  "slow_disk",
  "fail_disk",
  "repair_disk",
  "corrupt_disk",
  "clock_drift",
  "add_node",
  "remove_node",
  "transfer_leadership",
];

/** Verbs whose reply an expectation can check (`request: ID`). */
export const REQUEST_VERBS: readonly Verb[] = ["add_node", "remove_node", "transfer_leadership"];

export interface Step {
  readonly atMs: number;
  /** With `untilMs`: the step repeats every `everyMs` while the time is before `untilMs`. */
  readonly everyMs: number | undefined;
  readonly untilMs: number | undefined;
  /** Names the step's request, for `request:` expectations. */
  readonly id: string | undefined;
  /** Binds the nodes the step resolved to `$name` for later steps and expectations. */
  readonly bind: string | undefined;
  readonly why: string | undefined;
  readonly action: Action;
  readonly line: number;
}

export interface Window {
  readonly fromMs: number;
  readonly untilMs: number;
}

export type Check =
  | {
      readonly check: "leader";
      readonly state: "elected" | "none" | "stable";
      readonly is: NodeSelector | undefined;
      readonly not: NodeSet | undefined;
    }
  | { readonly check: "elections"; readonly min: number | undefined; readonly max: number | undefined }
  | { readonly check: "term"; readonly state: "stable" }
  | {
      readonly check: "writes" | "reads";
      readonly outcome: "succeed" | "read-only";
      readonly everyMs: number;
      /** Nodes the probes go to; undefined: the leader (succeed) or every running node (read-only). */
      readonly on: NodeSet | undefined;
      /** read-only: each refusal must come back within this. */
      readonly fastMs: number;
      /** succeed: the share of probes that must succeed. */
      readonly ratioMin: number;
    }
  | { readonly check: "acknowledged_writes"; readonly state: "present" }
  | {
      readonly check: "request";
      readonly id: string;
      readonly result: "accepted" | "rejected";
      readonly error: string | undefined;
      readonly namesLeader: boolean | undefined;
    }
  | { readonly check: "caught_up"; readonly node: NodeSelector; readonly bySnapshot: boolean }
  | { readonly check: "members"; readonly voters: NodeSet };

export type CheckName = Check["check"];

export const CHECKS: readonly CheckName[] = [
  "leader",
  "elections",
  "term",
  "writes",
  "reads",
  "acknowledged_writes",
  "request",
  "caught_up",
  "members",
];

export interface Expectation {
  readonly window: Window;
  readonly check: Check;
  readonly why: string | undefined;
  readonly line: number;
}

/** A setting as the file wrote it (`pgraft.election_timeout: 1s`), kept to write the file back. */
export interface SettingEntry {
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

/** The cluster-wide pgraft settings a scenario may set, after pgraft.profile and defaults. */
export interface ScenarioTiming {
  readonly profile: string | undefined;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly entriesPerAppendMax: number;
  readonly maxBatchDelayMs: number;
  readonly snapshotIntervalEntries: number;
  readonly logEntriesMax: number;
}

/** A scenario's client load: the simulator's workload options, field for field. */
export type ScenarioWorkload = WorkloadOptions;

export interface Scenario {
  readonly name: string;
  readonly description: string | undefined;
  /** Where the failure comes from (the operations guide's section), for people. */
  readonly source: string | undefined;
  /** The simulator seed this file was written for (shrunk files); used when no --seed is given. */
  readonly seed: number | undefined;
  readonly nodes: number;
  readonly durationMs: number;
  readonly settings: readonly SettingEntry[];
  readonly timing: ScenarioTiming;
  readonly network: NetworkConditions;
  /**
   * A crashed node's TCP connections reset, so its peers learn of the crash within one network latency
   * (as on real machines); off: peers find out only by silence.
   */
  readonly connectionResets: boolean;
  /** Each node's clock runs at a rate drawn from [1 - driftMax, 1 + driftMax]. */
  readonly clockDriftMax: number;
  /** Every node's disk takes this long to make a write durable. */
  readonly diskFsyncMs: number;
  /** A crash may leave a torn (partly written) record at the end of a file. */
  readonly tornWrites: boolean;
  readonly workload: ScenarioWorkload;
  /** After the timeline: heal every fault and require a committed write within 12 election timeouts. */
  readonly liveness: boolean;
  readonly timeline: readonly Step[];
  readonly expectations: readonly Expectation[];
  /** The file it was read from, for messages ("scenarios/lost-quorum.yaml"). */
  readonly file: string;
}

export const NETWORK_DEFAULTS: NetworkConditions = {
  latencyMs: 2,
  jitterMs: 1,
  distribution: "uniform",
  lossRate: 0,
  duplicateRate: 0,
};

/** A scenario without a `workload:` section gets the simulator's default client load. */
export { WORKLOAD_DEFAULTS } from "../workload.ts";

/** Probe defaults for `writes:` and `reads:` expectations. */
export const PROBE_EVERY_MS_DEFAULT = 250;
export const PROBE_FAST_MS_DEFAULT = 100;

export const NODES_MAX = 9;
export const DURATION_MS_MAX = 3_600_000;

/** "n3" for id 3. */
export function nodeName(id: number): string {
  return `n${id}`;
}

export function describeSelector(selector: NodeSelector): string {
  switch (selector.kind) {
    case "node":
      return nodeName(selector.id);
    case "bound":
      return `$${selector.name}`;
    default:
      return selector.kind;
  }
}

export function describeNodeSet(nodes: NodeSet): string {
  return nodes.length === 1 ? describeSelector(nodes[0]!) : `[${nodes.map(describeSelector).join(", ")}]`;
}

/** "12s", "1.5s", "250ms", "1234.567ms": the shortest exact way to write a time (to the microsecond). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (!Number.isInteger(ms)) return `${Number(ms.toFixed(3))}ms`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  if (ms >= 1000 && (ms * 1000) % 1000 === 0 && ms % 100 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** The times a step runs at: once, or every `everyMs` before `untilMs`. */
export function stepTimes(step: Step): number[] {
  if (step.everyMs === undefined || step.untilMs === undefined) return [step.atMs];
  const times: number[] = [];
  for (let t = step.atMs; t < step.untilMs; t += step.everyMs) times.push(t);
  return times;
}
