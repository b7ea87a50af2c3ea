/**
 * The `pgraft` command: `pgraft start` runs a node, `pgraft status` shows the cluster from any node
 * (one line per member, like `patronictl list`), `pgraft member` lists, adds and removes members
 * (through the leader, like `etcdctl member`), `pgraft version` prints the version.
 *
 *   pgraft start [--config FILE] [--postgresql-conf FILE] [pgraft.NAME=VALUE ...]
 *   pgraft status [--endpoints http://host:port,...] [--config FILE] [--json]
 *   pgraft member list|add|remove [--id N] [--peer-url http://host:port] [--client-url http://host:port] [--name NAME] [--endpoints ...] [--json]
 *
 * Settings come from a standalone file in postgresql.conf syntax (--config, only pgraft.* names), from
 * a real postgresql.conf (--postgresql-conf, where other names are PostgreSQL's own), then from
 * command-line overrides; later wins. Exit codes: 0 ok (for `start`: stopped by a signal), 1 runtime
 * failure or an environment in the way (a port another process holds, a data directory that is not
 * writable or that another node has locked), 2 bad usage or settings (including a pgraft.data_dir that
 * is a file), 3 `start` only: this node was removed from the cluster (pgraft.on_removed = exit).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type pg from "pg";
import { PostgresSupervisor, PostgresSupervisorError } from "../postgres/supervisor.ts";
import { PostgresSetupError } from "../postgres/install.ts";
import { parseConninfo, portOfPostgresqlConf, PostgresOptionError, serverConfigFile } from "./postgres-options.ts";
import { ConfigError, loadPgraftConfig, type PgraftConfig, type SettingsFileReference } from "../config/index.ts";
import type { ClusterReport } from "../api/index.ts";
import { StorageCorruptionError } from "../storage/raft-storage.ts";
import { createLogger } from "../server/logger.ts";
import { NodeServer, REMOVED_EXIT_CODE } from "../server/node-server.ts";
import { StartupError } from "../server/preflight.ts";
import { TransportError } from "../transport/index.ts";
import { PACKAGE_VERSION } from "../server/version.ts";

export class UsageError extends Error {
  override name = "UsageError";
}

const USAGE = `Usage:
  pgraft start [--pgdata DIR [--pg-port N] [--pg-bin DIR] | --postgres CONNINFO] [--config FILE] [--postgresql-conf FILE] [pgraft.NAME=VALUE ...]
  pgraft status [--endpoints http://host:port,...] [--config FILE] [pgraft.NAME=VALUE ...] [--json]
  pgraft member list [--endpoints ...] [--config FILE] [--json]
  pgraft member add --peer-url http://host:port [--client-url http://host:port] [--name NAME] [--id N] [--endpoints ...] [--config FILE] [--json]
  pgraft member remove --id N [--endpoints ...] [--config FILE] [--json]
  pgraft settings [--json]
  pgraft version`;

interface Parsed {
  readonly files: SettingsFileReference[];
  readonly overrides: string[];
  readonly endpoints: string[];
  readonly json: boolean;
  /** `pgraft member`: the member's id and peer URL. */
  readonly id: string | undefined;
  readonly peerUrl: string | undefined;
  /** `pgraft member add`: the new node's client URL and name (it also publishes both when it starts). */
  readonly clientUrl: string | undefined;
  readonly name: string | undefined;
  /** `pgraft start`: the PostgreSQL server to supervise (--pgdata) or attach to (--postgres). */
  readonly pgdata: string | undefined;
  readonly pgPort: number | undefined;
  /** `pgraft start --pgdata`: where postgres and initdb are; default the newest /usr/lib/postgresql/N/bin. */
  readonly pgBin: string | undefined;
  readonly postgres: string | undefined;
}

export function parseArguments(argv: readonly string[]): Parsed {
  const files: SettingsFileReference[] = [];
  const overrides: string[] = [];
  const endpoints: string[] = [];
  let json = false;
  let id: string | undefined;
  let peerUrl: string | undefined;
  let clientUrl: string | undefined;
  let name: string | undefined;
  let pgdata: string | undefined;
  let pgPort: number | undefined;
  let pgBin: string | undefined;
  let postgres: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`Missing value for ${arg}\n${USAGE}`);
      return next;
    };
    if (arg === "--config") files.push({ path: value(), mode: "standalone" });
    else if (arg === "--postgresql-conf") files.push({ path: value(), mode: "postgresql" });
    else if (arg === "--endpoints") endpoints.push(...value().split(",").map((url) => url.trim()).filter((url) => url.length > 0));
    else if (arg === "--json") json = true;
    else if (arg === "--id") id = value();
    else if (arg === "--peer-url") peerUrl = value();
    else if (arg === "--client-url") clientUrl = value();
    else if (arg === "--name") name = value();
    else if (arg === "--pgdata") pgdata = value();
    else if (arg === "--postgres") postgres = value();
    else if (arg === "--pg-bin") pgBin = value();
    else if (arg === "--pg-port") {
      const text = value();
      pgPort = Number(text);
      if (!/^\d+$/.test(text) || pgPort < 1 || pgPort > 65535) throw new UsageError(`--pg-port takes a port from 1 to 65535, received "${text}"\n${USAGE}`);
    }
    else if (/^(--)?pgraft\./.test(arg)) overrides.push(arg);
    else throw new UsageError(`Unknown argument "${arg}"\n${USAGE}`);
  }
  if (pgdata !== undefined && postgres !== undefined) throw new UsageError(`Use --pgdata (pgraft starts PostgreSQL) or --postgres (it attaches to a running one), not both\n${USAGE}`);
  if (pgPort !== undefined && pgdata === undefined) throw new UsageError(`--pg-port goes with --pgdata: the port of the PostgreSQL server pgraft starts\n${USAGE}`);
  if (pgBin !== undefined && pgdata === undefined) throw new UsageError(`--pg-bin goes with --pgdata: the directory of the postgres and initdb that pgraft runs\n${USAGE}`);
  return { files, overrides, endpoints, json, id, peerUrl, clientUrl, name, pgdata, pgPort, pgBin, postgres };
}

function loadConfig(parsed: Parsed, pgdata: string | undefined = process.env.PGDATA): PgraftConfig {
  const loaded = loadPgraftConfig({ files: parsed.files, commandLine: parsed.overrides, environment: { PGDATA: pgdata } });
  for (const warning of loaded.warnings) process.stderr.write(`pgraft: warning: ${warning.message}\n`);
  return loaded.config;
}

async function start(argv: readonly string[]): Promise<number> {
  const parsed = parseArguments(argv);
  const pgdata = parsed.pgdata === undefined ? undefined : resolve(parsed.pgdata);
  let files = parsed.files;
  let connection: pg.ClientConfig | undefined;
  if (pgdata !== undefined) {
    // The server's own postgresql.conf first: --config files and the command line override it.
    const conf = join(pgdata, "postgresql.conf");
    if (existsSync(conf)) files = [{ path: conf, mode: "postgresql" }, ...files];
  } else if (parsed.postgres !== undefined) {
    connection = parseConninfo(parsed.postgres);
    if (!files.some((file) => file.mode === "postgresql")) {
      const found = await serverConfigFile(connection);
      if ("path" in found) files = [{ path: found.path, mode: "postgresql" }, ...files];
      else process.stderr.write(`pgraft: warning: ${found.problem}; using only --config and command-line settings\n`);
    }
  }
  const config = loadConfig({ ...parsed, files }, pgdata ?? process.env.PGDATA);
  const logger = createLogger({ name: config.name, level: process.env.PGRAFT_LOG_LEVEL ?? "info" });
  let supervisor: PostgresSupervisor | undefined;
  let server: NodeServer | undefined;
  // PostgreSQL (re)started: the bridge connects now instead of after its reconnect backoff.
  const postgresRunning = (): void => server?.postgres?.retryNow();
  // Handlers first: a SIGTERM that arrives while PostgreSQL or the node is still starting must stop
  // what was started (a default SIGTERM would kill this process and leave the postmaster running).
  let stopSignal: string | undefined;
  let onStopSignal: ((signal: string) => void) | undefined;
  const signalled = (signal: string): void => {
    stopSignal ??= signal;
    onStopSignal?.(signal);
  };
  process.once("SIGTERM", () => signalled("SIGTERM"));
  process.once("SIGINT", () => signalled("SIGINT"));
  try {
    if (pgdata !== undefined) {
      const port = parsed.pgPort ?? portOfPostgresqlConf(join(pgdata, "postgresql.conf")) ?? 5432;
      // Raft starts while PostgreSQL starts (crash recovery after a kill can take seconds): the node
      // votes and replicates meanwhile, and the bridge fills the tables once the server is ready.
      supervisor = await PostgresSupervisor.launch({
        pgdata,
        port,
        ...(parsed.pgBin === undefined ? {} : { binDirectory: resolve(parsed.pgBin) }),
        logger: {
          info: (line) => logger.info(`postgres supervisor: ${line}`),
          warn: (line) => logger.warn(`postgres supervisor: ${line}`),
          error: (line) => logger.error(`postgres supervisor: ${line}`),
        },
        onStateChange: (state) => {
          if (state === "running") postgresRunning();
        },
      });
      connection = supervisor.connectionConfig(config.database);
    }
    server = await NodeServer.start({ config, logger, postgres: connection === undefined ? undefined : { connection, fault: process.env.PGRAFT_FAULT } });
    if (supervisor?.state === "running") postgresRunning();
  } catch (error) {
    await supervisor?.stop().catch(() => undefined);
    if (error instanceof StorageCorruptionError) {
      logger.fatal({ file: error.file, offset: error.offset }, error.message);
      return 1;
    }
    if (error instanceof PostgresSupervisorError || error instanceof PostgresSetupError) {
      logger.fatal(error.message);
      return 1;
    }
    if (error instanceof StartupError) {
      logger.fatal({ code: error.code }, error.message);
      return error.exitCode;
    }
    if (error instanceof TransportError) {
      logger.fatal(error.message);
      return 1;
    }
    // Anything else is a bug or an unforeseen environment: say so in one line; the stack is for debugging.
    const message = error instanceof Error ? error.message : String(error);
    if (logger.isLevelEnabled("debug")) logger.fatal({ err: error }, `Cannot start the node: ${message}`);
    else logger.fatal(`Cannot start the node: ${message}; run with PGRAFT_LOG_LEVEL=debug for the stack trace`);
    return 1;
  }
  const running = server;
  let exitCode = 0;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const shutdown = (reason: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info(`${reason}: stopping`);
      void running
        .stop()
        .then(() => supervisor?.stop())
        .catch((error: unknown) => logger.error(`while stopping: ${error instanceof Error ? error.message : String(error)}`))
        .then(resolve);
    };
    // PostgreSQL that cannot start at all (a bad setting, a taken port) stops the node, as before Raft
    // started: an operator must fix it. Later crashes are restarted by the supervisor instead.
    supervisor?.ready.then(
      () => undefined,
      (error: unknown) => {
        if (stopping) return;
        logger.fatal(error instanceof Error ? error.message : String(error));
        exitCode = 1;
        shutdown("PostgreSQL did not start");
      },
    );
    // A node removed from the cluster has said what happened and what to do; by default it exits.
    void running.removed.then(() => {
      if (config.onRemoved !== "exit" || stopping) return;
      exitCode = REMOVED_EXIT_CODE;
      shutdown("removed from the cluster");
    });
    if (stopSignal !== undefined) shutdown(`received ${stopSignal}`);
    else onStopSignal = (signal) => shutdown(`received ${signal}`);
  });
  return exitCode;
}

async function fetchReport(url: string, timeoutMs: number): Promise<ClusterReport> {
  const response = await fetch(`${url.replace(/\/$/, "")}/cluster`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`${url}/cluster answered ${response.status}`);
  return (await response.json()) as ClusterReport;
}

/**
 * The configured endpoints, then every member's client URL that one of them reports (the membership
 * carries them), so that `status` and `member` reach members added after the settings were written.
 */
async function discoverEndpoints(parsed: Parsed): Promise<string[]> {
  const configured = statusEndpoints(parsed);
  const answers = await Promise.all(configured.map((url) => fetchMembers(url).catch(() => undefined)));
  return endpointsToAsk(configured, answers, parsed.endpoints.length > 0);
}

/**
 * Which endpoints to ask, given what each configured one answered to the member list (undefined: no
 * answer): the configured ones, then every member's client URL that the first answer reports. A
 * configured endpoint that did not answer and that no member has as its client URL is left out unless
 * it was given with --endpoints: it is a member removed since the settings were written (the README's
 * n2 after `pgraft member remove`), and asking it again would only warn that it does not answer.
 */
export function endpointsToAsk(configured: readonly string[], answers: readonly (readonly MemberJson[] | undefined)[], explicit: boolean): string[] {
  const found = answers.find((members) => members !== undefined);
  if (found === undefined) return [...configured];
  const memberUrls = new Set(found.flatMap((member) => member.clientURLs.map(normalizeUrl)));
  const endpoints = configured.filter((url, i) => explicit || answers[i] !== undefined || memberUrls.has(normalizeUrl(url)));
  const known = new Set(endpoints.map(normalizeUrl));
  for (const member of found) {
    for (const url of member.clientURLs) {
      if (known.has(normalizeUrl(url))) continue;
      known.add(normalizeUrl(url));
      endpoints.push(url);
    }
  }
  return endpoints;
}

function normalizeUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

async function fetchMembers(url: string): Promise<MemberJson[]> {
  const response = await fetch(`${normalizeUrl(url)}/v3/cluster/member/list`, { method: "POST", body: "{}", signal: AbortSignal.timeout(2_000) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return ((await response.json()) as { members?: MemberJson[] }).members ?? [];
}

function statusEndpoints(parsed: Parsed): string[] {
  if (parsed.endpoints.length > 0) return parsed.endpoints;
  if (parsed.files.length === 0 && parsed.overrides.length === 0) return ["http://127.0.0.1:2379"];
  const config = loadConfig(parsed);
  const urls = Object.values(config.clientUrls).map((address) => `http://${address}`);
  return urls.length > 0 ? urls : [`http://${config.clientHost}:${config.clientPort}`];
}

/** Renders members as an aligned table. */
export function formatStatus(report: ClusterReport): string {
  const leader = report.members.find((member) => member.id === report.leader_id);
  const header = ["Member", "Id", "Role", "State", "Term", "Commit", "Applied", "Lag", "Reachable"];
  const rows = report.members.map((member) => [
    member.name ?? `node ${member.id}`,
    String(member.id),
    member.role ?? "-",
    member.state,
    member.term === null ? "-" : String(member.term),
    member.commit === null ? "-" : String(member.commit),
    member.applied === null ? "-" : String(member.applied),
    member.lag === null ? "-" : String(member.lag),
    member.reachable === null ? "-" : member.reachable ? "yes" : "NO",
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(" | ")} |`;
  const rule = `+${widths.map((width) => "-".repeat(width + 2)).join("+")}+`;
  const title = `Cluster: ${report.cluster_id} (leader: ${leader ? `${leader.name ?? leader.id} (node ${leader.id})` : "none"}, term ${report.term})`;
  return [title, rule, line(header), rule, ...rows.map(line), rule].join("\n");
}

async function status(argv: readonly string[]): Promise<number> {
  const parsed = parseArguments(argv);
  const endpoints = await discoverEndpoints(parsed);
  const errors: string[] = [];
  // Prefer the leader's view: it knows every member's replication progress.
  const reports: ClusterReport[] = [];
  const answers = await Promise.allSettled(endpoints.map((url) => fetchReport(url, 2_000)));
  answers.forEach((answer, i) => {
    if (answer.status === "fulfilled") reports.push(answer.value);
    else errors.push(`${endpoints[i]}: ${answer.reason instanceof Error ? answer.reason.message : String(answer.reason)}`);
  });
  if (reports.length === 0) {
    process.stderr.write(`pgraft: Cannot read the cluster status: no endpoint answered (${errors.join("; ")}); check that the nodes run and --endpoints is right\n`);
    return 1;
  }
  const report = reports.find((candidate) => candidate.leader_id === candidate.member_id) ?? reports[0]!;
  process.stdout.write(parsed.json ? `${JSON.stringify(report)}\n` : `${formatStatus(report)}\n`);
  for (const error of errors) process.stderr.write(`pgraft: warning: ${error}\n`);
  return 0;
}

export interface MemberJson {
  readonly ID: string;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

/** Renders `members` as an aligned table, like `etcdctl member list -w table`. */
export function formatMembers(members: readonly MemberJson[]): string {
  const header = ["Id", "Name", "Peer URL", "Client URL", "Learner"];
  const rows = members.map((member) => [member.ID, member.name, member.peerURLs.join(",") || "-", member.clientURLs.join(",") || "-", member.isLearner ? "yes" : "no"]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(" | ")} |`;
  const rule = `+${widths.map((width) => "-".repeat(width + 2)).join("+")}+`;
  return [rule, line(header), rule, ...rows.map(line), rule].join("\n");
}

/**
 * `pgraft member list|add|remove`: sends the request to each endpoint in turn until one answers it.
 * Only the leader changes membership (a follower answers 503 naming it), so add and remove go on to
 * the next endpoint after a 503; any other answer is final. Adding waits until the new node votes.
 */
async function member(argv: readonly string[]): Promise<number> {
  const [operation, ...rest] = argv;
  if (operation !== "list" && operation !== "add" && operation !== "remove") {
    throw new UsageError(`${operation === undefined ? "Missing" : `Unknown`} member command${operation === undefined ? "" : ` "${operation}"`}: use list, add or remove\n${USAGE}`);
  }
  const parsed = parseArguments(rest);
  if (operation === "add" && parsed.peerUrl === undefined) throw new UsageError(`pgraft member add needs --peer-url http://host:port, the new node's pgraft.listen_address\n${USAGE}`);
  if (operation === "remove" && parsed.id === undefined) throw new UsageError(`pgraft member remove needs --id N, the id of the member to remove\n${USAGE}`);
  const body =
    operation === "list"
      ? {}
      : operation === "add"
        ? {
            peerURLs: [parsed.peerUrl],
            ...(parsed.clientUrl === undefined ? {} : { clientURLs: [parsed.clientUrl] }),
            ...(parsed.name === undefined ? {} : { name: parsed.name }),
            ...(parsed.id === undefined ? {} : { ID: parsed.id }),
          }
        : { ID: parsed.id };
  const errors: string[] = [];
  // Only the leader adds and removes: try every member the configured endpoints know of.
  for (const url of operation === "list" ? statusEndpoints(parsed) : await discoverEndpoints(parsed)) {
    let response: Response;
    try {
      // Adding includes the new node's catch-up: allow it the node's own 20 s and some.
      response = await fetch(`${url.replace(/\/$/, "")}/v3/cluster/member/${operation}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(operation === "list" ? 2_000 : 30_000) });
    } catch (error) {
      errors.push(`${url}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const answer = (await response.json().catch(() => ({}))) as { members?: MemberJson[]; message?: string };
    if (response.status === 503 && operation !== "list") {
      errors.push(`${url}: ${answer.message ?? "unavailable"}`);
      continue;
    }
    if (response.status !== 200) {
      process.stderr.write(`pgraft: Cannot ${operation === "list" ? "list members" : `${operation} the member`}: ${url} answered ${response.status}: ${answer.message ?? "no message"}\n`);
      return 1;
    }
    process.stdout.write(parsed.json ? `${JSON.stringify(answer)}\n` : `${formatMembers(answer.members ?? [])}\n`);
    return 0;
  }
  process.stderr.write(`pgraft: Cannot ${operation === "list" ? "list members" : `${operation} the member`}: no endpoint answered it (${errors.join("; ")}); check that the nodes run, that one of them leads, and that --endpoints is right\n`);
  return 1;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "start":
        return await start(rest);
      case "status":
        return await status(rest);
      case "member":
        return await member(rest);
      case "settings":
        return (await import("./settings-command.ts")).settingsCommand(rest);
      case "version":
      case "--version":
        process.stdout.write(`pgraft ${PACKAGE_VERSION}\n`);
        return 0;
      case undefined:
      case "help":
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command "${command}"\n${USAGE}`);
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError || error instanceof PostgresOptionError) {
      process.stderr.write(`pgraft: ${error.message}\n`);
      return 2;
    }
    // No stack trace unless asked for (PGRAFT_LOG_LEVEL=debug): one line that says what failed.
    const message = error instanceof Error ? error.message : String(error);
    if (process.env.PGRAFT_LOG_LEVEL === "debug" || process.env.PGRAFT_LOG_LEVEL === "trace") process.stderr.write(`pgraft: ${error instanceof Error ? (error.stack ?? message) : message}\n`);
    else process.stderr.write(`pgraft: ${message}; run with PGRAFT_LOG_LEVEL=debug for the stack trace\n`);
    return 1;
  }
}
