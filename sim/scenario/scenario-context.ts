/**
 * What the parts of one scenario run share: the cluster, the seed's random stream for choices such as
 * "follower", the nodes bound by `as:`, the replies to membership and transfer requests, and the list
 * of problems found. Node selectors resolve here, at the moment a step runs or a check is made.
 */
import type { NodeId } from "../../src/core/types.ts";
import type { PgraftError } from "../../src/errors.ts";
import type { SimCluster } from "../cluster.ts";
import type { Random } from "../random.ts";
import type { Workload } from "../workload.ts";
import type { ClusterControls } from "./cluster-controls.ts";
import { describeSelector, formatDuration, nodeName, type NodeSelector, type NodeSet, type Scenario, type Step } from "./scenario.ts";

/** A membership or transfer request a step made, and what came back. */
export interface RequestRecord {
  readonly id: string;
  readonly step: Step;
  readonly sentMs: number;
  readonly via: NodeId | undefined;
  /** Set when the request could not be sent at all (no leader to send it to). */
  unsent: string | undefined;
  reply: { readonly ok: true; readonly atMs: number } | { readonly ok: false; readonly atMs: number; readonly error: PgraftError } | undefined;
  /** The leader with a live quorum when the reply came back. */
  leaderAtReply: NodeId | undefined;
}

/** A problem that fails the run: a step that could not run, or an expectation that did not hold. */
export interface ScenarioFailure {
  readonly kind: "step" | "expectation" | "unsupported";
  /** Index into the scenario's timeline or expectations. */
  readonly index: number;
  readonly message: string;
}

export class ScenarioContext {
  readonly bindings = new Map<string, NodeId[]>();
  readonly requests = new Map<string, RequestRecord>();
  readonly failures: ScenarioFailure[] = [];
  /** Nodes whose synced data a corrupt_disk step damaged: they must refuse to start. */
  readonly corrupted = new Set<NodeId>();
  stepsRun = 0;

  constructor(
    readonly scenario: Scenario,
    readonly cluster: SimCluster,
    readonly random: Random,
    readonly workload: Workload,
    readonly controls: ClusterControls,
  ) {}

  get nowMs(): number {
    return this.cluster.clock.nowMs;
  }

  note(text: string): void {
    this.cluster.trace.record(this.cluster.clock.nowMs, text);
  }

  fail(failure: ScenarioFailure): void {
    this.failures.push(failure);
    this.note(`scenario problem: ${failure.message}`);
  }

  /** "scenarios/x.yaml:12". */
  where(line: number): string {
    return `${this.scenario.file}:${line}`;
  }

  /**
   * The nodes a selector names now. Returns a reason instead when a selector that must name a node
   * names none (no leader, no follower, a $name not yet bound).
   */
  resolve(selector: NodeSelector): NodeId[] | string {
    const cluster = this.cluster;
    switch (selector.kind) {
      case "node":
        return cluster.ids.includes(selector.id) ? [selector.id] : `${nodeName(selector.id)} does not exist yet`;
      case "leader": {
        const leader = cluster.leader();
        return leader === undefined ? `no node leads with a live quorum at ${formatDuration(Math.round(this.nowMs))}` : [leader];
      }
      case "follower": {
        const followers = this.followers();
        return followers.length === 0 ? `no running follower at ${formatDuration(Math.round(this.nowMs))}` : [this.random.pick(followers)];
      }
      case "followers":
        return this.followers();
      case "all":
        return [...cluster.ids];
      case "bound": {
        const bound = this.bindings.get(selector.name);
        return bound === undefined ? `$${selector.name} is not bound yet` : [...bound];
      }
    }
  }

  /** Resolves every selector; the union, in order, without repeats. */
  resolveSet(nodes: NodeSet): NodeId[] | string {
    const ids: NodeId[] = [];
    for (const selector of nodes) {
      const resolved = this.resolve(selector);
      if (typeof resolved === "string") return nodes.length === 1 ? resolved : `${describeSelector(selector)}: ${resolved}`;
      for (const id of resolved) if (!ids.includes(id)) ids.push(id);
    }
    return ids;
  }

  /** Exactly one node, or why not. */
  resolveOne(selector: NodeSelector): NodeId | string {
    const resolved = this.resolve(selector);
    if (typeof resolved === "string") return resolved;
    if (resolved.length !== 1) return `${describeSelector(selector)} names ${resolved.length} nodes where one belongs`;
    return resolved[0]!;
  }

  /**
   * Running nodes other than the leader; with a leader, only the members of its configuration (a node
   * being added or already removed is not a follower).
   */
  followers(): NodeId[] {
    const cluster = this.cluster;
    const leader = cluster.leader();
    const membership = leader !== undefined ? cluster.node(leader)?.status().membership : undefined;
    return cluster.liveIds().filter((id) => {
      if (id === leader) return false;
      if (membership === undefined) return true;
      return membership.voters.includes(id) || membership.learners.includes(id);
    });
  }
}
