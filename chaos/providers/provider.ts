/**
 * The contract between the chaos runner and whatever runs the real nodes (local processes, containers).
 *
 * A provider owns processes (or containers), ports, data directories and the shared peer secret. The
 * runner owns everything cluster-shaped: the pgraft settings that make n1..nN one cluster (names,
 * `pgraft.initial_cluster` pointing every peer at the Toxiproxy proxy the node dials through, timings),
 * the proxies and their toxics, the workload and the checks.
 *
 * Life of a node, as the runner drives it:
 *
 *   reserveNode(id)  -> NodeEndpoints (ports fixed, nothing running yet; the runner needs the peer port
 *                       of every node before it can write anyone's pgraft.initial_cluster)
 *   startNode(spec)  -> the node (and, with `postgres`, its PostgreSQL server) runs from fresh data
 *   crashNode(id)    -> kill -9; the data stays
 *   restartNode(id)  -> starts again from the kept data, with the settings of the last startNode
 *   pauseNode(id) / resumeNode(id) -> SIGSTOP / SIGCONT (docker pause / unpause in containers)
 *   destroy()        -> every process, container and directory of this provider is gone
 *
 * Every address is on 127.0.0.1 (containers run in the host's network): tests here may send traffic only
 * to loopback, and the runner's proxies dial the peer ports directly.
 *
 * What a provider cannot do is declared in `capabilities`; the runner refuses a scenario that needs a
 * missing capability before starting anything, naming the step (file:line) and the capability.
 * Methods throw an Error whose message says what failed and what to do ("Cannot restart n2: ...; ...").
 *
 * Providers are registered by name in chaos/providers/registry.ts (`--provider NAME`): a provider module
 * chaos/providers/NAME.ts exports `createProvider: ProviderFactory`, loaded only when chosen.
 */

/** What a provider can really do. The runner checks these before a run. */
export interface ProviderCapabilities {
  /** kill -9 of a node (and, with `postgres`, its PostgreSQL server when asked). */
  readonly crash: boolean;
  /** Start a crashed node again from the data it kept. */
  readonly restart: boolean;
  /** Freeze and thaw a node (SIGSTOP/SIGCONT, docker pause/unpause). */
  readonly pause: boolean;
  /** Run a PostgreSQL server beside each node (`pgraft start --pgdata`), reachable by `sql()`. */
  readonly postgres: boolean;
  /**
   * Damage a stopped node's Raft data so that it refuses to start (scenario verb corrupt_disk).
   * Providers that cannot reach the data directory say false.
   */
  readonly corruptData: boolean;
  /**
   * Send a node's connections to given addresses elsewhere (NodeSpec.dialRedirects), so that the links
   * into a node added at run time, which every member dials at the one address in its configuration
   * entry, can each go through a proxy of their own. Left out: false (such links cannot be faulted).
   */
  readonly redirectDials?: boolean;
  /** A free-form note on what the provider is (shown in reports): "local processes", "containers". */
  readonly description: string;
}

/** Where an operator reaches a node. All hosts are 127.0.0.1. */
export interface NodeEndpoints {
  readonly id: number;
  /** "n3" for id 3. */
  readonly name: string;
  readonly host: string;
  /** The node's own Raft listener (pgraft.listen_address); proxies forward to it. */
  readonly peerPort: number;
  /** The HTTP client API and health endpoints (pgraft.client_address): "http://127.0.0.1:P". */
  readonly clientUrl: string;
  readonly clientPort: number;
  /** Prometheus metrics (pgraft.metrics_port): "http://127.0.0.1:P/metrics". */
  readonly metricsUrl: string;
  readonly metricsPort: number;
  /** PostgreSQL's port (`pgraft start --pg-port`), reserved even when PostgreSQL is off. */
  readonly postgresPort: number;
  /**
   * A libpq connection string for psql or `pg`, "postgresql://postgres@127.0.0.1:P/postgres";
   * undefined unless the node runs PostgreSQL.
   */
  readonly postgresUrl: string | undefined;
}

/** How to start a node. */
export interface NodeSpec {
  readonly id: number;
  /**
   * Cluster settings as `pgraft.NAME=VALUE`, written by the runner: cluster_id, name, initial_cluster,
   * client_urls, initial_cluster_state, timings. The provider appends (and so overrides) the settings it
   * owns: pgraft.listen_address, pgraft.client_address, pgraft.data_dir, pgraft.auth_secret_file,
   * pgraft.metrics_enabled and pgraft.metrics_port, matching the node's NodeEndpoints.
   */
  readonly settings: readonly string[];
  /** Run PostgreSQL beside the node (requires capabilities.postgres). */
  readonly postgres: boolean;
  /**
   * Connections the node opens to a key ("127.0.0.1:5001") go to its value ("127.0.0.1:6001") instead,
   * kept for restarts. Only when capabilities.redirectDials; a provider without it throws when given any.
   */
  readonly dialRedirects?: Readonly<Record<string, string>>;
}

export interface CrashOptions {
  /** Also kill -9 the node's PostgreSQL server (ignored without PostgreSQL). Default: false. */
  readonly postgres?: boolean;
}

/** The state of a node as the provider knows it (not what Raft thinks). */
export type NodeProcessState = "reserved" | "running" | "paused" | "crashed" | "exited";

/** The result of a SQL statement. */
export interface SqlResult {
  readonly rows: readonly Record<string, unknown>[];
}

/** What cleanStale() found and removed from an earlier run that was killed before its teardown. */
export interface StaleCleanup {
  /** Processes killed (pids), containers removed (ids). */
  readonly killed: readonly string[];
  /** Directories and files removed. */
  readonly removed: readonly string[];
}

export interface ClusterProvider {
  /** The registry name: "local", "testcontainers". */
  readonly name: string;
  readonly capabilities: ProviderCapabilities;

  /**
   * Removes what earlier runs of this provider left behind when they were killed (SIGKILL, a crash of
   * the runner): processes, containers, directories. Only leftovers of runs that are no longer alive
   * are touched, so two runs side by side never clean each other. Call once before a run.
   */
  cleanStale(): Promise<StaleCleanup>;

  /**
   * Reserves node `id`'s ports (and its data location) without starting it; free ports are chosen so
   * that two runs side by side never clash. Reserving the same id twice is an error.
   */
  reserveNode(id: number): Promise<NodeEndpoints>;

  /** The endpoints of a reserved node. Throws for an id never reserved. */
  endpoints(id: number): NodeEndpoints;

  /**
   * Starts a reserved node from fresh data (and, with spec.postgres, its PostgreSQL server, initdb'd
   * when its data directory is empty). Resolves once the process runs; the runner waits for /health.
   */
  startNode(spec: NodeSpec): Promise<void>;

  /** kill -9 (of the node, and of its PostgreSQL when asked); resolves once it has exited. */
  crashNode(id: number, options?: CrashOptions): Promise<void>;

  /**
   * Starts a crashed (or exited) node again with the settings of its last startNode, on the same ports,
   * from the data it kept. `extraSettings` (`pgraft.NAME=VALUE`) are appended to the kept settings for
   * this start and later ones. A running or paused node is left as it is.
   */
  restartNode(id: number, extraSettings?: readonly string[]): Promise<void>;

  /** SIGSTOP (docker pause): the node and its PostgreSQL stop taking CPU; sockets stay open. */
  pauseNode(id: number): Promise<void>;

  /** SIGCONT (docker unpause). */
  resumeNode(id: number): Promise<void>;

  /**
   * Damages node `id`'s Raft data (the node must not be running) so that its next start fails with a
   * checksum error. Only when capabilities.corruptData.
   */
  corruptNodeData(id: number): Promise<void>;

  /** The provider's view of a node. */
  nodeState(id: number): NodeProcessState;

  /**
   * Optional: the exit code of a node that exited by itself (state "exited"), undefined otherwise
   * (running, crashed by the runner, killed by a signal, or a provider that cannot tell). The runner
   * uses it to tell a node that left the cluster (pgraft start exits with code 3 once it learns it was
   * removed) from one to restart.
   */
  exitCode?(id: number): number | undefined;

  /**
   * Runs one SQL statement on node `id`'s PostgreSQL (as the postgres superuser), with $1.. params;
   * throws when the node has no PostgreSQL or the statement fails. Each call may use a fresh
   * connection and must give up after `timeoutMs` (default 5000).
   */
  sql(id: number, text: string, params?: readonly unknown[], timeoutMs?: number): Promise<SqlResult>;

  /** The last `chars` characters of the node's log (stderr of pgraft start, and PostgreSQL's). */
  logTail(id: number, chars?: number): string;

  /**
   * Stops everything this provider started (kill -9) and removes its directories and registry entry.
   * Safe to call twice and after a failure at any point; never throws for something already gone.
   */
  destroy(): Promise<void>;

  /**
   * Optional: the same as destroy() but synchronous and best-effort (SIGKILL, remove directories), for
   * process exit handlers where nothing can be awaited. Providers that cannot do it synchronously
   * (containers) leave it out and rely on cleanStale() in the next run.
   */
  destroyNow?(): void;
}

/** What the runner passes to a provider's factory. */
export interface ProviderOptions {
  /** The repository root: `bin/pgraft.js` lives there. */
  readonly projectRoot: string;
  /** Where progress notes go (stderr by default); one line each, no trailing newline. */
  readonly note?: (line: string) => void;
  /** A label for directories and the registry ("lost-quorum"). */
  readonly label?: string;
}

export type ProviderFactory = (options: ProviderOptions) => ClusterProvider;

/** "n3" for id 3 (the scenario files' names). */
export function providerNodeName(id: number): string {
  return `n${id}`;
}
