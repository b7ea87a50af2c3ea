/**
 * Connections to the nodes' PostgreSQL servers, as an operator's tools hold them: one persistent
 * connection per node (a fresh connection per statement would fork a PostgreSQL backend each time,
 * which a loaded 2-core machine feels), made again after any failure. Each statement is bounded by a
 * timeout; a connection whose statement timed out or failed below SQL is dropped, since its state is
 * unknown.
 *
 * `query` resolves with the rows, or rejects with a SqlFailure that says whether the statement
 * certainly did not run (`sent: false`: no connection could be made) and, for server errors, the
 * SQLSTATE (pgraft's own are class PR: PR001 not the leader, PR002 no quorum, PR003 outcome unknown,
 * PR004 the node is not running).
 */
import pg from "pg";

export class SqlFailure extends Error {
  override name = "SqlFailure";
  constructor(
    message: string,
    /** False when the statement never reached the server. */
    readonly sent: boolean,
    /** The server's SQLSTATE, when the server answered with an error. */
    readonly sqlState: string | undefined,
    /** The server's DETAIL line (pgraft's PR001 says leader_id=N there), when it sent one. */
    readonly detail: string | undefined = undefined,
  ) {
    super(message);
  }
}

/** Connections open at once per SqlConnections (one per node; nodes are at most 16). */
const CONNECTIONS_MAX = 32;

export class SqlConnections {
  readonly #clients = new Map<number, { readonly client: pg.Client; readonly ready: Promise<pg.Client> }>();
  #closed = false;

  constructor(
    /** The node's libpq URL, or undefined when it has no PostgreSQL (or no longer exists). */
    readonly urlOf: (id: number) => string | undefined,
    readonly label: string,
  ) {}

  /** Runs one statement on node `id` within `timeoutMs` (connecting first when needed). */
  async query(id: number, text: string, params: readonly unknown[], timeoutMs: number): Promise<Record<string, unknown>[]> {
    if (this.#closed) throw new SqlFailure(`the ${this.label} connections are closed`, false, undefined);
    let client: pg.Client;
    try {
      client = await this.#client(id, timeoutMs);
    } catch (error) {
      throw new SqlFailure(`cannot connect to n${id}'s PostgreSQL: ${(error as Error).message}`, false, undefined);
    }
    try {
      const result = await client.query({ text, values: [...params], query_timeout: timeoutMs } as pg.QueryConfig);
      return result.rows as Record<string, unknown>[];
    } catch (error) {
      const sqlState = (error as { code?: unknown }).code;
      const isServerError = typeof sqlState === "string" && /^[0-9A-Z]{5}$/.test(sqlState);
      if (!isServerError) this.#drop(id, client);
      const detail = (error as { detail?: unknown }).detail;
      throw new SqlFailure(`n${id}: ${(error as Error).message}`, true, isServerError ? sqlState : undefined, typeof detail === "string" ? detail : undefined);
    }
  }

  /** Closes every connection (bounded: a connection that does not close within a second is abandoned). */
  async close(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(entries.map((entry) => Promise.race([entry.client.end().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000))])));
  }

  #client(id: number, timeoutMs: number): Promise<pg.Client> {
    const existing = this.#clients.get(id);
    if (existing !== undefined) return existing.ready;
    const url = this.urlOf(id);
    if (url === undefined) return Promise.reject(new Error(`n${id} has no PostgreSQL`));
    if (this.#clients.size >= CONNECTIONS_MAX) return Promise.reject(new Error(`more than ${CONNECTIONS_MAX} connections`));
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, application_name: `pgraft-chaos-${this.label}` });
    client.on("error", () => this.#drop(id, client));
    client.on("end", () => this.#drop(id, client));
    const ready = client.connect().then(
      () => client,
      (error: unknown) => {
        this.#drop(id, client);
        throw error;
      },
    );
    this.#clients.set(id, { client, ready });
    return ready;
  }

  #drop(id: number, client: pg.Client): void {
    if (this.#clients.get(id)?.client === client) this.#clients.delete(id);
    client.end().catch(() => undefined);
  }
}
