/**
 * The local provider: real `pgraft start` processes on 127.0.0.1 and, with `postgres`, the PostgreSQL
 * 15 server each one supervises, configured as an operator would: the data directory is created first
 * (a copy of a cached initdb template, made as the `postgres` OS user: seconds saved per node), its
 * postgresql.conf gets the node's pgraft.* settings, and the node runs `pgraft start --pgdata DIR
 * --pg-port N`, which starts and supervises PostgreSQL there.
 *
 * - One temporary directory per run (mode 0755, so the postgres user can reach its data directories);
 *   each node gets `<run>/nN/raft` (pgraft.data_dir), `<run>/nN/pgdata` and a log file `<run>/nN.log`.
 * - Every node runs in a process group of its own. PostgreSQL runs in groups of its own (it outlives a
 *   node killed with -9, by design: the restarted node adopts it), so the postmaster (from
 *   `postmaster.pid`) and its children are signalled separately: a crash kills them too when asked,
 *   pause and resume stop and continue them with the node, and teardown kills every one.
 * - Everything started is written to the run registry (run-registry.ts) before anything else happens,
 *   so a run killed before its teardown is cleaned up by the next run's `cleanStale()`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childProcessIds } from "../../src/postgres/data-directory.ts";
import { initdb, SMALL_SERVER_SETTINGS } from "../../src/postgres/supervisor.ts";
import { nodeLauncher, type NodeLauncher } from "../runner/node-bundle.ts";
import { corruptRaftData, readTail, runSql } from "./node-data.ts";
import { choosePorts } from "./ports.ts";
import {
  type ClusterProvider,
  type CrashOptions,
  type NodeEndpoints,
  type NodeProcessState,
  type NodeSpec,
  type ProviderCapabilities,
  type ProviderFactory,
  type ProviderOptions,
  type SqlResult,
  type StaleCleanup,
  providerNodeName,
} from "./provider.ts";
import { cleanStaleRuns, livePorts, readPidFile, RunRegistry } from "./run-registry.ts";

const PROVIDER_NAME = "local";
/** Nodes per run: scenario files allow 9, and add_node may introduce a few more. */
export const LOCAL_NODES_MAX = 16;
export const LOG_TAIL_CHARS_DEFAULT = 4000;
const SQL_TIMEOUT_MS_DEFAULT = 5000;
/** How long a SIGKILLed process may take to be reaped before we call it stuck. */
const EXIT_WAIT_MS = 10_000;
/**
 * PostgreSQL settings of chaos nodes besides the small-server ones. fsync = off: chaos runs kill
 * processes, never the machine, so nothing the OS holds is ever lost and fsync decides nothing a run
 * can observe; with it on, PostgreSQL's crash recovery first fsyncs every file of the data directory,
 * which made each restart after a crash 2-3 s slower on a loaded machine. pgraft's own Raft data keeps
 * its fsyncs (that durability is what the runs test), and pgraft.kv is rebuilt from Raft anyway.
 */
export const CHAOS_POSTGRES_SETTINGS: Readonly<Record<string, string>> = { fsync: "off" };
/** initdb templates for chaos runs (one per PostgreSQL version and OS user; built once per machine). */
export const TEMPLATE_CACHE_DIRECTORY = join(tmpdir(), "pgraft-chaos-templates");

interface LocalNode {
  readonly endpoints: NodeEndpoints;
  readonly directory: string;
  readonly logFile: string;
  settings: string[] | undefined;
  /** How many of `settings` startNode gave (the rest came with restarts). */
  initialSettingCount: number;
  postgres: boolean;
  /** NodeSpec.dialRedirects, applied at every start (dial-redirect.mjs). */
  dialRedirects: Readonly<Record<string, string>>;
  child: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  state: NodeProcessState;
  /** The code it exited with by itself (undefined while running, after a crash, or on a signal). */
  exitCode: number | undefined;
}

/** Preloaded into every node (NODE_OPTIONS --import): redirects the dials NodeSpec.dialRedirects names. */
export const DIAL_REDIRECT_MODULE = new URL("../runner/dial-redirect.mjs", import.meta.url);
/** The variable dial-redirect.mjs reads. */
export const DIAL_REDIRECTS_VARIABLE = "PGRAFT_CHAOS_DIAL_REDIRECTS";

export const LOCAL_CAPABILITIES: ProviderCapabilities = {
  crash: true,
  restart: true,
  pause: true,
  postgres: true,
  corruptData: true,
  redirectDials: true,
  description: "pgraft start processes (and their PostgreSQL servers) on 127.0.0.1",
};

export class LocalProvider implements ClusterProvider {
  readonly name = PROVIDER_NAME;
  readonly capabilities = LOCAL_CAPABILITIES;
  readonly #options: ProviderOptions;
  readonly #nodes = new Map<number, LocalNode>();
  #registry: RunRegistry | undefined;
  #runDirectory: string | undefined;
  #secretFile: string | undefined;
  #destroyed = false;
  #launcherNoted = false;

  constructor(options: ProviderOptions) {
    this.#options = options;
  }

  /** The run's temporary directory (created on the first reserveNode). */
  get runDirectory(): string | undefined {
    return this.#runDirectory;
  }

  async cleanStale(): Promise<StaleCleanup> {
    return cleanStaleRuns(PROVIDER_NAME);
  }

  async reserveNode(id: number): Promise<NodeEndpoints> {
    this.#assertUsable();
    if (!Number.isInteger(id) || id < 1 || id > LOCAL_NODES_MAX) {
      throw new Error(`Cannot reserve node ${id}: node ids run from 1 to ${LOCAL_NODES_MAX} with the local provider`);
    }
    if (this.#nodes.has(id)) throw new Error(`Cannot reserve ${providerNodeName(id)}: it is reserved already`);
    const runDirectory = this.#ensureRunDirectory();
    const registry = this.#registry!;
    const [peerPort, clientPort, metricsPort, postgresPort] = await choosePorts(4, livePorts());
    registry.addPorts([peerPort!, clientPort!, metricsPort!, postgresPort!]);
    const name = providerNodeName(id);
    const directory = join(runDirectory, name);
    mkdirSync(directory, { mode: 0o755 });
    chmodSync(directory, 0o755);
    const host = "127.0.0.1";
    const endpoints: NodeEndpoints = {
      id,
      name,
      host,
      peerPort: peerPort!,
      clientPort: clientPort!,
      clientUrl: `http://${host}:${clientPort}`,
      metricsPort: metricsPort!,
      metricsUrl: `http://${host}:${metricsPort}/metrics`,
      postgresPort: postgresPort!,
      postgresUrl: undefined,
    };
    registry.addPidFile(join(directory, "pgdata", "postmaster.pid"));
    this.#nodes.set(id, { endpoints, directory, logFile: join(runDirectory, `${name}.log`), settings: undefined, initialSettingCount: 0, postgres: false, dialRedirects: {}, child: undefined, exited: undefined, state: "reserved", exitCode: undefined });
    return endpoints;
  }

  endpoints(id: number): NodeEndpoints {
    const node = this.#node(id);
    return node.postgres ? { ...node.endpoints, postgresUrl: `postgresql://postgres@${node.endpoints.host}:${node.endpoints.postgresPort}/postgres` } : node.endpoints;
  }

  async startNode(spec: NodeSpec): Promise<void> {
    this.#assertUsable();
    const node = this.#node(spec.id);
    if (node.state !== "reserved") throw new Error(`Cannot start ${node.endpoints.name}: it was started before (it is ${node.state}); use restartNode`);
    node.settings = [...spec.settings];
    node.initialSettingCount = spec.settings.length;
    node.postgres = spec.postgres;
    node.dialRedirects = { ...(spec.dialRedirects ?? {}) };
    if (spec.postgres) await this.#createDataDirectory(node);
    this.#spawn(node, await this.#launcher());
  }

  async crashNode(id: number, options: CrashOptions = {}): Promise<void> {
    const node = this.#node(id);
    if (options.postgres === true && node.postgres) {
      if (node.state === "paused") this.#signalPostgres(node, "SIGCONT");
      this.#signalPostgres(node, "SIGKILL");
    }
    if (node.child === undefined || node.state === "crashed" || node.state === "exited") {
      node.state = node.state === "reserved" ? "reserved" : "crashed";
      return;
    }
    const exited = node.exited!;
    try {
      // A paused process still dies on SIGKILL; SIGCONT first so its group does not stay stopped.
      if (node.state === "paused") this.#signalGroup(node, "SIGCONT");
      process.kill(node.child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
    await withTimeout(exited, EXIT_WAIT_MS, `Cannot crash ${node.endpoints.name}: pid ${node.child.pid} did not exit within ${EXIT_WAIT_MS} ms of SIGKILL`);
    node.state = "crashed";
  }

  async restartNode(id: number, extraSettings: readonly string[] = []): Promise<void> {
    this.#assertUsable();
    const node = this.#node(id);
    if (node.state === "reserved") throw new Error(`Cannot restart ${node.endpoints.name}: it was never started; use startNode`);
    if (node.state === "running" || node.state === "paused") return;
    node.settings = [...node.settings!, ...extraSettings];
    this.#spawn(node, await this.#launcher());
  }

  async pauseNode(id: number): Promise<void> {
    const node = this.#node(id);
    if (node.state !== "running") throw new Error(`Cannot pause ${node.endpoints.name}: it is ${node.state}, not running`);
    this.#signalGroup(node, "SIGSTOP");
    if (node.postgres) this.#signalPostgres(node, "SIGSTOP");
    node.state = "paused";
  }

  async resumeNode(id: number): Promise<void> {
    const node = this.#node(id);
    if (node.state !== "paused") return;
    if (node.postgres) this.#signalPostgres(node, "SIGCONT");
    this.#signalGroup(node, "SIGCONT");
    node.state = "running";
  }

  async corruptNodeData(id: number): Promise<void> {
    const node = this.#node(id);
    if (node.state === "running" || node.state === "paused") {
      throw new Error(`Cannot corrupt ${node.endpoints.name}'s data: the node is ${node.state}; crash it first`);
    }
    corruptRaftData(join(node.directory, "raft"), node.endpoints.name);
  }

  nodeState(id: number): NodeProcessState {
    return this.#node(id).state;
  }

  exitCode(id: number): number | undefined {
    const node = this.#node(id);
    return node.state === "exited" ? node.exitCode : undefined;
  }

  async sql(id: number, text: string, params: readonly unknown[] = [], timeoutMs = SQL_TIMEOUT_MS_DEFAULT): Promise<SqlResult> {
    const node = this.#node(id);
    if (!node.postgres) throw new Error(`Cannot run SQL on ${node.endpoints.name}: it runs without PostgreSQL; start it with postgres: true`);
    return runSql(this.endpoints(id).postgresUrl!, text, params, timeoutMs);
  }

  logTail(id: number, chars = LOG_TAIL_CHARS_DEFAULT): string {
    return readTail(this.#node(id).logFile, chars);
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const waits: Promise<void>[] = [];
    for (const node of this.#nodes.values()) {
      if (node.postgres) this.#signalPostgres(node, "SIGCONT");
      if (node.postgres) this.#signalPostgres(node, "SIGKILL");
      if (node.child !== undefined && (node.state === "running" || node.state === "paused")) {
        this.#signalGroup(node, "SIGCONT");
        this.#signalGroup(node, "SIGKILL");
        try {
          process.kill(node.child.pid!, "SIGKILL");
        } catch {
          // gone
        }
        waits.push(withTimeout(node.exited!, EXIT_WAIT_MS, "").catch(() => undefined));
      }
      node.state = "exited";
    }
    await Promise.all(waits);
    if (this.#runDirectory !== undefined) rmSync(this.#runDirectory, { recursive: true, force: true });
    this.#registry?.remove();
  }

  /** Synchronous last-resort teardown (process exit handlers): SIGKILL everything, remove the directory. */
  destroyNow(): void {
    for (const node of this.#nodes.values()) {
      if (node.postgres) this.#signalPostgres(node, "SIGKILL");
      if (node.child !== undefined && (node.state === "running" || node.state === "paused")) {
        this.#signalGroup(node, "SIGCONT");
        this.#signalGroup(node, "SIGKILL");
      }
    }
    if (this.#runDirectory !== undefined) rmSync(this.#runDirectory, { recursive: true, force: true });
    this.#registry?.remove();
    this.#destroyed = true;
  }

  /** How nodes are launched (chaos/runner/node-bundle.ts), said once per provider. */
  async #launcher(): Promise<NodeLauncher> {
    const launcher = await nodeLauncher(this.#options.projectRoot);
    if (!this.#launcherNoted) this.#options.note?.(`nodes start from ${launcher.description}`);
    this.#launcherNoted = true;
    return launcher;
  }

  #spawn(node: LocalNode, launcher: NodeLauncher): void {
    const endpoints = node.endpoints;
    // With PostgreSQL the settings live in its postgresql.conf (written at creation); the command line
    // carries only what a restart added. Without it, everything goes on the command line.
    const settings = node.postgres ? node.settings!.slice(node.initialSettingCount) : [...node.settings!, ...this.#ownedSettings(node)];
    const postgresArguments = node.postgres ? ["--pgdata", join(node.directory, "pgdata"), "--pg-port", String(endpoints.postgresPort)] : [];
    const log = openSync(node.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [launcher.script, "start", ...postgresArguments, ...settings], {
        cwd: this.#options.projectRoot,
        stdio: ["ignore", log, log],
        detached: true,
        env: { ...process.env, PGRAFT_LOG_LEVEL: process.env.PGRAFT_LOG_LEVEL ?? "info", ...dialRedirectEnvironment(node.dialRedirects) },
      });
    } finally {
      closeSync(log);
    }
    if (child.pid === undefined) throw new Error(`Cannot start ${endpoints.name}: spawning ${process.execPath} failed`);
    this.#registry!.addProcess(child.pid, `${endpoints.name} pgraft start`);
    node.child = child;
    node.state = "running";
    node.exitCode = undefined;
    node.exited = new Promise<void>((resolve) => {
      child.once("exit", (code) => {
        if (node.child === child && node.state !== "crashed") {
          node.state = "exited";
          node.exitCode = code ?? undefined;
        }
        resolve();
      });
    });
    child.on("error", (error) => this.#options.note?.(`${endpoints.name}: ${error.message}`));
  }

  #signalGroup(node: LocalNode, signal: NodeJS.Signals): void {
    const pid = node.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // gone
      }
    }
  }

  /**
   * Signals the node's postmaster (from postmaster.pid) and its children: PostgreSQL does not run in the
   * node's process group. Children are listed before the postmaster is signalled, so a SIGKILL of the
   * postmaster cannot orphan them out of reach.
   */
  #signalPostgres(node: LocalNode, signal: NodeJS.Signals): void {
    const pid = readPidFile(join(node.directory, "pgdata", "postmaster.pid"));
    if (pid === undefined) return;
    const children = childProcessIds(pid);
    for (const target of signal === "SIGCONT" ? [...children, pid] : [pid, ...children]) {
      try {
        process.kill(target, signal);
      } catch {
        // not running
      }
    }
  }

  /**
   * The node's PostgreSQL data directory, as an operator makes one: initdb (a copy of the cached
   * template) as the postgres OS user, then the node's pgraft.* settings in postgresql.conf, so that
   * `pgraft start --pgdata DIR` finds them there.
   */
  async #createDataDirectory(node: LocalNode): Promise<void> {
    const settings: Record<string, string> = { ...SMALL_SERVER_SETTINGS, ...CHAOS_POSTGRES_SETTINGS, port: String(node.endpoints.postgresPort) };
    for (const entry of [...node.settings!, ...this.#ownedSettings(node)]) {
      const equals = entry.indexOf("=");
      if (equals < 1) throw new Error(`Cannot start ${node.endpoints.name}: setting ${JSON.stringify(entry)} is not NAME=VALUE`);
      settings[entry.slice(0, equals)] = entry.slice(equals + 1);
    }
    if (!existsSync(TEMPLATE_CACHE_DIRECTORY)) {
      mkdirSync(TEMPLATE_CACHE_DIRECTORY, { recursive: true });
      chmodSync(TEMPLATE_CACHE_DIRECTORY, 0o755);
    }
    try {
      await initdb(join(node.directory, "pgdata"), { templateCacheDirectory: TEMPLATE_CACHE_DIRECTORY, noSync: true, settings });
    } catch (error) {
      throw new Error(`Cannot create ${node.endpoints.name}'s PostgreSQL data directory: ${(error as Error).message}`);
    }
  }

  /** The settings the provider owns, matching the node's endpoints. */
  #ownedSettings(node: LocalNode): string[] {
    const endpoints = node.endpoints;
    return [
      `pgraft.listen_address=${endpoints.host}:${endpoints.peerPort}`,
      `pgraft.client_address=${endpoints.host}:${endpoints.clientPort}`,
      `pgraft.data_dir=${join(node.directory, "raft")}`,
      `pgraft.auth_secret_file=${this.#secretFile}`,
      "pgraft.metrics_enabled=on",
      `pgraft.metrics_port=${endpoints.metricsPort}`,
    ];
  }

  #ensureRunDirectory(): string {
    if (this.#runDirectory !== undefined) return this.#runDirectory;
    this.#registry = new RunRegistry(PROVIDER_NAME);
    const label = (this.#options.label ?? "run").replace(/[^a-z0-9-]/gi, "-").slice(0, 40);
    const directory = mkdtempSync(join(tmpdir(), `pgraft-chaos-${label}-`));
    this.#registry.addDirectory(directory);
    chmodSync(directory, 0o755);
    this.#runDirectory = directory;
    this.#secretFile = join(directory, "secret");
    writeFileSync(this.#secretFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    return directory;
  }

  #node(id: number): LocalNode {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new Error(`Cannot act on ${providerNodeName(id)}: it was never reserved; call reserveNode(${id}) first`);
    return node;
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new Error("Cannot use the local provider: it was destroyed; create a new one");
  }
}

/**
 * The environment that makes a node's dials follow `redirects`: dial-redirect.mjs preloaded through
 * NODE_OPTIONS (so it also reaches a node started through bin/pgraft.js and tsx), and the map. Empty
 * when there is nothing to redirect.
 */
export function dialRedirectEnvironment(redirects: Readonly<Record<string, string>>): Record<string, string> {
  if (Object.keys(redirects).length === 0) return {};
  const inherited = process.env.NODE_OPTIONS ?? "";
  return {
    NODE_OPTIONS: `${inherited} --import=${DIAL_REDIRECT_MODULE.href}`.trim(),
    [DIAL_REDIRECTS_VARIABLE]: JSON.stringify(redirects),
  };
}

function withTimeout(promise: Promise<void>, timeoutMs: number, message: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), timeoutMs);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}

export const createProvider: ProviderFactory = (options) => new LocalProvider(options);
