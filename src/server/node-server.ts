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
import { isMemberClientUrl, memberAddress, memberClientUrl, memberName } from "../core/membership.ts";
import type { Membership, NodeId } from "../core/types.ts";
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
import { MembershipChangeInProgressError } from "../errors.ts";
import type { DirectoryLock } from "../storage/directory-lock.ts";
import { REMOVED_MARKER_FILE, rejoinAdvice, writeRemovedMark } from "./removed-marker.ts";
import { preflight } from "./preflight.ts";
import { createMemberAttributesRoute, MEMBER_ATTRIBUTES_PATH } from "./member-attributes.ts";

/** The client API waits this long for the node's own answer before giving up on a request. */
const REQUEST_TIMEOUT_MS = 5_000;
/** What `pgraft start` exits with once the node learns it was removed (pgraft.on_removed = exit). */
export const REMOVED_EXIT_CODE = 3;
/** How often a node checks that the configuration carries its name and client URL. */
const PUBLISH_INTERVAL_MS = 1_000;

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
  #lock: DirectoryLock | undefined;

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
    const nameOf = (id: NodeId): string => (node === undefined ? undefined : this.memberName(id)) ?? `node ${id}`;
    let node: RaftNode | undefined;
    this.transport = TcpTransport.fromConfig(config, {
      onMessage: (message) => node?.receive(message),
      // The transport logs peers going up and down itself; the node only needs to know.
      onPeerDown: (event) => node?.peerDown(event.nodeId),
      // Deferred: the callback runs inside the transport, which #learnedRemoved() closes.
      onRemoved: (event) => setImmediate(() => this.#peerSaysRemoved(event)),
      logger: { info: (line) => logger.info(withoutPrefix(line)), warn: (line) => logger.warn(withoutPrefix(line)) },
    }, { queuedFrameAgeMsMax: config.electionTimeoutMs });
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
        // The node's own snapshots are written off the event loop (FileDisk writes in the background).
        beginSnapshot: (metadata) => storage.beginSnapshot(metadata),
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
      // The core's lines are informational; the runtime's failures start with "Cannot" and are warnings.
      logger: (line) => (line.includes(": Cannot ") ? logger.warn(`node ${line}`) : logger.info(`node ${line}`)),
      observer: {
        persisted: (_, ready) => {
          this.#syncPeers();
          this.#checkRemoved();
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
      // A peer the transport learned from its hello (a member added while this node lagged) is no
      // configuration's to drop: the transport forgets it when it stops dialing, markRemoved() refuses it.
      if (!founding.has(peer.nodeId) && !wanted.has(peer.nodeId) && peer.learned !== true) this.transport.removePeer(peer.nodeId);
    }
    // Members a committed configuration removed are refused from now on, so that they learn it and stop
    // (etcd's "member removed"). Not while this node has no configuration yet (it is joining).
    for (const nodeId of wanted) this.#knownMembers.add(nodeId);
    if (committed && membership.voters.length > 0) {
      for (const nodeId of [...founding, ...this.#knownMembers]) {
        if (nodeId !== this.config.nodeId && !wanted.has(nodeId)) this.transport.markRemoved(nodeId, raft.log.committed);
      }
    }
  }

  /** Every node id this node has seen in a configuration since it started. */
  readonly #knownMembers = new Set<NodeId>();
  /** Whether a configuration this node had listed it: only a node that was a member can be removed. */
  #wasMember = false;
  #removal: string | undefined;
  #removedListeners: ((notice: string) => void)[] = [];

  /** Resolves once the node has learned that it was removed from the cluster (with the log line). */
  readonly removed: Promise<string> = new Promise((resolve) => this.#removedListeners.push(resolve));

  #isSelfMember(membership: Membership): boolean {
    return membership.voters.includes(this.config.nodeId) || membership.learners.includes(this.config.nodeId);
  }

  /** After each persisted Ready: a committed configuration without this node, once it was in one. */
  #checkRemoved(): void {
    if (this.#removal !== undefined) return;
    const raft = this.node.raft;
    if (this.#isSelfMember(raft.membership)) {
      this.#wasMember = true;
      return;
    }
    if (this.#wasMember && raft.configIndex <= raft.log.committed) {
      // Deferred: this runs inside the node's Ready handling, which must finish before the node stops.
      const how = `the configuration committed at log index ${raft.configIndex} no longer lists it`;
      setImmediate(() => this.#learnedRemoved(how));
    }
  }

  /**
   * A peer refused this node as removed. Trusted when this node's own configuration listing itself is
   * no newer than what the peer has committed (a peer that lags behind a later re-add is not believed),
   * or when its own log already holds its removal.
   */
  #peerSaysRemoved(event: { readonly by: NodeId; readonly commitIndex: number }): void {
    if (this.#removal !== undefined || this.#stopped) return;
    const raft = this.node.raft;
    const selfListed = this.#isSelfMember(raft.membership);
    const listedSince = Math.max(raft.configIndex, raft.log.snapshotIndex);
    if ((selfListed && listedSince <= event.commitIndex) || (!selfListed && this.#wasMember)) {
      this.#learnedRemoved(`${this.memberName(event.by) ?? `node ${event.by}`} (node ${event.by}) refused it as a removed member (its commit index is ${event.commitIndex})`);
    }
  }

  /** Stops taking part in the cluster for good, says so, and tells `removed`'s listeners. */
  #learnedRemoved(how: string): void {
    if (this.#removal !== undefined || this.#stopped) return;
    const config = this.config;
    const idle = config.onRemoved === "idle";
    const own = this.advertisedClientUrl;
    const notice =
      `This node (${config.name}, node ${config.nodeId}) was removed from the cluster: ${how}. It no longer votes, campaigns or serves requests` +
      (idle ? "; it idles (pgraft.on_removed = idle) with /health answering 503 until it is stopped. " : ` and exits with code ${REMOVED_EXIT_CODE} (pgraft.on_removed = exit). `) +
      rejoinAdvice(config, own);
    this.#removal = notice;
    this.#logger.error({ removed: true }, notice);
    try {
      writeRemovedMark(config.dataDir, { clusterId: config.clusterId, nodeId: config.nodeId, name: config.name, removedAt: new Date().toISOString(), how });
    } catch (error) {
      this.#logger.error(`Cannot write ${REMOVED_MARKER_FILE} in ${config.dataDir} (${error instanceof Error ? error.message : String(error)}): a restart of this node will not know it was removed; do not restart it`);
    }
    clearInterval(this.#publishTimer);
    this.node.stop();
    void this.transport.close();
    for (const listener of this.#removedListeners.splice(0)) listener(notice);
  }

  /** Opens the data directory, starts the transport, the node and the HTTP endpoints. */
  static async start(options: NodeServerOptions): Promise<NodeServer> {
    const { config, logger } = options;
    // Throws StartupError (data directory, ports, secret) before anything touches the log or a peer.
    const lock = await preflight(config);
    if (lock.takenOverFromPid !== undefined) logger.info(`took over the lock of ${config.dataDir} from process ${lock.takenOverFromPid}, which no longer runs`);
    let disk: FileDisk | undefined;
    let storage: RaftStorage;
    try {
      disk = new FileDisk(config.dataDir);
      storage = RaftStorage.open(disk, { segmentEntriesMax: Math.max(64, config.logEntriesMax) });
    } catch (error) {
      disk?.close();
      lock.release();
      throw error;
    }
    const state = storage.state();
    logger.info(
      { dataDir: config.dataDir, term: state.hardState.term, entries: state.entries.length, snapshot: state.snapshot?.metadata.index ?? 0 },
      `starting ${config.name} (node ${config.nodeId}) of cluster ${config.clusterId}: term ${state.hardState.term}, ${state.entries.length} log entries`,
    );
    let server: NodeServer;
    try {
      server = new NodeServer(options, disk, storage);
    } catch (error) {
      disk.close();
      lock.release();
      throw error;
    }
    server.#lock = lock;
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
    return `${this.memberName(id) ?? `node${id}`} (node ${id}${where ? `, ${where}` : ""})`;
  }

  /**
   * A member's name: this node's own pgraft.name, else the one the configuration carries (published
   * by the member or given to `member add`), else its pgraft.initial_cluster entry.
   */
  memberName(id: NodeId): string | undefined {
    if (id === this.config.nodeId) return this.config.name;
    const raft = this.node.raft;
    return memberName(raft.membership, id) ?? memberName(raft.committedMembership, id) ?? this.config.initialCluster.find((member) => member.nodeId === id)?.name;
  }

  /**
   * A member's client URL: the one the configuration carries (published by the member when it
   * started, or given to `member add`), else its pgraft.client_urls entry. The configuration comes
   * first, so forwarding, status and member lists follow the cluster as it changes.
   */
  #clientUrlOf(id: NodeId): string | undefined {
    const raft = this.node.raft;
    const published = memberClientUrl(raft.membership, id) ?? memberClientUrl(raft.committedMembership, id);
    if (published !== undefined) return published;
    const name = this.config.initialCluster.find((candidate) => candidate.nodeId === id)?.name;
    const address = name === undefined ? undefined : this.config.clientUrls[name];
    return address ? `http://${address}` : undefined;
  }

  /**
   * The client URL this node publishes: its own pgraft.client_urls entry, else the address its client
   * API listens on, unless that is a wildcard (0.0.0.0, ::) that other nodes cannot dial.
   */
  get advertisedClientUrl(): string | undefined {
    const configured = this.config.clientUrls[this.config.name];
    if (configured !== undefined) return `http://${configured}`;
    if (this.#client === undefined || ["0.0.0.0", "::", "[::]"].includes(this.config.clientHost)) return undefined;
    return isMemberClientUrl(this.#client.url) ? this.#client.url : undefined;
  }

  #publishTimer: NodeJS.Timeout | undefined;
  #publishing = false;
  #publishWarning: string | undefined;

  /**
   * Publishes this node's name and client URL when the configuration lacks them or has others (etcd's
   * member attribute update): the leader proposes its own; a follower posts them to the leader. Checked
   * every PUBLISH_INTERVAL_MS, one request at a time; costs nothing once the configuration agrees.
   */
  #publishTick(): void {
    if (this.#stopped || this.#publishing) return;
    const own = this.advertisedClientUrl;
    if (own === undefined) return;
    const raft = this.node.raft;
    const self = this.config.nodeId;
    const membership = raft.membership;
    if (!membership.voters.includes(self) && !membership.learners.includes(self)) return;
    if (memberName(membership, self) === this.config.name && memberClientUrl(membership, self) === own) return;
    if (raft.configIndex > raft.log.committed) return;
    const change = { type: "attributes", nodeId: self, name: this.config.name, clientUrl: own } as const;
    // A change in progress (another member publishing, a new leader's first commit) is retried quietly.
    const done = (problem: string | undefined, quiet = false): void => {
      this.#publishing = false;
      if (quiet) return;
      if (problem === undefined) {
        this.#publishWarning = undefined;
        this.#logger.info(`published this node's name ${this.config.name} and client URL ${own} to the cluster`);
      } else if (problem !== this.#publishWarning) {
        this.#publishWarning = problem;
        this.#logger.warn(`Cannot publish this node's client URL ${own} yet: ${problem}; retrying every ${PUBLISH_INTERVAL_MS} ms`);
      }
    };
    if (raft.role === "leader") {
      this.#publishing = true;
      this.node.changeMembership(change, (result) => done(result.ok ? undefined : result.error.message, !result.ok && result.error instanceof MembershipChangeInProgressError));
      return;
    }
    const leaderId = raft.leaderId;
    if (leaderId === 0) return;
    const leaderUrl = this.#clientUrlOf(leaderId);
    if (leaderUrl === undefined) return done(`the leader, node ${leaderId}, has no known client URL (it publishes its own when it starts)`);
    this.#publishing = true;
    fetch(`${leaderUrl}${MEMBER_ATTRIBUTES_PATH}`, {
      method: "POST",
      body: JSON.stringify({ ID: String(self), name: this.config.name, clientURLs: [own] }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }).then(
      async (response) => {
        const answer = (await response.json().catch(() => ({}))) as { message?: string };
        done(response.ok ? undefined : `the leader at ${leaderUrl} answered ${response.status}: ${answer.message ?? "no message"}`, response.status === 409);
      },
      (error: unknown) => done(`the leader at ${leaderUrl} did not answer: ${error instanceof Error ? error.message : String(error)}`),
    );
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
          memberName: (id) => this.memberName(id),
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
          removed: this.#removal !== undefined,
        });
      },
      writable: () => {
        // A removed node's Raft state is frozen where it stopped, maybe as a leader: never writable.
        if (this.#removal !== undefined) return false;
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
    const etcd = createEtcdEndpoints({
      node: this.node,
      backend,
      peerClientUrls: urlOf,
      logger: apiLogger,
      timers: new RealTimers(),
      progressIntervalMs: config.watchProgressNotifyIntervalMs,
    });
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
      // A removed node reports itself stopped: /health answers 503 while it idles.
      status: () => (this.#stopped || this.#removal !== undefined ? undefined : this.node.status()),
      clusterId: config.clusterId,
      memberName: (id) => this.memberName(id),
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
      routes: [
        etcd.streamRoute,
        createMemberAttributesRoute({ changeMembership: (change, callback) => this.node.changeMembership(change, callback) }),
        clusterApi.route,
        api.route,
        health,
        etcd.versionRoute,
        etcd.unimplementedRoute,
      ],
      logger: apiLogger,
      http2Connections: (connection) => grpc.injectConnection(connection),
    });
    logger.info(`client API (etcd's JSON gateway and gRPC) and health endpoints on ${this.#client.url}`);
    if (config.metricsEnabled) {
      this.#metricsServer = await startHttpServer({ host: config.clientHost, port: config.metricsPort, routes: [createMetricsRoute(this.metrics)], logger: apiLogger });
      logger.info(`Prometheus metrics on ${this.#metricsServer.url}/metrics`);
    }
    this.#publishTimer = setInterval(() => this.#publishTick(), PUBLISH_INTERVAL_MS);
    this.#publishTick();
  }

  /** Stops serving; the data directory stays as it is (a restart recovers from it). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#publishTimer);
    this.node.stop();
    this.#etcd?.close();
    this.#grpc?.close();
    await Promise.allSettled([this.transport.close(), this.#client?.close(), this.#metricsServer?.close(), this.#commandEndpoint?.close(), this.#bridge?.stop()]);
    this.#disk.close();
    this.#lock?.release();
    this.#logger.info(`${this.config.name} stopped`);
  }
}
