/**
 * Test helper: a cluster of real `pgraft start` processes on 127.0.0.1, each with its own data
 * directory, started from settings on the command line. Ports are drawn from a range per test file so
 * parallel test files do not collide. Every process is killed when the cluster is closed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ProcessNode {
  readonly name: string;
  readonly id: number;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly clientUrl: string;
  process: ChildProcess | undefined;
  log: string;
}

export class ProcessCluster {
  readonly nodes: ProcessNode[];
  readonly directory: string;
  readonly secretFile: string;

  constructor(
    readonly size: number,
    readonly basePort: number,
    readonly extraSettings: string[] = [],
  ) {
    this.directory = mkdtempSync(join(tmpdir(), "pgraft-cluster-"));
    this.secretFile = join(this.directory, "secret");
    writeFileSync(this.secretFile, "correct horse battery staple\n");
    this.nodes = Array.from({ length: size }, (_, i) => ({
      name: `n${i + 1}`,
      id: i + 1,
      peerPort: basePort + i,
      clientPort: basePort + 100 + i,
      clientUrl: `http://127.0.0.1:${basePort + 100 + i}`,
      process: undefined,
      log: "",
    }));
  }

  /**
   * The command-line settings of `node`. `members` are the nodes its pgraft.initial_cluster and
   * pgraft.client_urls list (all of them by default; fewer for the founders of a cluster that a later
   * node joins).
   */
  settings(node: ProcessNode, overrides: string[] = [], members: readonly ProcessNode[] = this.nodes): string[] {
    const cluster = members.map((n) => `${n.name}=127.0.0.1:${n.peerPort}`).join(",");
    const clients = members.map((n) => `${n.name}=127.0.0.1:${n.clientPort}`).join(",");
    return [
      "pgraft.cluster_id=test-cluster",
      `pgraft.name=${node.name}`,
      `pgraft.initial_cluster=${cluster}`,
      `pgraft.client_urls=${clients}`,
      `pgraft.client_address=127.0.0.1:${node.clientPort}`,
      `pgraft.data_dir=${join(this.directory, node.name)}`,
      `pgraft.auth_secret_file=${this.secretFile}`,
      "pgraft.election_timeout=1000ms",
      "pgraft.heartbeat_interval=100ms",
      ...this.extraSettings,
      ...overrides,
    ];
  }

  start(node: ProcessNode, overrides: string[] = [], members: readonly ProcessNode[] = this.nodes): void {
    if (node.process && node.process.exitCode === null && node.process.signalCode === null) return;
    const child = spawn(process.execPath, ["bin/pgraft.js", "start", ...this.settings(node, overrides, members)], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, PGRAFT_LOG_LEVEL: "info" },
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      node.log += chunk.toString("utf8");
      if (node.log.length > 2_000_000) node.log = node.log.slice(-1_000_000);
    });
    node.process = child;
  }

  startAll(): void {
    for (const node of this.nodes) this.start(node);
  }

  /** kill -9: the process gets no chance to flush or close anything. */
  async kill(node: ProcessNode): Promise<void> {
    const child = node.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.kill(node)));
    rmSync(this.directory, { recursive: true, force: true });
  }

  async statusCode(node: ProcessNode, path: string): Promise<number | undefined> {
    try {
      const response = await fetch(`${node.clientUrl}${path}`, { signal: AbortSignal.timeout(500) });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return undefined;
    }
  }

  /** Waits (bounded) until the node's process answers /health. */
  async waitForHealthy(node: ProcessNode, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.statusCode(node, "/health")) !== 200) {
      if (Date.now() > deadline) throw new Error(`${node.name} did not answer /health within ${timeoutMs} ms:\n${node.log.slice(-3000)}`);
      await sleep(50);
    }
  }

  /** Waits (bounded) until exactly one live node answers /leader with 200, and returns it. */
  async waitForLeader(timeoutMs = 15_000, exclude?: ProcessNode): Promise<ProcessNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const node of this.nodes) {
        if (node === exclude) continue;
        if ((await this.statusCode(node, "/leader")) === 200) return node;
      }
      await sleep(50);
    }
    throw new Error(`No leader within ${timeoutMs} ms. Logs:\n${this.nodes.map((n) => `--- ${n.name}\n${n.log.slice(-3000)}`).join("\n")}`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** One write attempt (no retry: a retried write could apply twice, and tests count outcomes). */
export async function put(url: string, key: string, value: string, timeoutMs = 3_000): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: base64(key), value: base64(value) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/**
 * A linearizable read, retried (bounded) while the cluster has no leader, as a client would: on a
 * loaded machine an election may be under way at any moment.
 */
export async function get(url: string, key: string, timeoutMs = 3_000, retryForMs = 15_000): Promise<string | undefined> {
  const deadline = Date.now() + retryForMs;
  const attempt = async (): Promise<Response | undefined> => {
    try {
      return await fetch(`${url}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: base64(key) }), signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      // Connection refused: the process is still starting (or restarting).
      if (Date.now() >= deadline) throw error;
      return undefined;
    }
  };
  let response = await attempt();
  while ((response === undefined || response.status === 503) && Date.now() < deadline) {
    await response?.arrayBuffer();
    await sleep(100);
    response = await attempt();
  }
  if (response === undefined) throw new Error(`range on ${url} never answered`);
  if (response.status !== 200) throw new Error(`range answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { kvs?: { value?: string }[] };
  const value = body.kvs?.[0]?.value;
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}
