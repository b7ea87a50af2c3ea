/**
 * The node's side of its PostgreSQL server: keeps two connections (one applies, one reports), installs
 * the SQL interface, mirrors the key-value state machine into pgraft.kv, rewrites pgraft.node_status
 * every half heartbeat, and fences writes when this node is not a leader backed by a quorum.
 *
 * PostgreSQL being down, restarting or refusing connections never stops Raft: the node keeps voting
 * and replicating while this bridge reconnects with backoff, says so in the log, metrics and /health,
 * and catches the table up when the server is back.
 *
 * Exactly once into pgraft.kv: each applied entry's changes and the new applied index commit in one
 * transaction; on (re)connection the bridge reads pgraft.applied and continues after it. It keeps the
 * changes of entries not yet in PostgreSQL (bounded: APPLY_QUEUE_ENTRIES_MAX); when the gap cannot be
 * bridged (the node restarted from a snapshot past PostgreSQL's index, installed a snapshot from the
 * leader, or the queue overflowed), it copies the whole store at its applied index, in one
 * transaction. The rows are the state machine's records (KvStore.lastChanges), never recomputed here.
 */
import pg from "pg";
import { assert } from "../assert.ts";
import type { KvChange, KvRecord } from "../kv/kv-store.ts";
import { installSqlInterface, PostgresSetupError } from "./install.ts";

/** Entries whose changes wait for PostgreSQL before the bridge falls back to a full copy. */
export const APPLY_QUEUE_ENTRIES_MAX = 100_000;
/** Entries per apply transaction. */
const APPLY_BATCH_ENTRIES_MAX = 1_000;
/** Rows per INSERT statement of a full copy. */
const COPY_ROWS_PER_STATEMENT = 1_000;
const RECONNECT_DELAY_MS_MIN = 100;
const RECONNECT_DELAY_MS_MAX = 5_000;
/** Statements the bridge runs may take this long before PostgreSQL cancels them. */
const STATEMENT_TIMEOUT_MS = 30_000;

export interface PostgresBridgeLogger {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

/** What the node reports into pgraft.node_status (columns of that table). */
export interface NodeStatusRow {
  readonly node_id: number;
  readonly name: string;
  readonly cluster_id: string;
  /** RUNNING, STARTING (waiting to be added), STOPPED (removed from the cluster), ERROR (set by the bridge). */
  readonly worker_state: "RUNNING" | "STARTING" | "STOPPED" | "ERROR";
  readonly state: string;
  readonly current_term: number;
  readonly leader_id: number;
  readonly quorum: boolean;
  readonly num_nodes: number;
  readonly messages_processed: number;
  readonly heartbeats_sent: number;
  readonly elections_triggered: number;
  readonly log_size: number;
  readonly last_index: number;
  readonly commit_index: number;
  readonly last_applied: number;
  readonly replicated: number;
  readonly committed: number;
  readonly applied: number;
  readonly errors: number;
  readonly nodes: readonly Record<string, unknown>[];
  readonly replication: readonly Record<string, unknown>[];
}

/** The store the bridge copies from: the node's KvStore (replaced when a snapshot is installed). */
export interface StoreView {
  readonly appliedIndex: number;
  entries(): Iterable<[string, KvRecord]>;
}

export interface PostgresBridgeOptions {
  /** How to reach the server (node-postgres settings; PG* environment variables fill what is missing). */
  readonly connection: pg.ClientConfig;
  readonly store: () => StoreView;
  /** The node's status now, or undefined when it is not running. */
  readonly status: () => NodeStatusRow | undefined;
  /** Whether this node is a leader backed by a live quorum (writes allowed when fencing). */
  readonly writable: () => boolean;
  readonly heartbeatIntervalMs: number;
  readonly fenceWrites: boolean;
  readonly packageVersion: string;
  /** The node's command endpoint, published for the SQL functions' dblink calls. */
  readonly endpoint: { readonly host: string; readonly port: number; readonly password: string };
  readonly logger: PostgresBridgeLogger;
  /** Fault injection for tests: "crash-before-commit" kills the process inside an apply transaction. */
  readonly fault?: string;
}

interface QueuedEntry {
  readonly index: number;
  readonly changes: readonly KvChange[];
}

interface Waiter {
  readonly index: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export type PostgresState = "connecting" | "connected" | "down" | "stopped";

/** Counters for metrics and pgraft_log_get_stats(). */
export interface PostgresBridgeCounters {
  entriesApplied: number;
  fullCopies: number;
  applyErrors: number;
  connectionFailures: number;
}

export class PostgresBridge {
  readonly #options: PostgresBridgeOptions;
  #state: PostgresState = "connecting";
  #applyClient: pg.Client | undefined;
  #statusClient: pg.Client | undefined;
  #queue: QueuedEntry[] = [];
  /** The index just before the queue's first entry: the queue holds every entry after it. */
  #queueBase: number;
  #fullCopyNeeded = false;
  /** pgraft.applied as last read or written; undefined until connected. */
  #pgApplied: number | undefined;
  #waiters: Waiter[] = [];
  #wake: (() => void) | undefined;
  /** Ends the current wait between reconnect attempts. */
  #retryWake: (() => void) | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #reportInFlight = false;
  #fenced: boolean | undefined;
  #lastApplyFailed = false;
  #lastError: string | undefined;
  #startedAt = new Date();
  #loop: Promise<void> | undefined;
  /** Set when either connection failed outside the apply loop: the loop reconnects both. */
  #broken: string | undefined;
  readonly counters: PostgresBridgeCounters = { entriesApplied: 0, fullCopies: 0, applyErrors: 0, connectionFailures: 0 };

  constructor(options: PostgresBridgeOptions) {
    this.#options = options;
    this.#queueBase = options.store().appliedIndex;
  }

  get state(): PostgresState {
    return this.#state;
  }

  /** pgraft.applied in the server as last confirmed, or undefined while unknown. */
  get appliedIndex(): number | undefined {
    return this.#pgApplied;
  }

  /** True while the last apply transaction failed (the node reports worker state ERROR). */
  get applyFailing(): boolean {
    return this.#lastApplyFailed;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  get fenced(): boolean | undefined {
    return this.#fenced;
  }

  start(): void {
    assert(this.#loop === undefined, "PostgresBridge.start(): already started");
    this.#loop = this.#run();
    const intervalMs = Math.max(10, Math.floor(this.#options.heartbeatIntervalMs / 2));
    this.#statusTimer = setInterval(() => void this.#report(), intervalMs);
  }

  /** Called for every entry the node applies, in index order, with what it changed. */
  applied(index: number, changes: readonly KvChange[]): void {
    if (this.#fullCopyNeeded) return;
    const last = this.#queue.length > 0 ? this.#queue[this.#queue.length - 1]!.index : this.#queueBase;
    assert(index === last + 1, `PostgresBridge.applied(): entry ${index} does not follow ${last}`);
    if (this.#queue.length >= APPLY_QUEUE_ENTRIES_MAX) {
      this.#options.logger.warn(`PostgreSQL is ${this.#queue.length} entries behind; pgraft.kv will be copied whole once it is back`);
      this.#fullCopy();
      return;
    }
    this.#queue.push({ index, changes: [...changes] });
    this.#wake?.();
  }

  /** The node replaced its store with a snapshot: PostgreSQL gets a whole copy. */
  storeReplaced(): void {
    this.#fullCopy();
  }

  /** Resolves once pgraft.kv holds entry `index`; rejects after `timeoutMs`. */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.#pgApplied !== undefined && this.#pgApplied >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter.timer !== timer);
        reject(
          new Error(
            `entry ${index} is committed but not yet in pgraft.kv on this node after ${timeoutMs} ms (PostgreSQL ${this.#state}${this.#lastError ? `: ${this.#lastError}` : ""})`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push({ index, resolve, reject, timer });
    });
  }

  /**
   * Ends the wait between reconnect attempts: the caller knows PostgreSQL just became ready (the
   * supervisor saw it start), so the tables catch up now rather than after the backoff.
   */
  retryNow(): void {
    this.#retryWake?.();
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    clearInterval(this.#statusTimer);
    this.#wake?.();
    this.#retryWake?.();
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error("the node is stopping"));
    }
    this.#waiters = [];
    await this.#loop?.catch(() => undefined);
    await this.#closeClients();
  }

  // -------------------------------------------------------------------------------------------------

  #fullCopy(): void {
    this.#fullCopyNeeded = true;
    this.#queue = [];
    this.#wake?.();
  }

  async #run(): Promise<void> {
    let delayMs = RECONNECT_DELAY_MS_MIN;
    while (this.#state !== "stopped") {
      try {
        if (this.#broken !== undefined) {
          const reason = this.#broken;
          this.#broken = undefined;
          throw new Error(reason);
        }
        if (this.#applyClient === undefined) {
          await this.#connect();
          delayMs = RECONNECT_DELAY_MS_MIN;
        }
        await this.#applyPending();
        if (this.#pendingCount() === 0 && !this.#isStopped()) await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      } catch (error) {
        if (this.#isStopped()) break;
        const message = describe(error);
        this.#lastError = message;
        if (error instanceof PostgresSetupError) {
          this.#options.logger.error(message);
        } else if (this.#state === "connected") {
          this.#options.logger.warn(`lost the connection to PostgreSQL (${message}); Raft goes on, pgraft.kv catches up once it is back`);
        } else if (this.counters.connectionFailures === 0 || delayMs >= RECONNECT_DELAY_MS_MAX) {
          this.#options.logger.warn(`cannot reach PostgreSQL (${message}); retrying every ${Math.round(delayMs / 100) / 10} s at most`);
        }
        this.counters.connectionFailures++;
        this.#state = "down";
        await this.#closeClients();
        await this.#retryDelay(delayMs);
        delayMs = Math.min(RECONNECT_DELAY_MS_MAX, delayMs * 2);
      }
    }
  }

  /** Sleeps `delayMs` between reconnect attempts, or less when retryNow() or stop() ends the wait. */
  #retryDelay(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, delayMs);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.#retryWake = undefined;
        resolve();
      }
      this.#retryWake = done;
    });
  }

  /** A method, not a field test, so TypeScript does not narrow #state across awaits. */
  #isStopped(): boolean {
    return this.#state === "stopped";
  }

  #pendingCount(): number {
    if (this.#fullCopyNeeded || this.#broken !== undefined) return 1;
    const last = this.#queue.length > 0 ? this.#queue[this.#queue.length - 1]!.index : 0;
    return Math.max(0, last - (this.#pgApplied ?? 0));
  }

  async #connect(): Promise<void> {
    this.#state = this.#state === "down" ? "down" : "connecting";
    const open = async (role: string): Promise<pg.Client> => {
      const client = new pg.Client({ ...this.#options.connection, application_name: `pgraft ${role}`, connectionTimeoutMillis: 5_000 });
      client.on("error", (error) => {
        // The server went away (or killed the session): reconnect.
        this.#broken ??= describe(error);
        this.#wake?.();
      });
      await client.connect();
      // The node's own sessions write even when it fences the server for everyone else.
      await client.query(`SET default_transaction_read_only = off; SET statement_timeout = ${STATEMENT_TIMEOUT_MS}`);
      return client;
    };
    const apply = await open("apply");
    let status: pg.Client;
    try {
      status = await open("status");
    } catch (error) {
      await apply.end().catch(() => undefined);
      throw error;
    }
    this.#applyClient = apply;
    this.#statusClient = status;
    const installed = await installSqlInterface(apply, { packageVersion: this.#options.packageVersion });
    if (installed.from !== installed.to) {
      this.#options.logger.info(
        installed.from === 0
          ? `installed pgraft's SQL interface (schema version ${installed.to}) into database "${installed.database}"`
          : `upgraded pgraft's SQL interface in database "${installed.database}" from schema version ${installed.from} to ${installed.to}`,
      );
    }
    const row = await apply.query<{ applied_index: string }>("SELECT applied_index FROM pgraft.applied WHERE id = 1");
    this.#pgApplied = Number(row.rows[0]?.applied_index ?? 0);
    const storeApplied = this.#options.store().appliedIndex;
    if (this.#pgApplied < this.#queueBase || this.#pgApplied > storeApplied) this.#fullCopy();
    this.#fenced = undefined;
    this.#state = "connected";
    this.#lastError = undefined;
    this.#options.logger.info(`connected to PostgreSQL (pgraft.kv holds entries through index ${this.#pgApplied}, the node has applied ${storeApplied})`);
    await this.#report();
  }

  async #applyPending(): Promise<void> {
    const client = this.#applyClient!;
    while (this.#state === "connected") {
      if (this.#fullCopyNeeded) {
        await this.#copyWhole(client);
        continue;
      }
      const applied = this.#pgApplied!;
      while (this.#queue.length > 0 && this.#queue[0]!.index <= applied) this.#queueBase = this.#queue.shift()!.index;
      if (this.#queue.length === 0) return;
      const batch = this.#queue.slice(0, APPLY_BATCH_ENTRIES_MAX);
      const last = batch[batch.length - 1]!.index;
      // The final state of each key the batch touched (later changes win).
      const rows = new Map<string, KvRecord | undefined>();
      for (const entry of batch) for (const change of entry.changes) rows.set(change.key, change.record);
      try {
        await client.query("BEGIN");
        await client.query("SET LOCAL session_replication_role = replica"); // pass the refuse-write triggers
        await writeRows(client, rows);
        if (this.#options.fault === "crash-before-commit") {
          this.#options.logger.warn("fault injection: killing the node inside an apply transaction, before it commits");
          process.kill(process.pid, "SIGKILL");
        }
        await client.query("UPDATE pgraft.applied SET applied_index = $1, updated_at = clock_timestamp() WHERE id = 1", [last]);
        await client.query("COMMIT");
        this.#lastApplyFailed = false;
      } catch (error) {
        this.#lastApplyFailed = true;
        this.counters.applyErrors++;
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      }
      this.counters.entriesApplied += batch.length;
      this.#pgApplied = last;
      this.#settleWaiters();
    }
  }

  async #copyWhole(client: pg.Client): Promise<void> {
    // Read the store and clear the queue in one synchronous step: entries applied from now on queue
    // after `index`.
    const store = this.#options.store();
    const index = store.appliedIndex;
    const records = [...store.entries()];
    this.#fullCopyNeeded = false;
    this.#queue = [];
    this.#queueBase = index;
    try {
      await client.query("BEGIN");
      await client.query("SET LOCAL session_replication_role = replica");
      await client.query("DELETE FROM pgraft.kv");
      for (let start = 0; start < records.length; start += COPY_ROWS_PER_STATEMENT) {
        await writeRows(client, new Map(records.slice(start, start + COPY_ROWS_PER_STATEMENT)));
      }
      await client.query("UPDATE pgraft.applied SET applied_index = $1, updated_at = clock_timestamp() WHERE id = 1", [index]);
      await client.query("COMMIT");
      this.#lastApplyFailed = false;
    } catch (error) {
      this.#lastApplyFailed = true;
      this.counters.applyErrors++;
      this.#fullCopyNeeded = true;
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
    this.counters.fullCopies++;
    this.#pgApplied = index;
    this.#options.logger.info(`copied the whole key-value store (${records.length} keys, through index ${index}) into pgraft.kv`);
    this.#settleWaiters();
  }

  #settleWaiters(): void {
    const applied = this.#pgApplied ?? 0;
    this.#waiters = this.#waiters.filter((waiter) => {
      if (waiter.index > applied) return true;
      clearTimeout(waiter.timer);
      waiter.resolve();
      return false;
    });
  }

  async #report(): Promise<void> {
    const client = this.#statusClient;
    if (client === undefined || this.#state !== "connected" || this.#reportInFlight) return;
    const status = this.#options.status();
    if (status === undefined) return;
    this.#reportInFlight = true;
    try {
      await client.query(STATUS_UPSERT, [
        status.node_id,
        status.name,
        status.cluster_id,
        process.pid,
        this.#options.packageVersion,
        this.#startedAt,
        Math.round(this.#options.heartbeatIntervalMs * 2.5),
        this.#lastApplyFailed ? "ERROR" : status.worker_state,
        status.state,
        status.current_term,
        status.leader_id,
        status.quorum,
        status.num_nodes,
        status.messages_processed,
        status.heartbeats_sent,
        status.elections_triggered,
        status.log_size,
        status.last_index,
        status.commit_index,
        status.last_applied,
        status.replicated,
        status.committed,
        status.applied,
        status.errors + this.counters.applyErrors,
        JSON.stringify(status.nodes),
        JSON.stringify(status.replication),
        this.#options.endpoint.host,
        this.#options.endpoint.port,
        this.#options.endpoint.password,
      ]);
      await this.#fence(client);
    } catch (error) {
      this.#lastError = describe(error);
      this.#broken ??= this.#lastError;
      this.#wake?.();
    } finally {
      this.#reportInFlight = false;
    }
  }

  /** Makes the server refuse writes from new transactions unless this node may write. */
  async #fence(client: pg.Client): Promise<void> {
    if (!this.#options.fenceWrites) return;
    const fenced = !this.#options.writable();
    if (fenced === this.#fenced) return;
    await client.query(fenced ? "ALTER SYSTEM SET default_transaction_read_only = on" : "ALTER SYSTEM RESET default_transaction_read_only");
    await client.query("SELECT pg_reload_conf()");
    const first = this.#fenced === undefined;
    this.#fenced = fenced;
    if (fenced) this.#options.logger.info(`PostgreSQL fenced: new transactions are read-only while this node is not a leader with a quorum${first ? "" : " (it lost leadership or its quorum)"}`);
    else this.#options.logger.info("PostgreSQL accepts writes: this node leads with a quorum");
  }

  async #closeClients(): Promise<void> {
    const clients = [this.#applyClient, this.#statusClient];
    this.#applyClient = undefined;
    this.#statusClient = undefined;
    this.#broken = undefined;
    this.#pgApplied = this.#state === "stopped" ? this.#pgApplied : undefined;
    await Promise.allSettled(clients.map((client) => client?.end()));
  }
}

const STATUS_COLUMNS = [
  "node_id", "name", "cluster_id", "pid", "version", "started_at", "stale_after_ms", "worker_state", "state", "current_term", "leader_id",
  "quorum", "num_nodes", "messages_processed", "heartbeats_sent", "elections_triggered", "log_size", "last_index", "commit_index",
  "last_applied", "replicated", "committed", "applied", "errors", "nodes", "replication", "endpoint_host", "endpoint_port", "endpoint_password",
];
const STATUS_UPSERT =
  `INSERT INTO pgraft.node_status (id, reported_at, ${STATUS_COLUMNS.join(", ")}) ` +
  `VALUES (1, clock_timestamp(), ${STATUS_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")}) ` +
  `ON CONFLICT (id) DO UPDATE SET reported_at = EXCLUDED.reported_at, ${STATUS_COLUMNS.map((column) => `${column} = EXCLUDED.${column}`).join(", ")}`;

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** A byte string (one char per byte) as PostgreSQL text: its UTF-8 text, or undefined when it is not UTF-8 text. */
export function bytesAsText(bytes: Buffer): string | undefined {
  if (bytes.includes(0)) return undefined; // text cannot hold NUL
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A key's text column: the key as text, or \x and its hex when it is not UTF-8 text. */
export function keyAsText(bytes: Buffer): string {
  return bytesAsText(bytes) ?? `\\x${bytes.toString("hex")}`;
}

async function writeRows(client: pg.Client, rows: ReadonlyMap<string, KvRecord | undefined>): Promise<void> {
  const deleted: Buffer[] = [];
  const keys: Buffer[] = [];
  const keyTexts: string[] = [];
  const values: Buffer[] = [];
  const valueTexts: (string | null)[] = [];
  const versions: number[] = [];
  const created: number[] = [];
  const modified: number[] = [];
  for (const [key, record] of rows) {
    const keyBytes = Buffer.from(key, "latin1");
    if (record === undefined) {
      deleted.push(keyBytes);
      continue;
    }
    const valueBytes = Buffer.from(record.value, "latin1");
    keys.push(keyBytes);
    keyTexts.push(keyAsText(keyBytes));
    values.push(valueBytes);
    valueTexts.push(bytesAsText(valueBytes) ?? null);
    versions.push(record.version);
    created.push(record.createIndex);
    modified.push(record.modIndex);
  }
  if (deleted.length > 0) await client.query("DELETE FROM pgraft.kv WHERE key_bytes = ANY($1::bytea[])", [deleted]);
  if (keys.length === 0) return;
  await client.query(
    `INSERT INTO pgraft.kv AS kv (key_bytes, key, value_bytes, value, version, create_revision, mod_revision, created_at, updated_at)
     SELECT k, kt, v, vt, ver, cr, mr, clock_timestamp(), clock_timestamp()
       FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[]) AS t(k, kt, v, vt, ver, cr, mr)
     ON CONFLICT (key_bytes) DO UPDATE SET
       value_bytes = EXCLUDED.value_bytes, value = EXCLUDED.value, version = EXCLUDED.version,
       create_revision = EXCLUDED.create_revision, mod_revision = EXCLUDED.mod_revision,
       created_at = CASE WHEN kv.create_revision = EXCLUDED.create_revision THEN kv.created_at ELSE EXCLUDED.created_at END,
       updated_at = EXCLUDED.updated_at`,
    [keys, keyTexts, values, valueTexts, versions, created, modified],
  );
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

