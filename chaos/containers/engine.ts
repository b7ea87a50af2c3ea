/**
 * Finds or starts the Docker engine the testcontainers provider needs.
 *
 * If `docker info` answers, that engine is used as it is. Otherwise, when Debian's docker.io is
 * installed and we run as root, dockerd is started in the background, its pid file and log in a state
 * directory of its own (not in the project: the engine and its image cache serve every checkout), and
 * we wait until it answers. The engine is left running for the next run; `stopDockerEngine` stops it
 * again, but only an engine this module started.
 *
 * Storage driver: overlay2 when this kernel lets us mount an overlay file system (a trial mount in the
 * state directory says so), else vfs, which works everywhere (also inside a container) but copies the
 * image's whole root for every container: 20-30 s per container start on a loaded machine, against 2 s
 * with overlay2. PGRAFT_CHAOS_STORAGE_DRIVER=vfs (or overlay2) forces one.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** Receives one human-readable progress line at a time (the CLI prints them on stderr). */
export type Progress = (line: string) => void;

export interface DockerEngine {
  /** The server's version, as `docker info` reports it. */
  readonly serverVersion: string;
  readonly storageDriver: string;
  /** True when this call started dockerd (false: an engine was already running). */
  readonly startedHere: boolean;
  /** The pid of the dockerd we started (undefined when the engine was found running). */
  readonly pid: number | undefined;
  readonly logFile: string | undefined;
}

export interface EngineOptions {
  readonly progress?: Progress;
  /** Where dockerd's pid file and log go (default: /var/lib/pgraft-chaos as root, else the temp dir). */
  readonly stateDirectory?: string;
  /** How long to wait for a started dockerd to answer (default 90 s). */
  readonly readyTimeoutMs?: number;
}

export class DockerEngineError extends Error {
  override name = "DockerEngineError";
}

const INSTALL_HINT = "install it with `apt-get install -y docker.io` (Debian's package), then run `npm run chaos -- --setup`";
const DOCKER_INFO_TIMEOUT_MS = 15_000;
const LOG_TAIL_CHARACTERS = 3_000;

/** The state directory shared by every checkout on this machine. */
export function defaultStateDirectory(): string {
  const fromEnvironment = process.env.PGRAFT_CHAOS_STATE_DIR;
  if (fromEnvironment !== undefined && fromEnvironment !== "") return fromEnvironment;
  return process.getuid?.() === 0 ? "/var/lib/pgraft-chaos" : join(tmpdir(), "pgraft-chaos");
}

/** Runs `command` with `args`, resolving with stdout; rejects with stderr folded into the message. */
export function run(command: string, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: options.timeoutMs ?? 0, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) {
        const detail = stderr.trim() || stdout.trim() || error.message;
        reject(Object.assign(new Error(`${command} ${args.join(" ")} failed: ${detail}`), { code: (error as NodeJS.ErrnoException).code, stderr }));
        return;
      }
      resolve(stdout);
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** The absolute path of `name` on PATH (also /usr/sbin and /sbin, where dockerd lives), or undefined. */
export function findExecutable(name: string): string | undefined {
  const directories = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/bin", "/usr/local/bin"];
  for (const directory of directories) {
    if (directory === "") continue;
    const candidate = join(directory, name);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

interface EngineInfo {
  readonly serverVersion: string;
  readonly storageDriver: string;
}

/** `docker info` of the running engine, or the reason there is none. */
export async function dockerInfo(): Promise<EngineInfo | { readonly error: string }> {
  try {
    const text = await run("docker", ["info", "--format", "{{json .}}"], { timeoutMs: DOCKER_INFO_TIMEOUT_MS });
    const info = JSON.parse(text) as { ServerVersion?: string; Driver?: string; ServerErrors?: string[] };
    if (info.ServerVersion === undefined || info.ServerVersion === "") return { error: (info.ServerErrors ?? ["the engine did not answer"]).join("; ") };
    return { serverVersion: info.ServerVersion, storageDriver: info.Driver ?? "unknown" };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function logTail(logFile: string): string {
  try {
    const text = readFileSync(logFile, "utf8");
    return text.slice(-LOG_TAIL_CHARACTERS);
  } catch {
    return "(no log)";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export type StorageDriver = "overlay2" | "vfs";

/** The storage driver to start dockerd with: PGRAFT_CHAOS_STORAGE_DRIVER, else overlay2 if it mounts. */
export function chooseStorageDriver(stateDirectory: string): StorageDriver {
  const forced = process.env.PGRAFT_CHAOS_STORAGE_DRIVER;
  if (forced === "vfs" || forced === "overlay2") return forced;
  if (forced !== undefined && forced !== "") {
    throw new DockerEngineError(`Cannot start dockerd: PGRAFT_CHAOS_STORAGE_DRIVER must be "vfs" or "overlay2", got ${JSON.stringify(forced)}; unset it to choose automatically`);
  }
  return overlayMounts(stateDirectory) ? "overlay2" : "vfs";
}

/** Whether an overlay file system mounts here (as root), tried on a scratch directory. */
function overlayMounts(stateDirectory: string): boolean {
  const scratch = mkdtempSync(join(stateDirectory, "overlay-check-"));
  const [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map((name) => join(scratch, name));
  try {
    for (const directory of [lower!, upper!, work!, merged!]) mkdirSync(directory);
    execFileSync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged!], { stdio: "ignore", timeout: 10_000 });
    execFileSync("umount", [merged!], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Starts dockerd in the background (detached, so it outlives this process) and returns its pid. */
function spawnDockerd(dockerd: string, storageDriver: StorageDriver, pidFile: string, logFile: string): number {
  const log = openSync(logFile, "a");
  try {
    // The default socket and data root: the docker CLI and testcontainers find the engine without
    // DOCKER_HOST, and images built once stay cached for every later run.
    const child = spawn(dockerd, [`--storage-driver=${storageDriver}`, `--pidfile=${pidFile}`], { detached: true, stdio: ["ignore", log, log] });
    child.unref();
    if (child.pid === undefined) throw new DockerEngineError(`Cannot start dockerd: spawning ${dockerd} failed; see ${logFile}`);
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/**
 * Returns a running Docker engine: the one `docker info` already reaches, or a dockerd started here.
 * Throws DockerEngineError naming the fix when there is none and none can be started.
 */
export async function ensureDockerEngine(options: EngineOptions = {}): Promise<DockerEngine> {
  const progress = options.progress ?? (() => {});
  if (findExecutable("docker") === undefined) throw new DockerEngineError(`Cannot use the testcontainers provider: the docker command is missing; ${INSTALL_HINT}`);
  const found = await dockerInfo();
  if (!("error" in found)) {
    progress(`docker engine: found running (server ${found.serverVersion}, storage driver ${found.storageDriver})`);
    return { ...found, startedHere: false, pid: undefined, logFile: undefined };
  }
  const dockerd = findExecutable("dockerd");
  if (dockerd === undefined) throw new DockerEngineError(`Cannot use the testcontainers provider: no Docker engine answers (${found.error}) and dockerd is not installed; ${INSTALL_HINT}`);
  if (process.getuid?.() !== 0) {
    throw new DockerEngineError(`Cannot start dockerd: it must run as root and this process runs as uid ${process.getuid?.()}; start it as root (\`dockerd --storage-driver=vfs &\`) or run \`npm run chaos -- --setup\` as root`);
  }
  const stateDirectory = options.stateDirectory ?? defaultStateDirectory();
  mkdirSync(stateDirectory, { recursive: true });
  const pidFile = join(stateDirectory, "dockerd.pid");
  const logFile = join(stateDirectory, "dockerd.log");
  let pid = readPid(pidFile);
  if (pid !== undefined) {
    progress(`docker engine: dockerd (pid ${pid}) is running but not answering yet; waiting for it`);
  } else {
    if (existsSync("/var/run/docker.pid") && readPid("/var/run/docker.pid") !== undefined) {
      throw new DockerEngineError(`Cannot start dockerd: another dockerd (pid file /var/run/docker.pid) runs but does not answer (${found.error}); stop it or fix it, then retry`);
    }
    const storageDriver = chooseStorageDriver(stateDirectory);
    pid = spawnDockerd(dockerd, storageDriver, pidFile, logFile);
    progress(`docker engine: started ${dockerd} --storage-driver=${storageDriver} (pid ${pid}, log ${logFile})`);
  }
  const info = await waitForEngine(pid, logFile, options.readyTimeoutMs ?? 90_000, progress);
  progress(`docker engine: ready (server ${info.serverVersion}, storage driver ${info.storageDriver})`);
  return { ...info, startedHere: true, pid, logFile };
}

async function waitForEngine(pid: number, logFile: string, timeoutMs: number, progress: Progress): Promise<EngineInfo> {
  const startMs = Date.now();
  let reportedMs = startMs;
  for (;;) {
    const info = await dockerInfo();
    if (!("error" in info)) return info;
    if (!isAlive(pid)) throw new DockerEngineError(`Cannot start dockerd: it exited during startup; the end of its log (${logFile}):\n${logTail(logFile)}`);
    const elapsedMs = Date.now() - startMs;
    if (elapsedMs > timeoutMs) {
      throw new DockerEngineError(`Cannot start dockerd: it did not answer within ${timeoutMs} ms (pid ${pid} still runs); the end of its log (${logFile}):\n${logTail(logFile)}`);
    }
    if (Date.now() - reportedMs >= 5_000) {
      reportedMs = Date.now();
      progress(`docker engine: waiting for dockerd to answer (${(elapsedMs / 1000).toFixed(0)} s)`);
    }
    await sleep(250);
  }
}

/** Stops a dockerd that `ensureDockerEngine` started (SIGTERM, bounded wait); leaves any other alone. */
export async function stopDockerEngine(engine: DockerEngine, timeoutMs = 30_000): Promise<void> {
  if (!engine.startedHere || engine.pid === undefined || !isAlive(engine.pid)) return;
  process.kill(engine.pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (isAlive(engine.pid)) {
    if (Date.now() > deadline) {
      process.kill(engine.pid, "SIGKILL");
      return;
    }
    await sleep(100);
  }
}
