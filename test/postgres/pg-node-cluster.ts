/**
 * Test helper: a cluster of real PostgreSQL nodes as an operator runs them: each node is a PostgreSQL
 * 15 server whose postgresql.conf carries the node's pgraft.* settings, and a `pgraft start --pgdata DIR`
 * process that supervises that server. Data directories come from the harness's cached initdb template.
 * Ports are free ports from the OS. close() kills every node and every postmaster (a node killed with
 * SIGKILL leaves its PostgreSQL running, as in production) and deletes the directories.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { initdb, SMALL_SERVER_SETTINGS } from "../../src/postgres/supervisor.ts";
import { freePorts, killPostmasterOf, TEMPLATE_CACHE_DIRECTORY, waitFor } from "./harness.ts";

export interface PgNode {
  readonly name: string;
  readonly id: number;
  readonly pgdata: string;
  readonly pgPort: number;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly clientUrl: string;
  readonly metricsUrl: string;
  process: ChildProcess | undefined;
  log: string;
}

export interface SqlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class PgNodeCluster {
  readonly nodes: PgNode[] = [];
  readonly directory: string;
  readonly secretFile: string;

  /** The first `founders` nodes found the cluster; the others join it later (initial_cluster_state = existing). */
  founders = 0;

  private constructor(readonly extraSettings: Readonly<Record<string, string>>) {
    this.directory = mkdtempSync(join(tmpdir(), "pgraft-pgc-"));
    // PostgreSQL runs as its own OS user, which must reach the data directories inside.
    chmodSync(this.directory, 0o711);
    this.secretFile = join(this.directory, "secret");
    writeFileSync(this.secretFile, "correct horse battery staple\n");
  }

  /** Creates the data directories (not yet started). */
  static async create(size: number, extraSettings: Readonly<Record<string, string>> = {}, founders = size): Promise<PgNodeCluster> {
    const cluster = new PgNodeCluster(extraSettings);
    cluster.founders = founders;
    const ports = await freePorts(size * 4);
    for (let i = 0; i < size; i++) {
      const clientPort = ports[4 * i + 2]!;
      cluster.nodes.push({
        name: `n${i + 1}`,
        id: i + 1,
        pgdata: join(cluster.directory, `n${i + 1}`),
        pgPort: ports[4 * i]!,
        peerPort: ports[4 * i + 1]!,
        clientPort,
        clientUrl: `http://127.0.0.1:${clientPort}`,
        metricsUrl: `http://127.0.0.1:${ports[4 * i + 3]!}/metrics`,
        process: undefined,
        log: "",
      });
    }
    for (const node of cluster.nodes) {
      await initdb(node.pgdata, { templateCacheDirectory: TEMPLATE_CACHE_DIRECTORY, noSync: true, settings: { ...SMALL_SERVER_SETTINGS, port: String(node.pgPort), ...cluster.settings(node) } });
    }
    return cluster;
  }

  /** The node's pgraft.* settings, as its postgresql.conf holds them. */
  settings(node: PgNode): Record<string, string> {
    const joining = node.id > this.founders;
    const listed = this.nodes.filter((n) => n.id <= this.founders || n === node);
    return {
      "pgraft.cluster_id": "pg-test",
      "pgraft.name": node.name,
      "pgraft.initial_cluster": listed.map((n) => `${n.name}=127.0.0.1:${n.peerPort}`).join(","),
      "pgraft.client_urls": listed.map((n) => `${n.name}=127.0.0.1:${n.clientPort}`).join(","),
      ...(joining ? { "pgraft.initial_cluster_state": "existing" } : {}),
      "pgraft.client_address": `127.0.0.1:${node.clientPort}`,
      "pgraft.auth_secret_file": this.secretFile,
      "pgraft.election_timeout": "1000",
      "pgraft.heartbeat_interval": "100",
      "pgraft.metrics_enabled": "on",
      "pgraft.metrics_port": new URL(node.metricsUrl).port,
      ...this.extraSettings,
    };
  }

  start(node: PgNode, extraArguments: string[] = [], environment: Record<string, string> = {}): void {
    if (node.process && node.process.exitCode === null && node.process.signalCode === null) return;
    const child = spawn(process.execPath, ["bin/pgraft.js", "start", "--pgdata", node.pgdata, ...extraArguments], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, PGRAFT_LOG_LEVEL: "info", ...environment },
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      node.log += chunk.toString("utf8");
      if (node.log.length > 2_000_000) node.log = node.log.slice(-1_000_000);
    });
    node.process = child;
  }

  /** Starts the founding nodes (all of them unless the cluster was created with fewer founders). */
  startAll(): void {
    for (const node of this.nodes) if (node.id <= this.founders) this.start(node);
  }

  /** kill -9 of the node process only; its PostgreSQL keeps running. */
  async kill(node: PgNode): Promise<void> {
    const child = node.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
  }

  /** SIGTERM: the node stops its PostgreSQL and exits. */
  async stop(node: PgNode): Promise<number | null> {
    const child = node.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    return exited;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.kill(node)));
    for (const node of this.nodes) killPostmasterOf(node.pgdata);
    rmSync(this.directory, { recursive: true, force: true });
  }

  connectionString(node: PgNode, user = "postgres"): string {
    return `host=${node.pgdata} port=${node.pgPort} user=${user} dbname=postgres`;
  }

  /** Runs SQL through the real psql (unaligned, tuples only), as an operator would. */
  psql(node: PgNode, sql: string, options: { user?: string; aligned?: boolean } = {}): Promise<SqlResult> {
    const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PG")));
    const format = options.aligned ? [] : ["-A", "-t"];
    return new Promise((resolve, reject) => {
      const child = spawn("psql", ["-X", ...format, "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-d", this.connectionString(node, options.user), "-c", sql], {
        env: environment,
        timeout: 30_000,
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code: code ?? 128, stdout: stdout.trim(), stderr: stderr.trim() }));
    });
  }

  /** One query through node-postgres; rejects with the server's error (code = SQLSTATE). */
  async query<T extends pg.QueryResultRow = Record<string, unknown>>(node: PgNode, sql: string, params: unknown[] = [], user = "postgres"): Promise<T[]> {
    const client = new pg.Client({ host: node.pgdata, port: node.pgPort, user, database: "postgres", connectionTimeoutMillis: 10_000 });
    client.on("error", () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The single value of a one-row, one-column query. */
  async value<T>(node: PgNode, sql: string, params: unknown[] = []): Promise<T> {
    const rows = await this.query(node, sql, params);
    return Object.values(rows[0] ?? {})[0] as T;
  }

  /** Waits until the node's PostgreSQL reports a running node (worker RUNNING). */
  async waitForWorker(node: PgNode, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `${node.name}'s worker state RUNNING`,
      async () => ((await this.value<string>(node, "SELECT pgraft_get_worker_state()").catch(() => undefined)) === "RUNNING" ? true : undefined),
      { timeoutMs },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n--- ${node.name} log:\n${node.log.slice(-4000)}`);
    });
  }

  /** Waits until exactly one node says pgraft_is_leader() and returns it. */
  async waitForLeader(timeoutMs = 30_000, among: readonly PgNode[] = this.nodes): Promise<PgNode> {
    return waitFor(
      "a leader (pgraft_is_leader() on one node)",
      async () => {
        const leaders: PgNode[] = [];
        for (const node of among) if ((await this.value<boolean>(node, "SELECT pgraft_is_leader()").catch(() => false)) === true) leaders.push(node);
        return leaders.length === 1 ? leaders[0] : undefined;
      },
      { timeoutMs },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.nodes.map((n) => `--- ${n.name}\n${n.log.slice(-3000)}`).join("\n")}`);
    });
  }
}
