/**
 * pgraft's Prometheus metrics (prom-client), served at /metrics on pgraft.metrics_port when
 * pgraft.metrics_enabled is on.
 *
 * Most series are read from the node at scrape time: one RaftStatus snapshot (and, when given, one
 * transport snapshot) per scrape, shared by every metric's collect callback, so a scrape is one
 * consistent picture. Counters derived from the core's counters only ever grow: each scrape adds the
 * difference since the last one (if the node restarted inside the process, it adds the new count).
 * Latencies and snapshots cannot be read from a status, so the runtime reports them with
 * observeCommitLatency(), observeFsync(), recordSnapshot() and observeRequest().
 *
 * Names follow Prometheus conventions and pass `promtool check metrics`: base units (seconds), `_total`
 * for counters only, and the six names pgraft's documentation promises (pgraft_term, pgraft_leader_id,
 * pgraft_is_leader, pgraft_log_size, pgraft_commit_index, pgraft_applied_index) exactly as written.
 * Of prom-client's process_* and nodejs_* metrics, the three gauges named like counters
 * (nodejs_active_{handles,requests,resources}_total) are left out: sum the per-type nodejs_active_*
 * gauges for the same numbers.
 *
 * Peer series (label `peer`, the node id): on the leader, pgraft_peer_reachable says the peer answered
 * within an election timeout and pgraft_replication_lag_entries is the leader's last index minus the
 * peer's match index. A follower has no such view: with a transport it reports whether its connection
 * to each peer is up, else no peer series. Alert on a cluster-wide max/min, not on one node.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { assert } from "../assert.ts";
import type { RaftStatus } from "../core/raft.ts";
import type { NodeId, Role } from "../core/types.ts";
import type { PeerStatus as TransportPeerStatus, TransportCounters } from "../transport/index.ts";

/** What the transport reports (TcpTransport's counters() and peers()). */
export interface TransportView {
  readonly counters: Readonly<TransportCounters>;
  readonly peers: readonly TransportPeerStatus[];
}

export interface NodeMetricsOptions {
  /** The node's status now, or undefined when it is not running. */
  readonly status: () => RaftStatus | undefined;
  readonly transport?: () => TransportView | undefined;
  /** The election timeout in ticks: a peer that has not answered the leader within it is unreachable. */
  readonly electionTimeoutTicks: number;
  /** Labels of pgraft_node_info. */
  readonly info?: { readonly nodeId?: NodeId; readonly name?: string; readonly clusterId?: string; readonly version?: string };
  /** The node's PostgreSQL side, when it has one (pgraft_postgres_* metrics). */
  readonly postgres?: () => PostgresMetricsView | undefined;
  /** Also export prom-client's process_* and nodejs_* metrics. */
  readonly processMetrics?: boolean;
  readonly registry?: Registry;
}

/** What PostgresBridge reports: connection, how far pgraft.kv has caught up, fencing, totals. */
export interface PostgresMetricsView {
  readonly connected: boolean;
  readonly appliedIndex: number | undefined;
  readonly fenced: boolean | undefined;
  readonly entriesApplied: number;
  readonly fullCopies: number;
  readonly applyErrors: number;
  readonly connectionFailures: number;
}

export type ProposalOutcome = "accepted" | "rejected";
export type RequestOutcome = "ok" | "failed" | "unknown";

/** Commit and request latencies: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** fsync: 1 ms to 8 s, doubling (etcd's wal_fsync_duration_seconds). */
export const FSYNC_BUCKETS_SECONDS: readonly number[] = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

const ROLES: readonly Role[] = ["leader", "follower", "candidate", "pre-candidate"];

interface Scrape {
  readonly status: RaftStatus | undefined;
  readonly transport: TransportView | undefined;
}

type Labels = Record<string, string>;

/**
 * A counter read from a snapshot: each collect adds the growth since the last one. `read` returns the
 * current totals per label set, or undefined when unknown (nothing is added).
 */
function derivedCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  scrape: () => Scrape,
  read: (scrape: Scrape) => ReadonlyArray<readonly [Labels, number]> | undefined,
): Counter<string> {
  const last = new Map<string, number>();
  const counter: Counter<string> = new Counter({
    name,
    help,
    labelNames: [...labelNames],
    registers: [registry],
    collect() {
      const totals = read(scrape());
      if (totals === undefined) return;
      for (const [labels, total] of totals) {
        const key = JSON.stringify(labels);
        const previous = last.get(key) ?? 0;
        const growth = total >= previous ? total - previous : total;
        counter.inc(labels, growth);
        last.set(key, total);
      }
    },
  });
  return counter;
}

function single(value: number | undefined): ReadonlyArray<readonly [Labels, number]> | undefined {
  return value === undefined ? undefined : [[{}, value]];
}

export class NodeMetrics {
  readonly registry: Registry;
  readonly #options: NodeMetricsOptions;
  #scrape: Scrape | undefined;
  readonly #commitLatency: Histogram<string>;
  readonly #fsyncDuration: Histogram<string>;
  readonly #snapshots: Counter<string>;
  readonly #requests: Counter<string>;
  readonly #requestDuration: Histogram<string>;

  constructor(options: NodeMetricsOptions) {
    this.#options = options;
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    const scrape = (): Scrape => this.#scrape ?? this.#takeScrape();
    const gauge = (name: string, help: string, set: (gauge: Gauge<string>, scrape: Scrape) => void, labelNames: string[] = []): void => {
      const metric: Gauge<string> = new Gauge({ name, help, labelNames, registers: [registry], collect: () => set(metric, scrape()) });
    };
    const fromStatus = (name: string, help: string, read: (status: RaftStatus) => number): void =>
      gauge(name, help, (metric, { status }) => {
        if (status !== undefined) metric.set(read(status));
      });

    gauge("pgraft_node_running", "1 while the Raft node runs in this process, 0 when it is stopped or not started", (metric, { status }) =>
      metric.set(status === undefined ? 0 : 1),
    );
    const info = options.info ?? {};
    const infoLabels: Labels = {
      node_id: info.nodeId === undefined ? "" : String(info.nodeId),
      name: info.name ?? "",
      cluster_id: info.clusterId ?? "",
      version: info.version ?? "",
    };
    gauge("pgraft_node_info", "Always 1; the labels identify the node", (metric) => metric.set(infoLabels, 1), Object.keys(infoLabels));
    fromStatus("pgraft_term", "Current Raft term", (status) => status.term);
    fromStatus("pgraft_leader_id", "Node id of the leader this node knows, 0 when it knows none", (status) => status.leaderId);
    gauge("pgraft_is_leader", "1 while this node is the leader and a quorum answered it within an election timeout, else 0", (metric, { status }) =>
      metric.set(status !== undefined && status.role === "leader" && status.quorumActive ? 1 : 0),
    );
    gauge(
      "pgraft_role",
      "1 for this node's current Raft role, 0 for the others",
      (metric, { status }) => {
        for (const role of ROLES) metric.set({ role }, status?.role === role ? 1 : 0);
      },
      ["role"],
    );
    gauge(
      "pgraft_quorum_active",
      "1 on a leader that heard from a quorum within an election timeout, else 0 (followers cannot tell: take the max over the cluster)",
      (metric, { status }) => metric.set(status?.quorumActive === true ? 1 : 0),
    );
    fromStatus("pgraft_log_size", "Entries in the Raft log since the last snapshot", (status) => status.lastIndex - status.firstIndex + 1);
    fromStatus("pgraft_last_index", "Index of the last entry in the Raft log", (status) => status.lastIndex);
    fromStatus("pgraft_commit_index", "Highest log index known committed", (status) => status.commit);
    fromStatus("pgraft_applied_index", "Highest log index applied to the key-value state machine", (status) => status.applied);
    fromStatus("pgraft_snapshot_index", "Index of the latest local snapshot, 0 when none", (status) => status.snapshotIndex);
    fromStatus("pgraft_voters", "Voting members in this node's membership", (status) => status.membership.voters.length);
    gauge(
      "pgraft_peer_reachable",
      "1 when the peer is reachable: on the leader, it answered within an election timeout; elsewhere, the transport's connection is up",
      (metric, scrape) => {
        metric.reset();
        for (const [peer, reachable] of this.#peerReachability(scrape)) metric.set({ peer: String(peer) }, reachable ? 1 : 0);
      },
      ["peer"],
    );
    gauge(
      "pgraft_replication_lag_entries",
      "On the leader: entries the peer lacks (the leader's last index minus the peer's match index)",
      (metric, { status }) => {
        metric.reset();
        if (status?.role !== "leader") return;
        for (const peer of status.peers) metric.set({ peer: String(peer.id) }, Math.max(0, status.lastIndex - peer.match));
      },
      ["peer"],
    );

    const counters = (read: (status: RaftStatus) => number) => (s: Scrape) => single(s.status === undefined ? undefined : read(s.status));
    derivedCounter(registry, "pgraft_elections_total", "Elections this node started (terms it campaigned in)", [], scrape, counters((s) => s.counters.electionsStarted));
    derivedCounter(registry, "pgraft_pre_votes_total", "Pre-vote rounds this node started", [], scrape, counters((s) => s.counters.preVotesStarted));
    derivedCounter(registry, "pgraft_elections_won_total", "Elections this node won", [], scrape, counters((s) => s.counters.electionsWon));
    derivedCounter(registry, "pgraft_leader_changes_total", "Times this node saw a new leader", [], scrape, counters((s) => s.counters.leaderChanges));
    derivedCounter(registry, "pgraft_proposals_total", "Commands proposed on this node, by outcome: accepted into the log, or rejected (not leader, busy)", ["outcome"], scrape, (s) =>
      s.status === undefined
        ? undefined
        : [
            [{ outcome: "accepted" }, s.status.counters.proposalsAccepted],
            [{ outcome: "rejected" }, s.status.counters.proposalsRejected],
          ],
    );
    derivedCounter(registry, "pgraft_messages_sent_total", "Raft messages this node's core sent", [], scrape, counters((s) => s.counters.messagesSent));
    derivedCounter(registry, "pgraft_messages_received_total", "Raft messages this node's core received", [], scrape, counters((s) => s.counters.messagesReceived));
    derivedCounter(registry, "pgraft_heartbeats_sent_total", "Heartbeats this node sent as leader", [], scrape, counters((s) => s.counters.heartbeatsSent));

    if (options.transport !== undefined) this.#transportMetrics(registry, scrape);

    this.#commitLatency = new Histogram({
      name: "pgraft_commit_latency_seconds",
      help: "Time from proposing a write to applying it, on the leader",
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers: [registry],
    });
    this.#fsyncDuration = new Histogram({
      name: "pgraft_fsync_duration_seconds",
      help: "Time to make one batch of Raft log writes durable (write and fsync)",
      buckets: [...FSYNC_BUCKETS_SECONDS],
      registers: [registry],
    });
    this.#snapshots = new Counter({ name: "pgraft_snapshots_total", help: "Snapshots this node took or installed", labelNames: ["kind"], registers: [registry] });
    this.#snapshots.inc({ kind: "taken" }, 0);
    this.#snapshots.inc({ kind: "installed" }, 0);
    this.#requests = new Counter({
      name: "pgraft_client_requests_total",
      help: "Client API requests by operation and outcome (ok; failed: did not take effect; unknown: may still take effect)",
      labelNames: ["operation", "outcome"],
      registers: [registry],
    });
    this.#requestDuration = new Histogram({
      name: "pgraft_client_request_duration_seconds",
      help: "Client API request duration by operation, forwarding included",
      labelNames: ["operation"],
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers: [registry],
    });
    if (options.postgres !== undefined) this.#postgresMetrics(registry, options.postgres);
    if (options.processMetrics === true) collectProcessMetrics(registry);
    for (const metric of registry.getMetricsAsArray()) {
      assert(
        !metric.name.endsWith("_total") || String(metric.type) === "counter",
        `NodeMetrics: ${metric.name} ends in _total but is a ${String(metric.type)}; Prometheus reserves _total for counters`,
      );
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  observeCommitLatency(seconds: number): void {
    this.#commitLatency.observe(seconds);
  }

  observeFsync(seconds: number): void {
    this.#fsyncDuration.observe(seconds);
  }

  recordSnapshot(kind: "taken" | "installed"): void {
    this.#snapshots.inc({ kind });
  }

  /** Fits ClientApiOptions.observeRequest. */
  readonly observeRequest = (operation: string, outcome: RequestOutcome, seconds: number): void => {
    this.#requests.inc({ operation, outcome });
    this.#requestDuration.observe({ operation }, seconds);
  };

  /** The exposition text, from one snapshot of the node. */
  async metrics(): Promise<string> {
    this.#scrape = this.#takeScrape();
    try {
      return await this.registry.metrics();
    } finally {
      this.#scrape = undefined;
    }
  }

  #postgresMetrics(registry: Registry, view: () => PostgresMetricsView | undefined): void {
    const gauge = (name: string, help: string, read: (postgres: PostgresMetricsView) => number | undefined): void => {
      const metric: Gauge<string> = new Gauge({
        name,
        help,
        registers: [registry],
        collect: () => {
          const postgres = view();
          const value = postgres === undefined ? undefined : read(postgres);
          if (value === undefined) metric.reset();
          else metric.set(value);
        },
      });
    };
    gauge("pgraft_postgres_up", "1 while the node is connected to its PostgreSQL server, else 0", (postgres) => (postgres.connected ? 1 : 0));
    gauge("pgraft_postgres_applied_index", "The Raft index pgraft.kv holds in this node's PostgreSQL (pgraft.applied)", (postgres) => postgres.appliedIndex);
    gauge("pgraft_postgres_fenced", "1 while this node makes its PostgreSQL refuse writes (pgraft.fence_writes), 0 while it allows them", (postgres) =>
      postgres.fenced === undefined ? undefined : postgres.fenced ? 1 : 0,
    );
    const total = (name: string, help: string, read: (postgres: PostgresMetricsView) => number): void => {
      derivedCounter(registry, name, help, [], () => ({ status: undefined, transport: undefined }), () => {
        const postgres = view();
        return postgres === undefined ? undefined : [[{}, read(postgres)]];
      });
    };
    total("pgraft_postgres_entries_applied_total", "Raft entries written into pgraft.kv", (postgres) => postgres.entriesApplied);
    total("pgraft_postgres_full_copies_total", "Times the whole store was copied into pgraft.kv (after a snapshot, or a gap too long to replay)", (postgres) => postgres.fullCopies);
    total("pgraft_postgres_apply_errors_total", "Apply transactions into pgraft.kv that failed (and were retried)", (postgres) => postgres.applyErrors);
    total("pgraft_postgres_connection_failures_total", "Failed or lost connections to PostgreSQL", (postgres) => postgres.connectionFailures);
  }

  #takeScrape(): Scrape {
    return { status: this.#options.status(), transport: this.#options.transport?.() };
  }

  #peerReachability(scrape: Scrape): Map<NodeId, boolean> {
    const reachability = new Map<NodeId, boolean>();
    const { status, transport } = scrape;
    if (status?.role === "leader") {
      for (const peer of status.peers) reachability.set(peer.id, peer.ticksSinceResponse < this.#options.electionTimeoutTicks);
    } else if (transport !== undefined) {
      for (const peer of transport.peers) reachability.set(peer.nodeId, peer.up);
    }
    return reachability;
  }

  #transportMetrics(registry: Registry, scrape: () => Scrape): void {
    const totals = (read: (counters: Readonly<TransportCounters>) => number) => (s: Scrape) =>
      single(s.transport === undefined ? undefined : read(s.transport.counters));
    derivedCounter(registry, "pgraft_transport_bytes_sent_total", "Bytes written to peer sockets", [], scrape, totals((c) => c.bytesSent));
    derivedCounter(registry, "pgraft_transport_bytes_received_total", "Bytes read from peer sockets", [], scrape, totals((c) => c.bytesReceived));
    derivedCounter(registry, "pgraft_transport_messages_dropped_total", "Raft messages dropped before reaching a socket (queue overflow, too large, unknown peer)", [], scrape, totals((c) => c.messagesDropped));
    derivedCounter(registry, "pgraft_transport_connection_attempts_total", "Outbound peer connections dialed", [], scrape, totals((c) => c.connectionAttempts));
    derivedCounter(registry, "pgraft_transport_refusals_total", "Handshakes refused, by who refused (local: this node, remote: the peer)", ["by"], scrape, (s) =>
      s.transport === undefined
        ? undefined
        : [
            [{ by: "local" }, s.transport.counters.refusalsSent],
            [{ by: "remote" }, s.transport.counters.refusalsReceived],
          ],
    );
    derivedCounter(registry, "pgraft_transport_decode_errors_total", "Malformed or unexpected frames from peers (each closed its connection)", [], scrape, totals((c) => c.decodeErrors));
    derivedCounter(registry, "pgraft_transport_tls_errors_total", "Failed TLS handshakes with peers", [], scrape, totals((c) => c.tlsErrors));
    const connected: Gauge<string> = new Gauge({
      name: "pgraft_peer_connected",
      help: "1 while the transport's connection to the peer is up",
      labelNames: ["peer"],
      registers: [registry],
      collect: () => {
        connected.reset();
        for (const peer of scrape().transport?.peers ?? []) connected.set({ peer: String(peer.nodeId) }, peer.up ? 1 : 0);
      },
    });
    const queued: Gauge<string> = new Gauge({
      name: "pgraft_transport_queued_messages",
      help: "Raft messages waiting for the connection to the peer",
      labelNames: ["peer"],
      registers: [registry],
      collect: () => {
        queued.reset();
        for (const peer of scrape().transport?.peers ?? []) queued.set({ peer: String(peer.nodeId) }, peer.queuedMessages);
      },
    });
  }
}

/**
 * prom-client's default gauges whose names end in `_total` although they are not counters, which
 * `promtool check metrics` refuses. Each repeats a gauge that stays, without the suffix and split by
 * type: `sum(nodejs_active_handles)` is the number the dropped `nodejs_active_handles_total` gave.
 */
export const DROPPED_DEFAULT_METRICS: readonly string[] = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

/** prom-client's process_* and nodejs_* metrics, less the misnamed gauges above. */
function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
}

/** The route for src/api's startHttpServer(): GET or HEAD /metrics. */
export function createMetricsRoute(metrics: NodeMetrics): (request: IncomingMessage, response: ServerResponse, url: URL) => boolean {
  return (request, response, url) => {
    if (url.pathname !== "/metrics") return false;
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
      response.end(`Cannot serve ${request.method} /metrics: use GET\n`);
      return true;
    }
    metrics.metrics().then(
      (text) => {
        response.writeHead(200, { "content-type": metrics.contentType, "content-length": Buffer.byteLength(text) });
        response.end(request.method === "HEAD" ? undefined : text);
      },
      (error: unknown) => {
        const message = `Cannot collect the metrics: ${error instanceof Error ? error.message : String(error)}\n`;
        response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        response.end(message);
      },
    );
    return true;
  };
}
