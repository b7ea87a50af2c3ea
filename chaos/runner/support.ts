/**
 * Which scenarios a chaos run can really perform. Every step and setting is checked against what real
 * processes and Toxiproxy can do and what the provider declares (ProviderCapabilities) before anything
 * starts. A step without a real counterpart refuses the whole scenario with a message naming the step
 * (file:line); such a scenario is simulator-only and the report lists it with that reason. Nothing is
 * silently skipped.
 *
 * Some conditions are approximated rather than refused; they are listed as notes with the run:
 * message loss on a TCP link shows as delay (TCP retransmits), duplicates are invisible over TCP, and
 * Toxiproxy draws jitter uniformly whatever distribution the file names.
 */
import type { ProviderCapabilities } from "../providers/provider.ts";
import { nodeName, type Scenario, type Step } from "../../sim/scenario/index.ts";
import { joinerIds, stepsFaultingJoinerLinks } from "./joiners.ts";

export interface Refusal {
  /** The line of the step or section in the scenario file (1 when the file has no line for it). */
  readonly line: number;
  /** The verb or setting refused: "slow_disk", "clock.drift". */
  readonly what: string;
  readonly reason: string;
}

export interface SupportReport {
  readonly refusals: readonly Refusal[];
  /** Approximations made (not refusals), one sentence each. */
  readonly notes: readonly string[];
}

const NO_DISK_CONTROL = "no real counterpart: a real node's file system cannot be slowed or failed under its data directory by this runner";
const NO_CLOCK_CONTROL = "no real counterpart: a process's clock cannot be made to run at another rate";

export function checkSupport(scenario: Scenario, capabilities: ProviderCapabilities): SupportReport {
  const refusals: Refusal[] = [];
  const notes: string[] = [];
  if (scenario.clockDriftMax > 0) refusals.push({ line: 1, what: "clock.drift", reason: NO_CLOCK_CONTROL });
  if (scenario.diskFsyncMs > 0) refusals.push({ line: 1, what: "disk.fsync", reason: NO_DISK_CONTROL });
  if (!scenario.connectionResets) {
    refusals.push({ line: 1, what: "network.connection_resets", reason: "no real counterpart: a killed process's TCP connections always close (connection_resets: off is a simulator world)" });
  }
  const network = scenario.network;
  if (network.lossRate > 0) notes.push(`network loss ${network.lossRate} is not reproduced: over TCP a lost segment is retransmitted and shows as delay`);
  if (network.duplicateRate > 0) notes.push(`network duplicate ${network.duplicateRate} is not reproduced: TCP delivers each byte once`);
  if (network.distribution !== "uniform" && network.jitterMs > 0) notes.push(`latency distribution ${network.distribution} is approximated by Toxiproxy's uniform jitter`);
  for (const step of scenario.timeline) {
    const refusal = stepRefusal(step, capabilities, notes);
    if (refusal !== undefined) refusals.push(refusal);
  }
  if (capabilities.redirectDials !== true) {
    const joiners = joinerIds(scenario).map(nodeName).join(", ");
    for (const step of stepsFaultingJoinerLinks(scenario)) {
      refusals.push({
        line: step.line,
        what: step.action.verb,
        reason:
          `the provider cannot fault the links into ${joiners} (added at run time) one by one: every member reaches such a node at the one address in ` +
          `its configuration entry, and ${capabilities.description} cannot send each member's connections through a proxy of their own (no redirectDials); ` +
          "run it with --provider local or --provider testcontainers",
      });
    }
  }
  refusals.sort((a, b) => a.line - b.line);
  return { refusals, notes };
}

function stepRefusal(step: Step, capabilities: ProviderCapabilities, notes: string[]): Refusal | undefined {
  const action = step.action;
  const refuse = (reason: string): Refusal => ({ line: step.line, what: action.verb, reason });
  const needs = (capability: keyof ProviderCapabilities, what: string): Refusal | undefined =>
    capabilities[capability] === true ? undefined : refuse(`the provider cannot ${what} (${capabilities.description})`);
  switch (action.verb) {
    case "crash":
      if (action.duringWrite) return refuse("no real counterpart: a kill -9 cannot be aimed inside a disk write (during_write)");
      return needs("crash", "kill a node");
    case "restart":
      return needs("restart", "restart a node from its data");
    case "pause":
    case "resume":
      return needs("pause", "pause and resume a node");
    case "corrupt_disk":
      return needs("corruptData", "damage a node's data");
    case "slow_disk":
    case "fail_disk":
    case "repair_disk":
      return refuse(NO_DISK_CONTROL);
    case "clock_drift":
      return refuse(NO_CLOCK_CONTROL);
    case "link": {
      const conditions = action.conditions;
      if ((conditions.lossRate ?? 0) > 0) notes.push(`line ${step.line}: link loss ${conditions.lossRate} is not reproduced: over TCP it shows as delay`);
      if ((conditions.duplicateRate ?? 0) > 0) notes.push(`line ${step.line}: link duplicate ${conditions.duplicateRate} is not reproduced over TCP`);
      if (conditions.distribution !== undefined && conditions.distribution !== "uniform") {
        notes.push(`line ${step.line}: latency distribution ${conditions.distribution} is approximated by uniform jitter`);
      }
      return undefined;
    }
    case "hold":
      notes.push(`line ${step.line}: hold drops the held messages instead of queueing them (Toxiproxy's timeout toxic; Raft retries)`);
      return undefined;
    default:
      return undefined;
  }
}

/** "scenarios/slow-disk.yaml:12: slow_disk: no real counterpart: ..." */
export function describeRefusal(file: string, refusal: Refusal): string {
  return `${file}:${refusal.line}: ${refusal.what}: ${refusal.reason}`;
}
