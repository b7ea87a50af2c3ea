/**
 * Renders an effective PgraftConfig back as postgresql.conf text, for `pgraft status`, docs and SQL
 * `SHOW`. The text parses back (standalone mode) into the same configuration, except that an inline
 * pgraft.auth_secret is hidden unless `revealSecrets` is set.
 */
import { assert } from "../assert.ts";
import { SETTINGS } from "./setting-definitions.ts";
import { formatHostAndPort } from "./setting-values.ts";
import type { PgraftConfig, SettingSources } from "./settings.ts";
import { quoteSettingValue } from "./settings-syntax.ts";

export interface RenderSettingsOptions {
  /** Adds each value's source as a trailing comment ("# postgresql.conf:12"). */
  readonly sources?: SettingSources;
  /** Writes an inline pgraft.auth_secret in clear; by default it is replaced by a comment. */
  readonly revealSecrets?: boolean;
}

function onOff(value: boolean): string {
  return value ? "on" : "off";
}

/**
 * The value of setting `name` as it would be written in postgresql.conf, or undefined when the setting is
 * not set (or is a secret and `revealSecrets` is false). Durations are written in milliseconds ("1000ms").
 */
export function formatSettingValue(config: PgraftConfig, name: string, options: { readonly revealSecrets?: boolean } = {}): string | undefined {
  const authentication = config.peerAuthentication;
  const sharedSecret = authentication.mode === "shared_secret" ? authentication : undefined;
  const optionalPath = (path: string | undefined): string | undefined => (path === undefined ? undefined : quoteSettingValue(path));
  switch (name) {
    case "pgraft.cluster_id": return quoteSettingValue(config.clusterId);
    case "pgraft.name": return quoteSettingValue(config.name);
    case "pgraft.node_id": return String(config.nodeId);
    case "pgraft.listen_address": return quoteSettingValue(formatHostAndPort({ host: config.listenHost, port: config.listenPort }));
    case "pgraft.initial_cluster":
      return quoteSettingValue(config.initialCluster.map((member) => `${member.name}=${formatHostAndPort(member)}`).join(","));
    case "pgraft.initial_cluster_state": return config.initialClusterState;
    case "pgraft.on_removed": return config.onRemoved;
    case "pgraft.data_dir": return quoteSettingValue(config.dataDir);
    case "pgraft.profile": return config.profile;
    case "pgraft.election_timeout": return `${config.electionTimeoutMs}ms`;
    case "pgraft.heartbeat_interval": return `${config.heartbeatIntervalMs}ms`;
    case "pgraft.batch_size": return String(config.entriesPerAppendMax);
    case "pgraft.max_batch_delay": return `${config.maxBatchDelayMs}ms`;
    case "pgraft.snapshot_interval": return String(config.snapshotIntervalEntries);
    case "pgraft.max_log_entries": return String(config.logEntriesMax);
    case "pgraft.metrics_enabled": return onOff(config.metricsEnabled);
    case "pgraft.metrics_port": return String(config.metricsPort);
    case "pgraft.watch_progress_notify_interval": return `${config.watchProgressNotifyIntervalMs}ms`;
    case "pgraft.fence_writes": return onOff(config.fenceWrites);
    case "pgraft.database": return quoteSettingValue(config.database);
    case "pgraft.pre_vote": return onOff(config.preVote);
    case "pgraft.check_quorum": return onOff(config.checkQuorum);
    case "pgraft.client_address": return quoteSettingValue(formatHostAndPort({ host: config.clientHost, port: config.clientPort }));
    case "pgraft.client_urls": {
      const entries = Object.entries(config.clientUrls);
      return entries.length === 0 ? undefined : quoteSettingValue(entries.map(([name, address]) => `${name}=${address}`).join(","));
    }
    case "pgraft.auth": return onOff(authentication.mode !== "off");
    case "pgraft.auth_secret":
      if (sharedSecret === undefined || sharedSecret.secretFile !== undefined || options.revealSecrets !== true) return undefined;
      return quoteSettingValue(sharedSecret.secret);
    case "pgraft.auth_secret_file": return optionalPath(sharedSecret?.secretFile);
    case "pgraft.tls_cert_file": return optionalPath(config.tls?.certFile);
    case "pgraft.tls_key_file": return optionalPath(config.tls?.keyFile);
    case "pgraft.tls_ca_file": return optionalPath(config.tls?.caFile);
  }
  assert(false, `formatSettingValue(): no setting named "${name}"`);
}

const COMMENT_COLUMN = 56;

/** Every setting of `config`, one line each in SETTINGS order; unset ones as comments. */
export function renderSettings(config: PgraftConfig, options: RenderSettingsOptions = {}): string {
  const lines = ["# pgraft settings: effective values, in postgresql.conf syntax"];
  for (const setting of SETTINGS) {
    const value = formatSettingValue(config, setting.name, options);
    const hiddenSecret =
      setting.name === "pgraft.auth_secret" &&
      config.peerAuthentication.mode === "shared_secret" &&
      config.peerAuthentication.secretFile === undefined;
    let line: string;
    if (value !== undefined) line = `${setting.name} = ${value}`;
    else if (hiddenSecret) line = `#${setting.name} = (hidden)`;
    else line = `#${setting.name} = (not set)`;
    const source = value === undefined && !hiddenSecret ? undefined : options.sources?.[setting.name];
    lines.push(source === undefined ? line : `${line.padEnd(COMMENT_COLUMN - 2)}  # ${source}`);
  }
  return `${lines.join("\n")}\n`;
}
