/**
 * `npm run sim -- --replay FILE`: a chaos run's recorded fault timeline (chaos/runner/recording.ts)
 * turned into a scenario the simulator runs, so a chaos failure can be studied deterministically.
 *
 * The scenario is the recorded file's own (same cluster, settings, network, workload and expectations)
 * with its timeline replaced by the steps as they really happened: each at the time it really ran
 * (rounded to the millisecond), with the nodes its selectors resolved to in the chaos run written out
 * by name (`crash: followers` that hit n1 and n2 becomes `crash: [n1, n2]`), keeping `id` and `as`
 * so requests and `$name` bindings still work. Steps that failed in the chaos run are left out and
 * listed in the header. The seed is the chaos run's, unless --seed says otherwise. The scenario is also
 * written next to the recording (`FILE.replay.yaml`) so that its line numbers can be read.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseScenario, ScenarioError, writeScenario, type Action, type NodeSelector, type NodeSet, type Scenario, type Step } from "./scenario/index.ts";

export const RECORDING_FORMAT = "pgraft-chaos-timeline/1";

/**
 * One recorded step: the parts the replay reads. The chaos runner's recording (chaos/runner/recording.ts)
 * writes this shape and adds what only a person reads (actions, durations, Toxiproxy draws).
 */
export interface RecordedStepJson {
  /** When the step started, ms from the run's start. */
  readonly atMs: number;
  /** When the file said it should run. */
  readonly plannedAtMs: number;
  readonly line: number;
  readonly verb: string;
  readonly description: string;
  /** The nodes the step acted on (crash, restart, pause, resume, isolate, corrupt_disk...). */
  readonly nodes?: readonly number[];
  /** partition: the groups; cut/hold/release/link: from and to. */
  readonly groups?: readonly (readonly number[])[];
  readonly from?: readonly number[];
  readonly to?: readonly number[];
  /** link: the conditions as the file gave them (fields left out keep the baseline). */
  readonly conditions?: Record<string, unknown>;
  readonly bothWays?: boolean;
  /** add_node / remove_node / transfer_leadership: the node and the node asked. */
  readonly node?: number;
  readonly via?: number;
  readonly id?: string;
  readonly bind?: string;
  readonly outcome: "ok" | "failed";
  readonly error?: string;
}

interface RecordingJson {
  readonly format: string;
  readonly scenario: { readonly name: string; readonly file: string; readonly text: string };
  readonly seed: number;
  readonly steps: readonly RecordedStepJson[];
}

export class ReplayError extends Error {
  override name = "ReplayError";
}

export interface Replay {
  readonly scenario: Scenario;
  /** Where the replayed scenario was written. */
  readonly file: string;
  /** Steps of the recording left out (they failed in the chaos run), one line each. */
  readonly skipped: readonly string[];
}

function nodes(ids: readonly number[] | undefined, what: string): NodeSet {
  if (ids === undefined || !ids.every((id) => Number.isInteger(id) && id >= 1)) throw new ReplayError(`Cannot replay: a recorded ${what} has no valid node ids`);
  return ids.map((id): NodeSelector => ({ kind: "node", id }));
}

function one(id: number | undefined, what: string): NodeSelector {
  if (id === undefined || !Number.isInteger(id) || id < 1) throw new ReplayError(`Cannot replay: a recorded ${what} has no valid node id`);
  return { kind: "node", id };
}

/** The action a recorded step performed, with its nodes written out. */
export function recordedAction(step: RecordedStepJson, original: Action | undefined): Action {
  const where = `${step.verb} step (line ${step.line})`;
  switch (step.verb) {
    case "crash":
      return { verb: "crash", nodes: nodes(step.nodes, where), duringWrite: false };
    case "restart":
    case "pause":
    case "resume":
    case "isolate":
    case "corrupt_disk":
      return { verb: step.verb, nodes: nodes(step.nodes, where) };
    case "partition":
      if (step.groups === undefined) throw new ReplayError(`Cannot replay: the recorded ${where} has no groups`);
      return { verb: "partition", groups: step.groups.map((group) => nodes(group, where)) };
    case "cut":
    case "hold":
    case "release":
      return { verb: step.verb, from: nodes(step.from, where), to: nodes(step.to, where) };
    case "link": {
      // The recorded conditions are the file's, field for field (chaos/runner/run.ts copies them).
      const conditions = original?.verb === "link" ? original.conditions : (step.conditions ?? {});
      return { verb: "link", from: nodes(step.from, where), to: nodes(step.to, where), bothWays: step.bothWays ?? true, conditions };
    }
    case "heal":
      return { verb: "heal" };
    case "add_node":
      one(step.node, where);
      return { verb: "add_node", node: step.node!, via: one(step.via, where) };
    case "remove_node":
      return { verb: "remove_node", node: one(step.node, where), via: one(step.via, where) };
    case "transfer_leadership":
      return { verb: "transfer_leadership", to: one(step.node, where), via: one(step.via, where) };
    default:
      throw new ReplayError(`Cannot replay: the recording holds a ${step.verb} step (line ${step.line}), which a chaos run never performs`);
  }
}

/** Reads the recording, builds the replay scenario, writes it to `outFile` (default FILE.replay.yaml). */
export function replayScenario(file: string, outFile = `${file.replace(/\.json$/, "")}.replay.yaml`): Replay {
  let recording: RecordingJson;
  try {
    recording = JSON.parse(readFileSync(file, "utf8")) as RecordingJson;
  } catch (error) {
    throw new ReplayError(`Cannot replay ${file}: ${(error as Error).message}; pass a timeline written by npm run chaos`);
  }
  if (recording?.format !== RECORDING_FORMAT) {
    throw new ReplayError(`Cannot replay ${file}: its format is ${JSON.stringify(recording?.format)}, expected "${RECORDING_FORMAT}" (a timeline written by npm run chaos)`);
  }
  if (typeof recording.scenario?.text !== "string" || recording.scenario.text === "") {
    throw new ReplayError(`Cannot replay ${file}: it does not hold the scenario's text; record it again with npm run chaos`);
  }
  const parsed = parseScenario(recording.scenario.text, recording.scenario.file);
  if (!parsed.ok) throw new ScenarioError(recording.scenario.file, parsed.issues);
  const original = parsed.value;
  const byLine = new Map(original.timeline.map((step) => [step.line, step.action]));
  const skipped: string[] = [];
  const timeline: Step[] = [];
  for (const recorded of recording.steps) {
    if (recorded.outcome !== "ok") {
      skipped.push(`line ${recorded.line} at ${recorded.atMs} ms: ${recorded.description}: ${recorded.error ?? "failed"}`);
      continue;
    }
    timeline.push({
      atMs: Math.max(0, Math.round(recorded.atMs)),
      everyMs: undefined,
      untilMs: undefined,
      id: recorded.id,
      bind: recorded.bind,
      why: `chaos: ${recorded.description} (line ${recorded.line}) ran at ${Math.round(recorded.atMs)} ms, planned ${recorded.plannedAtMs} ms`,
      action: recordedAction(recorded, byLine.get(recorded.line)),
      line: recorded.line,
    });
  }
  const lastMs = timeline.reduce((max, step) => Math.max(max, step.atMs), 0);
  const replay: Scenario = { ...original, seed: recording.seed, timeline, durationMs: Math.max(original.durationMs, lastMs + 1) };
  const header = [
    `Replay of the chaos timeline ${file} (scenario ${recording.scenario.file}, seed ${recording.seed}).`,
    "Every step at the time it really ran, with the nodes it really hit.",
    ...skipped.map((line) => `left out (failed in the chaos run): ${line}`),
  ];
  const text = writeScenario(replay, header);
  writeFileSync(outFile, text);
  const reparsed = parseScenario(text, outFile);
  if (!reparsed.ok) throw new ScenarioError(outFile, reparsed.issues);
  return { scenario: reparsed.value, file: outFile, skipped };
}
