/**
 * Parses and checks a scenario file (scenarios/README.md describes the format). Every problem is
 * collected, each with the file, line and column, the field's path, what was received and what was
 * expected, and the nearest valid key, verb or setting for a misspelling. pgraft settings go through
 * the settings layer of src/config, so a scenario's `pgraft.election_timeout: 1s` means exactly what it
 * means in postgresql.conf.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  findSetting,
  memoryFileSystem,
  parseDurationMs,
  suggestSettingName,
  validateSettings,
  type SettingAssignment,
} from "../../src/config/index.ts";
import {
  CHECKS,
  DURATION_MS_MAX,
  NETWORK_DEFAULTS,
  NODES_MAX,
  PROBE_EVERY_MS_DEFAULT,
  PROBE_FAST_MS_DEFAULT,
  REQUEST_VERBS,
  VERBS,
  WORKLOAD_DEFAULTS,
  formatDuration,
  nodeName,
  type Action,
  type Check,
  type CheckName,
  type Expectation,
  type LatencyDistributionName,
  type NetworkConditions,
  type NodeSelector,
  type NodeSet,
  type Scenario,
  type ScenarioTiming,
  type ScenarioWorkload,
  type SettingEntry,
  type Step,
  type Verb,
  type Window,
} from "./scenario.ts";
import { ScenarioError, type ScenarioParseResult } from "./scenario-issue.ts";
import { nearest, YamlReader, type Located } from "./yaml-reader.ts";

/** The pgraft settings a scenario may set: the cluster-wide tunables. Identity and addresses are the runner's. */
export const SCENARIO_SETTINGS: readonly string[] = [
  "pgraft.profile",
  "pgraft.election_timeout",
  "pgraft.heartbeat_interval",
  "pgraft.pre_vote",
  "pgraft.check_quorum",
  "pgraft.batch_size",
  "pgraft.max_batch_delay",
  "pgraft.snapshot_interval",
  "pgraft.max_log_entries",
];

const TOP_LEVEL_KEYS = [
  "name",
  "description",
  "source",
  "seed",
  "nodes",
  "duration",
  "settings",
  "network",
  "clock",
  "disk",
  "workload",
  "liveness",
  "timeline",
  "expectations",
];
const STEP_KEYS = ["at", "every", "until", "id", "as", "why"];
const WINDOW_KEYS = ["from", "until", "within", "at", "why"];
const CHECK_OPTIONS: Readonly<Record<CheckName, readonly string[]>> = {
  leader: ["is", "not"],
  elections: [],
  term: [],
  writes: ["every", "on", "fast", "ratio"],
  reads: ["every", "on", "fast", "ratio"],
  acknowledged_writes: [],
  request: ["result", "error", "names_leader"],
  caught_up: ["by_snapshot"],
  members: [],
};
const SELECTOR_WORDS = ["leader", "follower", "followers", "all"];
const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const BIND_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

/**
 * A scenario file, or every *.yaml of a folder (sorted), each checked: the scenarios that parse and
 * every problem of those that do not (the simulator's and the chaos runner's `--scenario FILE|DIR`).
 */
export function loadScenarioPath(path: string): { scenarios: Scenario[]; problems: string[] } {
  const files = existsSync(path) && statSync(path).isDirectory()
    ? readdirSync(path).filter((name) => name.endsWith(".yaml")).sort().map((name) => join(path, name))
    : [path];
  const scenarios: Scenario[] = [];
  const problems: string[] = [];
  for (const file of files) {
    try {
      scenarios.push(loadScenarioFile(file));
    } catch (error) {
      if (!(error instanceof ScenarioError)) throw error;
      problems.push(error.message);
    }
  }
  if (files.length === 0) problems.push(`Cannot run the scenarios in ${path}: the folder has no .yaml files`);
  return { scenarios, problems };
}

/** Reads a scenario file from disk; throws a ScenarioError listing every problem. */
export function loadScenarioFile(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ScenarioError(file, [
      {
        code: "syntax_error",
        path: [],
        line: 1,
        column: 1,
        message: `${file}:1:1: the file cannot be read: ${error instanceof Error ? error.message : String(error)}`,
      },
    ]);
  }
  const result = parseScenario(text, file);
  if (!result.ok) throw new ScenarioError(file, result.issues);
  return result.value;
}

/** Parses scenario YAML; `file` names it in messages. */
export function parseScenario(text: string, file: string): ScenarioParseResult<Scenario> {
  const reader = new YamlReader(file, text);
  if (reader.issues.length > 0) return { ok: false, issues: reader.issues };
  const parser = new ScenarioParser(reader);
  const scenario = parser.parse();
  if (reader.issues.length > 0 || scenario === undefined) {
    const issues = [...reader.issues].sort((a, b) => a.line - b.line || a.column - b.column);
    return { ok: false, issues };
  }
  return { ok: true, value: scenario };
}

/** What the second pass needs to check node names and `$name` references. */
interface NodeContext {
  nodes: number;
  /** Ids that add_node steps introduce (n4, n5, ...). */
  added: Set<number>;
  /** `as:` names bound by some step, with the earliest time each is bound. */
  bound: Map<string, number>;
}

class ScenarioParser {
  #nodeReferences: { at: Located; selector: NodeSelector; timeMs: number | undefined }[] = [];

  constructor(readonly reader: YamlReader) {}

  parse(): Scenario | undefined {
    const r = this.reader;
    const top = r.mapping(r.root, {
      allowed: TOP_LEVEL_KEYS,
      required: ["name", "nodes", "duration", "timeline"],
      what: "a scenario",
    });
    if (top === undefined) return undefined;
    const get = (key: string): Located | undefined => top.get(key);

    const nameAt = get("name");
    let name: string | undefined;
    if (nameAt) {
      name = r.string(nameAt, "a name in lower case with digits and dashes, like \"lost-quorum\"");
      if (name !== undefined && !NAME_PATTERN.test(name)) {
        r.reject("invalid_value", nameAt, 'a name in lower case with digits and dashes, like "lost-quorum"');
        name = undefined;
      }
    }
    const description = this.#optionalText(get("description"));
    const source = this.#optionalText(get("source"));
    const seedAt = get("seed");
    const seed = seedAt ? r.integer(seedAt, 0, Number.MAX_SAFE_INTEGER, "a simulator seed") : undefined;
    const nodesAt = get("nodes");
    const nodes = nodesAt ? r.integer(nodesAt, 1, NODES_MAX, "the number of nodes") : undefined;
    const durationAt = get("duration");
    const durationMs = durationAt
      ? r.duration(durationAt, { minimumMs: 1_000, maximumMs: DURATION_MS_MAX, what: "how long the scenario runs" })
      : undefined;

    const settingsAt = get("settings");
    const settings = settingsAt ? this.#settings(settingsAt) : { entries: [], timing: this.#timing([]) };
    const network = this.#network(get("network"));
    const clock = this.#clock(get("clock"));
    const disk = this.#disk(get("disk"));
    const workload = this.#workload(get("workload"));
    const livenessAt = get("liveness");
    const liveness = livenessAt ? r.boolean(livenessAt, "whether the run ends with every fault healed and a write committed") : true;

    const limitMs = durationMs ?? DURATION_MS_MAX;
    const timelineAt = get("timeline");
    const timeline = timelineAt ? this.#timeline(timelineAt, limitMs) : [];
    const expectationsAt = get("expectations");
    const expectations = expectationsAt ? this.#expectations(expectationsAt, limitMs, timeline) : [];

    if (nodes !== undefined) this.#checkNodes(nodes, timeline);
    if (
      name === undefined ||
      nodes === undefined ||
      durationMs === undefined ||
      settings === undefined ||
      network === undefined ||
      clock === undefined ||
      disk === undefined ||
      workload === undefined ||
      liveness === undefined ||
      r.issues.length > 0
    ) {
      return undefined;
    }
    return {
      name,
      description,
      source,
      seed,
      nodes,
      durationMs,
      settings: settings.entries,
      timing: settings.timing!,
      network: network.conditions,
      connectionResets: network.connectionResets,
      clockDriftMax: clock,
      diskFsyncMs: disk.fsyncMs,
      tornWrites: disk.tornWrites,
      workload,
      liveness,
      timeline,
      expectations,
      file: r.file,
    };
  }

  #optionalText(at: Located | undefined): string | undefined {
    if (at === undefined) return undefined;
    return this.reader.string(at, "a text")?.trim();
  }

  // -----------------------------------------------------------------------------------------------
  // Settings, network, clock, disk, workload

  #settings(at: Located): { entries: SettingEntry[]; timing: ScenarioTiming | undefined } | undefined {
    const r = this.reader;
    if (!r.isMapping(at)) {
      r.reject("invalid_type", at, 'pgraft settings (a mapping like "pgraft.election_timeout: 1s")');
      return undefined;
    }
    const entries: SettingEntry[] = [];
    const raw = r.entries(at);
    let valid = true;
    for (const [key, value] of raw) {
      const name = key.toLowerCase();
      const keyAt: Located = { node: value.key, key: value.key, path: value.path };
      if (!SCENARIO_SETTINGS.includes(name)) {
        valid = false;
        if (findSetting(name) !== undefined) {
          r.report(
            "invalid_setting",
            keyAt,
            `${JSON.stringify(name)} cannot be set in a scenario: the runner gives each node its identity, addresses and files; expected one of ${SCENARIO_SETTINGS.join(", ")}`,
          );
        } else {
          const suggestion = suggestSettingName(name);
          r.report(
            "invalid_setting",
            keyAt,
            `unknown setting ${JSON.stringify(name)}: expected one of ${SCENARIO_SETTINGS.join(", ")}` +
              (suggestion !== undefined ? `; did you mean ${JSON.stringify(suggestion)}?` : ""),
          );
        }
        continue;
      }
      const scalar = r.scalar(value);
      if (scalar === undefined || scalar === null) {
        valid = false;
        r.reject("invalid_type", value, `a value for ${name}, written as in postgresql.conf`);
        continue;
      }
      const text = typeof scalar === "boolean" ? (scalar ? "on" : "off") : String(scalar);
      entries.push({ name, value: text, line: r.line(value) });
    }
    if (!valid) return { entries, timing: undefined };
    const timing = this.#timing(entries);
    return timing === undefined ? undefined : { entries, timing };
  }

  /** Runs the settings through pgraft's own validator, with the per-node settings filled in. */
  #timing(entries: readonly SettingEntry[]): ScenarioTiming | undefined {
    const r = this.reader;
    const runner = "scenario runner";
    const assignments: SettingAssignment[] = [
      { name: "pgraft.cluster_id", value: "scenario", source: runner },
      { name: "pgraft.name", value: "n1", source: runner },
      { name: "pgraft.initial_cluster", value: "n1=127.0.0.1:7001", source: runner },
      { name: "pgraft.data_dir", value: "/scenario/pgraft", source: runner },
      { name: "pgraft.auth", value: "off", source: runner },
      ...entries.map((entry) => ({ name: entry.name, value: entry.value, source: `${r.file}:${entry.line}` })),
    ];
    const validation = validateSettings(assignments, { environment: {}, fileSystem: memoryFileSystem({}) });
    if (!validation.ok) {
      for (const issue of validation.issues) {
        const entry = entries.find((e) => issue.source === `${r.file}:${e.line}`) ?? entries.find((e) => e.name === issue.setting);
        const line = entry?.line ?? 1;
        r.issues.push({
          code: "invalid_setting",
          path: ["settings", issue.setting ?? ""],
          line,
          column: 1,
          message: `${r.file}:${line}:1: settings.${JSON.stringify(issue.setting ?? "")}: ${issue.message}`,
        });
      }
      return undefined;
    }
    const config = validation.config;
    return {
      profile: config.profile,
      electionTimeoutMs: config.electionTimeoutMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      preVote: config.preVote,
      checkQuorum: config.checkQuorum,
      entriesPerAppendMax: config.entriesPerAppendMax,
      maxBatchDelayMs: config.maxBatchDelayMs,
      snapshotIntervalEntries: config.snapshotIntervalEntries,
      logEntriesMax: config.logEntriesMax,
    };
  }

  #network(at: Located | undefined): { conditions: NetworkConditions; connectionResets: boolean } | undefined {
    if (at === undefined) return { conditions: NETWORK_DEFAULTS, connectionResets: true };
    const conditions = this.#conditions(at, "the network between nodes", false);
    const resetsAt = this.reader.entries(at).get("connection_resets");
    const connectionResets = resetsAt ? this.reader.boolean(resetsAt, "whether a crashed node's connections reset at once") : true;
    if (conditions === undefined || connectionResets === undefined) return undefined;
    return { conditions: { ...NETWORK_DEFAULTS, ...conditions }, connectionResets };
  }

  /** Link conditions: latency, jitter, distribution, loss, duplicate (and from/to/both_ways for steps). */
  #conditions(at: Located, what: string, step: boolean): Partial<NetworkConditions> | undefined {
    const r = this.reader;
    const keys = ["latency", "jitter", "distribution", "loss", "duplicate"];
    const fields = r.mapping(at, {
      allowed: step ? [...keys, "from", "to", "both_ways"] : [...keys, "connection_resets"],
      required: step ? ["from", "to"] : [],
      what,
    });
    if (fields === undefined) return undefined;
    const result: { -readonly [K in keyof NetworkConditions]?: NetworkConditions[K] } = {};
    const latency = fields.get("latency");
    if (latency) result.latencyMs = r.duration(latency, { maximumMs: 60_000, what: "the one-way latency", bareUnit: "ms" });
    const jitter = fields.get("jitter");
    if (jitter) result.jitterMs = r.duration(jitter, { maximumMs: 60_000, what: "the latency's spread", bareUnit: "ms" });
    const distribution = fields.get("distribution");
    if (distribution) {
      result.distribution = r.word<LatencyDistributionName>(distribution, ["uniform", "normal", "long-tail"], "how latency is drawn");
    }
    const loss = fields.get("loss");
    if (loss) result.lossRate = r.number(loss, 0, 1, "the share of messages lost");
    const duplicate = fields.get("duplicate");
    if (duplicate) result.duplicateRate = r.number(duplicate, 0, 1, "the share of messages delivered twice");
    if (step && !keys.some((key) => fields.has(key))) {
      r.report("missing_field", at, `a link step sets at least one of ${keys.join(", ")}`);
      return undefined;
    }
    for (const value of Object.values(result)) if (value === undefined) return undefined;
    return result;
  }

  #clock(at: Located | undefined): number | undefined {
    if (at === undefined) return 0;
    const r = this.reader;
    const fields = r.mapping(at, { allowed: ["drift"], what: "the nodes' clocks" });
    if (fields === undefined) return undefined;
    const drift = fields.get("drift");
    return drift ? r.number(drift, 0, 0.4, "the largest clock drift (0.01 is 1% fast or slow)") : 0;
  }

  #disk(at: Located | undefined): { fsyncMs: number; tornWrites: boolean } | undefined {
    if (at === undefined) return { fsyncMs: 0, tornWrites: false };
    const r = this.reader;
    const fields = r.mapping(at, { allowed: ["fsync", "torn_writes"], what: "the nodes' disks" });
    if (fields === undefined) return undefined;
    const fsync = fields.get("fsync");
    const fsyncMs = fsync ? r.duration(fsync, { maximumMs: 10_000, what: "how long a disk write takes to become durable", bareUnit: "ms" }) : 0;
    const torn = fields.get("torn_writes");
    const tornWrites = torn ? r.boolean(torn, "whether a crash may tear the last write") : false;
    if (fsyncMs === undefined || tornWrites === undefined) return undefined;
    return { fsyncMs, tornWrites };
  }

  #workload(at: Located | undefined): ScenarioWorkload | undefined {
    if (at === undefined) return WORKLOAD_DEFAULTS;
    const r = this.reader;
    const fields = r.mapping(at, {
      allowed: ["clients", "keys", "think_time", "client_latency", "timeout", "reads", "cas", "deletes"],
      what: "the client workload",
    });
    if (fields === undefined) return undefined;
    const read = <T>(key: string, fallback: T, reading: (at: Located) => T | undefined): T | undefined => {
      const value = fields.get(key);
      return value === undefined ? fallback : reading(value);
    };
    const d = WORKLOAD_DEFAULTS;
    const workload = {
      clients: read("clients", d.clients, (v) => r.integer(v, 0, 64, "the number of clients")),
      keys: read("keys", d.keys, (v) => r.integer(v, 1, 1_000, "the number of keys")),
      thinkTimeMsMean: read("think_time", d.thinkTimeMsMean, (v) =>
        r.duration(v, { minimumMs: 1, maximumMs: 60_000, what: "the mean pause between a client's operations", bareUnit: "ms" }),
      ),
      clientLatencyMs: read("client_latency", d.clientLatencyMs, (v) => r.duration(v, { maximumMs: 10_000, what: "the latency between a client and a node", bareUnit: "ms" })),
      clientTimeoutMs: read("timeout", d.clientTimeoutMs, (v) => r.duration(v, { minimumMs: 10, maximumMs: 600_000, what: "how long a client waits for an answer" })),
      readRatio: read("reads", d.readRatio, (v) => r.number(v, 0, 1, "the share of reads")),
      casRatio: read("cas", d.casRatio, (v) => r.number(v, 0, 1, "the share of compare-and-set writes")),
      deleteRatio: read("deletes", d.deleteRatio, (v) => r.number(v, 0, 1, "the share of deletes")),
    };
    for (const value of Object.values(workload)) if (value === undefined) return undefined;
    const complete = workload as ScenarioWorkload;
    if (complete.readRatio + complete.casRatio + complete.deleteRatio > 1) {
      r.report("inconsistent", at, `reads + cas + deletes must be at most 1 (the rest are puts): received ${complete.readRatio + complete.casRatio + complete.deleteRatio}`);
      return undefined;
    }
    return complete;
  }

  // -----------------------------------------------------------------------------------------------
  // Timeline

  #timeline(at: Located, limitMs: number): Step[] {
    const r = this.reader;
    const items = r.list(at, "the timeline: steps like \"- at: 10s\" with one verb such as \"crash: n2\"");
    if (items === undefined) return [];
    const steps: Step[] = [];
    for (const item of items) {
      const step = this.#step(item, limitMs);
      if (step !== undefined) steps.push(step);
    }
    return steps;
  }

  #step(at: Located, limitMs: number): Step | undefined {
    const r = this.reader;
    if (!r.isMapping(at)) {
      r.reject("invalid_type", at, 'a step: a mapping with "at" and one verb, like "{ at: 10s, crash: n2 }"');
      return undefined;
    }
    const all = r.entries(at);
    const verbs = [...all.keys()].filter((key) => (VERBS as readonly string[]).includes(key));
    const fields = r.mapping(at, {
      allowed: [...STEP_KEYS, ...VERBS],
      required: ["at"],
      what: "a timeline step",
      unknownCode: "unknown_verb",
      expected: `a verb (${VERBS.join(", ")}) or one of ${STEP_KEYS.join(", ")}`,
    });
    if (fields === undefined) return undefined;
    this.#declare(fields);
    if (verbs.length === 0) {
      const unknown = [...all.keys()].filter((key) => !STEP_KEYS.includes(key));
      if (unknown.length === 0) r.report("missing_field", at, `a step needs a verb: one of ${VERBS.join(", ")}`);
      return undefined;
    }
    if (verbs.length > 1) {
      r.report("inconsistent", at, `a step has one verb: found ${verbs.join(" and ")}; write one step for each`);
      return undefined;
    }
    const verb = verbs[0] as Verb;
    const atMs = r.duration(fields.get("at")!, { maximumMs: limitMs, what: "when the step runs, from the scenario's start" });
    const everyAt = fields.get("every");
    const untilAt = fields.get("until");
    let everyMs: number | undefined;
    let untilMs: number | undefined;
    if (everyAt !== undefined || untilAt !== undefined) {
      if (everyAt === undefined || untilAt === undefined) {
        r.report("missing_field", at, 'a repeated step needs both "every" and "until"');
        return undefined;
      }
      everyMs = r.duration(everyAt, { minimumMs: 10, maximumMs: limitMs, what: "how often the step repeats" });
      untilMs = r.duration(untilAt, { maximumMs: limitMs, what: "when the repetition stops", endMs: limitMs });
      if (atMs !== undefined && untilMs !== undefined && untilMs <= atMs) {
        r.reject("inconsistent", untilAt, `a time after "at" (${formatDuration(atMs)})`);
        return undefined;
      }
    }
    const id = fields.get("id") ? r.string(fields.get("id")!, "a request name like \"add-n4\"") : undefined;
    if (id !== undefined && !REQUEST_VERBS.includes(verb)) {
      r.report("inconsistent", fields.get("id")!, `only ${REQUEST_VERBS.join(", ")} steps make requests an expectation can name; "${verb}" does not`);
    } else if (id !== undefined && everyMs !== undefined) {
      r.report("inconsistent", fields.get("id")!, "a repeated step makes many requests: give the id to a step that runs once");
    } else if (id !== undefined && this.#requestIds.has(id)) {
      r.reject("inconsistent", fields.get("id")!, "an id no other step has");
    }
    if (id !== undefined) this.#requestIds.add(id);
    const bindAt = fields.get("as");
    let bind: string | undefined;
    if (bindAt) {
      bind = r.string(bindAt, "a name to refer to the step's nodes later as $name");
      if (bind !== undefined && !BIND_PATTERN.test(bind)) {
        r.reject("invalid_value", bindAt, 'a name of letters, digits, "-" and "_", starting with a letter, like "old-leader"');
        bind = undefined;
      }
    }
    const why = fields.get("why") ? r.string(fields.get("why")!) : undefined;
    const action = this.#action(verb, fields.get(verb)!, atMs);
    if (action === undefined || atMs === undefined) return undefined;
    return { atMs, everyMs, untilMs, id, bind, why, action, line: r.line(at) };
  }

  /**
   * Notes a step's `as` name and `id` even when the step itself has problems, so that later references
   * to them are not reported as well: one mistake, one message.
   */
  #declare(fields: Map<string, Located>): void {
    const r = this.reader;
    const as = fields.get("as") ? r.scalar(fields.get("as")!) : undefined;
    const id = fields.get("id") ? r.scalar(fields.get("id")!) : undefined;
    const at = fields.get("at") ? r.scalar(fields.get("at")!) : undefined;
    const parsed = typeof at === "string" ? parseDurationMs(at) : undefined;
    const atMs = parsed?.ok ? parsed.value : 0;
    if (typeof as === "string") this.#declaredBindings.set(as, Math.min(atMs, this.#declaredBindings.get(as) ?? Infinity));
    if (typeof id === "string") this.#declaredIds.add(id);
  }

  #declaredBindings = new Map<string, number>();
  #declaredIds = new Set<string>();

  #action(verb: Verb, at: Located, timeMs: number | undefined): Action | undefined {
    const r = this.reader;
    const nodesOnly = (allowed: readonly string[] = []): { nodes: NodeSet; fields: Map<string, Located> | undefined } | undefined => {
      if (!r.isMapping(at)) {
        const nodes = this.#nodeSet(at, timeMs);
        return nodes === undefined ? undefined : { nodes, fields: undefined };
      }
      const fields = r.mapping(at, { allowed: ["nodes", ...allowed], required: ["nodes"], what: `a ${verb} step` });
      if (fields === undefined || !fields.has("nodes")) return undefined;
      const nodes = this.#nodeSet(fields.get("nodes")!, timeMs);
      return nodes === undefined ? undefined : { nodes, fields };
    };
    switch (verb) {
      case "crash": {
        const read = nodesOnly(["during_write"]);
        if (read === undefined) return undefined;
        const duringWriteAt = read.fields?.get("during_write");
        const duringWrite = duringWriteAt ? r.boolean(duringWriteAt, "whether the crash lands inside the node's next disk write") : false;
        return duringWrite === undefined ? undefined : { verb, nodes: read.nodes, duringWrite };
      }
      case "restart":
      case "pause":
      case "resume":
      case "isolate":
      case "fail_disk":
      case "repair_disk":
      case "corrupt_disk": {
        const read = nodesOnly();
        return read === undefined ? undefined : { verb, nodes: read.nodes };
      }
      case "slow_disk": {
        const fields = r.mapping(at, { allowed: ["nodes", "fsync"], required: ["nodes", "fsync"], what: "a slow_disk step" });
        if (fields === undefined || !fields.has("nodes") || !fields.has("fsync")) return undefined;
        const nodes = this.#nodeSet(fields.get("nodes")!, timeMs);
        const fsyncMs = r.duration(fields.get("fsync")!, { maximumMs: 10_000, what: "how long a disk write takes to become durable", bareUnit: "ms" });
        return nodes === undefined || fsyncMs === undefined ? undefined : { verb, nodes, fsyncMs };
      }
      case "clock_drift": {
        const fields = r.mapping(at, { allowed: ["nodes", "rate"], required: ["nodes", "rate"], what: "a clock_drift step" });
        if (fields === undefined || !fields.has("nodes") || !fields.has("rate")) return undefined;
        const nodes = this.#nodeSet(fields.get("nodes")!, timeMs);
        const rate = r.number(fields.get("rate")!, 0.5, 1.5, "how fast the node's clock runs (1.1 is 10% fast)", { exclusive: true });
        return nodes === undefined || rate === undefined ? undefined : { verb, nodes, rate };
      }
      case "partition":
        return this.#partition(at, timeMs);
      case "cut":
      case "hold":
      case "release": {
        const fields = r.mapping(at, { allowed: ["from", "to"], required: ["from", "to"], what: `a ${verb} step` });
        if (fields === undefined || !fields.has("from") || !fields.has("to")) return undefined;
        const from = this.#nodeSet(fields.get("from")!, timeMs);
        const to = this.#nodeSet(fields.get("to")!, timeMs);
        return from === undefined || to === undefined ? undefined : { verb, from, to };
      }
      case "heal": {
        const value = r.scalar(at);
        if (value === null || value === true || value === "all") return { verb };
        r.reject("invalid_value", at, '"all" (heal every partition, cut and link condition)');
        return undefined;
      }
      case "link": {
        const conditions = this.#conditions(at, "a link step", true);
        if (conditions === undefined) return undefined;
        const fields = r.entries(at);
        const from = this.#nodeSet(fields.get("from")!, timeMs);
        const to = this.#nodeSet(fields.get("to")!, timeMs);
        const bothWaysAt = fields.get("both_ways");
        const bothWays = bothWaysAt ? r.boolean(bothWaysAt, "whether the conditions apply in both directions") : true;
        if (from === undefined || to === undefined || bothWays === undefined) return undefined;
        return { verb, from, to, bothWays, conditions };
      }
      case "add_node":
      case "remove_node":
      case "transfer_leadership":
        return this.#request(verb, at, timeMs);
    }
  }

  /** add_node, remove_node, transfer_leadership: the target alone, or `{ node|to, via }`. */
  #request(verb: "add_node" | "remove_node" | "transfer_leadership", at: Located, timeMs: number | undefined): Action | undefined {
    const r = this.reader;
    const key = verb === "transfer_leadership" ? "to" : "node";
    let targetAt = at;
    let via: NodeSelector | undefined = { kind: "leader" };
    if (r.isMapping(at)) {
      const fields = r.mapping(at, { allowed: [key, "via"], required: [key], what: `a ${verb} step` });
      if (fields === undefined || !fields.has(key)) return undefined;
      targetAt = fields.get(key)!;
      if (fields.has("via")) via = this.#single(fields.get("via")!, timeMs);
    }
    if (verb === "add_node") {
      const id = this.#newNode(targetAt);
      return id === undefined || via === undefined ? undefined : { verb, node: id, via };
    }
    const target = this.#single(targetAt, timeMs);
    if (target === undefined || via === undefined) return undefined;
    return verb === "remove_node" ? { verb, node: target, via } : { verb, to: target, via };
  }

  #partition(at: Located, timeMs: number | undefined): Action | undefined {
    const r = this.reader;
    let groupsAt: Located = at;
    if (r.isMapping(at)) {
      const fields = r.mapping(at, { allowed: ["groups"], required: ["groups"], what: "a partition step" });
      if (fields === undefined || !fields.has("groups")) return undefined;
      groupsAt = fields.get("groups")!;
    }
    const expected = "groups of nodes, like [[n1], [n2, n3]]: no message crosses between groups; unlisted nodes reach everyone";
    const items = r.list(groupsAt, expected);
    if (items === undefined) return undefined;
    if (items.length < 2) {
      r.reject("invalid_value", groupsAt, `at least two ${expected}`);
      return undefined;
    }
    const groups: NodeSet[] = [];
    for (const item of items) {
      const group = this.#nodeSet(item, timeMs);
      if (group === undefined) return undefined;
      groups.push(group);
    }
    const seen = new Set<number>();
    for (const group of groups) {
      for (const selector of group) {
        if (selector.kind !== "node") continue;
        if (seen.has(selector.id)) {
          r.reject("inconsistent", groupsAt, `each node in at most one group: ${nodeName(selector.id)} is in two`);
          return undefined;
        }
        seen.add(selector.id);
      }
    }
    return { verb: "partition", groups };
  }

  /** `n4` for an add_node step: a new node's name. */
  #newNode(at: Located): number | undefined {
    const r = this.reader;
    const value = r.scalar(at);
    const match = typeof value === "string" ? /^n([1-9]\d*)$/.exec(value) : null;
    if (match === null) {
      r.reject("invalid_value", at, 'the new node\'s name, like "n4" (the next number after the cluster\'s nodes)');
      return undefined;
    }
    const id = Number(match[1]);
    this.#addedNodes.push({ at, id });
    return id;
  }

  #addedNodes: { at: Located; id: number }[] = [];
  #requestIds = new Set<string>();

  /** One node: a name, leader, follower or $name. */
  #single(at: Located, timeMs: number | undefined): NodeSelector | undefined {
    const r = this.reader;
    const value = r.scalar(at);
    if (typeof value !== "string") {
      r.reject("invalid_type", at, 'one node: a name like "n2", "leader", "follower" or a $name bound by an earlier step');
      return undefined;
    }
    const selector = this.#selector(at, value, timeMs);
    if (selector === undefined) return undefined;
    if (selector.kind === "followers" || selector.kind === "all") {
      r.reject("invalid_value", at, 'one node: a name like "n2", "leader", "follower" or a $name', undefined);
      return undefined;
    }
    return selector;
  }

  /** Nodes: one selector or a list of them. */
  #nodeSet(at: Located, timeMs: number | undefined): NodeSet | undefined {
    const r = this.reader;
    const items = r.isList(at) ? r.list(at, "nodes")! : [at];
    if (items.length === 0) {
      r.reject("invalid_value", at, "at least one node");
      return undefined;
    }
    const selectors: NodeSelector[] = [];
    for (const item of items) {
      const value = r.scalar(item);
      if (typeof value !== "string") {
        r.reject("invalid_type", item, 'a node: a name like "n2", or leader, follower, followers, all, or a $name');
        return undefined;
      }
      const selector = this.#selector(item, value, timeMs);
      if (selector === undefined) return undefined;
      selectors.push(selector);
    }
    return selectors;
  }

  #selector(at: Located, value: string, timeMs: number | undefined): NodeSelector | undefined {
    const r = this.reader;
    const text = value.trim();
    const named = /^n([1-9]\d*)$/.exec(text);
    let selector: NodeSelector;
    if (named !== null) selector = { kind: "node", id: Number(named[1]) };
    else if (text.startsWith("$") && BIND_PATTERN.test(text.slice(1))) selector = { kind: "bound", name: text.slice(1) };
    else if (SELECTOR_WORDS.includes(text)) selector = { kind: text as "leader" | "follower" | "followers" | "all" };
    else {
      r.reject("unknown_node", at, 'a node: a name like "n2", or leader, follower, followers, all, or a $name bound by an earlier step', nearest(text, SELECTOR_WORDS));
      return undefined;
    }
    this.#nodeReferences.push({ at, selector, timeMs });
    return selector;
  }

  /** Node names exist, add_node names come in order, `$name`s are bound before they are used. */
  #checkNodes(nodes: number, timeline: readonly Step[]): void {
    const r = this.reader;
    const context: NodeContext = { nodes, added: new Set(), bound: new Map() };
    // New nodes come in order (n4, then n5); naming one again retries the request for the same node.
    const adds = timeline.filter((step) => step.action.verb === "add_node").sort((a, b) => a.atMs - b.atMs);
    for (const step of adds) {
      const id = (step.action as { node: number }).node;
      if (context.added.has(id)) continue;
      const expected = nodes + context.added.size + 1;
      if (id !== expected) {
        const at = this.#addedNodes.find((added) => added.id === id)!.at;
        r.reject("unknown_node", at, `${nodeName(expected)}: new nodes are added in order, after ${nodeName(expected - 1)}`);
      }
      context.added.add(id);
    }
    for (const [name, atMs] of this.#declaredBindings) context.bound.set(name, atMs);
    const total = nodes + context.added.size;
    const names = total === 1 ? "n1" : `n1..${nodeName(total)}`;
    for (const reference of this.#nodeReferences) {
      const selector = reference.selector;
      if (selector.kind === "node" && (selector.id > total || selector.id < 1)) {
        r.reject("unknown_node", reference.at, `a node of this scenario: ${names}${context.added.size > 0 ? " (counting the nodes add_node steps add)" : ""}`);
      }
      if (selector.kind === "bound") {
        const boundAt = context.bound.get(selector.name);
        const known = [...context.bound.keys()];
        if (boundAt === undefined) {
          r.reject(
            "unknown_node",
            reference.at,
            known.length > 0 ? `one of ${known.map((k) => `$${k}`).join(", ")} (bound by "as:" in a step)` : 'a name bound by "as:" in an earlier step',
            nearest(selector.name, known) !== undefined ? `$${nearest(selector.name, known)}` : undefined,
          );
        } else if (reference.timeMs !== undefined && boundAt > reference.timeMs) {
          r.reject("inconsistent", reference.at, `a name bound before ${formatDuration(reference.timeMs)}: $${selector.name} is bound at ${formatDuration(boundAt)}`);
        }
      }
    }
  }

  // -----------------------------------------------------------------------------------------------
  // Expectations

  #expectations(at: Located, limitMs: number, timeline: readonly Step[]): Expectation[] {
    const r = this.reader;
    const items = r.list(at, 'the expectations: checks like "- leader: elected" with a window ("from", "until", "within" or "at")');
    if (items === undefined) return [];
    const requestIds = new Set([...timeline.map((step) => step.id).filter((id): id is string => id !== undefined), ...this.#declaredIds]);
    const expectations: Expectation[] = [];
    for (const item of items) {
      const expectation = this.#expectation(item, limitMs, requestIds);
      if (expectation !== undefined) expectations.push(expectation);
    }
    return expectations;
  }

  #expectation(at: Located, limitMs: number, requestIds: ReadonlySet<string>): Expectation | undefined {
    const r = this.reader;
    if (!r.isMapping(at)) {
      r.reject("invalid_type", at, 'an expectation: a mapping with one check, like "{ leader: elected, from: 20s, within: 10s }"');
      return undefined;
    }
    const all = r.entries(at);
    const checks = [...all.keys()].filter((key) => (CHECKS as readonly string[]).includes(key)) as CheckName[];
    if (checks.length > 1) {
      r.report("inconsistent", at, `an expectation has one check: found ${checks.join(" and ")}; write one expectation for each`);
      return undefined;
    }
    const check = checks[0];
    const options = check === undefined ? [] : CHECK_OPTIONS[check];
    const allOptions = [...new Set(Object.values(CHECK_OPTIONS).flat())];
    const fields = r.mapping(at, {
      allowed: [...WINDOW_KEYS, ...CHECKS, ...options],
      what: check === undefined ? "an expectation" : `a ${check} expectation`,
      suggestFrom: allOptions,
      expected: `a check (${CHECKS.join(", ")}) or one of ${[...WINDOW_KEYS, ...options].join(", ")}`,
    });
    if (fields === undefined) return undefined;
    if (check === undefined) {
      if ([...all.keys()].every((key) => WINDOW_KEYS.includes(key) || allOptions.includes(key))) {
        r.report("missing_field", at, `an expectation needs a check: one of ${CHECKS.join(", ")}`);
      }
      return undefined;
    }
    const window = this.#window(fields, at, limitMs, check);
    const parsed = this.#check(check, fields, window, requestIds);
    const why = fields.get("why") ? r.string(fields.get("why")!) : undefined;
    if (window === undefined || parsed === undefined) return undefined;
    return { window, check: parsed, why, line: r.line(at) };
  }

  /** from/until/within/at; point checks (members, acknowledged_writes) default to the end. */
  #window(fields: Map<string, Located>, at: Located, limitMs: number, check: CheckName): Window | undefined {
    const r = this.reader;
    const time = (key: string, what: string): number | undefined =>
      r.duration(fields.get(key)!, { maximumMs: limitMs, what, endMs: limitMs });
    const pointCheck = check === "members" || check === "acknowledged_writes";
    if (fields.has("at")) {
      for (const key of ["from", "until", "within"]) {
        if (fields.has(key)) {
          r.report("inconsistent", fields.get(key)!, `"at" names one moment: leave out "${key}", or use "from" and "until" for a window`);
          return undefined;
        }
      }
      const atMs = time("at", "the moment the check is made");
      return atMs === undefined ? undefined : { fromMs: atMs, untilMs: atMs };
    }
    if (pointCheck && !fields.has("from") && !fields.has("until") && !fields.has("within")) return { fromMs: limitMs, untilMs: limitMs };
    const fromMs = fields.has("from") ? time("from", "when the window opens") : 0;
    if (fields.has("until") && fields.has("within")) {
      r.report("inconsistent", fields.get("within")!, '"until" and "within" both end the window: keep one');
      return undefined;
    }
    let untilMs: number | undefined = limitMs;
    if (fields.has("until")) untilMs = time("until", "when the window closes");
    if (fields.has("within")) {
      const withinMs = r.duration(fields.get("within")!, { minimumMs: 1, maximumMs: limitMs, what: "how long after \"from\" the window closes" });
      if (withinMs !== undefined && fromMs !== undefined) {
        untilMs = fromMs + withinMs;
        if (untilMs > limitMs) {
          r.reject("out_of_range", fields.get("within")!, `a window that closes by the scenario's end (${formatDuration(limitMs)}): from ${formatDuration(fromMs)} it closes at ${formatDuration(untilMs)}`);
          return undefined;
        }
      }
    }
    if (fromMs === undefined || untilMs === undefined) return undefined;
    if (untilMs < fromMs) {
      r.reject("inconsistent", fields.get("until") ?? at, `a window that closes after it opens (from ${formatDuration(fromMs)})`);
      return undefined;
    }
    return { fromMs, untilMs };
  }

  #check(check: CheckName, fields: Map<string, Located>, window: Window | undefined, requestIds: ReadonlySet<string>): Check | undefined {
    const r = this.reader;
    const value = fields.get(check)!;
    const timeMs = window?.untilMs;
    switch (check) {
      case "leader": {
        const state = r.word(value, ["elected", "none", "stable"] as const, "the leader check");
        const is = fields.get("is") ? this.#single(fields.get("is")!, timeMs) : undefined;
        const not = fields.get("not") ? this.#nodeSet(fields.get("not")!, timeMs) : undefined;
        if (state === undefined || (fields.has("is") && is === undefined) || (fields.has("not") && not === undefined)) return undefined;
        if (state === "none" && (is !== undefined || not !== undefined)) {
          r.report("inconsistent", value, '"is" and "not" name the leader: they do not apply to "leader: none"');
          return undefined;
        }
        return { check, state, is, not };
      }
      case "elections": {
        const bounds = r.mapping(value, { allowed: ["min", "max"], what: "bounds on the number of elections, like { max: 0 }" });
        if (bounds === undefined) return undefined;
        const min = bounds.get("min") ? r.integer(bounds.get("min")!, 0, 1_000_000, "the fewest elections") : undefined;
        const max = bounds.get("max") ? r.integer(bounds.get("max")!, 0, 1_000_000, "the most elections") : undefined;
        if (!bounds.has("min") && !bounds.has("max")) {
          r.report("missing_field", value, 'bounds on the number of elections need "min", "max" or both');
          return undefined;
        }
        if ((bounds.has("min") && min === undefined) || (bounds.has("max") && max === undefined)) return undefined;
        return { check, min, max };
      }
      case "term": {
        const state = r.word(value, ["stable"] as const, "the term check");
        return state === undefined ? undefined : { check, state };
      }
      case "writes":
      case "reads":
        return this.#probeCheck(check, value, fields, timeMs);
      case "acknowledged_writes": {
        const state = r.word(value, ["present"] as const, "the acknowledged-writes check");
        return state === undefined ? undefined : { check, state };
      }
      case "request": {
        const id = r.string(value, "the id of an add_node, remove_node or transfer_leadership step");
        if (id !== undefined && !requestIds.has(id)) {
          r.reject("invalid_value", value, `the id of a request step: ${[...requestIds].map((x) => JSON.stringify(x)).join(", ") || 'no step has an "id"'}`, nearest(id, [...requestIds]));
          return undefined;
        }
        if (!fields.has("result")) {
          r.report("missing_field", value, 'a request expectation needs "result: accepted" or "result: rejected"');
          return undefined;
        }
        const result = r.word(fields.get("result")!, ["accepted", "rejected"] as const, "the request's outcome");
        const error = fields.get("error") ? r.string(fields.get("error")!, 'an error code like "not_leader"') : undefined;
        const namesLeader = fields.get("names_leader") ? r.boolean(fields.get("names_leader")!, "whether the refusal names the leader") : undefined;
        if (id === undefined || result === undefined) return undefined;
        if (result === "accepted" && (error !== undefined || namesLeader !== undefined)) {
          r.report("inconsistent", fields.get("result")!, '"error" and "names_leader" describe a refusal: they do not apply to "result: accepted"');
          return undefined;
        }
        return { check, id, result, error, namesLeader };
      }
      case "caught_up": {
        const node = this.#single(value, timeMs);
        const bySnapshot = fields.get("by_snapshot") ? r.boolean(fields.get("by_snapshot")!, "whether the node must have caught up through a snapshot") : false;
        return node === undefined || bySnapshot === undefined ? undefined : { check, node, bySnapshot };
      }
      case "members": {
        const voters = this.#nodeSet(value, timeMs);
        return voters === undefined ? undefined : { check, voters };
      }
    }
  }

  #probeCheck(check: "writes" | "reads", value: Located, fields: Map<string, Located>, timeMs: number | undefined): Check | undefined {
    const r = this.reader;
    const outcome = r.word(value, ["succeed", "read-only"] as const, `the ${check} check`);
    const everyMs = fields.get("every")
      ? r.duration(fields.get("every")!, { minimumMs: 10, maximumMs: DURATION_MS_MAX, what: "how often a probe is sent" })
      : PROBE_EVERY_MS_DEFAULT;
    const on = fields.get("on") ? this.#nodeSet(fields.get("on")!, timeMs) : undefined;
    const fastMs = fields.get("fast")
      ? r.duration(fields.get("fast")!, { minimumMs: 1, maximumMs: 600_000, what: "how quickly a refusal must come back", bareUnit: "ms" })
      : PROBE_FAST_MS_DEFAULT;
    const ratioMin = fields.get("ratio") ? r.number(fields.get("ratio")!, 0, 1, "the share of probes that must succeed") : 1;
    if (outcome === undefined || everyMs === undefined || fastMs === undefined || ratioMin === undefined) return undefined;
    if (fields.has("on") && on === undefined) return undefined;
    if (outcome === "succeed" && fields.has("fast")) {
      r.report("inconsistent", fields.get("fast")!, `"fast" bounds refusals: it applies to "${check}: read-only", not "${check}: succeed"`);
      return undefined;
    }
    if (outcome === "read-only" && fields.has("ratio")) {
      r.report("inconsistent", fields.get("ratio")!, `"ratio" applies to "${check}: succeed": every probe must be refused in "${check}: read-only"`);
      return undefined;
    }
    return { check, outcome, everyMs, on, fastMs, ratioMin };
  }
}
