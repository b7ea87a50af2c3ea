/**
 * The testcontainers provider: each node is a container of the locally built chaos image
 * (chaos/containers/image.ts) running `pgraft start` (and, with `postgres`, the PostgreSQL server it
 * supervises: `--pgdata /data/pgdata --pg-port P`), started through the `testcontainers` package.
 *
 * - Containers run in the host's network, each node on its own ports, so every connection (Raft,
 *   PostgreSQL, the proxies, the checks) stays on 127.0.0.1, exactly as with the local provider.
 * - A node's data lives in a host directory bind-mounted at /data (`<run>/nN`: raft/, pgdata/ and
 *   node.log), so a killed container restarts from the data it kept, the log reads synchronously, and
 *   the Raft files can be damaged for corrupt_disk.
 * - A crash is `docker kill` (SIGKILL to the container): the node and its PostgreSQL die together, as
 *   on a machine that loses power; `crashNode`'s `postgres` option changes nothing here. A restart is
 *   `docker restart` of the same container (or a fresh container on the same data when the restart
 *   adds settings, since a container's command is fixed). Pause is `docker pause` (the cgroup freezer).
 *   A node that exits by itself (code 3 once it learns it was removed) stops its container; an engine
 *   `wait` per start notices it, and the node is "exited" with that exit code (exitCode()).
 * - Every container carries the labels pgraft-chaos=<run id> and the owner's pid and start time; the
 *   run's directory and ports are in the run registry (run-registry.ts). `cleanStale()` removes the
 *   containers and directories of runs whose owner is gone, so a run killed before its teardown is
 *   cleaned up by the next one, and two live runs never touch each other's.
 *
 * - The node program is the esbuild bundle of the checkout (as with the local provider), mounted
 *   read-only into the container; the image's bin/pgraft.js through tsx when no bundle can be made.
 * - Dial redirects (NodeSpec.dialRedirects, the links into nodes a scenario adds at run time): the
 *   container's environment preloads the image's copy of chaos/runner/dial-redirect.mjs through
 *   NODE_OPTIONS with the map in PGRAFT_CHAOS_DIAL_REDIRECTS, as the local provider does for a process;
 *   a restarted or re-created container keeps them.
 *
 * The engine and the image are prepared on first use (`npm run chaos -- --setup` does it ahead, with
 * progress lines); TESTCONTAINERS_RYUK_DISABLED is set, since the Ryuk image cannot be pulled.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { BUNDLE_DIRECTORY_NAME, nodeLauncher } from "../runner/node-bundle.ts";
import type { StartedTestContainer } from "testcontainers";
import { corruptRaftData, readTail, runSql } from "./node-data.ts";
import { ensureDockerEngine, run } from "../containers/engine.ts";
import { DIAL_REDIRECT_MODULE_PATH, ensureChaosImage, NODE_IN_IMAGE, PROJECT_DIRECTORY_IN_IMAGE } from "../containers/image.ts";
import { setupContainers } from "../containers/setup.ts";
import { DIAL_REDIRECTS_VARIABLE } from "./local.ts";
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
import { cleanStaleRuns, isSameProcessAlive, livePorts, processStartTime, RunRegistry } from "./run-registry.ts";

const PROVIDER_NAME = "testcontainers";
/** Nodes per run: scenario files allow 9, and add_node may introduce a few more. */
export const CONTAINER_NODES_MAX = 16;
export const LOG_TAIL_CHARS_DEFAULT = 4000;
const SQL_TIMEOUT_MS_DEFAULT = 5000;
/** docker kill, pause, start, rm: each is bounded. */
const DOCKER_COMMAND_TIMEOUT_MS = 60_000;
/** Creating a container copies the image's root under the vfs storage driver: allow it time. */
const CONTAINER_START_TIMEOUT_MS = 120_000;
/** The label every container of a chaos run carries; its value is the run id. */
export const RUN_LABEL = "pgraft-chaos";
const OWNER_PID_LABEL = "pgraft-chaos.owner-pid";
const OWNER_START_LABEL = "pgraft-chaos.owner-start";
/** Inside the container: the node's bind-mounted data directory and the shared secret. */
const DATA_IN_CONTAINER = "/data";
const SECRET_IN_CONTAINER = "/etc/pgraft/secret";
/** dial-redirect.mjs where the image holds it (chaos/containers/image.ts copies it there). */
export const DIAL_REDIRECT_MODULE_IN_IMAGE = `${PROJECT_DIRECTORY_IN_IMAGE}/${DIAL_REDIRECT_MODULE_PATH}`;
/** A redirect's source and target: "127.0.0.1:5001" (containers share the host's loopback). */
const LOOPBACK_ADDRESS = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d{1,5}$/;

export const CONTAINER_CAPABILITIES: ProviderCapabilities = {
  crash: true,
  restart: true,
  pause: true,
  postgres: true,
  corruptData: true,
  redirectDials: true,
  description: "containers of the local pgraft-chaos image (pgraft start and its PostgreSQL), host network on 127.0.0.1",
};

interface ContainerNode {
  readonly endpoints: NodeEndpoints;
  /** The host directory mounted at /data. */
  readonly directory: string;
  settings: string[] | undefined;
  postgres: boolean;
  /** NodeSpec.dialRedirects, in the environment of every container of this node. */
  dialRedirects: Readonly<Record<string, string>>;
  container: StartedTestContainer | undefined;
  state: NodeProcessState;
  /** The host pid of the container's first process, read after each start (crashNode kills it). */
  hostPid: number | undefined;
  /** The code the node exited with by itself (state "exited"); undefined otherwise. */
  exitCode: number | undefined;
  /** Bumped at every start and before every crash: an exit watcher of an older start is ignored. */
  generation: number;
}

type Testcontainers = typeof import("testcontainers");

export class TestcontainersProvider implements ClusterProvider {
  readonly name = PROVIDER_NAME;
  readonly capabilities = CONTAINER_CAPABILITIES;
  /** The label value of this run's containers. */
  readonly runId = `${process.pid}-${randomBytes(4).toString("hex")}`;
  readonly #options: ProviderOptions;
  readonly #nodes = new Map<number, ContainerNode>();
  #prepared: Promise<{ image: string; testcontainers: Testcontainers }> | undefined;
  #registry: RunRegistry | undefined;
  #runDirectory: string | undefined;
  #secretFile: string | undefined;
  #destroyed = false;
  #launch: Promise<{ script: string; mounts: { source: string; target: string; mode: "ro" }[] }> | undefined;

  constructor(options: ProviderOptions) {
    this.#options = options;
  }

  get runDirectory(): string | undefined {
    return this.#runDirectory;
  }

  /** The image the nodes run (after the first reserveNode or cleanStale). */
  async image(): Promise<string> {
    return (await this.#prepare()).image;
  }

  async cleanStale(): Promise<StaleCleanup> {
    await this.#prepare();
    const { killed, removed } = cleanStaleRuns(PROVIDER_NAME);
    const containers = await staleContainers();
    if (containers.length > 0) {
      await run("docker", ["rm", "--force", "--volumes", ...containers.map((container) => container.id)], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS * 2 });
      killed.push(...containers.map((container) => `container ${container.name} (run ${container.run})`));
    }
    return { killed, removed };
  }

  async reserveNode(id: number): Promise<NodeEndpoints> {
    this.#assertUsable();
    if (!Number.isInteger(id) || id < 1 || id > CONTAINER_NODES_MAX) {
      throw new Error(`Cannot reserve node ${id}: node ids run from 1 to ${CONTAINER_NODES_MAX} with the testcontainers provider`);
    }
    if (this.#nodes.has(id)) throw new Error(`Cannot reserve ${providerNodeName(id)}: it is reserved already`);
    await this.#prepare();
    const runDirectory = this.#ensureRunDirectory();
    const [peerPort, clientPort, metricsPort, postgresPort] = await choosePorts(4, livePorts());
    this.#registry!.addPorts([peerPort!, clientPort!, metricsPort!, postgresPort!]);
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
    this.#nodes.set(id, { endpoints, directory, settings: undefined, postgres: false, dialRedirects: {}, container: undefined, state: "reserved", hostPid: undefined, exitCode: undefined, generation: 0 });
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
    const dialRedirects = { ...(spec.dialRedirects ?? {}) };
    checkDialRedirects(node.endpoints.name, dialRedirects);
    node.settings = [...spec.settings];
    node.postgres = spec.postgres;
    node.dialRedirects = dialRedirects;
    await this.#createContainer(node);
  }

  async crashNode(id: number, _options: CrashOptions = {}): Promise<void> {
    const node = this.#node(id);
    if (node.container === undefined || node.state === "crashed" || node.state === "exited") {
      node.state = node.state === "reserved" ? "reserved" : "crashed";
      return;
    }
    const containerId = node.container.getId();
    // The container's exit is ours, not the node's: its exit watcher must not report it.
    node.generation++;
    // A paused container cannot be killed by the engine 20.10: thaw it first.
    if (node.state === "paused") await run("docker", ["unpause", containerId], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS }).catch(() => undefined);
    try {
      // SIGKILL to the container's first process from the host ends its pid namespace at once (the node
      // and its PostgreSQL together); `docker kill` on a loaded machine takes most of a second per
      // container, which stretched "crash followers" over 1.2 s. `docker kill` stays the fallback.
      const hostPid = node.hostPid !== undefined && pidInContainer(node.hostPid, containerId) ? node.hostPid : await containerPid(containerId);
      if (hostPid !== undefined) {
        process.kill(hostPid, "SIGKILL");
        await waitStopped(containerId);
      } else {
        await run("docker", ["kill", "--signal", "KILL", containerId], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS });
      }
    } catch (error) {
      // The container may have exited by itself just now: that is a crash too.
      if (await containerRunning(containerId)) throw new Error(`Cannot crash ${node.endpoints.name}: ${(error as Error).message}; check the engine with \`docker ps\``);
    }
    node.state = "crashed";
  }

  async restartNode(id: number, extraSettings: readonly string[] = []): Promise<void> {
    this.#assertUsable();
    const node = this.#node(id);
    if (node.state === "reserved") throw new Error(`Cannot restart ${node.endpoints.name}: it was never started; use startNode`);
    if (node.state === "running" || node.state === "paused") {
      if (await containerRunning(node.container!.getId())) return;
    }
    // The killed node's lock names "process 1", which the restarted node is again: pgraft takes over a
    // lock naming its own pid that this process does not hold (src/storage/directory-lock.ts).
    if (extraSettings.length === 0 && node.container !== undefined) {
      try {
        node.generation++;
        await node.container.restart({ timeout: 0 });
        node.state = "running";
        node.exitCode = undefined;
        node.hostPid = await containerPid(node.container.getId());
        this.#watchExit(node);
        return;
      } catch (error) {
        this.#options.note?.(`${node.endpoints.name}: docker restart failed (${(error as Error).message}); starting a fresh container on the same data`);
      }
    }
    // A container's command is fixed: new settings need a new container on the same data directory.
    node.settings = [...node.settings!, ...extraSettings];
    if (node.container !== undefined) await run("docker", ["rm", "--force", "--volumes", node.container.getId()], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS });
    node.container = undefined;
    await this.#createContainer(node);
  }

  async pauseNode(id: number): Promise<void> {
    const node = this.#node(id);
    if (node.state !== "running") throw new Error(`Cannot pause ${node.endpoints.name}: it is ${node.state}, not running`);
    await run("docker", ["pause", node.container!.getId()], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS });
    node.state = "paused";
  }

  async resumeNode(id: number): Promise<void> {
    const node = this.#node(id);
    if (node.state !== "paused") return;
    await run("docker", ["unpause", node.container!.getId()], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS });
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
    return readTail(join(this.#node(id).directory, "node.log"), chars);
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const ids = this.#containerIds();
    // One `docker rm --force` for all: it kills (also paused containers) and removes each.
    if (ids.length > 0) await run("docker", ["rm", "--force", "--volumes", ...ids], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS * 2 }).catch((error: Error) => this.#options.note?.(`testcontainers: ${error.message}`));
    for (const node of this.#nodes.values()) node.state = "exited";
    if (this.#runDirectory !== undefined) rmSync(this.#runDirectory, { recursive: true, force: true });
    this.#registry?.remove();
  }

  /** Synchronous teardown for exit handlers: `docker rm --force` runs to completion before we return. */
  destroyNow(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const ids = this.#containerIds();
    try {
      if (ids.length > 0) execFileSync("docker", ["rm", "--force", "--volumes", ...ids], { stdio: "ignore", timeout: DOCKER_COMMAND_TIMEOUT_MS * 2 });
    } catch {
      // The next run's cleanStale() removes what is left (the containers carry the run label).
    }
    if (this.#runDirectory !== undefined) rmSync(this.#runDirectory, { recursive: true, force: true });
    this.#registry?.remove();
  }

  #containerIds(): string[] {
    return [...this.#nodes.values()].flatMap((node) => (node.container === undefined ? [] : [node.container.getId()]));
  }

  async #createContainer(node: ContainerNode): Promise<void> {
    const { image, testcontainers } = await this.#prepare();
    const endpoints = node.endpoints;
    const data = DATA_IN_CONTAINER;
    const settings = [
      ...node.settings!,
      `pgraft.listen_address=${endpoints.host}:${endpoints.peerPort}`,
      `pgraft.client_address=${endpoints.host}:${endpoints.clientPort}`,
      `pgraft.data_dir=${data}/raft`,
      `pgraft.auth_secret_file=${SECRET_IN_CONTAINER}`,
      "pgraft.metrics_enabled=on",
      `pgraft.metrics_port=${endpoints.metricsPort}`,
    ];
    const postgresArguments = node.postgres ? ["--pgdata", `${data}/pgdata`, "--pg-port", String(endpoints.postgresPort)] : [];
    // The shell only redirects: exec makes node the container's first process, so docker kill and
    // docker stop reach it directly, and its log lands in the bind-mounted directory.
    const launcher = await this.#launcher();
    const command = ["/bin/sh", "-c", `exec "$@" >>${data}/node.log 2>&1`, "sh", NODE_IN_IMAGE, launcher.script, "start", ...postgresArguments, ...settings];
    const container = new testcontainers.GenericContainer(image)
      .withName(`pgraft-chaos-${this.runId}-${endpoints.name}`)
      .withLabels({ [RUN_LABEL]: this.runId, [OWNER_PID_LABEL]: String(process.pid), [OWNER_START_LABEL]: String(processStartTime(process.pid) ?? "") })
      .withNetworkMode("host")
      .withBindMounts([
        { source: node.directory, target: data, mode: "rw" },
        { source: this.#secretFile!, target: SECRET_IN_CONTAINER, mode: "ro" },
        ...launcher.mounts,
      ])
      .withWorkingDir(PROJECT_DIRECTORY_IN_IMAGE)
      .withEnvironment(containerEnvironment(node.dialRedirects, process.env.PGRAFT_LOG_LEVEL ?? "info"))
      .withCommand(command)
      .withStartupTimeout(CONTAINER_START_TIMEOUT_MS);
    node.generation++;
    try {
      node.container = await container.start();
      node.hostPid = await containerPid(node.container.getId());
    } catch (error) {
      throw new Error(`Cannot start ${endpoints.name} in a container of ${image}: ${(error as Error).message}; the node's log:\n${this.logTail(node.endpoints.id)}`);
    }
    node.state = "running";
    node.exitCode = undefined;
    this.#watchExit(node);
  }

  /**
   * Notices when the node of the container just started exits by itself (pgraft start exits with code 3
   * once it learns it was removed; the container stops with it): the node is then "exited" with that
   * code, as a local process would be, so that the runner neither restarts a node that left nor samples
   * its gone PostgreSQL. One engine `wait` per start, answered when the container stops; a crash, a
   * restart or the teardown makes it stale (generation) and it is ignored.
   */
  #watchExit(node: ContainerNode): void {
    const generation = node.generation;
    const containerId = node.container!.getId();
    void (async () => {
      let statusCode: unknown;
      try {
        const { testcontainers } = await this.#prepare();
        const client = await testcontainers.getContainerRuntimeClient();
        statusCode = ((await client.container.getById(containerId).wait()) as { StatusCode?: unknown } | undefined)?.StatusCode;
      } catch (error) {
        if (!this.#destroyed && node.generation === generation) this.#options.note?.(`testcontainers: cannot watch ${node.endpoints.name}'s container for its exit: ${(error as Error).message}`);
        return;
      }
      if (this.#destroyed || node.generation !== generation) return;
      if (node.state !== "running" && node.state !== "paused") return;
      node.state = "exited";
      node.exitCode = typeof statusCode === "number" ? statusCode : undefined;
      this.#options.note?.(`testcontainers: ${node.endpoints.name} exited by itself (code ${node.exitCode ?? "unknown"})`);
    })();
  }

  /**
   * How a container starts `pgraft start`: the esbuild bundle the local provider uses
   * (chaos/runner/node-bundle.ts), its host directory mounted read-only where it sits in the image's
   * project (/opt/pgraft/node_modules/.pgraft-chaos, so its relative links to src/ and its external
   * packages resolve in the image), or, when no bundle can be had, the image's bin/pgraft.js through
   * tsx. Compiling a hundred source files through tsx at every start costs a restarted node seconds of
   * CPU on a loaded machine, which "leader: elected within 10s" after a restart cannot afford.
   */
  #launcher(): Promise<{ script: string; mounts: { source: string; target: string; mode: "ro" }[] }> {
    this.#launch ??= (async () => {
      const launcher = await nodeLauncher(this.#options.projectRoot);
      const bundleDirectory = join(this.#options.projectRoot, BUNDLE_DIRECTORY_NAME);
      const inImage = `${PROJECT_DIRECTORY_IN_IMAGE}/${BUNDLE_DIRECTORY_NAME}`;
      if (!launcher.script.startsWith(`${bundleDirectory}/`)) {
        this.#options.note?.(`testcontainers: nodes start through the image's bin/pgraft.js (${launcher.description})`);
        return { script: `${PROJECT_DIRECTORY_IN_IMAGE}/bin/pgraft.js`, mounts: [] };
      }
      this.#options.note?.(`testcontainers: nodes start from the ${launcher.description}, mounted at ${inImage}`);
      return { script: `${inImage}/${basename(launcher.script)}`, mounts: [{ source: realpathSync(bundleDirectory), target: inImage, mode: "ro" }] };
    })();
    return this.#launch;
  }

  /** Once per provider: the engine (started if needed), the image (built if needed), testcontainers. */
  #prepare(): Promise<{ image: string; testcontainers: Testcontainers }> {
    this.#prepared ??= (async () => {
      // Must be set before testcontainers first talks to the engine: Ryuk's image cannot be pulled.
      process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
      const note = this.#options.note ?? ((line: string) => process.stderr.write(`${line}\n`));
      await ensureDockerEngine({ progress: note });
      const image = await ensureChaosImage({ progress: note, projectRoot: this.#options.projectRoot });
      const testcontainers = await import("testcontainers");
      return { image: image.name, testcontainers };
    })();
    return this.#prepared;
  }

  #ensureRunDirectory(): string {
    if (this.#runDirectory !== undefined) return this.#runDirectory;
    this.#registry = new RunRegistry(PROVIDER_NAME);
    const label = (this.#options.label ?? "run").replace(/[^a-z0-9-]/gi, "-").slice(0, 40);
    const directory = mkdtempSync(join(tmpdir(), `pgraft-chaos-containers-${label}-`));
    this.#registry.addDirectory(directory);
    chmodSync(directory, 0o755);
    this.#runDirectory = directory;
    this.#secretFile = join(directory, "secret");
    writeFileSync(this.#secretFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    return directory;
  }

  #node(id: number): ContainerNode {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new Error(`Cannot act on ${providerNodeName(id)}: it was never reserved; call reserveNode(${id}) first`);
    return node;
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new Error("Cannot use the testcontainers provider: it was destroyed; create a new one");
  }
}

interface LabelledContainer {
  readonly id: string;
  readonly name: string;
  readonly run: string;
}

/**
 * The environment of a node's container: the log level and, when the node has dials to redirect,
 * dial-redirect.mjs preloaded from the image through NODE_OPTIONS (it reaches the node however it is
 * launched: the mounted bundle or bin/pgraft.js through tsx) with the map in PGRAFT_CHAOS_DIAL_REDIRECTS.
 * Nothing of the host's environment goes in: the container has its own.
 */
export function containerEnvironment(dialRedirects: Readonly<Record<string, string>>, logLevel: string): Record<string, string> {
  const environment: Record<string, string> = { PGRAFT_LOG_LEVEL: logLevel };
  if (Object.keys(dialRedirects).length === 0) return environment;
  environment.NODE_OPTIONS = `--import=${pathToFileURL(DIAL_REDIRECT_MODULE_IN_IMAGE).href}`;
  environment[DIAL_REDIRECTS_VARIABLE] = JSON.stringify(dialRedirects);
  return environment;
}

/**
 * Throws unless every source and target of `dialRedirects` is a loopback "host:port": a container in
 * the host's network reaches the runner's proxies only there, and dial-redirect.mjs would stop the node
 * at start (seen only in its log) over a malformed one.
 */
export function checkDialRedirects(name: string, dialRedirects: Readonly<Record<string, unknown>>): void {
  for (const [from, to] of Object.entries(dialRedirects)) {
    for (const address of [from, to]) {
      if (typeof address !== "string" || !LOOPBACK_ADDRESS.test(address) || Number(address.slice(address.lastIndexOf(":") + 1)) > 65_535) {
        throw new Error(`Cannot start ${name}: its dial redirect ${JSON.stringify(from)} -> ${JSON.stringify(to)} names ${JSON.stringify(address)}, not a loopback "127.x.y.z:port"; give NodeSpec.dialRedirects as {"127.0.0.1:PORT": "127.0.0.1:PORT"}`);
      }
    }
  }
}

/** Containers of chaos runs whose owner process is gone (a run killed before its teardown). */
async function staleContainers(): Promise<LabelledContainer[]> {
  const format = `{{.ID}}\t{{.Names}}\t{{.Label "${RUN_LABEL}"}}\t{{.Label "${OWNER_PID_LABEL}"}}\t{{.Label "${OWNER_START_LABEL}"}}`;
  const listed = await run("docker", ["ps", "--all", "--filter", `label=${RUN_LABEL}`, "--format", format], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS });
  const stale: LabelledContainer[] = [];
  for (const line of listed.split("\n")) {
    if (line.trim() === "") continue;
    const [id, name, runId, ownerPid, ownerStart] = line.split("\t");
    const pid = Number(ownerPid);
    const startTime = ownerStart === undefined || ownerStart === "" ? undefined : Number(ownerStart);
    if (Number.isInteger(pid) && pid > 0 && isSameProcessAlive(pid, startTime)) continue;
    stale.push({ id: id!, name: name ?? id!, run: runId ?? "?" });
  }
  return stale;
}

/** The host pid of a running container's first process, or undefined. */
async function containerPid(containerId: string): Promise<number | undefined> {
  try {
    const pid = Number((await run("docker", ["inspect", "--format", "{{.State.Pid}}", containerId], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS })).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether host process `pid` still runs in container `containerId` (its cgroup names the container). */
function pidInContainer(pid: number, containerId: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(containerId);
  } catch {
    return false;
  }
}

/** Waits (bounded) until the engine sees the container stopped; throws when it never does. */
async function waitStopped(containerId: string): Promise<void> {
  const deadline = Date.now() + DOCKER_COMMAND_TIMEOUT_MS;
  while (await containerRunning(containerId)) {
    if (Date.now() > deadline) throw new Error(`container ${containerId} still runs ${DOCKER_COMMAND_TIMEOUT_MS} ms after SIGKILL to its first process`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function containerRunning(containerId: string): Promise<boolean> {
  try {
    return (await run("docker", ["inspect", "--format", "{{.State.Running}}", containerId], { timeoutMs: DOCKER_COMMAND_TIMEOUT_MS })).trim() === "true";
  } catch {
    return false;
  }
}

export const createProvider: ProviderFactory = (options) => new TestcontainersProvider(options);

/** `npm run chaos -- --setup --provider testcontainers`: the engine and the image, with progress lines. */
export async function setup(options: { readonly projectRoot: string; readonly note: (line: string) => void }): Promise<void> {
  await setupContainers(options.note, options.projectRoot);
}
