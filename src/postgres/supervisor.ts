/**
 * Starts and supervises the PostgreSQL server of one data directory, as Patroni does: initdb when the
 * directory is missing or empty, postgres started directly (not through pg_ctl) as the unprivileged OS
 * user so the supervisor holds the child and sees it die, a restart with backoff (1 s, 2 s, 4 s, ... up
 * to 30 s) when it dies unexpectedly, and a bounded stop that escalates from the requested mode to
 * immediate and then SIGKILL.
 *
 * A postmaster that already runs on the data directory (its supervisor was killed with SIGKILL, say) is
 * adopted instead of failing: its pid is polled, since it is not our child. postgres runs in a process
 * group of its own, so a Ctrl-C meant for pgraft does not also reach it: pgraft stops it in order.
 *
 * Readiness comes from postmaster.pid's status line ("ready", or "standby" for a standby without hot
 * standby), as pg_ctl reads it, so waiting costs no connections.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { assert } from "../assert.ts";
import { childProcessIds, findRunningPostmaster, foreignDirectoryError, inspectDataDirectory, isProcessAlive, readPostmasterPid, type PostmasterPidFile } from "./data-directory.ts";
import { initdb, type InitdbAuth, type SupervisorLogger } from "./initdb.ts";
import { checkReachable, checkWritable, childEnvironment, resolveOsUser, spawnIdentity, type OsUser } from "./os-user.ts";
import { findPostgresBinaries, type PostgresBinaries } from "./pg-binaries.ts";
import { PostgresSupervisorError } from "./supervisor-error.ts";

export { initdb, NO_DURABILITY_SETTINGS, SMALL_SERVER_SETTINGS, type InitdbAuth, type InitdbOptions, type SupervisorLogger } from "./initdb.ts";
export { PostgresSupervisorError, type PostgresSupervisorErrorCode } from "./supervisor-error.ts";

export type PostgresState = "starting" | "running" | "down" | "stopped";
export type StopMode = "smart" | "fast" | "immediate";

export interface PostgresSupervisorOptions {
  /** Absolute path of the data directory; initialized when missing or empty. */
  readonly pgdata: string;
  /** TCP port on `listenAddress`; also names the unix socket. */
  readonly port: number;
  /** listen_addresses; default "127.0.0.1". initdb's pg_hba.conf admits loopback connections only. */
  readonly listenAddress?: string;
  /** unix_socket_directories; default `pgdata`. The socket path must stay within 107 bytes. */
  readonly socketDirectory?: string;
  /** Default: the newest /usr/lib/postgresql/<N>/bin that holds postgres. */
  readonly binDirectory?: string;
  /** Default: "postgres" when this process is root, else the current user. Also the superuser's name. */
  readonly osUser?: string;
  /** initdb's authentication for local sockets and loopback TCP; default "trust" (see InitdbOptions.auth). */
  readonly initdbAuth?: InitdbAuth;
  /** The superuser's password: set at initdb with "scram-sha-256", and put in the connection settings. */
  readonly password?: string;
  /** initdb --no-sync (tests). */
  readonly initdbNoSync?: boolean;
  /** Copy an initdb template cached in this directory instead of running initdb (tests; with initdbNoSync). */
  readonly templateCacheDirectory?: string;
  /** Lines appended to postgresql.conf when the data directory is created (not on later starts). */
  readonly settings?: Readonly<Record<string, string>>;
  /** Default true: restart postgres with backoff when it dies unexpectedly. */
  readonly restartOnExit?: boolean;
  /** The longest wait between restart attempts; default 30 000. */
  readonly restartDelayMsMax?: number;
  /** How long start() waits for the server to accept connections; default 60 000. */
  readonly startTimeoutMs?: number;
  /** How long stop() waits in the requested mode before escalating to immediate; default 30 000. */
  readonly stopTimeoutMs?: number;
  /** Where postgres's output goes; default `<pgdata>/log/postgresql-server.log`. */
  readonly logFile?: string;
  readonly logger?: SupervisorLogger;
  readonly onStateChange?: (state: PostgresState) => void;
}

/** For node-postgres's Client: a unix socket directory as host. */
export interface PostgresConnectionConfig {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly password?: string;
}

const RESTART_DELAY_MS_MIN = 1000;
const RESTART_DELAY_MS_MAX_DEFAULT = 30_000;
/** A server that ran this long before dying restarts after the shortest delay again. */
const RESTART_BACKOFF_RESET_MS = 60_000;
const START_TIMEOUT_MS_DEFAULT = 60_000;
const STOP_TIMEOUT_MS_DEFAULT = 30_000;
/** How long each escalation step (immediate, then SIGKILL) may take. */
const ESCALATION_TIMEOUT_MS = 10_000;
const READY_POLL_MS = 50;
const ADOPTED_POLL_MS = 250;
/** sun_path holds 108 bytes with the terminating NUL. */
const SOCKET_PATH_BYTES_MAX = 107;
const LOG_TAIL_BYTES_MAX = 4096;

const STOP_SIGNALS: Record<StopMode, NodeJS.Signals> = { smart: "SIGTERM", fast: "SIGINT", immediate: "SIGQUIT" };

const DEFAULT_LOGGER: SupervisorLogger = {
  info: () => undefined,
  warn: (line) => process.stderr.write(`pgraft: postgres supervisor: ${line}\n`),
  error: (line) => process.stderr.write(`pgraft: postgres supervisor: ${line}\n`),
};

interface Settings {
  readonly pgdata: string;
  readonly port: number;
  readonly listenAddress: string;
  readonly socketDirectory: string;
  readonly restartOnExit: boolean;
  readonly restartDelayMsMax: number;
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly logFile: string;
  readonly password: string | undefined;
  readonly logger: SupervisorLogger;
  readonly onStateChange: ((state: PostgresState) => void) | undefined;
}

export class PostgresSupervisor {
  readonly pgdata: string;
  readonly port: number;
  readonly logFile: string;
  readonly osUser: OsUser;
  readonly binaries: PostgresBinaries;

  readonly #settings: Settings;
  /** "stopped" until start() launches the server, so onStateChange sees "starting" first. */
  #state: PostgresState = "stopped";
  #pid: number | undefined;
  #child: ChildProcess | undefined;
  #adoptedPoll: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartAttempts = 0;
  #runningSinceMs = 0;
  #stopping = false;
  #released = false;
  /** The unix socket directory (or address) clients use; an adopted postmaster's own may differ. */
  #host: string;
  /** Called when the current postmaster is gone. */
  #goneWaiters: Array<() => void> = [];
  #ready: Promise<void> = Promise.resolve();

  private constructor(settings: Settings, osUser: OsUser, binaries: PostgresBinaries) {
    this.#settings = settings;
    this.pgdata = settings.pgdata;
    this.port = settings.port;
    this.logFile = settings.logFile;
    this.osUser = osUser;
    this.binaries = binaries;
    this.#host = settings.socketDirectory;
  }

  /**
   * Initializes the data directory if needed, adopts its running postmaster or starts one, and resolves
   * once the server accepts connections. Rejects with a PostgresSupervisorError naming the log file, and
   * leaves no process behind, when it cannot.
   */
  static async start(options: PostgresSupervisorOptions): Promise<PostgresSupervisor> {
    const supervisor = await PostgresSupervisor.launch(options);
    await supervisor.ready;
    return supervisor;
  }

  /**
   * Like start(), but resolves as soon as the postmaster is spawned or adopted, before it accepts
   * connections (crash recovery can take long): `ready` settles when it does. The node uses this so
   * Raft votes and replicates while PostgreSQL recovers. When `ready` rejects, no process is left.
   */
  static async launch(options: PostgresSupervisorOptions): Promise<PostgresSupervisor> {
    const settings = checkOptions(options);
    const binaries = await findPostgresBinaries(options.binDirectory);
    const osUser = resolveOsUser(options.osUser);
    await prepareDataDirectory(settings, options, binaries, osUser);
    prepareSocketDirectory(settings, osUser);
    prepareLogFile(settings.logFile, osUser);
    const supervisor = new PostgresSupervisor(settings, osUser, binaries);
    // #launch spawns (or adopts) before its first await, so the pid is known when this returns.
    supervisor.#ready = supervisor.#firstLaunch(performance.now() + settings.startTimeoutMs);
    supervisor.#ready.catch(() => undefined); // Whoever awaits `ready` sees the error.
    return supervisor;
  }

  /** Settles when the first launch is over: resolves once the server accepts connections. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  async #firstLaunch(deadlineMs: number): Promise<void> {
    try {
      await this.#launch(deadlineMs);
    } catch (error) {
      // Leave no process behind; but a postmaster we only adopted was not ours to kill, and a stop()
      // already under way finishes the job in the mode it was asked for.
      if (this.#stopping) throw error;
      if (this.adopted) this.release();
      else await this.stop("immediate");
      throw error;
    }
    this.#becomeRunning();
  }

  /** The postmaster's pid, while there is one. */
  get pid(): number | undefined {
    return this.#pid;
  }

  get state(): PostgresState {
    return this.#state;
  }

  /** True when the postmaster was running before this supervisor started and was adopted. */
  get adopted(): boolean {
    return this.#pid !== undefined && this.#child === undefined;
  }

  /** Settings for node-postgres's Client: the socket directory, the port, the OS user as role. */
  connectionConfig(database = "postgres"): PostgresConnectionConfig {
    const password = this.#settings.password;
    return { host: this.#host, port: this.port, user: this.osUser.name, database, ...(password === undefined ? {} : { password }) };
  }

  /** A libpq connection string for psql: "host=... port=... user=... dbname=...". */
  connectionString(database = "postgres"): string {
    const config = this.connectionConfig(database);
    const pairs: Array<[string, string]> = [["host", config.host], ["port", String(config.port)], ["user", config.user], ["dbname", config.database]];
    if (config.password !== undefined) pairs.push(["password", config.password]);
    return pairs.map(([key, value]) => `${key}=${quoteConnectionValue(value)}`).join(" ");
  }

  /**
   * Stops the server (default mode "fast") and supervision: no more restarts. Waits until the postmaster
   * is gone: stopTimeoutMs in the requested mode, then immediate, then SIGKILL of it and its children.
   * After release() it does nothing.
   */
  async stop(mode: StopMode = "fast"): Promise<void> {
    if (this.#released) return; // Handed off: whoever adopts the server stops it.
    this.#stopping = true;
    this.#clearRestartTimer();
    const steps: Array<{ signal: NodeJS.Signals; timeoutMs: number; tree: boolean }> = [
      { signal: STOP_SIGNALS[mode], timeoutMs: this.#settings.stopTimeoutMs, tree: false },
      ...(mode === "immediate" ? [] : [{ signal: STOP_SIGNALS.immediate, timeoutMs: ESCALATION_TIMEOUT_MS, tree: false }]),
      { signal: "SIGKILL" as const, timeoutMs: ESCALATION_TIMEOUT_MS, tree: true },
    ];
    for (const step of steps) {
      const pid = this.#pid;
      if (pid === undefined) break;
      if (step.signal === "SIGKILL") this.#settings.logger.warn(`PostgreSQL (pid ${pid}) did not stop in time; sending SIGKILL to it and its children`);
      else if (step !== steps[0]) this.#settings.logger.warn(`PostgreSQL (pid ${pid}) did not stop in ${mode} mode in time; escalating to immediate`);
      signalProcess(pid, step.signal, step.tree);
      // A paused (SIGSTOP) server cannot act on a shutdown signal until it runs again.
      if (step.signal !== "SIGKILL") signalProcess(pid, "SIGCONT", false);
      await this.#waitGone(step.timeoutMs);
    }
    this.#stopAdoptedPoll();
    const survivor = this.#pid;
    this.#setState("stopped");
    if (survivor !== undefined) {
      throw new PostgresSupervisorError(
        "stop_failed",
        `Cannot stop PostgreSQL on ${this.pgdata}: the postmaster (pid ${survivor}) still runs after SIGKILL, likely stuck in the kernel on I/O; check the disk, then \`kill -9 ${survivor}\``,
        this.logFile,
      );
    }
  }

  /**
   * Sends `signal` to the postmaster (tests and chaos): SIGKILL makes it die unexpectedly, so the restart
   * logic applies if enabled; SIGSTOP and SIGCONT pause and resume it.
   */
  kill(signal: NodeJS.Signals): void {
    const pid = this.#pid;
    if (pid === undefined) {
      throw new PostgresSupervisorError("invalid_option", `Cannot send ${signal} to PostgreSQL of ${this.pgdata}: no postmaster is running (state "${this.#state}"); wait until it runs`);
    }
    this.#settings.logger.info(`sending ${signal} to PostgreSQL (pid ${pid})`);
    signalProcess(pid, signal, false);
  }

  /**
   * Stops supervising without stopping the server: no restarts, and the postmaster keeps running after
   * this process exits (another supervisor can adopt it). The state becomes "stopped".
   */
  release(): void {
    this.#released = true;
    this.#clearRestartTimer();
    this.#stopAdoptedPoll();
    this.#child?.unref();
    this.#settings.logger.info(`released PostgreSQL (pid ${this.#pid ?? "none"}) of ${this.pgdata}; it keeps running unsupervised`);
    this.#setState("stopped");
  }

  /** Adopts the running postmaster or spawns one, then waits for readiness (until `deadlineMs`, if set). */
  async #launch(deadlineMs: number | undefined): Promise<void> {
    this.#setState("starting");
    // Everything up to the spawn stays synchronous, so stop() always sees the pid it must signal.
    const running = findRunningPostmaster(this.pgdata);
    let logOffset = 0;
    if (running !== undefined) {
      this.#adopt(running);
    } else {
      logOffset = fileSize(this.logFile);
      await this.#spawn();
    }
    const pid = this.#pid;
    assert(pid !== undefined, "a launched postmaster has a pid");
    await this.#waitReady(pid, deadlineMs, logOffset);
  }

  #adopt(running: PostmasterPidFile): void {
    if (running.port !== this.port) {
      throw new PostgresSupervisorError(
        "adopt_failed",
        `Cannot adopt the running postmaster (pid ${running.pid}) of ${this.pgdata}: it listens on port ${running.port ?? "none"}, not ${this.port}; ` +
          `stop it (\`pg_ctl stop -D ${this.pgdata}\`) or start with port ${running.port}`,
        this.logFile,
      );
    }
    const host = running.socketDirectory ?? (running.listenAddress === "*" ? "127.0.0.1" : running.listenAddress);
    if (host !== undefined && host !== this.#host) {
      this.#settings.logger.warn(`the running postmaster of ${this.pgdata} uses ${host} for connections, not ${this.#host}; connecting there`);
      this.#host = host;
    }
    this.#pid = running.pid;
    this.#settings.logger.info(`adopted the running postmaster (pid ${running.pid}) of ${this.pgdata}`);
    this.#adoptedPoll = setInterval(() => {
      if (!isProcessAlive(running.pid)) this.#onPostmasterGone(running.pid, "exited (it was adopted, so its exit status is unknown)");
    }, ADOPTED_POLL_MS);
  }

  async #spawn(): Promise<void> {
    const { pgdata, port, listenAddress, socketDirectory } = this.#settings;
    const args = ["-D", pgdata, "-p", String(port), "-c", `listen_addresses=${listenAddress}`, "-c", `unix_socket_directories=${quoteListElement(socketDirectory)}`];
    const logDescriptor = fs.openSync(this.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(this.binaries.postgres, args, {
        ...spawnIdentity(this.osUser),
        env: childEnvironment(this.osUser),
        cwd: "/",
        stdio: ["ignore", logDescriptor, logDescriptor],
        detached: true,
      });
    } finally {
      fs.closeSync(logDescriptor);
    }
    if (child.pid === undefined) {
      const error = await new Promise<Error>((resolve) => child.once("error", resolve));
      throw new PostgresSupervisorError("start_failed", `Cannot start PostgreSQL on ${pgdata}: ${this.binaries.postgres} did not run: ${error.message}`, this.logFile);
    }
    const pid = child.pid;
    child.on("error", (error) => this.#settings.logger.error(`PostgreSQL (pid ${pid}): ${error.message}`));
    child.on("exit", (code, signal) => {
      this.#onPostmasterGone(pid, signal === null ? `exited with code ${code}` : `was killed by ${signal}`);
    });
    this.#child = child;
    this.#pid = pid;
    this.#settings.logger.info(`started PostgreSQL (pid ${pid}) on ${pgdata}, port ${port}, as OS user ${this.osUser.name}; log: ${this.logFile}`);
  }

  async #waitReady(pid: number, deadlineMs: number | undefined, logOffset: number): Promise<void> {
    const pollsPerWarning = Math.ceil(this.#settings.startTimeoutMs / READY_POLL_MS);
    for (let polls = 0; ; polls++) {
      if (this.#stopping || this.#released) {
        throw new PostgresSupervisorError("start_failed", `Cannot start PostgreSQL on ${this.pgdata}: the supervisor was stopped while it started`, this.logFile);
      }
      if (this.#pid !== pid) throw this.#exitedWhileStarting(pid, logOffset);
      const pidFile = readPostmasterPid(this.pgdata);
      if (pidFile?.pid === pid && (pidFile.status === "ready" || pidFile.status === "standby")) return;
      if (deadlineMs !== undefined && performance.now() > deadlineMs) {
        throw new PostgresSupervisorError(
          "start_failed",
          `Cannot start PostgreSQL on ${this.pgdata}: it did not accept connections within ${this.#settings.startTimeoutMs} ms (status "${pidFile?.status ?? "no postmaster.pid"}"); ` +
            `read ${this.logFile}, and raise startTimeoutMs if crash recovery needs longer`,
          this.logFile,
        );
      }
      if (deadlineMs === undefined && polls > 0 && polls % pollsPerWarning === 0) {
        this.#settings.logger.warn(`PostgreSQL (pid ${pid}) is still starting after ${(polls * READY_POLL_MS) / 1000} s; read ${this.logFile}`);
      }
      await sleep(READY_POLL_MS);
    }
  }

  #exitedWhileStarting(pid: number, logOffset: number): PostgresSupervisorError {
    const tail = readLogTail(this.logFile, logOffset);
    const lines = tail.trim().split("\n");
    const bindFailure = lines.find((line) => /could not bind .*Address already in use/.test(line));
    const lastLines = lines.slice(-4).join(" | ");
    if (bindFailure !== undefined) {
      return new PostgresSupervisorError(
        "port_in_use",
        `Cannot start PostgreSQL on ${this.pgdata}: port ${this.port} on ${this.#settings.listenAddress} is taken by another process (${bindFailure.trim()}); choose another port`,
        this.logFile,
      );
    }
    return new PostgresSupervisorError(
      "start_failed",
      `Cannot start PostgreSQL on ${this.pgdata}: the postmaster (pid ${pid}) exited while starting: ${lastLines || "no output"}; read ${this.logFile}`,
      this.logFile,
    );
  }

  #onPostmasterGone(pid: number, description: string): void {
    if (pid !== this.#pid) return;
    this.#stopAdoptedPoll();
    this.#child = undefined;
    this.#pid = undefined;
    const waiters = this.#goneWaiters;
    this.#goneWaiters = [];
    for (const waiter of waiters) waiter();
    if (this.#stopping || this.#released) {
      this.#settings.logger.info(`PostgreSQL (pid ${pid}) ${description}`);
      return;
    }
    // While starting, #waitReady sees the pid gone and reports it.
    if (this.#state === "starting") return;
    this.#setState("down");
    if (!this.#settings.restartOnExit) {
      this.#settings.logger.error(`PostgreSQL (pid ${pid}) ${description} unexpectedly; not restarting it (restartOnExit is off)`);
      return;
    }
    if (performance.now() - this.#runningSinceMs >= RESTART_BACKOFF_RESET_MS) this.#restartAttempts = 0;
    this.#scheduleRestart(`PostgreSQL (pid ${pid}) ${description} unexpectedly`);
  }

  #scheduleRestart(reason: string): void {
    assert(this.#restartTimer === undefined, "one restart is scheduled at a time");
    this.#restartAttempts += 1;
    const delayMs = Math.min(RESTART_DELAY_MS_MIN * 2 ** Math.min(this.#restartAttempts - 1, 30), this.#settings.restartDelayMsMax);
    this.#settings.logger.warn(`${reason}; restarting it in ${delayMs / 1000} s (attempt ${this.#restartAttempts}); log: ${this.logFile}`);
    this.#restartTimer = setTimeout(() => void this.#restart(), delayMs);
  }

  async #restart(): Promise<void> {
    this.#restartTimer = undefined;
    if (this.#stopping || this.#released) return;
    try {
      await this.#launch(undefined);
    } catch (error) {
      if (this.#stopping || this.#released) return;
      this.#setState("down");
      this.#scheduleRestart(`restart attempt ${this.#restartAttempts} failed: ${(error as Error).message}`);
      return;
    }
    this.#settings.logger.info(`PostgreSQL is running again (pid ${this.#pid}) after restart attempt ${this.#restartAttempts}`);
    this.#becomeRunning();
  }

  #becomeRunning(): void {
    this.#runningSinceMs = performance.now();
    this.#setState("running");
  }

  #waitGone(timeoutMs: number): Promise<void> {
    if (this.#pid === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#goneWaiters.push(done);
    });
  }

  #setState(state: PostgresState): void {
    if (this.#state === state) return;
    this.#state = state;
    try {
      this.#settings.onStateChange?.(state);
    } catch (error) {
      this.#settings.logger.error(`onStateChange("${state}") threw: ${(error as Error).message}`);
    }
  }

  #clearRestartTimer(): void {
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
  }

  #stopAdoptedPoll(): void {
    if (this.#adoptedPoll !== undefined) clearInterval(this.#adoptedPoll);
    this.#adoptedPoll = undefined;
  }
}

function checkOptions(options: PostgresSupervisorOptions): Settings {
  const invalid = (message: string): PostgresSupervisorError => new PostgresSupervisorError("invalid_option", `Cannot start PostgreSQL: ${message}`);
  if (typeof options.pgdata !== "string" || !path.isAbsolute(options.pgdata)) {
    throw invalid(`the data directory must be an absolute path, received ${JSON.stringify(options.pgdata)}; pass path.resolve(dir)`);
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65_535) {
    throw invalid(`the port must be an integer from 1 to 65535, received ${JSON.stringify(options.port)}`);
  }
  const pgdata = path.normalize(options.pgdata);
  const socketDirectory = path.resolve(options.socketDirectory ?? pgdata);
  const socketPath = path.join(socketDirectory, `.s.PGSQL.${options.port}`);
  if (Buffer.byteLength(socketPath) > SOCKET_PATH_BYTES_MAX) {
    throw invalid(
      `the unix socket path ${socketPath} is ${Buffer.byteLength(socketPath)} bytes, over the ${SOCKET_PATH_BYTES_MAX}-byte limit of unix sockets; pass a shorter socketDirectory (or data directory)`,
    );
  }
  for (const [name, value] of [["startTimeoutMs", options.startTimeoutMs], ["stopTimeoutMs", options.stopTimeoutMs], ["restartDelayMsMax", options.restartDelayMsMax]] as const) {
    if (value !== undefined && (!Number.isFinite(value) || value <= 0)) throw invalid(`"${name}" must be a positive number, received ${value}`);
  }
  if (options.initdbAuth === "scram-sha-256" && options.password === undefined) {
    throw invalid(`initdbAuth "scram-sha-256" needs the superuser's password; pass password, or use initdbAuth "trust"`);
  }
  return {
    pgdata,
    port: options.port,
    listenAddress: options.listenAddress ?? "127.0.0.1",
    socketDirectory,
    restartOnExit: options.restartOnExit ?? true,
    restartDelayMsMax: Math.max(options.restartDelayMsMax ?? RESTART_DELAY_MS_MAX_DEFAULT, RESTART_DELAY_MS_MIN),
    startTimeoutMs: options.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT,
    stopTimeoutMs: options.stopTimeoutMs ?? STOP_TIMEOUT_MS_DEFAULT,
    logFile: path.resolve(options.logFile ?? path.join(pgdata, "log", "postgresql-server.log")),
    password: options.password,
    logger: options.logger ?? DEFAULT_LOGGER,
    onStateChange: options.onStateChange,
  };
}

async function prepareDataDirectory(settings: Settings, options: PostgresSupervisorOptions, binaries: PostgresBinaries, osUser: OsUser): Promise<void> {
  const { pgdata } = settings;
  const state = inspectDataDirectory(pgdata);
  if (state.kind === "foreign") throw foreignDirectoryError(pgdata, state.entries);
  if (state.kind === "missing" || state.kind === "empty") {
    await initdb(pgdata, {
      ...(options.binDirectory === undefined ? {} : { binDirectory: options.binDirectory }),
      osUser: osUser.name,
      auth: options.initdbAuth ?? "trust",
      ...(options.password === undefined ? {} : { password: options.password }),
      noSync: options.initdbNoSync ?? false,
      settings: options.settings ?? {},
      ...(options.templateCacheDirectory === undefined ? {} : { templateCacheDirectory: options.templateCacheDirectory }),
      logger: settings.logger,
    });
    return;
  }
  if (state.majorVersion !== binaries.majorVersion) {
    throw new PostgresSupervisorError(
      "not_a_data_directory",
      `Cannot start PostgreSQL ${binaries.majorVersion} on ${pgdata}: it is a PostgreSQL ${state.majorVersion} data directory; ` +
        `pass the ${state.majorVersion} binaries (/usr/lib/postgresql/${state.majorVersion}/bin), or upgrade the directory with pg_upgrade`,
    );
  }
  checkReachable(pgdata, osUser, "data directory");
  const stats = fs.statSync(pgdata);
  if (osUser.switchUser && stats.uid !== osUser.uid) {
    throw new PostgresSupervisorError(
      "permission",
      `Cannot start PostgreSQL on ${pgdata}: the data directory is owned by uid ${stats.uid}, not by OS user ${osUser.name} (uid ${osUser.uid}) that runs the server; ` +
        `run \`chown -R ${osUser.name}: ${pgdata}\``,
    );
  }
}

function prepareSocketDirectory(settings: Settings, osUser: OsUser): void {
  const { socketDirectory } = settings;
  if (socketDirectory === settings.pgdata) return;
  if (!fs.existsSync(socketDirectory)) {
    fs.mkdirSync(socketDirectory, { recursive: true, mode: 0o755 });
    if (osUser.switchUser) fs.chownSync(socketDirectory, osUser.uid, osUser.gid);
  }
  checkReachable(socketDirectory, osUser, "unix socket directory");
  checkWritable(socketDirectory, osUser, "unix socket directory");
}

function prepareLogFile(logFile: string, osUser: OsUser): void {
  const directory = path.dirname(logFile);
  if (!fs.existsSync(directory)) {
    fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
    if (osUser.switchUser) fs.chownSync(directory, osUser.uid, osUser.gid);
  }
  if (!fs.existsSync(logFile)) {
    fs.writeFileSync(logFile, "", { mode: 0o600 });
    if (osUser.switchUser) fs.chownSync(logFile, osUser.uid, osUser.gid);
  }
}

/**
 * Sends `signal` to `pid`, and with `tree` also to the children it had (each PostgreSQL child process leads
 * a process group of its own, so a group signal would miss them). A process already gone is no error.
 */
function signalProcess(pid: number, signal: NodeJS.Signals, tree: boolean): void {
  const targets = tree ? [pid, ...childProcessIds(pid)] : [pid];
  for (const target of targets) {
    try {
      process.kill(target, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }
}

/** A libpq connection-string value: quoted when empty or holding spaces, quotes or backslashes. */
function quoteConnectionValue(value: string): string {
  if (value !== "" && !/[\s'\\]/.test(value)) return value;
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A directory as one element of a PostgreSQL list setting such as unix_socket_directories. */
function quoteListElement(value: string): string {
  return /[\s,"]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function readLogTail(logFile: string, fromOffset: number): string {
  try {
    const size = fs.statSync(logFile).size;
    const start = Math.max(fromOffset, size - LOG_TAIL_BYTES_MAX);
    const buffer = Buffer.alloc(Math.max(size - start, 0));
    const descriptor = fs.openSync(logFile, "r");
    try {
      fs.readSync(descriptor, buffer, 0, buffer.length, start);
    } finally {
      fs.closeSync(descriptor);
    }
    return buffer.toString("utf8");
  } catch {
    return "";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
