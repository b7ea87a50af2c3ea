/**
 * `pgraft start`: one production node. It wires the same RaftNode the simulator runs to the real world:
 * the data directory through FileDisk and RaftStorage, peers through the authenticated TCP transport,
 * clients through the etcd-compatible HTTP API with the health endpoints beside it, and Prometheus
 * metrics on their own port when pgraft.metrics_enabled is on.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { ClientApi, ClusterApi, createHealthRoute, RaftNodeBackend, startHttpServer, type RunningHttpServer } from "../api/index.ts";
import { createEtcdEndpoints, type EtcdEndpoints } from "../api/etcd-endpoints.ts";
import { createGatewayCaller } from "../api/grpc-forward.ts";
import { EtcdGrpcServer } from "../api/grpc-server.ts";
import { formatHostAndPort, parseHostAndPort, type HostAndPort, type PgraftConfig } from "../config/index.ts";
import { memberAddress } from "../core/membership.ts";
import type { NodeId } from "../core/types.ts";
import { createMetricsRoute, NodeMetrics } from "../metrics/index.ts";
import { RaftNode } from "../node/raft-node.ts";
import { RealTimers } from "../node/real-timers.ts";
import { FileDisk } from "../storage/file-disk.ts";
import { RaftStorage } from "../storage/raft-storage.ts";
import { TcpTransport } from "../transport/index.ts";
import { PostgresBridge } from "../postgres/postgres-bridge.ts";
import { createSqlCommandHandler } from "../postgres/sql-commands.ts";
import { buildStatusRow } from "../postgres/status-row.ts";
import { startWireServer, type RunningWireServer } from "../postgres/wire-server.ts";
import type { PgraftLogger } from "./logger.ts";
import { PACKAGE_VERSION } from "./version.ts";

/** The client API waits this long for the node's own answer before giving up on a request. */
const REQUEST_TIMEOUT_MS = 5_000;

export interface NodeServerOptions {
  readonly config: PgraftConfig;
  readonly logger: PgraftLogger;
  /** The node's PostgreSQL server; without it the node runs standalone (the etcd API only). */
  readonly postgres?: NodePostgresOptions;
}

export interface NodePostgresOptions {
  /** How to connect (as a superuser), for node-postgres; PG* environment variables fill the rest. */
  readonly connection: pg.ClientConfig;
  /** Fault injection for tests (PGRAFT_FAULT): see PostgresBridgeOptions.fault. */
  readonly fault?: string;
}

/** The SQL functions' dblink connections may carry a 1 MiB value, base64 encoded in JSON. */
const COMMAND_MESSAGE_BYTES_MAX = 2 * 1024 * 1024;

/** The largest tick, at most 10 ms, that divides both timeouts (the core counts time in ticks). */
export function tickMsFor(electionTimeoutMs: number, heartbeatIntervalMs: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const common = gcd(electionTimeoutMs, heartbeatIntervalMs);
  for (let tickMs = Math.min(10, common); tickMs > 1; tickMs--) if (common % tickMs === 0) return tickMs;
  return 1;
}

/** The transport writes "pgraft: ..." itself; the logger adds the prefix once. */
function withoutPrefix(line: string): string {
  return line.startsWith("pgraft: ") ? line.slice("pgraft: ".length) : line;
}

export class NodeServer {
  readonly config: PgraftConfig;
  readonly node: RaftNode;
  readonly transport: TcpTransport;
  readonly metrics: NodeMetrics;
  readonly #disk: FileDisk;
  readonly #logger: PgraftLogger;
  #client: RunningHttpServer | undefined;
  #metricsServer: RunningHttpServer | undefined;
  #commandEndpoint: RunningWireServer | undefined;
  #bridge: PostgresBridge | undefined;
  readonly #postgres: NodePostgresOptions | undefined;
  #stopped = false;

  private constructor(options: NodeServerOptions, disk: FileDisk, storage: RaftStorage) {
    const { config, logger } = options;
    this.config = config;
    this.#postgres = options.postgres;
    this.#disk = disk;
    this.#logger = logger;
    const members = config.initialCluster;
    const state = storage.state();
    const tickMs = tickMsFor(config.electionTimeoutMs, config.heartbeatIntervalMs);
    const electionTimeoutTicks = config.electionTimeoutMs / tickMs;
    const nameOf = (id: NodeId): string => members.find((member) => member.nodeId === id)?.name ?? `node ${id}`;
    let node: RaftNode | undefined;
    this.transport = TcpTransport.fromConfig(config, {
      onMessage: (message) => node?.receive(message),
      // The transport logs peers going up and down itself; the node only needs to know.
      onPeerDown: (event) => node?.peerDown(event.nodeId),
      logger: { info: (line) => logger.info(withoutPrefix(line)), warn: (line) => logger.warn(withoutPrefix(line)) },
    });
    this.metrics = new NodeMetrics({
      status: () => (this.#stopped ? undefined : node?.status()),
      transport: () => ({ counters: this.transport.counters(), peers: this.transport.peers() }),
      electionTimeoutTicks,
      info: { nodeId: config.nodeId, name: config.name, clusterId: config.clusterId, version: PACKAGE_VERSION },
      processMetrics: true,
      postgres:
        options.postgres === undefined
          ? undefined
          : () => {
              const bridge = this.#bridge;
              if (bridge === undefined) return undefined;
              return { connected: bridge.state === "connected", appliedIndex: bridge.appliedIndex, fenced: bridge.fenced, ...bridge.counters };
            },
    });
    let role: string | undefined;
    let leaderId: NodeId | undefined;
    node = new RaftNode({
      id: config.nodeId,
      // A node joining a running cluster starts with no configuration: it neither campaigns nor votes
      // until the leader's log or snapshot gives it the one that added it.
      membership: config.initialClusterState === "existing" ? { voters: [], learners: [] } : { voters: members.map((member) => member.nodeId), learners: [] },
      tickMs,
      electionTimeoutMs: config.electionTimeoutMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      preVote: config.preVote,
      checkQuorum: config.checkQuorum,
      entriesPerAppendMax: config.entriesPerAppendMax,
      maxBatchDelayMs: config.maxBatchDelayMs,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      snapshotIntervalEntries: config.snapshotIntervalEntries,
      logEntriesMax: config.logEntriesMax,
      restored: state,
      persistence: {
        save: (batch) => {
          const startMs = performance.now();
          storage.save(batch);
          this.metrics.observeFsync((performance.now() - startMs) / 1000);
        },
        compact: (throughIndex) => storage.compact(throughIndex),
      },
      // A leader sends its first append to a member it has just added before the Ready that added it
      // is persisted (early send): make the transport know the member first.
      transport: {
        send: (message) => {
          if (!this.transport.hasPeer(message.to)) this.#syncPeers();
          this.transport.send(message);
        },
      },
      timers: new RealTimers(),
      random: Math.random,
      logger: (line) => logger.info(`node ${line}`),
      observer: {
        persisted: (_, ready) => {
          this.#syncPeers();
          const soft = ready.softState;
          if (!soft) return;
          if (soft.role !== role) {
            role = soft.role;
            logger.info({ role, term: node?.raft.term }, `${config.name} is now ${role} at term ${node?.raft.term}`);
          }
          if (soft.leaderId !== leaderId) {
            leaderId = soft.leaderId;
            if (leaderId !== 0) logger.info({ leader: leaderId }, `leader changed to ${nameOf(leaderId)} (node ${leaderId}) at term ${node?.raft.term}`);
            else logger.warn(`no leader known at term ${node?.raft.term}`);
          }
        },
        snapshotTaken: (_, snapshot, compactThrough) => {
          this.metrics.recordSnapshot("taken");
          logger.info(`snapshot taken at index ${snapshot.metadata.index}, log compacted through ${compactThrough}`);
        },
        applied: (_, entry) => this.#bridge?.applied(entry.index, this.node.store.lastChanges),
        snapshotInstalled: (_, snapshot) => {
          this.#bridge?.storeReplaced();
          this.metrics.recordSnapshot("installed");
          logger.info(`snapshot installed from the leader at index ${snapshot.metadata.index}`);
        },
      },
    });
    this.node = node;
    this.#syncPeers();
  }

  #peersMembership: unknown;
  #peersCommitted = false;

  /**
   * Keeps the transport's peers in step with the configuration: members added at run time carry their
   * address in the configuration entry and are dialed; when they leave (or the entry that added them is
   * replaced) they are dropped, but only once the change is committed: until then the configuration
   * before it may be the one that counts, and a leader that is removing itself must still hear the
   * answers that commit its removal. Founding members (pgraft.initial_cluster) stay peers throughout.
   * Cheap when nothing changed: it runs after every persisted Ready.
   */
  #syncPeers(): void {
    const raft = this.node.raft;
    const committed = raft.configIndex <= raft.log.committed;
    if (raft.membership === this.#peersMembership && committed === this.#peersCommitted) return;
    this.#peersMembership = raft.membership;
    this.#peersCommitted = committed;
    const membership = raft.membership;
    const previous = raft.committedMembership;
    const founding = new Set(this.config.initialCluster.map((member) => member.nodeId));
    const wanted = new Set([...membership.voters, ...membership.learners, ...previous.voters, ...previous.learners]);
    for (const nodeId of wanted) {
      if (nodeId === this.config.nodeId) continue;
      // A founding member removed and added again at a new address is dialed there.
      const initial = this.config.initialCluster.find((member) => member.nodeId === nodeId);
      const configured = memberAddress(membership, nodeId) ?? memberAddress(previous, nodeId);
      let target: HostAndPort | undefined = initial;
      if (configured !== undefined) {
        const parsed = parseHostAndPort(configured);
        if (!parsed.ok) {
          // A configuration written by an older version may hold an address the settings' rules refuse.
          this.#logger.warn(`Cannot reach node ${nodeId}: its address in the configuration is unusable (${parsed.problem}); remove it and add it again with a valid address`);
          continue;
        }
        target = parsed.value;
      }
      if (target === undefined) {
        this.#logger.warn(`node ${nodeId} is a member but its configuration entry gives no address: it cannot be reached until it is added again with one`);
        continue;
      }
      try {
        this.transport.addPeer({ nodeId, name: initial?.name, host: target.host, port: target.port });
      } catch (error) {
        this.#logger.warn(`Cannot reach node ${nodeId} at ${formatHostAndPort(target)}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    for (const peer of this.transport.peers()) {
      if (!founding.has(peer.nodeId) && !wanted.has(peer.nodeId)) this.transport.removePeer(peer.nodeId);
    }
  }

  /** Opens the data directory, starts the transport, the node and the HTTP endpoints. */
  static async start(options: NodeServerOptions): Promise<NodeServer> {
    const { config, logger } = options;
    const disk = new FileDisk(config.dataDir);
    let storage: RaftStorage;
    try {
      storage = RaftStorage.open(disk, { segmentEntriesMax: Math.max(64, config.logEntriesMax) });
    } catch (error) {
      disk.close();
      throw error;
    }
    const state = storage.state();
    logger.info(
      { dataDir: config.dataDir, term: state.hardState.term, entries: state.entries.length, snapshot: state.snapshot?.metadata.index ?? 0 },
      `starting ${config.name} (node ${config.nodeId}) of cluster ${config.clusterId}: term ${state.hardState.term}, ${state.entries.length} log entries`,
    );
    const server = new NodeServer(options, disk, storage);
    try {
      await server.#startEndpoints();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  get clientUrl(): string {
    return this.#client?.url ?? `http://${this.config.clientHost}:${this.config.clientPort}`;
  }

  get metricsUrl(): string | undefined {
    return this.#metricsServer?.url;
  }

  /** The PostgreSQL side, when the node has one. */
  get postgres(): PostgresBridge | undefined {
    return this.#bridge;
  }

  /** A member as the SQL errors name it: "n1 (node 1, peer 127.0.0.1:7001, client http://...)". */
  describeMember(id: NodeId): string {
    if (id === 0) return "unknown (no leader is known)";
    const initial = this.config.initialCluster.find((member) => member.nodeId === id);
    const configured = memberAddress(this.node.raft.membership, id);
    const peer = configured ?? (initial ? formatHostAndPort(initial) : undefined);
    const client = this.#clientUrlOf(id);
    const where = [peer ? `peer ${peer}` : undefined, client ? `client ${client}` : undefined].filter((part) => part !== undefined).join(", ");
    return `${initial?.name ?? `node${id}`} (node ${id}${where ? `, ${where}` : ""})`;
  }

  #clientUrlOf(id: NodeId): string | undefined {
    const member = this.config.initialCluster.find((candidate) => candidate.nodeId === id);
    const address = member ? this.config.clientUrls[member.name] : undefined;
    return address ? `http://${address}` : undefined;
  }

  /** Starts the command endpoint for the SQL functions and the bridge to PostgreSQL. */
  async #startPostgres(postgres: NodePostgresOptions): Promise<void> {
    const config = this.config;
    const logger = this.#logger;
    const tickMs = tickMsFor(config.electionTimeoutMs, config.heartbeatIntervalMs);
    const password = randomBytes(24).toString("hex");
    let bridge: PostgresBridge | undefined;
    this.#commandEndpoint = await startWireServer({
      host: "127.0.0.1",
      port: 0,
      password,
      messageBytesMax: COMMAND_MESSAGE_BYTES_MAX,
      logger: { warn: (line) => logger.warn(`command endpoint: ${line}`) },
      onQuery: createSqlCommandHandler({
        node: {
          id: config.nodeId,
          write: (write, callback) => this.node.write(write, callback),
          changeMembership: (change, callback) => this.node.changeMembership(change, callback),
          leaderId: () => this.node.raft.leaderId,
        },
        waitApplied: (index, timeoutMs) => bridge!.waitApplied(index, timeoutMs),
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        describeMember: (id) => this.describeMember(id),
      }),
    });
    const members = config.initialCluster;
    bridge = new PostgresBridge({
      connection: { database: config.database, ...postgres.connection },
      store: () => this.node.store,
      status: () => {
        if (this.#stopped) return undefined;
        const status = this.node.status();
        const transportPeers = new Map(this.transport.peers().map((peer) => [peer.nodeId, peer]));
        return buildStatusRow({
          status,
          clusterId: config.clusterId,
          name: config.name,
          electionTimeoutTicks: config.electionTimeoutMs / tickMs,
          tickMs,
          memberName: (id) => members.find((member) => member.nodeId === id)?.name,
          peerAddress: (id) => {
            if (id === config.nodeId) return { host: config.listenHost, port: config.listenPort };
            const configured = memberAddress(status.membership, id);
            if (configured !== undefined) {
              const parsed = parseHostAndPort(configured);
              if (parsed.ok) return parsed.value;
            }
            return members.find((member) => member.nodeId === id);
          },
          clientUrl: (id) => (id === config.nodeId ? this.clientUrl : this.#clientUrlOf(id)),
          connected: (id) => transportPeers.get(id)?.up ?? false,
          tableApplied: bridge?.appliedIndex ?? 0,
        });
      },
      writable: () => {
        const status = this.node.status();
        return status.role === "leader" && status.quorumActive;
      },
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      fenceWrites: config.fenceWrites,
      packageVersion: PACKAGE_VERSION,
      endpoint: { host: this.#commandEndpoint.host, port: this.#commandEndpoint.port, password },
      logger: {
        info: (line) => logger.info(`postgres: ${line}`),
        warn: (line) => logger.warn(`postgres: ${line}`),
        error: (line) => logger.error(`postgres: ${line}`),
      },
      fault: postgres.fault,
    });
    this.#bridge = bridge;
    bridge.start();
  }

  #etcd: EtcdEndpoints | undefined;
  #grpc: EtcdGrpcServer | undefined;

  async #startEndpoints(): Promise<void> {
    const config = this.config;
    const logger = this.#logger;
    const listen = await this.transport.start();
    logger.info(`listening for peers on ${listen.host}:${listen.port}`);
    // The bridge must see every entry the node applies, from the first.
    if (this.#postgres !== undefined) await this.#startPostgres(this.#postgres);
    this.node.start();
    const urlOf = (id: NodeId): string | undefined => this.#clientUrlOf(id);
    const apiLogger = { warn: (line: string) => logger.warn(line), error: (line: string) => logger.error(line) };
    const backend = new RaftNodeBackend({
      node: this.node,
      clusterId: config.clusterId,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      observeWriteLatency: (seconds) => this.metrics.observeCommitLatency(seconds),
    });
    const etcd = createEtcdEndpoints({ node: this.node, backend, peerClientUrls: urlOf, logger: apiLogger, timers: new RealTimers() });
    this.#etcd = etcd;
    const api = new ClientApi({ backend, leases: backend, maintenance: backend, unimplementedLog: etcd.unimplementedLog, peerClientUrls: urlOf, logger: apiLogger });
    const clusterApi = new ClusterApi({
      backend: {
        membership: () => this.node.raft.membership,
        changeMembership: (change, callback) => this.node.changeMembership(change, callback),
        transferLeadership: (target, callback) => this.node.transferLeadership(target, callback),
        header: () => backend.header(),
      },
      initialMember: (id) => {
        const member = config.initialCluster.find((candidate) => candidate.nodeId === id);
        return member === undefined ? undefined : { name: member.name, address: formatHostAndPort(member) };
      },
      clientUrl: urlOf,
    });
    const health = createHealthRoute({
      status: () => (this.#stopped ? undefined : this.node.status()),
      clusterId: config.clusterId,
      memberName: (id) => config.initialCluster.find((member) => member.nodeId === id)?.name,
      electionTimeoutTicks: config.electionTimeoutMs / tickMsFor(config.electionTimeoutMs, config.heartbeatIntervalMs),
      peerHealthUrls: urlOf,
      postgres:
        this.#postgres === undefined
          ? undefined
          : () => {
              const bridge = this.#bridge;
              return { state: bridge?.state ?? "connecting", applied_index: bridge?.appliedIndex ?? null, fenced: bridge?.fenced ?? null, last_error: bridge?.lastError ?? null };
            },
    });
    // etcd's gRPC API shares the client port: connections opening with HTTP/2's preface go to it.
    const grpc = new EtcdGrpcServer({
      backends: { kv: backend, leases: backend, maintenance: backend },
      watches: etcd.watches,
      cluster: createGatewayCaller({ ownUrl: () => this.clientUrl, peerClientUrls: urlOf, fromMemberId: String(config.nodeId) }),
      peerClientUrls: urlOf,
      memberId: String(config.nodeId),
      unimplementedLog: etcd.unimplementedLog,
      logger: apiLogger,
    });
    this.#grpc = grpc;
    this.#client = await startHttpServer({
      host: config.clientHost,
      port: config.clientPort,
      routes: [etcd.streamRoute, clusterApi.route, api.route, health, etcd.versionRoute, etcd.unimplementedRoute],
      logger: apiLogger,
      http2Connections: (connection) => grpc.injectConnection(connection),
    });
    logger.info(`client API (etcd's JSON gateway and gRPC) and health endpoints on ${this.#client.url}`);
    if (config.metricsEnabled) {
      this.#metricsServer = await startHttpServer({ host: config.clientHost, port: config.metricsPort, routes: [createMetricsRoute(this.metrics)], logger: apiLogger });
      logger.info(`Prometheus metrics on ${this.#metricsServer.url}/metrics`);
    }
  }

  /** Stops serving; the data directory stays as it is (a restart recovers from it). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.node.stop();
    this.#etcd?.close();
    this.#grpc?.close();
    await Promise.allSettled([this.transport.close(), this.#client?.close(), this.#metricsServer?.close(), this.#commandEndpoint?.close(), this.#bridge?.stop()]);
    this.#disk.close();
    this.#logger.info(`${this.config.name} stopped`);
  }
}
