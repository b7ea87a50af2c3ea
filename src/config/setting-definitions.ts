/**
 * Every pgraft setting with its type, default, range and description (the source for generated docs and
 * for SQL `SHOW`), the tuning profiles of the operations guide, and the nearest-name search behind
 * "did you mean" suggestions.
 *
 * Names are written exactly as in postgresql.conf (`pgraft.election_timeout`); the validator in
 * settings.ts is the one place that maps them to unit-named PgraftConfig fields.
 */
import { assert } from "../assert.ts";
import { editDistance } from "./setting-values.ts";

export const SETTING_PREFIX = "pgraft.";

/** How a setting's value is parsed. */
export type SettingType =
  | "boolean"
  | "integer"
  | "duration"
  | "enum"
  | "name"
  | "address"
  | "member_list"
  | "path"
  | "secret";

/** PostgreSQL's pg_settings.vartype, for SQL `SHOW` and pg_settings-like views. */
export type SettingVariableType = "bool" | "integer" | "enum" | "string";

export interface SettingDefinition {
  /** As written in postgresql.conf: "pgraft.election_timeout". */
  readonly name: string;
  readonly type: SettingType;
  readonly variableType: SettingVariableType;
  /** pg_settings.unit: "ms" for durations (a bare number means milliseconds). */
  readonly unit: "ms" | undefined;
  /** The default as it would be written in postgresql.conf; undefined when required or derived. */
  readonly defaultValue: string | undefined;
  /** The default in words, for docs: "1000 ms", "required", "position of pgraft.name in ...". */
  readonly defaultDescription: string;
  readonly required: boolean;
  /** Inclusive bounds for integer and duration settings (durations in milliseconds). */
  readonly minimum: number | undefined;
  readonly maximum: number | undefined;
  /** The allowed values of an enum setting. */
  readonly allowedValues: readonly string[] | undefined;
  /** The PgraftConfig field this setting sets. */
  readonly field: string;
  readonly description: string;
}

/** PostgreSQL's INT_MAX: integer settings are 32-bit in pg_settings. */
export const INTEGER_SETTING_MAX = 2_147_483_647;

export type TuningProfileName = "low" | "medium" | "high";
export const TUNING_PROFILE_NAMES: readonly TuningProfileName[] = ["low", "medium", "high"];

export interface TuningProfile {
  readonly name: TuningProfileName;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** The network latency between nodes the profile is meant for, as the operations guide states it. */
  readonly networkLatencyMsMin: number;
  /** Undefined for the last profile, which has no upper bound. */
  readonly networkLatencyMsMax: number | undefined;
}

/** The operations guide's three tunings ("Performance Tuning: Network Latency"). */
export const TUNING_PROFILES: Readonly<Record<TuningProfileName, TuningProfile>> = Object.freeze({
  low: { name: "low", electionTimeoutMs: 1000, heartbeatIntervalMs: 100, networkLatencyMsMin: 0, networkLatencyMsMax: 10 },
  medium: { name: "medium", electionTimeoutMs: 2000, heartbeatIntervalMs: 200, networkLatencyMsMin: 10, networkLatencyMsMax: 50 },
  high: { name: "high", electionTimeoutMs: 5000, heartbeatIntervalMs: 500, networkLatencyMsMin: 50, networkLatencyMsMax: undefined },
});

interface DefinitionInput {
  readonly name: string;
  readonly type: SettingType;
  readonly field: string;
  readonly description: string;
  readonly defaultValue?: string;
  readonly defaultDescription?: string;
  readonly required?: boolean;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly allowedValues?: readonly string[];
}

function variableTypeOf(type: SettingType): SettingVariableType {
  if (type === "boolean") return "bool";
  if (type === "integer" || type === "duration") return "integer";
  if (type === "enum") return "enum";
  return "string";
}

function define(input: DefinitionInput): SettingDefinition {
  const unitSuffix = input.type === "duration" ? " ms" : "";
  const required = input.required ?? false;
  return Object.freeze({
    name: SETTING_PREFIX + input.name,
    type: input.type,
    variableType: variableTypeOf(input.type),
    unit: input.type === "duration" ? "ms" : undefined,
    defaultValue: input.defaultValue,
    defaultDescription:
      input.defaultDescription ?? (required ? "required" : input.defaultValue === undefined ? "not set" : input.defaultValue + unitSuffix),
    required,
    minimum: input.minimum,
    maximum: input.maximum,
    allowedValues: input.allowedValues,
    field: input.field,
    description: input.description,
  });
}

/** Every pgraft setting, in the order docs and rendered settings list them. */
export const SETTINGS: readonly SettingDefinition[] = Object.freeze([
  define({ name: "cluster_id", type: "name", field: "clusterId", required: true,
    description: "Cluster identity, the same on every node; a peer presenting another id is refused" }),
  define({ name: "name", type: "name", field: "name", required: true,
    description: "This node's unique name, as listed in pgraft.initial_cluster" }),
  define({ name: "node_id", type: "integer", field: "nodeId", minimum: 1, maximum: INTEGER_SETTING_MAX,
    defaultDescription: "position of pgraft.name in pgraft.initial_cluster",
    description: "Numeric node id used by the SQL functions; if set, it must equal that position" }),
  define({ name: "listen_address", type: "address", field: "listenHost, listenPort",
    defaultDescription: "this node's address in pgraft.initial_cluster (127.0.0.1:7001 without one)",
    description: "host:port this node listens on for Raft peer traffic" }),
  define({ name: "initial_cluster", type: "member_list", field: "initialCluster", required: true,
    description: "name1=host:port,name2=host:port,...: the founding members, identical on every node" }),
  define({ name: "initial_cluster_state", type: "enum", field: "initialClusterState", allowedValues: ["new", "existing"], defaultValue: "new",
    description: "new: this node founds the cluster with the members of pgraft.initial_cluster; existing: it joins a running cluster that added it first (with its address) and waits for the leader to contact it" }),
  define({ name: "on_removed", type: "enum", field: "onRemoved", allowedValues: ["exit", "idle"], defaultValue: "exit",
    description: "What a node does when it learns a committed configuration removed it: exit (pgraft start exits with code 3) or idle (it stops taking part, keeps its client port, and /health answers 503); either way it logs what to do: wipe its data directory before it joins again as a new member" }),
  define({ name: "data_dir", type: "path", field: "dataDir", defaultDescription: "$PGDATA/pgraft",
    description: "Directory of the Raft log, hard state and snapshots; relative paths are resolved against $PGDATA" }),
  define({ name: "profile", type: "enum", field: "profile", allowedValues: TUNING_PROFILE_NAMES,
    description: "Tuning profile: low (1000/100 ms, <10 ms latency), medium (2000/200 ms, 10-50 ms), high (5000/500 ms, >50 ms); sets election_timeout and heartbeat_interval unless they are set explicitly" }),
  define({ name: "election_timeout", type: "duration", field: "electionTimeoutMs", defaultValue: "1000", minimum: 10, maximum: 60_000,
    description: "Election timeout T, randomized in [T, 2T); must exceed heartbeat_interval, 10x is advised" }),
  define({ name: "heartbeat_interval", type: "duration", field: "heartbeatIntervalMs", defaultValue: "100", minimum: 1, maximum: 10_000,
    description: "Period of the leader's heartbeats" }),
  define({ name: "batch_size", type: "integer", field: "entriesPerAppendMax", defaultValue: "100", minimum: 1, maximum: 10_000,
    description: "Maximum number of entries per append message" }),
  define({ name: "max_batch_delay", type: "duration", field: "maxBatchDelayMs", defaultValue: "10", minimum: 0, maximum: 1000,
    description: "Maximum time a proposal waits to be batched with others" }),
  define({ name: "snapshot_interval", type: "integer", field: "snapshotIntervalEntries", defaultValue: "10000", minimum: 1, maximum: INTEGER_SETTING_MAX,
    description: "Number of applied entries between snapshots" }),
  define({ name: "max_log_entries", type: "integer", field: "logEntriesMax", defaultValue: "10000", minimum: 0, maximum: INTEGER_SETTING_MAX,
    description: "Entries kept in the log after a snapshot (the log compaction bound)" }),
  define({ name: "metrics_enabled", type: "boolean", field: "metricsEnabled", defaultValue: "off",
    description: "Serve Prometheus metrics at http://host:metrics_port/metrics" }),
  define({ name: "metrics_port", type: "integer", field: "metricsPort", defaultValue: "9100", minimum: 1, maximum: 65_535,
    description: "Port of the Prometheus endpoint" }),
  define({ name: "pre_vote", type: "boolean", field: "preVote", defaultValue: "on",
    description: "Pre-vote before elections (Raft thesis 9.6); off only for experiments" }),
  define({ name: "check_quorum", type: "boolean", field: "checkQuorum", defaultValue: "on",
    description: "A leader steps down when it loses contact with a quorum (Raft thesis 6.2); off only for experiments" }),
  define({ name: "fence_writes", type: "boolean", field: "fenceWrites", defaultValue: "on",
    description: "Make this node's PostgreSQL refuse writes in new transactions (default_transaction_read_only) unless this node is a leader backed by a live quorum" }),
  define({ name: "database", type: "name", field: "database", defaultValue: "postgres",
    description: "Database the node installs its SQL interface and pgraft.kv into, when the connection does not name one" }),
  define({ name: "client_address", type: "address", field: "clientHost, clientPort", defaultValue: "127.0.0.1:2379",
    description: "host:port of the node's HTTP client API" }),
  define({ name: "watch_progress_notify_interval", type: "duration", field: "watchProgressNotifyIntervalMs", defaultValue: "600000", minimum: 100, maximum: 86_400_000,
    defaultDescription: "600000 ms (10 min)",
    description: "How often a watch created with progress_notify receives a progress notification (the current revision) when it had no events since the last one; etcd's --experimental-watch-progress-notify-interval" }),
  define({ name: "client_urls", type: "member_list", field: "clientUrls",
    defaultDescription: "none: followers answer client writes with the leader's id instead of forwarding them",
    description: "name1=host:port,...: every member's client API address, so followers forward requests to the leader and `pgraft status` reaches every member" }),
  define({ name: "auth", type: "boolean", field: "peerAuthentication", defaultValue: "on",
    description: "Peers authenticate with the shared secret; off runs without peer authentication (tests only)" }),
  define({ name: "auth_secret", type: "secret", field: "peerAuthentication",
    description: "Shared secret for peer authentication (at least 16 characters); prefer auth_secret_file" }),
  define({ name: "auth_secret_file", type: "path", field: "peerAuthentication",
    description: "File holding the shared secret (trailing whitespace ignored); relative paths are resolved against $PGDATA" }),
  define({ name: "tls_cert_file", type: "path", field: "tls",
    description: "PEM certificate for peer TLS; TLS is on when tls_cert_file and tls_key_file are set" }),
  define({ name: "tls_key_file", type: "path", field: "tls",
    description: "PEM private key for peer TLS" }),
  define({ name: "tls_ca_file", type: "path", field: "tls",
    description: "PEM CA bundle that peer certificates must chain to; empty uses the system's trusted CAs" }),
]);

const SETTINGS_BY_NAME: ReadonlyMap<string, SettingDefinition> = new Map(SETTINGS.map((setting) => [setting.name, setting]));

/** The definition of `name` ("pgraft.election_timeout", case-insensitive), or undefined. */
export function findSetting(name: string): SettingDefinition | undefined {
  return SETTINGS_BY_NAME.get(name.toLowerCase());
}

/** Looks up a setting that must exist (for code that names settings literally). */
export function settingDefinition(name: string): SettingDefinition {
  const definition = findSetting(name);
  assert(definition !== undefined, `settingDefinition(): no setting named "${name}"`);
  return definition;
}

/**
 * The valid setting name nearest to `name` by edit distance, trying it both as written and with the
 * `pgraft.` prefix added, or undefined when nothing is close enough to be a plausible typo.
 */
export function suggestSettingName(name: string): string | undefined {
  const lowered = name.toLowerCase();
  const candidates = lowered.startsWith(SETTING_PREFIX) ? [lowered] : [lowered, SETTING_PREFIX + lowered];
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const suffixLength = candidate.length - SETTING_PREFIX.length;
    const distanceMax = Math.max(1, Math.min(3, Math.floor(suffixLength / 4)));
    for (const setting of SETTINGS) {
      const distance = editDistance(candidate, setting.name);
      if (distance > distanceMax) continue;
      if (best === undefined || distance < best.distance) best = { name: setting.name, distance };
    }
  }
  return best?.name;
}
