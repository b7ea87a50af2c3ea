/**
 * The settings layer, rule by rule: postgresql.conf syntax (quotes, comments, includes, malformed lines
 * with their line numbers), every duration and boolean form, each setting's default, each kind of error
 * with its full message, several errors at once, command-line overrides, profiles, security settings,
 * and rendering the effective settings back into text that parses to the same configuration.
 *
 * Files live in an in-memory file system, so every source label is predictable ("postgresql.conf:12").
 */
import test from "ava";
import {
  ConfigError,
  loadPgraftConfig,
  memoryFileSystem,
  mergeSettings,
  parseBoolean,
  parseCommandLineSettings,
  parseDurationMs,
  parseSettingsText,
  renderSettings,
  formatSettingValue,
  SETTINGS,
  TUNING_PROFILES,
  validateSettings,
  type ConfigIssue,
  type LoadedPgraftConfig,
  type SettingsEnvironment,
  type SettingsFileMode,
} from "../../src/config/index.ts";
import { editDistance, parseHostAndPort, parseInitialCluster } from "../../src/config/setting-values.ts";

const SECRET = "0123456789abcdef0123456789abcdef";

/** The three required settings and a secret: the smallest valid configuration, in four lines. */
const REQUIRED = [
  "pgraft.cluster_id = 'orders'",
  "pgraft.name = 'n1'",
  "pgraft.initial_cluster = 'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003'",
  `pgraft.auth_secret = '${SECRET}'`,
].join("\n");

interface LoadOptions {
  readonly mode?: SettingsFileMode;
  readonly fileName?: string;
  readonly commandLine?: readonly string[];
  readonly environment?: SettingsEnvironment;
  readonly extraFiles?: Readonly<Record<string, string>>;
}

function load(text: string, options: LoadOptions = {}): LoadedPgraftConfig {
  const fileName = options.fileName ?? "postgresql.conf";
  return loadPgraftConfig({
    files: [{ path: fileName, mode: options.mode ?? "postgresql" }],
    commandLine: options.commandLine ?? [],
    environment: options.environment ?? { PGDATA: "/data" },
    fileSystem: memoryFileSystem({ [fileName]: text, ...options.extraFiles }),
  });
}

function loadIssues(t: import("ava").ExecutionContext, text: string, options: LoadOptions = {}): readonly ConfigIssue[] {
  const error = t.throws(() => load(text, options), { instanceOf: ConfigError });
  return error?.issues ?? [];
}

function messages(issues: readonly { message: string }[]): string[] {
  return issues.map((issue) => issue.message);
}

// ---------------------------------------------------------------------------------------------------
// Defaults

test("loadPgraftConfig() gives every setting its documented default", (t) => {
  const { config, sources, warnings } = load(REQUIRED);
  t.deepEqual(warnings, []);
  t.is(config.clusterId, "orders");
  t.is(config.name, "n1");
  t.is(config.nodeId, 1);
  t.is(config.listenHost, "127.0.0.1");
  t.is(config.listenPort, 7001);
  t.deepEqual(config.initialCluster, [
    { name: "n1", host: "127.0.0.1", port: 7001, nodeId: 1 },
    { name: "n2", host: "127.0.0.1", port: 7002, nodeId: 2 },
    { name: "n3", host: "127.0.0.1", port: 7003, nodeId: 3 },
  ]);
  t.is(config.dataDir, "/data/pgraft");
  t.is(config.profile, undefined);
  t.is(config.electionTimeoutMs, 1000);
  t.is(config.heartbeatIntervalMs, 100);
  t.is(config.entriesPerAppendMax, 100);
  t.is(config.maxBatchDelayMs, 10);
  t.is(config.snapshotIntervalEntries, 10000);
  t.is(config.logEntriesMax, 10000);
  t.is(config.metricsEnabled, false);
  t.is(config.metricsPort, 9100);
  t.is(config.preVote, true);
  t.is(config.checkQuorum, true);
  t.is(config.clientHost, "127.0.0.1");
  t.is(config.clientPort, 2379);
  t.deepEqual(config.peerAuthentication, { mode: "shared_secret", secret: SECRET, secretFile: undefined });
  t.is(config.tls, undefined);
  for (const name of ["pgraft.election_timeout", "pgraft.batch_size", "pgraft.metrics_port", "pgraft.data_dir"]) {
    t.is(sources[name], "default", name);
  }
  t.is(sources["pgraft.cluster_id"], "postgresql.conf:1");
  t.regex(sources["pgraft.node_id"]!, /^position of pgraft.name in pgraft.initial_cluster \(postgresql.conf:3\)$/);
});

test("SETTINGS defaults match the operator interface table", (t) => {
  const defaults = Object.fromEntries(SETTINGS.map((setting) => [setting.name, setting.defaultDescription]));
  t.like(defaults, {
    "pgraft.cluster_id": "required",
    "pgraft.name": "required",
    "pgraft.initial_cluster": "required",
    "pgraft.data_dir": "$PGDATA/pgraft",
    "pgraft.election_timeout": "1000 ms",
    "pgraft.heartbeat_interval": "100 ms",
    "pgraft.batch_size": "100",
    "pgraft.max_batch_delay": "10 ms",
    "pgraft.snapshot_interval": "10000",
    "pgraft.max_log_entries": "10000",
    "pgraft.metrics_enabled": "off",
    "pgraft.metrics_port": "9100",
    "pgraft.pre_vote": "on",
    "pgraft.check_quorum": "on",
    "pgraft.client_address": "127.0.0.1:2379",
    "pgraft.auth": "on",
  });
  t.regex(defaults["pgraft.node_id"]!, /position of pgraft.name in pgraft.initial_cluster/);
  t.regex(defaults["pgraft.listen_address"]!, /127\.0\.0\.1:7001/);
});

test("SETTINGS names are unique pgraft.* names with a description, and numeric defaults lie in range", (t) => {
  const names = SETTINGS.map((setting) => setting.name);
  t.is(new Set(names).size, names.length);
  for (const setting of SETTINGS) {
    t.true(setting.name.startsWith("pgraft."), setting.name);
    t.true(setting.description.length > 10, setting.name);
    if (setting.minimum !== undefined && setting.defaultValue !== undefined) {
      const value = Number(setting.defaultValue);
      t.true(value >= setting.minimum && value <= setting.maximum!, setting.name);
    }
    if (setting.type === "duration") t.is(setting.unit, "ms");
  }
  t.is(SETTINGS.find((setting) => setting.name === "pgraft.metrics_enabled")?.variableType, "bool");
  t.is(SETTINGS.find((setting) => setting.name === "pgraft.election_timeout")?.variableType, "integer");
});

test("setting a value explicitly to its default gives the same configuration as leaving it out", (t) => {
  const explicitDefaults = SETTINGS.filter((setting) => setting.defaultValue !== undefined)
    .map((setting) => `${setting.name} = '${setting.defaultValue}'`)
    .join("\n");
  t.deepEqual(load(`${REQUIRED}\n${explicitDefaults}`).config, load(REQUIRED).config);
});

test("pgraft.node_id defaults to the position of pgraft.name in pgraft.initial_cluster", (t) => {
  const { config } = load(REQUIRED.replace("pgraft.name = 'n1'", "pgraft.name = 'n3'"));
  t.is(config.nodeId, 3);
  t.is(config.listenPort, 7003);
});

test("pgraft.node_id set to a position other than the node's is an error naming both", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\npgraft.node_id = 5`);
  t.is(issues.length, 1);
  t.is(issues[0]!.code, "inconsistent");
  t.is(
    issues[0]!.message,
    'Cannot start node: pgraft.node_id is 5 (postgresql.conf:5) but "n1" is member 1 of pgraft.initial_cluster ' +
      "(postgresql.conf:3), and every node derives node ids from those positions; remove pgraft.node_id or set it to 1",
  );
  t.is(load(`${REQUIRED}\npgraft.node_id = 1`).config.nodeId, 1);
});

test("pgraft.listen_address defaults to this node's member address and can be set apart from it", (t) => {
  t.is(load(REQUIRED).sources["pgraft.listen_address"], "this node's member of pgraft.initial_cluster (postgresql.conf:3)");
  const { config } = load(`${REQUIRED}\npgraft.listen_address = '0.0.0.0:17001'`);
  t.is(config.listenHost, "0.0.0.0");
  t.is(config.listenPort, 17001);
  t.is(config.initialCluster[0]!.port, 7001);
});

test("pgraft.data_dir defaults to $PGDATA/pgraft, resolves relative paths against PGDATA, and is required without PGDATA", (t) => {
  t.is(load(REQUIRED, { environment: { PGDATA: "/srv/pg" } }).config.dataDir, "/srv/pg/pgraft");
  t.is(load(`${REQUIRED}\npgraft.data_dir = 'raft'`, { environment: { PGDATA: "/srv/pg" } }).config.dataDir, "/srv/pg/raft");
  t.is(load(`${REQUIRED}\npgraft.data_dir = '/var/lib/raft/'`, { environment: {} }).config.dataDir, "/var/lib/raft/");
  const missing = loadIssues(t, REQUIRED, { environment: {} });
  t.deepEqual(messages(missing), [
    "Cannot start node: pgraft.data_dir is not set and PGDATA is not known, so pgraft has nowhere to keep its Raft log; " +
      "set pgraft.data_dir, for example pgraft.data_dir = '/var/lib/postgresql/16/main/pgraft'",
  ]);
  const relative = loadIssues(t, `${REQUIRED}\npgraft.data_dir = 'raft'`, { environment: { PGDATA: "" } });
  t.deepEqual(messages(relative), [
    'Invalid value for "pgraft.data_dir" (postgresql.conf:5): "raft" is a relative path and PGDATA is not known to resolve it against; use an absolute path',
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Durations, booleans, integers

test("parseDurationMs() reads every PostgreSQL time form, a bare number as milliseconds", (t) => {
  const cases: [string, number][] = [
    ["1000", 1000],
    ["1000ms", 1000],
    ["1s", 1000],
    ["2 s", 2000],
    [" 250 ms ", 250],
    ["1min", 60_000],
    ["1h", 3_600_000],
    ["1d", 86_400_000],
    ["1500us", 2],
    ["1.5s", 1500],
    ["0.25min", 15_000],
    ["+7", 7],
  ];
  for (const [text, expectedMs] of cases) t.deepEqual(parseDurationMs(text), { ok: true, value: expectedMs }, text);
});

test("parseDurationMs() refuses words, unknown units and wrongly cased units", (t) => {
  t.deepEqual(parseDurationMs("fast"), {
    ok: false,
    problem: '"fast" is not a duration; use a number of milliseconds or a value like "100ms" or "1s"',
  });
  for (const text of ["5sec", "1S", "1 MS", "10m"]) {
    const result = parseDurationMs(text);
    t.false(result.ok, text);
    if (!result.ok) t.regex(result.problem, /unit ".+" is unknown; valid units are us, ms, s, min, h, d \(case-sensitive\)/, text);
  }
  t.false(parseDurationMs("").ok);
  t.false(parseDurationMs("1 s s").ok);
});

test("durations in a file accept unquoted units and quoted forms with a space", (t) => {
  const { config } = load(`${REQUIRED}\npgraft.election_timeout = 1min\npgraft.heartbeat_interval '2 s'\npgraft.max_batch_delay = 1500us`);
  t.is(config.electionTimeoutMs, 60_000);
  t.is(config.heartbeatIntervalMs, 2000);
  t.is(config.maxBatchDelayMs, 2);
});

test("an invalid duration names the setting, its source, the value and the accepted forms", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\npgraft.heartbeat_interval = fast`);
  t.is(issues.length, 1);
  t.like(issues[0], { code: "invalid_value", setting: "pgraft.heartbeat_interval", value: "fast", source: "postgresql.conf:5" });
  t.is(
    issues[0]!.message,
    'Invalid value for "pgraft.heartbeat_interval" (postgresql.conf:5): "fast" is not a duration; use a number of milliseconds or a value like "100ms" or "1s"',
  );
});

test("parseBoolean() accepts every PostgreSQL spelling, in any case, and nothing else", (t) => {
  const truths = ["on", "ON", "On", "true", "TRUE", "True", "yes", "YES", "1", "t", "tr", "tru", "y", "ye"];
  const falsehoods = ["off", "OFF", "Off", "false", "FALSE", "no", "NO", "0", "f", "fa", "n", "of"];
  for (const text of truths) t.deepEqual(parseBoolean(text), { ok: true, value: true }, text);
  for (const text of falsehoods) t.deepEqual(parseBoolean(text), { ok: true, value: false }, text);
  for (const text of ["o", "maybe", "2", "", "onn", "offf", "yess", "10"]) t.false(parseBoolean(text).ok, text);
  t.deepEqual(parseBoolean("maybe"), { ok: false, problem: '"maybe" is not a boolean; use on or off (also true/false, yes/no, 1/0)' });
});

test("boolean settings read from a file", (t) => {
  const { config, warnings } = load(`${REQUIRED}\npgraft.metrics_enabled = yes\npgraft.pre_vote = FALSE\npgraft.check_quorum 0`);
  t.true(config.metricsEnabled);
  t.false(config.preVote);
  t.false(config.checkQuorum);
  t.deepEqual(
    warnings.map((warning) => [warning.code, warning.setting]),
    [["unsafe_option", "pgraft.pre_vote"], ["unsafe_option", "pgraft.check_quorum"]],
  );
  t.regex(warnings[1]!.message, /^pgraft\.check_quorum is off \(postgresql\.conf:7\): .*; use off only for experiments$/);
  const issues = loadIssues(t, `${REQUIRED}\npgraft.metrics_enabled = maybe`);
  t.is(issues[0]!.message, 'Invalid value for "pgraft.metrics_enabled" (postgresql.conf:5): "maybe" is not a boolean; use on or off (also true/false, yes/no, 1/0)');
});

test("integers out of range name the value and the allowed range", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\npgraft.batch_size = 0\npgraft.snapshot_interval = 1.5\npgraft.metrics_port = 70000\npgraft.max_log_entries = -1`);
  t.deepEqual(
    issues.map((issue) => [issue.code, issue.setting]),
    [
      ["out_of_range", "pgraft.metrics_port"],
      ["out_of_range", "pgraft.batch_size"],
      ["invalid_value", "pgraft.snapshot_interval"],
      ["out_of_range", "pgraft.max_log_entries"],
    ],
  );
  t.deepEqual(messages(issues), [
    'Invalid value for "pgraft.metrics_port" (postgresql.conf:7): "70000" is above the maximum of 65535; use a value from 1 to 65535',
    'Invalid value for "pgraft.batch_size" (postgresql.conf:5): "0" is below the minimum of 1; use a value from 1 to 10000',
    'Invalid value for "pgraft.snapshot_interval" (postgresql.conf:6): "1.5" is not a whole number; use digits only, for example 100',
    'Invalid value for "pgraft.max_log_entries" (postgresql.conf:8): "-1" is below the minimum of 0; use a value from 0 to 2147483647',
  ]);
});

test("a duration out of range shows it in milliseconds beside the range", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\npgraft.election_timeout = 100s\npgraft.heartbeat_interval = 0`);
  t.deepEqual(messages(issues), [
    'Invalid value for "pgraft.election_timeout" (postgresql.conf:5): "100s" (100000 ms) is above the maximum of 60000 ms; use a value from 10 ms to 60000 ms',
    'Invalid value for "pgraft.heartbeat_interval" (postgresql.conf:6): "0" is below the minimum of 1 ms; use a value from 1 ms to 10000 ms',
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Timing consistency and profiles

test("election_timeout equal to heartbeat_interval is an error advising 10x", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\npgraft.election_timeout = 100\npgraft.heartbeat_interval = 100ms`);
  t.is(issues.length, 1);
  t.like(issues[0], { code: "inconsistent", setting: "pgraft.election_timeout", value: "100", source: "postgresql.conf:5" });
  t.is(
    issues[0]!.message,
    "Cannot start node: pgraft.election_timeout must exceed pgraft.heartbeat_interval: both are 100 ms " +
      "(election_timeout from postgresql.conf:5, heartbeat_interval from postgresql.conf:6); " +
      "raise pgraft.election_timeout (10x, 1000 ms, is advised)",
  );
});

test("election_timeout below heartbeat_interval is an error naming both values", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\npgraft.election_timeout = 150`, { commandLine: ["pgraft.heartbeat_interval=200"] });
  t.is(
    issues[0]!.message,
    "Cannot start node: pgraft.election_timeout must exceed pgraft.heartbeat_interval: election_timeout is 150 ms and " +
      "heartbeat_interval 200 ms (election_timeout from postgresql.conf:5, heartbeat_interval from the command line); " +
      "raise pgraft.election_timeout (10x, 2000 ms, is advised)",
  );
});

test("election_timeout below 10x heartbeat_interval is a warning, not an error", (t) => {
  const { config, warnings } = load(`${REQUIRED}\npgraft.election_timeout = 500`);
  t.is(config.electionTimeoutMs, 500);
  t.is(warnings.length, 1);
  t.like(warnings[0], { code: "timing_ratio", setting: "pgraft.election_timeout", source: "postgresql.conf:5" });
  t.is(
    warnings[0]!.message,
    "pgraft.election_timeout is 500 ms, less than 10x pgraft.heartbeat_interval (100 ms) " +
      "(election_timeout from postgresql.conf:5, heartbeat_interval from the default): " +
      "a few late heartbeats can start needless elections; raise pgraft.election_timeout to 1000 ms or more",
  );
  t.deepEqual(load(`${REQUIRED}\npgraft.election_timeout = 1000`).warnings, []);
});

test("TUNING_PROFILES holds the operations guide's three tunings", (t) => {
  t.like(TUNING_PROFILES.low, { electionTimeoutMs: 1000, heartbeatIntervalMs: 100, networkLatencyMsMax: 10 });
  t.like(TUNING_PROFILES.medium, { electionTimeoutMs: 2000, heartbeatIntervalMs: 200, networkLatencyMsMin: 10, networkLatencyMsMax: 50 });
  t.like(TUNING_PROFILES.high, { electionTimeoutMs: 5000, heartbeatIntervalMs: 500, networkLatencyMsMin: 50, networkLatencyMsMax: undefined });
});

test("pgraft.profile sets election_timeout and heartbeat_interval and is named as their source", (t) => {
  for (const profile of ["low", "medium", "HIGH"] as const) {
    const { config, sources, warnings } = load(`${REQUIRED}\npgraft.profile = ${profile}`);
    const expected = TUNING_PROFILES[profile.toLowerCase() as "low" | "medium" | "high"];
    t.is(config.profile, expected.name);
    t.is(config.electionTimeoutMs, expected.electionTimeoutMs);
    t.is(config.heartbeatIntervalMs, expected.heartbeatIntervalMs);
    t.is(sources["pgraft.election_timeout"], `pgraft.profile = ${expected.name} (postgresql.conf:5)`);
    t.deepEqual(warnings, []);
  }
});

test("an explicit timing setting wins over pgraft.profile, with a warning", (t) => {
  const { config, warnings } = load(`${REQUIRED}\npgraft.heartbeat_interval = 300\npgraft.profile = high`);
  t.is(config.electionTimeoutMs, 5000);
  t.is(config.heartbeatIntervalMs, 300);
  t.deepEqual(messages(warnings), [
    "pgraft.heartbeat_interval = 300 ms (postgresql.conf:5) overrides pgraft.profile = high (postgresql.conf:6), " +
      "which sets 500 ms; remove one of them if that is not intended",
  ]);
});

test("an unknown profile lists the valid ones", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\npgraft.profile = fast`);
  t.deepEqual(messages(issues), ['Invalid value for "pgraft.profile" (postgresql.conf:5): "fast" is not one of low, medium, high; use one of them']);
});

// ---------------------------------------------------------------------------------------------------
// Names: typos, foreign names, modes

test("an unknown pgraft setting suggests the nearest valid name", (t) => {
  const padding = Array.from({ length: 6 }, (_, index) => `# comment on line ${index + 6}`).join("\n");
  const issues = loadIssues(t, `${REQUIRED}\n\n${padding}\npgraft.election_timout = 2s`);
  t.deepEqual(issues, [
    {
      code: "unknown_setting",
      setting: "pgraft.election_timout",
      value: "2s",
      source: "postgresql.conf:12",
      message: 'Unknown setting "pgraft.election_timout" (postgresql.conf:12): did you mean "pgraft.election_timeout"?',
    },
  ]);
});

test("an unknown pgraft setting far from any valid name lists the valid names", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\npgraft.turbo_mode = on`);
  t.regex(issues[0]!.message, /^Unknown setting "pgraft\.turbo_mode" \(postgresql\.conf:5\): remove it or correct the name; valid settings are pgraft\.cluster_id, pgraft\.name, .*pgraft\.tls_ca_file$/);
});

test("suggestions catch transpositions, missing letters and other typos", (t) => {
  t.is(editDistance("heatrbeat", "heartbeat"), 1);
  const cases: [string, string][] = [
    ["pgraft.heatrbeat_interval", "pgraft.heartbeat_interval"],
    ["pgraft.nam", "pgraft.name"],
    ["pgraft.Check_Quorum_", "pgraft.check_quorum"],
    ["pgraft.metric_port", "pgraft.metrics_port"],
  ];
  for (const [typo, expected] of cases) {
    const issues = loadIssues(t, `${REQUIRED}\n${typo} = 1`);
    t.true(issues[0]!.message.endsWith(`did you mean "${expected}"?`), typo);
  }
});

test("a postgresql.conf may hold any PostgreSQL setting, and names are case-insensitive", (t) => {
  const text = [
    "listen_addresses = '*'",
    "shared_buffers = 128MB",
    "log_line_prefix = '%m [%p] '",
    "pg_stat_statements.max = 10000",
    "PGRAFT.Metrics_Port = 9200",
    REQUIRED,
  ].join("\n");
  const { config, warnings } = load(text);
  t.is(config.metricsPort, 9200);
  t.deepEqual(warnings, []);
});

test("a misspelt pgraft prefix in postgresql.conf is a warning, since PostgreSQL allows any placeholder", (t) => {
  const { warnings } = load(`${REQUIRED}\npgarft.election_timeout = 2000`);
  t.deepEqual(messages(warnings), [
    'Setting "pgarft.election_timeout" (postgresql.conf:5) is not a pgraft setting and pgraft ignores it; did you mean "pgraft.election_timeout"?',
  ]);
});

test("a non-pgraft name in a standalone pgraft file is an error", (t) => {
  const issues = loadIssues(t, `${REQUIRED}\nelection_timeout = 2000\nshared_buffers = 128MB`, { mode: "standalone", fileName: "pgraft.conf" });
  t.deepEqual(
    issues.map((issue) => [issue.code, issue.source, issue.message]),
    [
      [
        "foreign_setting",
        "pgraft.conf:5",
        'Unknown setting "election_timeout" (pgraft.conf:5): a standalone pgraft settings file holds only pgraft.* settings; did you mean "pgraft.election_timeout"?',
      ],
      [
        "foreign_setting",
        "pgraft.conf:6",
        'Unknown setting "shared_buffers" (pgraft.conf:6): a standalone pgraft settings file holds only pgraft.* settings; remove it, or move it to postgresql.conf if it is a PostgreSQL setting',
      ],
    ],
  );
  t.notThrows(() => load(`${REQUIRED}\nshared_buffers = 128MB`, { mode: "postgresql" }));
});

// ---------------------------------------------------------------------------------------------------
// Syntax

test("quoted values keep # and doubled quotes, and comments after values are dropped", (t) => {
  const text = [
    "# a comment line",
    "",
    "   ",
    "pgraft.cluster_id = 'orders'   # trailing comment",
    "pgraft.name n1#comment without a space",
    "pgraft.initial_cluster = 'n1=127.0.0.1:7001,n2=127.0.0.1:7002' # 'quoted' in a comment",
    "pgraft.auth_secret = 'it''s a # secret, not a comment' # this is one",
    "pgraft.data_dir = '/var/lib/pg #1/raft'",
  ].join("\n");
  const { config } = load(text);
  t.is(config.clusterId, "orders");
  t.is(config.name, "n1");
  t.deepEqual(config.peerAuthentication, { mode: "shared_secret", secret: "it's a # secret, not a comment", secretFile: undefined });
  t.is(config.dataDir, "/var/lib/pg #1/raft");
});

test("parseSettingsText() reads backslash escapes, CRLF line ends, and the last assignment of a name", (t) => {
  const parsed = parseSettingsText("pgraft.name = 'a\\tb\\'c'\r\npgraft.name = 'n2'\r\n", { fileName: "x.conf", mode: "standalone" });
  t.deepEqual(parsed.issues, []);
  t.deepEqual(parsed.assignments, [
    { name: "pgraft.name", value: "a\tb'c", source: "x.conf:1" },
    { name: "pgraft.name", value: "n2", source: "x.conf:2" },
  ]);
  t.deepEqual(mergeSettings(parsed.assignments), [{ name: "pgraft.name", value: "n2", source: "x.conf:2" }]);
});

test("a malformed line is reported with its file and line number and the quoted form to write", (t) => {
  const text = `${REQUIRED}\n\npgraft.listen_address = 127.0.0.1:7001`;
  const issues = loadIssues(t, text, { mode: "standalone", fileName: "pgraft.conf" });
  t.deepEqual(issues, [
    {
      code: "syntax_error",
      setting: "pgraft.listen_address",
      value: undefined,
      source: "pgraft.conf:6",
      message:
        'Cannot parse pgraft.conf:6: syntax error near ".0" in the value of "pgraft.listen_address"; ' +
        "values other than a plain word or number must be quoted; write pgraft.listen_address = '127.0.0.1:7001'",
    },
  ]);
});

test("each kind of malformed line gets its own message", (t) => {
  const lines = [
    "pgraft.cluster_id = 'orders",
    "pgraft.name =",
    "= 5",
    "pgraft.data_dir = /var/lib/pgraft",
    "pgraft.cluster_id = prod.east",
    "pgraft.name = n1 n2",
    "pgraft.election_timeout = 1.5s",
  ];
  const parsed = parseSettingsText(lines.join("\n"), { fileName: "p.conf", mode: "standalone" });
  t.deepEqual(parsed.assignments, []);
  t.deepEqual(messages(parsed.issues), [
    `Cannot parse p.conf:1: the quoted value of "pgraft.cluster_id" is not closed; end it with '`,
    'Cannot parse p.conf:2: "pgraft.name" has no value; write pgraft.name = value',
    'Cannot parse p.conf:3: expected a setting name, found "="; write lines as pgraft.NAME = value',
    `Cannot parse p.conf:4: syntax error near "/" in the value of "pgraft.data_dir"; values other than a plain word or number must be quoted; write pgraft.data_dir = '/var/lib/pgraft'`,
    `Cannot parse p.conf:5: syntax error near "prod.east" in the value of "pgraft.cluster_id"; values other than a plain word or number must be quoted; write pgraft.cluster_id = 'prod.east'`,
    `Cannot parse p.conf:6: syntax error near "n2" in the value of "pgraft.name"; values other than a plain word or number must be quoted; write pgraft.name = 'n1 n2'`,
    `Cannot parse p.conf:7: syntax error near "s" in the value of "pgraft.election_timeout"; values other than a plain word or number must be quoted; write pgraft.election_timeout = '1.5s'`,
  ]);
});

test("a line that does not parse is not also reported as a missing required setting", (t) => {
  const text = REQUIRED.replace("pgraft.initial_cluster = '", "pgraft.initial_cluster = ").replace("7003'", "7003");
  const issues = loadIssues(t, text);
  t.deepEqual(issues.map((issue) => [issue.code, issue.setting]), [["syntax_error", "pgraft.initial_cluster"]]);
});

// ---------------------------------------------------------------------------------------------------
// Includes

test("include, include_if_exists and include_dir read other files, relative to the including file", (t) => {
  const files = {
    "/etc/pg/postgresql.conf": "include 'pgraft-base.conf'\ninclude_if_exists 'missing.conf'\ninclude_dir = 'conf.d'\n",
    "/etc/pg/pgraft-base.conf": `${REQUIRED}\npgraft.metrics_port = 9101`,
    "/etc/pg/conf.d/20-late.conf": "pgraft.metrics_port = 9103\n",
    "/etc/pg/conf.d/10-early.conf": "pgraft.metrics_port = 9102\npgraft.batch_size = 7\n",
    "/etc/pg/conf.d/notes.txt": "this is not read",
    "/etc/pg/conf.d/.hidden.conf": "pgraft.batch_size = 8\n",
  };
  const { config, sources } = loadPgraftConfig({
    files: [{ path: "/etc/pg/postgresql.conf", mode: "postgresql" }],
    environment: { PGDATA: "/data" },
    fileSystem: memoryFileSystem(files),
  });
  t.is(config.metricsPort, 9103);
  t.is(config.entriesPerAppendMax, 7);
  t.is(sources["pgraft.metrics_port"], "/etc/pg/conf.d/20-late.conf:1");
  t.is(sources["pgraft.cluster_id"], "/etc/pg/pgraft-base.conf:1");
});

test("a missing include, a missing directory and an include loop are errors", (t) => {
  const files = {
    "/c/main.conf": `${REQUIRED}\ninclude 'nowhere.conf'\ninclude_dir 'nodir'\ninclude 'loop.conf'`,
    "/c/loop.conf": "include 'loop.conf'\n",
  };
  const error = t.throws(
    () => loadPgraftConfig({ files: [{ path: "/c/main.conf", mode: "postgresql" }], environment: { PGDATA: "/d" }, fileSystem: memoryFileSystem(files) }),
    { instanceOf: ConfigError },
  );
  t.deepEqual(messages(error!.issues), [
    'Cannot read file "/c/nowhere.conf" (included at /c/main.conf:5): it does not exist; check the path',
    `Cannot follow "include_dir 'nodir'" (/c/main.conf:6): the directory "/c/nodir" does not exist; create it or remove the line`,
    `Cannot follow "include 'loop.conf'" (/c/loop.conf:1): includes are nested more than 10 deep; check for a file that includes itself`,
  ]);
  t.true(error!.issues.every((issue) => issue.code === "unreadable_file"));
});

test("settings given as text cannot include files", (t) => {
  const parsed = parseSettingsText("include 'other.conf'", { fileName: "text", mode: "postgresql" });
  t.deepEqual(messages(parsed.issues), [
    `Cannot follow "include 'other.conf'" (text:1): settings given as text cannot include files; read them from a file instead`,
  ]);
});

test("a missing settings file is an error naming it", (t) => {
  const error = t.throws(
    () => loadPgraftConfig({ files: [{ path: "/nope.conf", mode: "standalone" }], environment: {}, fileSystem: memoryFileSystem({}) }),
    { instanceOf: ConfigError },
  );
  t.is(error!.issues[0]!.message, 'Cannot read settings file "/nope.conf": it does not exist; check the path');
});

// ---------------------------------------------------------------------------------------------------
// Command line

test("a command-line override wins over the file and is named as the source", (t) => {
  const { config, sources } = load(`${REQUIRED}\npgraft.election_timeout = 1000\npgraft.batch_size = 50`, {
    commandLine: ["--pgraft.election_timeout=3s", "pgraft.batch_size=200", "--PGRAFT.Metrics_Enabled=on"],
  });
  t.is(config.electionTimeoutMs, 3000);
  t.is(config.entriesPerAppendMax, 200);
  t.true(config.metricsEnabled);
  t.is(sources["pgraft.election_timeout"], "command line");
  t.is(sources["pgraft.batch_size"], "command line");
});

test("an invalid command-line value is reported with the source \"command line\"", (t) => {
  const issues = loadIssues(t, REQUIRED, { commandLine: ["--pgraft.heartbeat_interval=fast"] });
  t.deepEqual(issues.map((issue) => [issue.source, issue.message]), [
    [
      "command line",
      'Invalid value for "pgraft.heartbeat_interval" (command line): "fast" is not a duration; use a number of milliseconds or a value like "100ms" or "1s"',
    ],
  ]);
});

test("parseCommandLineSettings() takes values verbatim and refuses malformed or non-pgraft arguments", (t) => {
  const parsed = parseCommandLineSettings(["pgraft.data_dir=/var/lib/my dir", "--pgraft.name=", "pgraft.name", "--election_timeout=5", "--port=5432"]);
  t.deepEqual(parsed.assignments, [
    { name: "pgraft.data_dir", value: "/var/lib/my dir", source: "command line" },
    { name: "pgraft.name", value: "", source: "command line" },
  ]);
  t.deepEqual(parsed.issues.map((issue) => [issue.code, issue.message]), [
    ["syntax_error", 'Cannot parse command-line setting "pgraft.name": expected pgraft.NAME=value, for example --pgraft.election_timeout=2s'],
    ["foreign_setting", 'Unknown setting "election_timeout" (command line): did you mean "pgraft.election_timeout"?'],
    ["foreign_setting", 'Unknown setting "port" (command line): only pgraft.* settings can be given here'],
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Required settings and the member list

test("missing required settings are each reported with an example", (t) => {
  const issues = loadIssues(t, `pgraft.auth = off\n`);
  t.deepEqual(
    issues.map((issue) => [issue.code, issue.setting, issue.message]),
    [
      [
        "missing_required",
        "pgraft.cluster_id",
        `Cannot start node: required setting "pgraft.cluster_id" is not set; set it to the same name on every node, for example pgraft.cluster_id = 'orders-cluster'`,
      ],
      [
        "missing_required",
        "pgraft.name",
        `Cannot start node: required setting "pgraft.name" is not set; set it to this node's name in pgraft.initial_cluster, for example pgraft.name = 'n1'`,
      ],
      [
        "missing_required",
        "pgraft.initial_cluster",
        `Cannot start node: required setting "pgraft.initial_cluster" is not set; list every founding member, the same on every node, ` +
          `for example pgraft.initial_cluster = 'n1=10.0.0.1:7001,n2=10.0.0.2:7001,n3=10.0.0.3:7001'`,
      ],
    ],
  );
});

test("a malformed pgraft.initial_cluster reports every bad member", (t) => {
  const text = REQUIRED.replace(
    "'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003'",
    "'n1=127.0.0.1:7001,,127.0.0.1:7002,n3=127.0.0.1,n4=::1:7004,n5=10.0.0.300:7005,n 6=h:1,n7=h:0'",
  );
  const issues = loadIssues(t, text);
  const prefix = 'Invalid value for "pgraft.initial_cluster" (postgresql.conf:3): ';
  t.deepEqual(messages(issues), [
    `${prefix}member 2 is empty; remove the stray ","`,
    `${prefix}member 3 "127.0.0.1:7002" has no name; write name=host:port, for example 'n1=10.0.0.1:7001,n2=10.0.0.2:7001,n3=10.0.0.3:7001'`,
    `${prefix}member 4 "n3=127.0.0.1": "127.0.0.1" has no port; use host:port, for example "127.0.0.1:7001"`,
    `${prefix}member 5 "n4=::1:7004": "::1:7004" has several ":"; write IPv6 addresses in brackets, for example "[::1]:7001"`,
    `${prefix}member 6 "n5=10.0.0.300:7005": "10.0.0.300" in "10.0.0.300:7005" is not a valid host name or IP address`,
    `${prefix}member 7: "n 6" is not a valid name; use 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, for example "node-1"`,
    `${prefix}member 8 "n7=h:0": port "0" in "h:0" is out of range; use a port from 1 to 65535`,
  ]);
  t.true(issues.every((issue) => issue.code === "invalid_value" && issue.setting === "pgraft.initial_cluster"));
});

test("parseInitialCluster() and parseHostAndPort() accept host names, IPv4 and bracketed IPv6", (t) => {
  const parsed = parseInitialCluster(" a=db-1.example.com:7001 , b=[::1]:7002,c=10.0.0.3:7003,d=pgraft_n4:7004");
  t.deepEqual(parsed.problems, []);
  t.deepEqual(parsed.members, [
    { name: "a", host: "db-1.example.com", port: 7001 },
    { name: "b", host: "::1", port: 7002 },
    { name: "c", host: "10.0.0.3", port: 7003 },
    { name: "d", host: "pgraft_n4", port: 7004 },
  ]);
  t.deepEqual(parseHostAndPort("[fe80::1]:65535"), { ok: true, value: { host: "fe80::1", port: 65535 } });
  t.false(parseHostAndPort("[nonsense]:1").ok);
  t.false(parseHostAndPort("host:65536").ok);
  t.false(parseHostAndPort("host:").ok);
});

test("duplicate member names and addresses are errors", (t) => {
  const text = REQUIRED.replace(
    "'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003'",
    "'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n1=127.0.0.1:7003,n4=127.0.0.1:7002'",
  );
  const issues = loadIssues(t, text);
  t.deepEqual(issues.map((issue) => [issue.code, issue.message]), [
    ["duplicate_member", 'Invalid value for "pgraft.initial_cluster" (postgresql.conf:3): the name "n1" appears more than once; give every member a unique name'],
    [
      "duplicate_member",
      'Invalid value for "pgraft.initial_cluster" (postgresql.conf:3): "n2" and "n4" share the address "127.0.0.1:7002"; give every member its own host:port',
    ],
  ]);
});

test("pgraft.name must be a member of pgraft.initial_cluster", (t) => {
  const issues = loadIssues(t, REQUIRED.replace("pgraft.name = 'n1'", "pgraft.name = 'n4'"));
  t.deepEqual(issues, [
    {
      code: "name_not_in_cluster",
      setting: "pgraft.name",
      value: "n4",
      source: "postgresql.conf:2",
      message:
        'Cannot start node: pgraft.name "n4" (postgresql.conf:2) is not a member of pgraft.initial_cluster (postgresql.conf:3), ' +
        'which lists "n1", "n2", "n3"; add n4=host:port to pgraft.initial_cluster or correct pgraft.name',
    },
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Several errors at once

test("every problem is reported at once in one ConfigError", (t) => {
  const text = [
    "pgraft.cluster_id = 'orders'",
    "pgraft.name = 'n9'",
    "pgraft.initial_cluster = 'n1=127.0.0.1:7001,n2=127.0.0.1:7002'",
    "pgraft.heartbeat_intervl = 100",
    "pgraft.batch_size = many",
    "pgraft.election_timeout = 50",
    "pgraft.heartbeat_interval = 50",
    "pgraft.data_dir /x/y",
  ].join("\n");
  const error = t.throws(() => load(text, { mode: "standalone", fileName: "pgraft.conf", commandLine: ["--pgraft.metrics_port=0"] }), {
    instanceOf: ConfigError,
  });
  t.is(error!.name, "ConfigError");
  t.deepEqual(
    error!.issues.map((issue) => [issue.code, issue.setting]),
    [
      ["syntax_error", "pgraft.data_dir"],
      ["unknown_setting", "pgraft.heartbeat_intervl"],
      ["name_not_in_cluster", "pgraft.name"],
      ["inconsistent", "pgraft.election_timeout"],
      ["out_of_range", "pgraft.metrics_port"],
      ["invalid_value", "pgraft.batch_size"],
      ["missing_required", "pgraft.auth_secret_file"],
    ],
  );
  const lines = error!.message.split("\n");
  t.is(lines[0], "Cannot load pgraft settings: 7 problems found:");
  t.is(lines.length, 8);
  error!.issues.forEach((issue, index) => t.is(lines[index + 1], `  ${index + 1}. ${issue.message}`));
});

test("validateSettings() returns issues instead of throwing", (t) => {
  const result = validateSettings([{ name: "pgraft.batch_size", value: "x", source: "test" }], { environment: {} });
  t.false(result.ok);
  if (!result.ok) t.true(result.issues.some((issue) => issue.code === "invalid_value" && issue.source === "test"));
});

// ---------------------------------------------------------------------------------------------------
// Security settings

test("peer authentication needs a secret unless pgraft.auth is off", (t) => {
  const withoutSecret = REQUIRED.split("\n").slice(0, 3).join("\n");
  const issues = loadIssues(t, withoutSecret);
  t.deepEqual(issues.map((issue) => [issue.code, issue.setting]), [["missing_required", "pgraft.auth_secret_file"]]);
  t.regex(issues[0]!.message, /^Cannot start node: peers must authenticate, but neither pgraft.auth_secret_file nor pgraft.auth_secret is set; .* or set pgraft.auth = off/);
  const { config, warnings } = load(`${withoutSecret}\npgraft.auth = off`);
  t.deepEqual(config.peerAuthentication, { mode: "off" });
  t.deepEqual(warnings.map((warning) => warning.code), ["unsafe_option"]);
});

test("the secret file is read relative to PGDATA with its trailing newline dropped", (t) => {
  const withoutSecret = REQUIRED.split("\n").slice(0, 3).join("\n");
  const { config } = load(`${withoutSecret}\npgraft.auth_secret_file = 'pgraft.secret'`, {
    extraFiles: { "/data/pgraft.secret": `${SECRET}\n` },
  });
  t.deepEqual(config.peerAuthentication, { mode: "shared_secret", secret: SECRET, secretFile: "/data/pgraft.secret" });
  const issues = loadIssues(t, `${withoutSecret}\npgraft.auth_secret_file = '/etc/missing.secret'`);
  t.is(
    issues[0]!.message,
    'Cannot read pgraft.auth_secret_file (postgresql.conf:4): "/etc/missing.secret" does not exist; ' +
      "create it (for example: openssl rand -hex 32 > /etc/missing.secret) or correct the path",
  );
});

test("a short secret is refused without showing it, and both secret settings at once are an error", (t) => {
  const withoutSecret = REQUIRED.split("\n").slice(0, 3).join("\n");
  const short = loadIssues(t, `${withoutSecret}\npgraft.auth_secret = 'hunter2'`);
  t.deepEqual(short, [
    {
      code: "invalid_value",
      setting: "pgraft.auth_secret",
      value: "(hidden, 7 characters)",
      source: "postgresql.conf:4",
      message:
        'Invalid value for "pgraft.auth_secret" (postgresql.conf:4): the secret has 7 characters, fewer than the 16 required; ' +
        "use a longer random secret, for example the output of openssl rand -hex 32",
    },
  ]);
  t.false(short[0]!.message.includes("hunter2"));
  const both = loadIssues(t, `${REQUIRED}\npgraft.auth_secret_file = '/s'`, { extraFiles: { "/s": SECRET } });
  t.is(
    both[0]!.message,
    "Cannot start node: pgraft.auth_secret (postgresql.conf:4) and pgraft.auth_secret_file (postgresql.conf:5) are both set; " +
      "keep only one, preferably pgraft.auth_secret_file",
  );
});

test("TLS is on with a certificate and key, and half a TLS setup is an error", (t) => {
  const files = { "/tls/node.crt": "c", "/tls/node.key": "k", "/tls/ca.crt": "a" };
  const { config } = load(
    `${REQUIRED}\npgraft.tls_cert_file = '/tls/node.crt'\npgraft.tls_key_file = '/tls/node.key'\npgraft.tls_ca_file = '/tls/ca.crt'`,
    { extraFiles: files },
  );
  t.deepEqual(config.tls, { certFile: "/tls/node.crt", keyFile: "/tls/node.key", caFile: "/tls/ca.crt" });
  t.is(load(`${REQUIRED}\npgraft.tls_ca_file = ''`).config.tls, undefined);
  const halfIssues = loadIssues(t, `${REQUIRED}\npgraft.tls_cert_file = '/tls/node.crt'`, { extraFiles: files });
  t.deepEqual(messages(halfIssues), [
    "Cannot start node: pgraft.tls_cert_file is set (postgresql.conf:5) but pgraft.tls_key_file is not; set both to enable TLS, or neither",
  ]);
  const caOnly = loadIssues(t, `${REQUIRED}\npgraft.tls_ca_file = '/tls/ca.crt'`, { extraFiles: files });
  t.regex(caOnly[0]!.message, /^Cannot start node: pgraft.tls_ca_file is set \(postgresql.conf:5\) but TLS is off; /);
  const missing = loadIssues(t, `${REQUIRED}\npgraft.tls_cert_file = '/tls/other.crt'\npgraft.tls_key_file = '/tls/node.key'`, { extraFiles: files });
  t.deepEqual(messages(missing), [
    'Cannot read pgraft.tls_cert_file (postgresql.conf:5): "/tls/other.crt" does not exist or is not a file; correct the path',
  ]);
});

test("the peer listener, the client API and enabled metrics need distinct ports", (t) => {
  const clash = loadIssues(t, `${REQUIRED}\npgraft.client_address = '127.0.0.1:7001'`);
  t.deepEqual(messages(clash), [
    `Cannot start node: pgraft.client_address "127.0.0.1:7001" (postgresql.conf:5) uses the same port as pgraft.listen_address ` +
      `"127.0.0.1:7001" (this node's member of pgraft.initial_cluster (postgresql.conf:3)); give the client API its own port`,
  ]);
  const metrics = loadIssues(t, `${REQUIRED}\npgraft.metrics_enabled = on\npgraft.metrics_port = 2379`);
  t.deepEqual(messages(metrics), [
    "Cannot start node: pgraft.metrics_port 2379 (postgresql.conf:6) is also the port of pgraft.client_address (the default); choose another port for metrics",
  ]);
  t.notThrows(() => load(`${REQUIRED}\npgraft.metrics_port = 2379`));
  t.notThrows(() => load(`${REQUIRED}\npgraft.client_address = '10.0.0.9:7001'`));
});

// ---------------------------------------------------------------------------------------------------
// Rendering

test("renderSettings() writes text that parses back to the same configuration", (t) => {
  const text = [
    REQUIRED.replace("pgraft.name = 'n1'", "pgraft.name = 'n2'"),
    "pgraft.profile = medium",
    "pgraft.listen_address = '[::]:7100'",
    "pgraft.metrics_enabled = on",
    "pgraft.max_batch_delay = 1s",
    "pgraft.data_dir = '/var/lib/it''s here'",
    "pgraft.pre_vote = off",
  ].join("\n");
  const original = load(text);
  const rendered = renderSettings(original.config, { revealSecrets: true });
  const reparsed = parseSettingsText(rendered, { fileName: "rendered.conf", mode: "standalone" });
  t.deepEqual(reparsed.issues, []);
  const validation = validateSettings(reparsed.assignments, { environment: {} });
  t.true(validation.ok);
  if (validation.ok) t.deepEqual(validation.config, original.config);
  t.true(rendered.includes("pgraft.election_timeout = 2000ms\n"));
  t.true(rendered.includes("pgraft.data_dir = '/var/lib/it''s here'\n"));
});

test("renderSettings() hides an inline secret by default and can name each value's source", (t) => {
  const { config, sources } = load(REQUIRED, { commandLine: ["pgraft.batch_size=5"] });
  const rendered = renderSettings(config, { sources });
  t.false(rendered.includes(SECRET));
  t.regex(rendered, /^#pgraft\.auth_secret = \(hidden\) +# postgresql\.conf:4$/m);
  t.regex(rendered, /^pgraft\.batch_size = 5 +# command line$/m);
  t.regex(rendered, /^pgraft\.election_timeout = 1000ms +# default$/m);
  t.regex(rendered, /^#pgraft\.tls_cert_file = \(not set\)$/m);
  t.is(rendered.split("\n").filter((line) => line.startsWith("pgraft.") || line.startsWith("#pgraft.")).length, SETTINGS.length);
});

test("formatSettingValue() gives a SHOW value for every setting", (t) => {
  const { config } = load(REQUIRED);
  for (const setting of SETTINGS) t.notThrows(() => formatSettingValue(config, setting.name), setting.name);
  t.is(formatSettingValue(config, "pgraft.heartbeat_interval"), "100ms");
  t.is(formatSettingValue(config, "pgraft.check_quorum"), "on");
  t.is(formatSettingValue(config, "pgraft.initial_cluster"), "'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003'");
  t.is(formatSettingValue(config, "pgraft.auth_secret"), undefined);
  t.is(formatSettingValue(config, "pgraft.auth_secret", { revealSecrets: true }), `'${SECRET}'`);
});

test("a secret line that does not parse is not also reported as a missing secret", (t) => {
  const text = REQUIRED.replace(`pgraft.auth_secret = '${SECRET}'`, `pgraft.auth_secret = '${SECRET}`);
  const issues = loadIssues(t, text);
  t.deepEqual(issues.map((issue) => [issue.code, issue.setting]), [["syntax_error", "pgraft.auth_secret"]]);
  t.false(issues[0]!.message.includes(SECRET));
});
