/**
 * The pgraft settings layer: merges settings from files and the command line (later wins), validates
 * them into a typed PgraftConfig with unit-named fields, and reports every problem at once.
 *
 * Rules beyond the value types (README.md in this folder explains each for operators):
 * - pgraft.profile (low, medium, high) sets election_timeout and heartbeat_interval unless either is set
 *   explicitly, in any source; an explicit value that differs from the profile's is a warning.
 * - pgraft.node_id defaults to the 1-based position of pgraft.name in pgraft.initial_cluster, and if set
 *   must equal it: every node derives the ids of the others from those positions. A node joining a
 *   running cluster (initial_cluster_state = existing) may set another id, the one it was added under.
 * - pgraft.listen_address defaults to this node's address in pgraft.initial_cluster.
 * - pgraft.data_dir defaults to $PGDATA/pgraft; relative paths resolve against $PGDATA. The environment
 *   is an argument: nothing here reads process.env.
 * - Peers authenticate with a shared secret (pgraft.auth_secret_file or pgraft.auth_secret, at least 16
 *   characters) unless pgraft.auth = off; TLS is on when pgraft.tls_cert_file and tls_key_file are set.
 */
import { isAbsolute, join, normalize } from "node:path";
import { assert } from "../assert.ts";
import { ConfigError, type ConfigIssue, type ConfigWarning } from "./config-error.ts";
import {
  findSetting,
  SETTING_PREFIX,
  SETTINGS,
  settingDefinition,
  suggestSettingName,
  TUNING_PROFILE_NAMES,
  TUNING_PROFILES,
  type SettingDefinition,
  type TuningProfileName,
} from "./setting-definitions.ts";
import {
  formatHostAndPort,
  parseBoolean,
  parseDurationMs,
  parseEnum,
  parseHostAndPort,
  parseInitialCluster,
  parseInteger,
  parseName,
  quoteValue,
  type HostAndPort,
  type ValueResult,
} from "./setting-values.ts";
import { nodeFileSystem, type SettingsFileSystem } from "./settings-file-system.ts";
import {
  COMMAND_LINE_SOURCE,
  parseCommandLineSettings,
  readSettingsFile,
  type SettingAssignment,
  type SettingsFileMode,
  type SettingsParseResult,
} from "./settings-syntax.ts";

export interface ClusterMember {
  readonly name: string;
  /** The member's 1-based position in pgraft.initial_cluster. */
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

/** How peers prove they belong to the cluster. */
export type PeerAuthentication =
  | { readonly mode: "off" }
  | {
      readonly mode: "shared_secret";
      readonly secret: string;
      /** The file the secret was read from, or undefined when pgraft.auth_secret gave it inline. */
      readonly secretFile: string | undefined;
    };

/** Peer TLS files (absolute paths). */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle peers' certificates must chain to; undefined uses the system's trusted CAs. */
  readonly caFile: string | undefined;
}

export interface PgraftConfig {
  readonly clusterId: string;
  readonly name: string;
  readonly nodeId: number;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly initialCluster: readonly ClusterMember[];
  /** "new": found the cluster with initial_cluster; "existing": join a cluster that added this node. */
  readonly initialClusterState: "new" | "existing";
  /** What the node does once it learns it was removed from the cluster (pgraft.on_removed). */
  readonly onRemoved: "exit" | "idle";
  readonly dataDir: string;
  readonly profile: TuningProfileName | undefined;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly entriesPerAppendMax: number;
  readonly maxBatchDelayMs: number;
  readonly snapshotIntervalEntries: number;
  readonly logEntriesMax: number;
  readonly metricsEnabled: boolean;
  readonly metricsPort: number;
  /** pgraft.watch_progress_notify_interval: the period of watch progress notifications. */
  readonly watchProgressNotifyIntervalMs: number;
  /** pgraft.fence_writes: PostgreSQL refuses writes unless this node leads with a quorum. */
  readonly fenceWrites: boolean;
  /** pgraft.database: where the SQL interface lives. */
  readonly database: string;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly clientHost: string;
  readonly clientPort: number;
  /** Member name -> "host:port" of its client API (pgraft.client_urls); empty when not set. */
  readonly clientUrls: Readonly<Record<string, string>>;
  readonly peerAuthentication: PeerAuthentication;
  readonly tls: TlsFiles | undefined;
}

/** The parts of the process environment the settings depend on. Pass process.env or a literal. */
export interface SettingsEnvironment {
  readonly PGDATA?: string | undefined;
}

/** Where each setting's effective value came from: "postgresql.conf:12", "command line", "default", ... */
export type SettingSources = Readonly<Record<string, string>>;

export interface ValidateSettingsOptions {
  readonly environment: SettingsEnvironment;
  /** Reads pgraft.auth_secret_file and checks the TLS files; node:fs when omitted. */
  readonly fileSystem?: SettingsFileSystem;
}

export type SettingsValidation =
  | { readonly ok: true; readonly config: PgraftConfig; readonly warnings: ConfigWarning[]; readonly sources: SettingSources }
  | { readonly ok: false; readonly issues: ConfigIssue[]; readonly warnings: ConfigWarning[] };

export const DEFAULT_SOURCE = "default";

/** Peer secrets shorter than this are refused. */
export const AUTH_SECRET_LENGTH_MIN = 16;

/** A parsed value with the text it came from and where that text was written. */
interface Read<T> {
  readonly value: T;
  readonly raw: string;
  readonly source: string;
}

interface Context {
  readonly explicit: Map<string, SettingAssignment>;
  readonly issues: ConfigIssue[];
  readonly warnings: ConfigWarning[];
  readonly sources: Record<string, string>;
  readonly environment: SettingsEnvironment;
  readonly fileSystem: SettingsFileSystem;
}

/** Combines layers of assignments; for a name set in several, the last one wins. */
export function mergeSettings(...layers: readonly (readonly SettingAssignment[])[]): SettingAssignment[] {
  const merged = new Map<string, SettingAssignment>();
  for (const layer of layers) {
    for (const assignment of layer) merged.set(assignment.name.toLowerCase(), assignment);
  }
  return [...merged.values()];
}

/**
 * Validates assignments (in order: a later one for the same name wins) into a PgraftConfig, or returns
 * every issue found. Warnings come back either way.
 */
export function validateSettings(assignments: readonly SettingAssignment[], options: ValidateSettingsOptions): SettingsValidation {
  const context: Context = {
    explicit: new Map(),
    issues: [],
    warnings: [],
    sources: {},
    environment: options.environment,
    fileSystem: options.fileSystem ?? nodeFileSystem,
  };
  collectExplicit(context, assignments);
  const identity = readIdentity(context);
  const timing = readTiming(context);
  const client = readAddress(context, "pgraft.client_address");
  const clientUrls = readClientUrls(context, identity.initialCluster);
  const metricsEnabled = readBoolean(context, "pgraft.metrics_enabled");
  const metricsPort = readNumber(context, "pgraft.metrics_port");
  checkPorts(context, { listen: identity.listen, client, metricsEnabled, metricsPort });
  const values = {
    entriesPerAppendMax: readNumber(context, "pgraft.batch_size")?.value,
    maxBatchDelayMs: readNumber(context, "pgraft.max_batch_delay")?.value,
    snapshotIntervalEntries: readNumber(context, "pgraft.snapshot_interval")?.value,
    logEntriesMax: readNumber(context, "pgraft.max_log_entries")?.value,
    watchProgressNotifyIntervalMs: readNumber(context, "pgraft.watch_progress_notify_interval")?.value,
    preVote: readSafetyFlag(context, "pgraft.pre_vote"),
    checkQuorum: readSafetyFlag(context, "pgraft.check_quorum"),
    dataDir: readDataDirectory(context),
    initialClusterState: read(context, "pgraft.initial_cluster_state", (raw) => parseEnum(raw, ["new", "existing"] as const))?.value,
    onRemoved: read(context, "pgraft.on_removed", (raw) => parseEnum(raw, ["exit", "idle"] as const))?.value,
    peerAuthentication: readPeerAuthentication(context),
    tls: readTls(context),
    fenceWrites: readBoolean(context, "pgraft.fence_writes")?.value,
    database: read(context, "pgraft.database", parseName)?.value,
  };
  if (context.issues.length > 0) return { ok: false, issues: context.issues, warnings: context.warnings };
  const config: PgraftConfig = Object.freeze({
    clusterId: defined(identity.clusterId?.value, "clusterId"),
    name: defined(identity.name?.value, "name"),
    nodeId: defined(identity.nodeId, "nodeId"),
    listenHost: defined(identity.listen?.value.host, "listenHost"),
    listenPort: defined(identity.listen?.value.port, "listenPort"),
    initialCluster: Object.freeze(defined(identity.initialCluster, "initialCluster")),
    initialClusterState: defined(values.initialClusterState, "initialClusterState"),
    onRemoved: defined(values.onRemoved, "onRemoved"),
    dataDir: defined(values.dataDir, "dataDir"),
    profile: timing.profile?.value,
    electionTimeoutMs: defined(timing.electionTimeout?.value, "electionTimeoutMs"),
    heartbeatIntervalMs: defined(timing.heartbeatInterval?.value, "heartbeatIntervalMs"),
    entriesPerAppendMax: defined(values.entriesPerAppendMax, "entriesPerAppendMax"),
    maxBatchDelayMs: defined(values.maxBatchDelayMs, "maxBatchDelayMs"),
    snapshotIntervalEntries: defined(values.snapshotIntervalEntries, "snapshotIntervalEntries"),
    logEntriesMax: defined(values.logEntriesMax, "logEntriesMax"),
    metricsEnabled: defined(metricsEnabled?.value, "metricsEnabled"),
    metricsPort: defined(metricsPort?.value, "metricsPort"),
    watchProgressNotifyIntervalMs: defined(values.watchProgressNotifyIntervalMs, "watchProgressNotifyIntervalMs"),
    fenceWrites: defined(values.fenceWrites, "fenceWrites"),
    database: defined(values.database, "database"),
    preVote: defined(values.preVote, "preVote"),
    checkQuorum: defined(values.checkQuorum, "checkQuorum"),
    clientHost: defined(client?.value.host, "clientHost"),
    clientPort: defined(client?.value.port, "clientPort"),
    clientUrls: Object.freeze(clientUrls),
    peerAuthentication: defined(values.peerAuthentication, "peerAuthentication"),
    tls: values.tls,
  });
  return { ok: true, config, warnings: context.warnings, sources: Object.freeze({ ...context.sources }) };
}

/** With no issues recorded, every value must have been read: a missing one is our bug. */
function defined<T>(value: T | undefined, field: string): T {
  assert(value !== undefined, `validateSettings(): ${field} is undefined although no issue was recorded`);
  return value;
}

function collectExplicit(context: Context, assignments: readonly SettingAssignment[]): void {
  for (const assignment of assignments) {
    const name = assignment.name.toLowerCase();
    if (findSetting(name) !== undefined) {
      context.explicit.set(name, { ...assignment, name });
      continue;
    }
    const suggestion = suggestSettingName(name);
    const foreign = !name.startsWith(SETTING_PREFIX);
    const advice =
      suggestion !== undefined
        ? `did you mean ${quoteValue(suggestion)}?`
        : `remove it or correct the name; valid settings are ${SETTINGS.map((setting) => setting.name).join(", ")}`;
    context.issues.push({
      code: foreign ? "foreign_setting" : "unknown_setting",
      setting: name,
      value: assignment.value,
      source: assignment.source,
      message: `Unknown setting ${quoteValue(name)} (${assignment.source}): ${advice}`,
    });
  }
}

function shownValue(definition: SettingDefinition, raw: string): string {
  return definition.type === "secret" ? `(hidden, ${raw.length} characters)` : raw;
}

function pushInvalid(context: Context, definition: SettingDefinition, read: { raw: string; source: string }, problem: string, code: "invalid_value" | "out_of_range" = "invalid_value"): void {
  context.issues.push({
    code,
    setting: definition.name,
    value: shownValue(definition, read.raw),
    source: read.source,
    message: `Invalid value for ${quoteValue(definition.name)} (${read.source}): ${problem}`,
  });
}

/**
 * The explicit value of `name` parsed with `parse`, else its default; undefined when unset without a
 * default or invalid (an issue is then recorded). Records the value's source.
 */
function read<T>(context: Context, name: string, parse: (raw: string) => ValueResult<T>): Read<T> | undefined {
  const definition = settingDefinition(name);
  const assignment = context.explicit.get(name);
  if (assignment === undefined) {
    if (definition.defaultValue === undefined) return undefined;
    const parsed = parse(definition.defaultValue);
    assert(parsed.ok, `default of ${name} does not parse`);
    context.sources[name] = DEFAULT_SOURCE;
    return { value: parsed.value, raw: definition.defaultValue, source: DEFAULT_SOURCE };
  }
  const parsed = parse(assignment.value);
  if (!parsed.ok) {
    pushInvalid(context, definition, { raw: assignment.value, source: assignment.source }, parsed.problem);
    return undefined;
  }
  context.sources[name] = assignment.source;
  return { value: parsed.value, raw: assignment.value, source: assignment.source };
}

/** An integer or duration setting, range-checked. */
function readNumber(context: Context, name: string): Read<number> | undefined {
  const definition = settingDefinition(name);
  const parse = definition.type === "duration" ? parseDurationMs : parseInteger;
  const result = read(context, name, parse);
  if (result === undefined) return undefined;
  const minimum = definition.minimum ?? Number.MIN_SAFE_INTEGER;
  const maximum = definition.maximum ?? Number.MAX_SAFE_INTEGER;
  if (result.value >= minimum && result.value <= maximum) return result;
  const unit = definition.unit === "ms" ? " ms" : "";
  const converted = definition.unit === "ms" && result.raw.trim() !== String(result.value);
  const shown = converted ? `${quoteValue(result.raw)} (${result.value} ms)` : quoteValue(result.raw);
  const side = result.value < minimum ? `below the minimum of ${minimum}${unit}` : `above the maximum of ${maximum}${unit}`;
  pushInvalid(context, definition, result, `${shown} is ${side}; use a value from ${minimum}${unit} to ${maximum}${unit}`, "out_of_range");
  return undefined;
}

function readBoolean(context: Context, name: string): Read<boolean> | undefined {
  return read(context, name, parseBoolean);
}

function readAddress(context: Context, name: string): Read<HostAndPort> | undefined {
  return read(context, name, parseHostAndPort);
}

/** A string setting where an empty value means "not set", as PostgreSQL treats its own file settings. */
function readOptionalText(context: Context, name: string): Read<string> | undefined {
  const assignment = context.explicit.get(name);
  if (assignment === undefined || assignment.value === "") return undefined;
  context.sources[name] = assignment.source;
  return { value: assignment.value, raw: assignment.value, source: assignment.source };
}

function missingRequired(context: Context, name: string, advice: string): void {
  context.issues.push({
    code: "missing_required",
    setting: name,
    value: undefined,
    source: undefined,
    message: `Cannot start node: required setting ${quoteValue(name)} is not set; ${advice}`,
  });
}

interface Identity {
  readonly clusterId: Read<string> | undefined;
  readonly name: Read<string> | undefined;
  readonly initialCluster: ClusterMember[] | undefined;
  readonly nodeId: number | undefined;
  readonly listen: Read<HostAndPort> | undefined;
}

function readIdentity(context: Context): Identity {
  const clusterId = read(context, "pgraft.cluster_id", parseName);
  if (!context.explicit.has("pgraft.cluster_id")) {
    missingRequired(context, "pgraft.cluster_id", "set it to the same name on every node, for example pgraft.cluster_id = 'orders-cluster'");
  }
  const name = read(context, "pgraft.name", parseName);
  if (!context.explicit.has("pgraft.name")) {
    missingRequired(context, "pgraft.name", "set it to this node's name in pgraft.initial_cluster, for example pgraft.name = 'n1'");
  }
  const cluster = readInitialCluster(context);
  const nodeIdSetting = readNumber(context, "pgraft.node_id");
  const self = cluster !== undefined && name !== undefined ? findSelf(context, name, cluster) : undefined;
  // A node joining a running cluster keeps the id the leader added it under, which need not be its
  // position: ids of members removed before it are not reused (see checkNodeId).
  const joining = context.explicit.get("pgraft.initial_cluster_state")?.value.trim().replace(/^'(.*)'$/, "$1").toLowerCase() === "existing";
  const nodeId = self === undefined ? undefined : checkNodeId(context, self, nodeIdSetting, cluster!, joining);
  const members =
    cluster !== undefined && self !== undefined && nodeId !== undefined && nodeId !== self.nodeId
      ? cluster.value.map((member) => (member === self ? Object.freeze({ ...member, nodeId }) : member))
      : cluster?.value;
  let listen: Read<HostAndPort> | undefined;
  if (context.explicit.has("pgraft.listen_address")) {
    listen = readAddress(context, "pgraft.listen_address");
  } else if (self !== undefined) {
    const source = `this node's member of pgraft.initial_cluster (${cluster!.source})`;
    context.sources["pgraft.listen_address"] = source;
    listen = { value: { host: self.host, port: self.port }, raw: formatHostAndPort(self), source };
  } else {
    context.sources["pgraft.listen_address"] = DEFAULT_SOURCE;
    listen = { value: { host: "127.0.0.1", port: 7001 }, raw: "127.0.0.1:7001", source: DEFAULT_SOURCE };
  }
  return { clusterId, name, initialCluster: members, nodeId, listen };
}

function readInitialCluster(context: Context): Read<ClusterMember[]> | undefined {
  const name = "pgraft.initial_cluster";
  const assignment = context.explicit.get(name);
  if (assignment === undefined) {
    missingRequired(
      context,
      name,
      "list every founding member, the same on every node, for example " +
        "pgraft.initial_cluster = 'n1=10.0.0.1:7001,n2=10.0.0.2:7001,n3=10.0.0.3:7001'",
    );
    return undefined;
  }
  const parsed = parseInitialCluster(assignment.value);
  for (const problem of parsed.problems) {
    context.issues.push({
      code: problem.code,
      setting: name,
      value: assignment.value,
      source: assignment.source,
      message: `Invalid value for ${quoteValue(name)} (${assignment.source}): ${problem.problem}`,
    });
  }
  if (parsed.problems.length > 0) return undefined;
  context.sources[name] = assignment.source;
  const members = parsed.members.map((member, index) => Object.freeze({ ...member, nodeId: index + 1 }));
  return { value: members, raw: assignment.value, source: assignment.source };
}

function readClientUrls(context: Context, cluster: readonly ClusterMember[] | undefined): Record<string, string> {
  const name = "pgraft.client_urls";
  const assignment = context.explicit.get(name);
  if (assignment === undefined || assignment.value.trim() === "") {
    context.sources[name] = DEFAULT_SOURCE;
    return {};
  }
  const parsed = parseInitialCluster(assignment.value);
  const issue = (code: ConfigIssue["code"], problem: string): void => {
    context.issues.push({ code, setting: name, value: assignment.value, source: assignment.source, message: `Invalid value for ${quoteValue(name)} (${assignment.source}): ${problem}` });
  };
  for (const problem of parsed.problems) issue(problem.code, problem.problem);
  const urls: Record<string, string> = {};
  for (const member of parsed.members) {
    if (cluster !== undefined && !cluster.some((known) => known.name === member.name)) {
      const listed = cluster.map((known) => quoteValue(known.name)).join(", ");
      issue("inconsistent", `${quoteValue(member.name)} is not a member of pgraft.initial_cluster, which lists ${listed}; use the same names in both`);
      continue;
    }
    urls[member.name] = formatHostAndPort(member);
  }
  context.sources[name] = assignment.source;
  return urls;
}

function findSelf(context: Context, name: Read<string>, cluster: Read<ClusterMember[]>): ClusterMember | undefined {
  const self = cluster.value.find((member) => member.name === name.value);
  if (self !== undefined) return self;
  const listed = cluster.value.map((member) => quoteValue(member.name)).join(", ");
  context.issues.push({
    code: "name_not_in_cluster",
    setting: "pgraft.name",
    value: name.value,
    source: name.source,
    message:
      `Cannot start node: pgraft.name ${quoteValue(name.value)} (${name.source}) is not a member of ` +
      `pgraft.initial_cluster (${cluster.source}), which lists ${listed}; ` +
      `add ${name.value}=host:port to pgraft.initial_cluster or correct pgraft.name`,
  });
  return undefined;
}

function checkNodeId(context: Context, self: ClusterMember, setting: Read<number> | undefined, cluster: Read<ClusterMember[]>, joining: boolean): number | undefined {
  const clusterSource = cluster.source;
  if (setting === undefined) {
    if (context.explicit.has("pgraft.node_id")) return undefined; // Invalid: already reported.
    context.sources["pgraft.node_id"] = `position of pgraft.name in pgraft.initial_cluster (${clusterSource})`;
    return self.nodeId;
  }
  if (setting.value === self.nodeId) return self.nodeId;
  const refuse = (message: string): undefined => {
    context.issues.push({ code: "inconsistent", setting: "pgraft.node_id", value: setting.raw, source: setting.source, message });
    return undefined;
  };
  if (joining) {
    // The other entries are founders, known by their positions; the joining node is known by the id
    // it was added under, which must not be one of theirs.
    const taken = cluster.value.find((member) => member !== self && member.nodeId === setting.value);
    if (taken === undefined) return setting.value;
    return refuse(
      `Cannot start node: pgraft.node_id is ${setting.value} (${setting.source}), the id of ${quoteValue(taken.name)} (member ${taken.nodeId} ` +
        `of pgraft.initial_cluster, ${clusterSource}); use the id this node was added under (pgraft member add --id)`,
    );
  }
  return refuse(
    `Cannot start node: pgraft.node_id is ${setting.value} (${setting.source}) but ${quoteValue(self.name)} is member ` +
      `${self.nodeId} of pgraft.initial_cluster (${clusterSource}), and every node derives node ids from those positions; ` +
      `remove pgraft.node_id or set it to ${self.nodeId}`,
  );
}

interface Timing {
  readonly profile: Read<TuningProfileName> | undefined;
  readonly electionTimeout: Read<number> | undefined;
  readonly heartbeatInterval: Read<number> | undefined;
}

function readTiming(context: Context): Timing {
  const profileName = "pgraft.profile";
  const profile = context.explicit.has(profileName)
    ? read(context, profileName, (raw) => parseEnum(raw, TUNING_PROFILE_NAMES))
    : undefined;
  const electionTimeout = readTimingSetting(context, "pgraft.election_timeout", "electionTimeoutMs", profile);
  const heartbeatInterval = readTimingSetting(context, "pgraft.heartbeat_interval", "heartbeatIntervalMs", profile);
  if (electionTimeout !== undefined && heartbeatInterval !== undefined) {
    checkTimingRatio(context, electionTimeout, heartbeatInterval);
  }
  return { profile, electionTimeout, heartbeatInterval };
}

function readTimingSetting(
  context: Context,
  name: string,
  field: "electionTimeoutMs" | "heartbeatIntervalMs",
  profile: Read<TuningProfileName> | undefined,
): Read<number> | undefined {
  if (profile !== undefined && !context.explicit.has(name)) {
    const value = TUNING_PROFILES[profile.value][field];
    const source = `pgraft.profile = ${profile.value} (${profile.source})`;
    context.sources[name] = source;
    return { value, raw: String(value), source };
  }
  const result = readNumber(context, name);
  const profileValue = profile === undefined ? undefined : TUNING_PROFILES[profile.value][field];
  if (result !== undefined && profileValue !== undefined && result.value !== profileValue) {
    context.warnings.push({
      code: "profile_overridden",
      setting: name,
      value: result.raw,
      source: result.source,
      message:
        `${name} = ${result.value} ms (${result.source}) overrides pgraft.profile = ${profile!.value} (${profile!.source}), ` +
        `which sets ${profileValue} ms; remove one of them if that is not intended`,
    });
  }
  return result;
}

function describeSource(source: string): string {
  if (source === DEFAULT_SOURCE) return "the default";
  return source === COMMAND_LINE_SOURCE ? "the command line" : source;
}

/** election_timeout must exceed heartbeat_interval (error); 10x is advised (warning). */
function checkTimingRatio(context: Context, election: Read<number>, heartbeat: Read<number>): void {
  const advisedMs = heartbeat.value * 10;
  const electionMaximum = settingDefinition("pgraft.election_timeout").maximum!;
  const origins =
    election.source === heartbeat.source
      ? `both from ${describeSource(election.source)}`
      : `election_timeout from ${describeSource(election.source)}, heartbeat_interval from ${describeSource(heartbeat.source)}`;
  if (election.value <= heartbeat.value) {
    const values =
      election.value === heartbeat.value
        ? `both are ${election.value} ms (${origins})`
        : `election_timeout is ${election.value} ms and heartbeat_interval ${heartbeat.value} ms (${origins})`;
    const lower = advisedMs > electionMaximum ? " or lower pgraft.heartbeat_interval" : "";
    context.issues.push({
      code: "inconsistent",
      setting: "pgraft.election_timeout",
      value: election.raw,
      source: election.source,
      message:
        `Cannot start node: pgraft.election_timeout must exceed pgraft.heartbeat_interval: ${values}; ` +
        `raise pgraft.election_timeout (10x, ${advisedMs} ms, is advised)${lower}`,
    });
    return;
  }
  if (election.value >= advisedMs) return;
  context.warnings.push({
    code: "timing_ratio",
    setting: "pgraft.election_timeout",
    value: election.raw,
    source: election.source,
    message:
      `pgraft.election_timeout is ${election.value} ms, less than 10x pgraft.heartbeat_interval (${heartbeat.value} ms) (${origins}): ` +
      `a few late heartbeats can start needless elections; raise pgraft.election_timeout to ${advisedMs} ms or more`,
  });
}

const SAFETY_FLAG_RISKS: Readonly<Record<string, string>> = {
  "pgraft.pre_vote": "a node returning from a partition can force needless elections and term inflation",
  "pgraft.check_quorum": "an isolated leader keeps acting as leader and pgraft_is_leader() stays true on it",
};

function readSafetyFlag(context: Context, name: string): boolean | undefined {
  const result = readBoolean(context, name);
  if (result !== undefined && !result.value) {
    context.warnings.push({
      code: "unsafe_option",
      setting: name,
      value: result.raw,
      source: result.source,
      message: `${name} is off (${result.source}): ${SAFETY_FLAG_RISKS[name]}; use off only for experiments`,
    });
  }
  return result?.value;
}

function knownPgdata(environment: SettingsEnvironment): string | undefined {
  const pgdata = environment.PGDATA;
  return pgdata === undefined || pgdata.trim() === "" ? undefined : pgdata;
}

/** A path setting, resolved: absolute as written, relative against $PGDATA (as PostgreSQL does). */
function readPath(context: Context, name: string): Read<string> | undefined {
  const result = readOptionalText(context, name);
  if (result === undefined) return undefined;
  if (isAbsolute(result.value)) return { ...result, value: normalize(result.value) };
  const pgdata = knownPgdata(context.environment);
  if (pgdata !== undefined) return { ...result, value: join(pgdata, result.value) };
  pushInvalid(
    context,
    settingDefinition(name),
    result,
    `${quoteValue(result.value)} is a relative path and PGDATA is not known to resolve it against; use an absolute path`,
  );
  return undefined;
}

function readDataDirectory(context: Context): string | undefined {
  const name = "pgraft.data_dir";
  const explicit = context.explicit.get(name);
  if (explicit !== undefined && explicit.value !== "") return readPath(context, name)?.value;
  const pgdata = knownPgdata(context.environment);
  if (pgdata !== undefined) {
    context.sources[name] = DEFAULT_SOURCE;
    return join(pgdata, "pgraft");
  }
  context.issues.push({
    code: "missing_required",
    setting: name,
    value: undefined,
    source: explicit?.source,
    message:
      "Cannot start node: pgraft.data_dir is not set and PGDATA is not known, so pgraft has nowhere to keep its Raft log; " +
      "set pgraft.data_dir, for example pgraft.data_dir = '/var/lib/postgresql/16/main/pgraft'",
  });
  return undefined;
}

function readSecretFile(context: Context, file: Read<string>): string | undefined {
  const definition = settingDefinition("pgraft.auth_secret_file");
  let text: string | undefined;
  try {
    text = context.fileSystem.readText(file.value);
  } catch (error) {
    pushUnreadable(context, definition.name, file, (error as Error).message);
    return undefined;
  }
  if (text === undefined) {
    pushUnreadable(
      context,
      definition.name,
      file,
      `${quoteValue(file.value)} does not exist; create it (for example: openssl rand -hex 32 > ${file.value}) or correct the path`,
    );
    return undefined;
  }
  return text.replace(/\s+$/, "");
}

function pushUnreadable(context: Context, name: string, file: Read<string>, detail: string): void {
  context.issues.push({
    code: "unreadable_file",
    setting: name,
    value: file.raw,
    source: file.source,
    message: `Cannot read ${name} (${file.source}): ${detail}`,
  });
}

function readPeerAuthentication(context: Context): PeerAuthentication | undefined {
  const enabled = readBoolean(context, "pgraft.auth");
  const secret = readOptionalText(context, "pgraft.auth_secret");
  const secretFile = readPath(context, "pgraft.auth_secret_file");
  if (enabled === undefined) return undefined;
  if (!enabled.value) {
    warnAuthenticationOff(context, enabled, [secret, secretFile]);
    return { mode: "off" };
  }
  if (secret !== undefined && secretFile !== undefined) {
    context.issues.push({
      code: "inconsistent",
      setting: "pgraft.auth_secret",
      value: "(hidden)",
      source: secret.source,
      message:
        `Cannot start node: pgraft.auth_secret (${secret.source}) and pgraft.auth_secret_file (${secretFile.source}) are both set; ` +
        "keep only one, preferably pgraft.auth_secret_file",
    });
    return undefined;
  }
  if (secret === undefined && secretFile === undefined) {
    if (context.explicit.has("pgraft.auth_secret_file")) return undefined; // Invalid path: already reported.
    context.issues.push({
      code: "missing_required",
      setting: "pgraft.auth_secret_file",
      value: undefined,
      source: undefined,
      message:
        "Cannot start node: peers must authenticate, but neither pgraft.auth_secret_file nor pgraft.auth_secret is set; " +
        "create a secret (for example: openssl rand -hex 32 > $PGDATA/pgraft.secret), copy it to every node and set " +
        "pgraft.auth_secret_file = 'pgraft.secret', or set pgraft.auth = off to run without peer authentication (tests only)",
    });
    return undefined;
  }
  const value = secret !== undefined ? secret.value : readSecretFile(context, secretFile!);
  if (value === undefined) return undefined;
  const origin = secret ?? secretFile!;
  if (value.length < AUTH_SECRET_LENGTH_MIN) {
    const definition = settingDefinition(secret !== undefined ? "pgraft.auth_secret" : "pgraft.auth_secret_file");
    pushInvalid(
      context,
      definition,
      origin,
      `the secret has ${value.length} characters, fewer than the ${AUTH_SECRET_LENGTH_MIN} required; ` +
        "use a longer random secret, for example the output of openssl rand -hex 32",
    );
    return undefined;
  }
  return { mode: "shared_secret", secret: value, secretFile: secretFile?.value };
}

function warnAuthenticationOff(context: Context, enabled: Read<boolean>, ignored: readonly (Read<string> | undefined)[]): void {
  context.warnings.push({
    code: "unsafe_option",
    setting: "pgraft.auth",
    value: enabled.raw,
    source: enabled.source,
    message:
      `pgraft.auth is off (${enabled.source}): peers are not authenticated, so anything that reaches pgraft.listen_address ` +
      "can take part in the cluster; use off only for tests",
  });
  ignored.forEach((setting, index) => {
    if (setting === undefined) return;
    const name = index === 0 ? "pgraft.auth_secret" : "pgraft.auth_secret_file";
    context.warnings.push({
      code: "ignored_setting",
      setting: name,
      value: index === 0 ? "(hidden)" : setting.raw,
      source: setting.source,
      message: `${name} (${setting.source}) has no effect while pgraft.auth is off (${enabled.source}); remove it or set pgraft.auth = on`,
    });
  });
}

function readTls(context: Context): TlsFiles | undefined {
  const certFile = readPath(context, "pgraft.tls_cert_file");
  const keyFile = readPath(context, "pgraft.tls_key_file");
  const caFile = readPath(context, "pgraft.tls_ca_file");
  for (const [name, file] of [["pgraft.tls_cert_file", certFile], ["pgraft.tls_key_file", keyFile], ["pgraft.tls_ca_file", caFile]] as const) {
    if (file !== undefined) checkFileExists(context, name, file);
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const [present, absent] = certFile !== undefined ? ["pgraft.tls_cert_file", "pgraft.tls_key_file"] : ["pgraft.tls_key_file", "pgraft.tls_cert_file"];
    const given = (certFile ?? keyFile)!;
    context.issues.push({
      code: "inconsistent",
      setting: present,
      value: given.raw,
      source: given.source,
      message: `Cannot start node: ${present} is set (${given.source}) but ${absent} is not; set both to enable TLS, or neither`,
    });
    return undefined;
  }
  if (caFile !== undefined && certFile === undefined) {
    context.issues.push({
      code: "inconsistent",
      setting: "pgraft.tls_ca_file",
      value: caFile.raw,
      source: caFile.source,
      message:
        `Cannot start node: pgraft.tls_ca_file is set (${caFile.source}) but TLS is off; ` +
        "set pgraft.tls_cert_file and pgraft.tls_key_file to enable TLS, or remove pgraft.tls_ca_file",
    });
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) return undefined;
  return Object.freeze({ certFile: certFile.value, keyFile: keyFile.value, caFile: caFile?.value });
}

function checkFileExists(context: Context, name: string, file: Read<string>): void {
  try {
    if (context.fileSystem.isFile(file.value)) return;
    pushUnreadable(context, name, file, `${quoteValue(file.value)} does not exist or is not a file; correct the path`);
  } catch (error) {
    pushUnreadable(context, name, file, (error as Error).message);
  }
}

const WILDCARD_HOSTS: ReadonlySet<string> = new Set(["0.0.0.0", "::"]);

function addressesCollide(first: HostAndPort, second: HostAndPort): boolean {
  if (first.port !== second.port) return false;
  return first.host === second.host || WILDCARD_HOSTS.has(first.host) || WILDCARD_HOSTS.has(second.host);
}

interface Ports {
  readonly listen: Read<HostAndPort> | undefined;
  readonly client: Read<HostAndPort> | undefined;
  readonly metricsEnabled: Read<boolean> | undefined;
  readonly metricsPort: Read<number> | undefined;
}

/** The peer listener, the client API and (when enabled) the metrics endpoint need distinct ports. */
function checkPorts(context: Context, ports: Ports): void {
  const { listen, client, metricsEnabled, metricsPort } = ports;
  if (listen !== undefined && client !== undefined && addressesCollide(listen.value, client.value)) {
    context.issues.push({
      code: "inconsistent",
      setting: "pgraft.client_address",
      value: client.raw,
      source: client.source,
      message:
        `Cannot start node: pgraft.client_address ${quoteValue(formatHostAndPort(client.value))} (${describeSource(client.source)}) ` +
        `uses the same port as pgraft.listen_address ${quoteValue(formatHostAndPort(listen.value))} (${describeSource(listen.source)}); ` +
        "give the client API its own port",
    });
  }
  if (metricsEnabled?.value !== true || metricsPort === undefined) return;
  for (const [name, address] of [["pgraft.listen_address", listen], ["pgraft.client_address", client]] as const) {
    if (address === undefined || address.value.port !== metricsPort.value) continue;
    context.issues.push({
      code: "inconsistent",
      setting: "pgraft.metrics_port",
      value: metricsPort.raw,
      source: metricsPort.source,
      message:
        `Cannot start node: pgraft.metrics_port ${metricsPort.value} (${describeSource(metricsPort.source)}) is also the port of ` +
        `${name} (${describeSource(address.source)}); choose another port for metrics`,
    });
  }
}

/** A settings file to read, and how to treat non-pgraft names in it. */
export interface SettingsFileReference {
  readonly path: string;
  readonly mode: SettingsFileMode;
}

export interface LoadPgraftConfigOptions {
  /** Read in order; a later file overrides an earlier one. */
  readonly files?: readonly SettingsFileReference[];
  /** `pgraft.NAME=value` or `--pgraft.NAME=value`; these override every file. */
  readonly commandLine?: readonly string[];
  readonly environment: SettingsEnvironment;
  /** node:fs when omitted. */
  readonly fileSystem?: SettingsFileSystem;
}

export interface LoadedPgraftConfig {
  readonly config: PgraftConfig;
  readonly warnings: readonly ConfigWarning[];
  readonly sources: SettingSources;
}

/**
 * Reads the files, applies the command-line overrides and validates the result. Throws one ConfigError
 * listing every problem (syntax, unknown names, values, combinations); returns warnings otherwise.
 */
export function loadPgraftConfig(options: LoadPgraftConfigOptions): LoadedPgraftConfig {
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  const parses: SettingsParseResult[] = (options.files ?? []).map((file) =>
    readSettingsFile(file.path, { mode: file.mode, fileSystem }),
  );
  parses.push(parseCommandLineSettings(options.commandLine ?? []));
  const parseIssues = parses.flatMap((parse) => parse.issues);
  const warnings = parses.flatMap((parse) => parse.warnings);
  const assignments = mergeSettings(...parses.map((parse) => parse.assignments));
  const validation = validateSettings(assignments, { environment: options.environment, fileSystem });
  warnings.push(...validation.warnings);
  if (parseIssues.length === 0 && validation.ok) {
    return { config: validation.config, warnings, sources: validation.sources };
  }
  // A setting on a line that did not parse is not also reported as missing (either secret setting
  // stands for the pair).
  const unparsed = new Set(parseIssues.map((issue) => issue.setting));
  if (unparsed.has("pgraft.auth_secret")) unparsed.add("pgraft.auth_secret_file");
  const validationIssues = validation.ok
    ? []
    : validation.issues.filter((issue) => issue.code !== "missing_required" || !unparsed.has(issue.setting));
  throw new ConfigError([...parseIssues, ...validationIssues], warnings);
}
