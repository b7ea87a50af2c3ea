/**
 * pgraft.initial_cluster_state: "new" (the default: found the cluster with pgraft.initial_cluster) or
 * "existing" (join a running cluster that added this node), case-insensitive like every enum setting,
 * from a file or the command line; any other value is refused with an error naming the allowed ones;
 * SHOW and the rendered settings give it back.
 */
import test from "ava";
import {
  ConfigError,
  formatSettingValue,
  loadPgraftConfig,
  memoryFileSystem,
  parseSettingsText,
  renderSettings,
  SETTINGS,
  validateSettings,
  type ConfigIssue,
  type LoadedPgraftConfig,
} from "../../src/config/index.ts";

const SECRET = "0123456789abcdef0123456789abcdef";

const REQUIRED = [
  "pgraft.cluster_id = 'orders'",
  "pgraft.name = 'n1'",
  "pgraft.initial_cluster = 'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003'",
  `pgraft.auth_secret = '${SECRET}'`,
].join("\n");

function load(text: string, commandLine: readonly string[] = []): LoadedPgraftConfig {
  return loadPgraftConfig({
    files: [{ path: "postgresql.conf", mode: "postgresql" }],
    commandLine,
    environment: { PGDATA: "/data" },
    fileSystem: memoryFileSystem({ "postgresql.conf": text }),
  });
}

function issues(t: import("ava").ExecutionContext, text: string, commandLine: readonly string[] = []): readonly ConfigIssue[] {
  const error = t.throws(() => load(text, commandLine), { instanceOf: ConfigError });
  return error?.issues ?? [];
}

test("pgraft.initial_cluster_state defaults to new, named as a default", (t) => {
  const { config, sources } = load(REQUIRED);
  t.is(config.initialClusterState, "new");
  t.is(sources["pgraft.initial_cluster_state"], "default");
});

test("pgraft.initial_cluster_state accepts new and existing, in any case, from the file", (t) => {
  for (const [raw, expected] of [["existing", "existing"], ["new", "new"], ["'existing'", "existing"], ["EXISTING", "existing"], ["New", "new"]] as const) {
    const { config, sources } = load(`${REQUIRED}\npgraft.initial_cluster_state = ${raw}`);
    t.is(config.initialClusterState, expected, raw);
    t.is(sources["pgraft.initial_cluster_state"], "postgresql.conf:5", raw);
  }
});

test("pgraft.initial_cluster_state can be set on the command line, over the file", (t) => {
  const { config, sources } = load(`${REQUIRED}\npgraft.initial_cluster_state = new`, ["--pgraft.initial_cluster_state=existing"]);
  t.is(config.initialClusterState, "existing");
  t.is(sources["pgraft.initial_cluster_state"], "command line");
});

test("pgraft.initial_cluster_state refuses other values with an error naming the allowed ones", (t) => {
  for (const raw of ["join", "'old'", "''", "true"]) {
    const found = issues(t, `${REQUIRED}\npgraft.initial_cluster_state = ${raw}`);
    t.is(found.length, 1, raw);
    t.is(found[0]?.setting, "pgraft.initial_cluster_state", raw);
    const shown = raw.replace(/^'|'$/g, "");
    t.is(found[0]?.message, `Invalid value for "pgraft.initial_cluster_state" (postgresql.conf:5): "${shown}" is not one of new, existing; use one of them`, raw);
  }
});

test("pgraft.initial_cluster_state is listed with its default, and SHOW and rendering give it back", (t) => {
  const definition = SETTINGS.find((setting) => setting.name === "pgraft.initial_cluster_state");
  t.truthy(definition);
  t.like(definition, { defaultValue: "new", allowedValues: ["new", "existing"] });
  for (const state of ["new", "existing"] as const) {
    const { config } = load(`${REQUIRED}\npgraft.initial_cluster_state = ${state}`);
    t.is(formatSettingValue(config, "pgraft.initial_cluster_state"), state);
    const rendered = renderSettings(config, { revealSecrets: true });
    t.regex(rendered, new RegExp(`^pgraft\\.initial_cluster_state = ${state}$`, "m"));
    const reparsed = parseSettingsText(rendered, { fileName: "rendered.conf", mode: "standalone" });
    t.deepEqual(reparsed.issues, []);
    const validation = validateSettings(reparsed.assignments, { environment: {} });
    t.true(validation.ok);
    if (validation.ok) t.is(validation.config.initialClusterState, state);
  }
});

const JOINER = [
  "pgraft.cluster_id = 'orders'",
  "pgraft.name = 'n5'",
  "pgraft.initial_cluster = 'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003,n5=127.0.0.1:7005'",
  `pgraft.auth_secret = '${SECRET}'`,
].join("\n");

test("a joining node may keep the id it was added under, which need not be its position", (t) => {
  const { config } = load(`${JOINER}\npgraft.initial_cluster_state = 'existing'\npgraft.node_id = 5`);
  t.is(config.nodeId, 5);
  t.deepEqual(config.initialCluster.map((member) => [member.name, member.nodeId]), [["n1", 1], ["n2", 2], ["n3", 3], ["n5", 5]]);
});

test("a founding node's id must still be its position, and a joiner's must not be a founder's", (t) => {
  const founder = issues(t, `${JOINER}\npgraft.node_id = 5`);
  t.regex(founder.map((issue) => issue.message).join("\n"), /pgraft\.node_id is 5 .* but "n5" is member 4 of pgraft\.initial_cluster/);
  const taken = issues(t, `${JOINER}\npgraft.initial_cluster_state = existing\npgraft.node_id = 2`);
  t.regex(taken.map((issue) => issue.message).join("\n"), /pgraft\.node_id is 2 .*the id of "n2" \(member 2 of pgraft\.initial_cluster.*use the id this node was added under \(pgraft member add --id\)/);
});
