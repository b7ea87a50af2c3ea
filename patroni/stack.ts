/**
 * The Patroni stack on one machine: a DCS of three nodes (pgraft or etcd, dcs.ts) and three Patroni
 * 3.0 servers (Debian's patroni, etcd3 DCS), each managing a PostgreSQL 15 server, everything on
 * 127.0.0.1 with ports from the OS. Patroni and PostgreSQL run as the `postgres` OS user (postgres
 * refuses root). `close()` stops everything it started: Patroni (kill -9), the postmasters (by the pid
 * in postmaster.pid, kill -9), the DCS, and removes the directory.
 */
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { stringify } from "yaml";
import { startDcs, waitForDcsLeader, type Dcs, type DcsKind } from "./dcs.ts";
import { freePorts } from "./ports.ts";
import { isRunning, killChild, killPostmaster, postmasterPid, sleep, spawnLogged, stopChild, tail, type Managed } from "./processes.ts";

export const PG_BIN = "/usr/lib/postgresql/15/bin";
export const SCOPE = "pgraft-demo";
export const PROBE_TABLE = "pgraft_probe";

/** Patroni's timing (seconds). loop_wait + 2 * retry_timeout <= ttl, as Patroni's docs ask. */
export interface PatroniTiming {
  readonly ttl: number;
  readonly loopWait: number;
  readonly retryTimeout: number;
}

export const DEFAULT_TIMING: PatroniTiming = { ttl: 20, loopWait: 2, retryTimeout: 8 };

export interface PatroniNode extends Managed {
  readonly restUrl: string;
  readonly pgPort: number;
  readonly dataDir: string;
  readonly configFile: string;
}

export interface StackOptions {
  readonly dcs: DcsKind;
  readonly timing?: PatroniTiming;
  /** Where the stack's files go (a new directory under the OS's temp directory by default). */
  readonly parentDirectory?: string;
}

interface PostgresUser {
  readonly uid: number;
  readonly gid: number;
}

function postgresUser(): PostgresUser {
  try {
    return { uid: Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })), gid: Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" })) };
  } catch {
    throw new Error("Cannot start Patroni: there is no `postgres` OS user; install PostgreSQL 15 (apt-get install postgresql-15)");
  }
}

function requirePrograms(): string {
  if (!existsSync(join(PG_BIN, "postgres"))) throw new Error(`Cannot start PostgreSQL: ${PG_BIN}/postgres is missing; run apt-get install postgresql-15`);
  let patroni: string;
  try {
    patroni = execFileSync("which", ["patroni"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("Cannot start Patroni: it is not installed; run apt-get install patroni (Debian's 3.0.2)");
  }
  if (process.getuid !== undefined && process.getuid() !== 0) throw new Error("Cannot start the Patroni stack: it runs Patroni and PostgreSQL as the postgres user, which needs root; run it as root");
  return patroni;
}

export class PatroniStack {
  readonly directory: string;
  readonly nodes: PatroniNode[] = [];
  readonly timing: PatroniTiming;
  #dcs: Dcs | undefined;
  #closing: Promise<void> | undefined;
  readonly #patroni: string;
  readonly #user: PostgresUser;

  private constructor(readonly kind: DcsKind, options: StackOptions) {
    this.#patroni = requirePrograms();
    this.#user = postgresUser();
    this.timing = options.timing ?? DEFAULT_TIMING;
    const { ttl, loopWait, retryTimeout } = this.timing;
    if (loopWait + 2 * retryTimeout > ttl) throw new Error(`Cannot use ttl=${ttl}, loop_wait=${loopWait}, retry_timeout=${retryTimeout}: Patroni needs loop_wait + 2 * retry_timeout <= ttl`);
    this.directory = mkdtempSync(join(options.parentDirectory ?? tmpdir(), `pgraft-patroni-${options.dcs}-`));
  }

  /** Starts the DCS and waits for its leader; Patroni is started by `startPatroni()`. */
  static async create(options: StackOptions): Promise<PatroniStack> {
    const stack = new PatroniStack(options.dcs, options);
    try {
      const dcsDirectory = join(stack.directory, options.dcs);
      mkdirSync(dcsDirectory, { mode: 0o700 });
      stack.#dcs = await startDcs(options.dcs, dcsDirectory);
      await waitForDcsLeader(stack.#dcs, 60_000);
      await stack.#writeConfigs();
    } catch (error) {
      await stack.close();
      throw error;
    }
    return stack;
  }

  get dcs(): Dcs {
    if (this.#dcs === undefined) throw new Error("The stack has no DCS (it failed to start or was closed)");
    return this.#dcs;
  }

  async #writeConfigs(): Promise<void> {
    const ports = await freePorts(6);
    const pgDirectory = join(this.directory, "postgres");
    mkdirSync(pgDirectory, { mode: 0o700 });
    chownSync(this.directory, this.#user.uid, this.#user.gid);
    chownSync(pgDirectory, this.#user.uid, this.#user.gid);
    const hosts = this.dcs.nodes.map((node) => node.clientUrl.replace(/^http:\/\//, ""));
    for (let i = 0; i < 3; i++) {
      const name = `pg${i + 1}`;
      const restPort = ports[i]!;
      const pgPort = ports[3 + i]!;
      const dataDir = join(pgDirectory, name);
      const configFile = join(pgDirectory, `${name}.yml`);
      const config = {
        scope: SCOPE,
        namespace: "/service/",
        name,
        log: { level: "INFO" },
        restapi: { listen: `127.0.0.1:${restPort}`, connect_address: `127.0.0.1:${restPort}` },
        etcd3: { hosts },
        bootstrap: {
          dcs: {
            ttl: this.timing.ttl,
            loop_wait: this.timing.loopWait,
            retry_timeout: this.timing.retryTimeout,
            maximum_lag_on_failover: 1048576,
            failsafe_mode: false,
            postgresql: { use_pg_rewind: true, use_slots: true, parameters: { wal_level: "replica", hot_standby: "on", max_wal_senders: 10, max_replication_slots: 10, wal_log_hints: "on" } },
          },
          initdb: [{ encoding: "UTF8" }, { auth: "trust" }],
          pg_hba: ["local all all trust", "host replication replicator 127.0.0.1/32 trust", "host all all 127.0.0.1/32 trust"],
        },
        postgresql: {
          listen: `127.0.0.1:${pgPort}`,
          connect_address: `127.0.0.1:${pgPort}`,
          data_dir: dataDir,
          bin_dir: PG_BIN,
          pgpass: join(pgDirectory, `${name}.pgpass`),
          authentication: { replication: { username: "replicator", password: "replicator" }, superuser: { username: "postgres", password: "postgres" } },
          parameters: { unix_socket_directories: pgDirectory, shared_buffers: "32MB", max_connections: 40 },
        },
        watchdog: { mode: "off" },
      };
      writeFileSync(configFile, stringify(config));
      chownSync(configFile, this.#user.uid, this.#user.gid);
      const logFile = join(pgDirectory, `${name}.log`);
      writeFileSync(logFile, "");
      chownSync(logFile, this.#user.uid, this.#user.gid);
      this.nodes.push({ name, restUrl: `http://127.0.0.1:${restPort}`, pgPort, dataDir, configFile, logFile, child: undefined });
    }
  }

  /** Starts (or restarts) Patroni on `node`, as the postgres user. */
  startPatroni(node: PatroniNode): void {
    if (this.#closing !== undefined) throw new Error("Cannot start Patroni: the stack is closing");
    if (isRunning(node.child)) return;
    node.child = spawnLogged(this.#patroni, [node.configFile], node.logFile, {
      cwd: join(this.directory, "postgres"),
      uid: this.#user.uid,
      gid: this.#user.gid,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(this.directory, "postgres"), LANG: "C.UTF-8" },
    });
  }

  startAllPatroni(): void {
    for (const node of this.nodes) this.startPatroni(node);
  }

  /** kill -9 of Patroni and then of its PostgreSQL (Patroni first, so it cannot restart PostgreSQL). */
  async killNode(node: PatroniNode): Promise<void> {
    await killChild(node.child);
    killPostmaster(node.dataDir);
  }

  /** Runs pg_ctl on `node`'s data directory as the postgres user (bounded), e.g. ["promote", "-w"]. */
  pgCtl(node: PatroniNode, args: readonly string[], timeoutMs = 60_000): string {
    return execFileSync(join(PG_BIN, "pg_ctl"), [...args, "-D", node.dataDir], { uid: this.#user.uid, gid: this.#user.gid, encoding: "utf8", timeout: timeoutMs, cwd: this.directory });
  }

  /** A client of `node`'s PostgreSQL (connects directly, never through another node). */
  client(node: PatroniNode, timeoutMs = 3_000): pg.Client {
    return new pg.Client({ host: "127.0.0.1", port: node.pgPort, user: "postgres", database: "postgres", connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, statement_timeout: timeoutMs });
  }

  /** One query on `node`, or undefined when it cannot be reached. */
  async query<T extends pg.QueryResultRow>(node: PatroniNode, sql: string): Promise<T[] | undefined> {
    const client = this.client(node);
    client.on("error", () => undefined);
    try {
      await client.connect();
      return (await client.query<T>(sql)).rows;
    } catch {
      return undefined;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** "primary", "replica", or undefined when PostgreSQL does not answer. */
  async role(node: PatroniNode): Promise<"primary" | "replica" | undefined> {
    const rows = await this.query<{ recovery: boolean }>(node, "SELECT pg_is_in_recovery() AS recovery");
    if (rows === undefined) return undefined;
    return rows[0]!.recovery ? "replica" : "primary";
  }

  /** The nodes whose PostgreSQL answers as a primary. */
  async primaries(): Promise<PatroniNode[]> {
    const roles = await Promise.all(this.nodes.map((node) => this.role(node)));
    return this.nodes.filter((_, i) => roles[i] === "primary");
  }

  /**
   * Waits (bounded) until one node is primary with `replicas` streaming replicas (pg_stat_replication),
   * excluding `exclude`, and returns it.
   */
  async waitForPrimary(options: { replicas: number; exclude?: PatroniNode; timeoutMs: number }): Promise<PatroniNode> {
    const deadline = Date.now() + options.timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      const primaries = (await this.primaries()).filter((node) => node !== options.exclude);
      if (primaries.length === 1) {
        // Replicas stream under their member names (Patroni's application_name); pg_basebackup's
        // own WAL stream, while a replica is being created, does not count.
        const names = this.nodes.filter((node) => node !== primaries[0]).map((node) => `'${node.name}'`).join(", ");
        const rows = await this.query<{ n: string }>(primaries[0]!, `SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming' AND application_name IN (${names})`);
        const streaming = rows === undefined ? -1 : Number(rows[0]!.n);
        if (streaming >= options.replicas) return primaries[0]!;
        last = `${primaries[0]!.name} is primary with ${streaming} streaming replicas`;
      } else {
        last = `primaries: [${primaries.map((node) => node.name).join(", ")}]`;
      }
      await sleep(500);
    }
    throw new Error(`No primary with ${options.replicas} streaming replicas within ${options.timeoutMs} ms (${last})\n${this.logs()}`);
  }

  /** Creates the table the writers insert into (on the primary; it replicates). */
  async createProbeTable(primary: PatroniNode): Promise<void> {
    const rows = await this.query(primary, `CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (node text NOT NULL, seq bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
    if (rows === undefined) throw new Error(`Cannot create ${PROBE_TABLE} on ${primary.name}: it did not answer`);
  }

  /** psql and patronictl commands a user can paste. */
  usage(): string {
    const lines = [`Patroni ${SCOPE} on ${this.kind} (files in ${this.directory})`, ""];
    lines.push(`${this.kind} client URLs (etcd v3 API; ETCDCTL_API=3 etcdctl --endpoints=${this.dcs.nodes.map((n) => n.clientUrl).join(",")} member list):`);
    for (const node of this.dcs.nodes) lines.push(`  ${node.name}  ${node.clientUrl}   log: ${node.logFile}`);
    lines.push("", "PostgreSQL (user postgres, trust auth on 127.0.0.1):");
    for (const node of this.nodes) lines.push(`  ${node.name}  psql -h 127.0.0.1 -p ${node.pgPort} -U postgres   Patroni REST ${node.restUrl}   log: ${node.logFile}`);
    lines.push("", "Patroni:", `  patronictl -c ${this.nodes[0]!.configFile} list`, `  patronictl -c ${this.nodes[0]!.configFile} switchover --force`, `  patronictl -c ${this.nodes[0]!.configFile} history`);
    return lines.join("\n");
  }

  logs(chars = 2000): string {
    const patroni = this.nodes.map((node) => `--- patroni ${node.name}\n${tail(node.logFile, chars)}`).join("\n");
    return `${patroni}\n${this.#dcs?.logs() ?? ""}`;
  }

  /**
   * Stops everything: `graceful` sends Patroni SIGTERM first (it stops PostgreSQL, bounded), then
   * anything left gets kill -9. Idempotent.
   */
  close(options: { graceful?: boolean } = {}): Promise<void> {
    this.#closing ??= (async () => {
      if (options.graceful) await Promise.all(this.nodes.map((node) => stopChild(node.child, 15_000)));
      await Promise.all(this.nodes.map((node) => killChild(node.child)));
      for (const node of this.nodes) killPostmaster(node.dataDir);
      // Wait (bounded) for the postmasters to be gone before removing their directories.
      const deadline = Date.now() + 10_000;
      while (this.nodes.some((node) => postmasterPid(node.dataDir) !== undefined) && Date.now() < deadline) await sleep(100);
      await this.#dcs?.close();
      rmSync(this.directory, { recursive: true, force: true });
    })();
    return this.#closing;
  }
}
