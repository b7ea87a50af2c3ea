/**
 * The production Transport: Raft messages between pgraft nodes over TCP, optionally TLS.
 *
 * Topology. Each node listens on its listen address and dials every other member. A node sends only on
 * the connection it dialed and receives only on the connections peers dialed to it (see
 * peer-connection.ts), so a pair of nodes holds two connections, each with a single writer and TCP's
 * ordering. A node this node's configuration does not name yet (added while this node lagged) is
 * accepted once authenticated and dialed back at the address its hello advertised: a learned peer,
 * replaced by addPeer() when the configuration names it and forgotten when it stops dialing. Messages to one peer therefore arrive in the order send() was called, except that messages
 * lost with a broken connection are not re-sent (Raft retries on its own).
 *
 * Outbound queue. send() never blocks and never throws for a down peer: the message is encoded and
 * queued for that peer (bounded in messages and bytes, dropping the oldest when full, see
 * outbound-queue.ts) and written as soon as the connection is up and the socket has room.
 *
 * Reconnects. A lost or failed outbound connection is redialled after an exponential backoff with
 * jitter (50 ms doubling to 2 s by default); a successful handshake resets it. When a peer dials us
 * while our own dial to it waits out its backoff, we redial at once: the peer is evidently back.
 *
 * Peer events. A peer is "up" while this node's outbound connection to it is authenticated, that is
 * while this node can send to it. onPeerDown fires the moment that connection closes (a killed peer
 * process closes its sockets, so this is immediate; a vanished host is caught by the idle timeout,
 * pings every second and silence for five by default), so the node runtime can react early.
 *
 * Security. Peers authenticate with the handshake in handshake.ts (HMAC over fresh nonces, or only
 * cluster and node id checks with pgraft.auth = off). With TLS configured (pgraft.tls_cert_file and
 * tls_key_file), both ends present certificates (mutual TLS, TLS 1.3), peers' certificates must chain
 * to pgraft.tls_ca_file (or the system CAs), the dialer checks the certificate names the address it
 * dialed, and the shared-secret handshake still runs inside the TLS session.
 *
 * Callbacks (onMessage, onPeerUp, onPeerDown) run on the event loop and are never called after
 * close(). Exceptions they throw are not caught.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { performance } from "node:perf_hooks";
import * as tls from "node:tls";
import { assert } from "../assert.ts";
import type { ClusterMember, PeerAuthentication, PgraftConfig } from "../config/index.ts";
import type { Message, NodeId } from "../core/types.ts";
import type { Transport } from "../node/environment.ts";
import { reconnectDelayMs } from "./backoff.ts";
import { encodeFrame, FRAME_HEADER_BYTES, FRAME_LENGTH_FIELD_MAX, FRAME_PAYLOAD_BYTES_MAX_DEFAULT } from "./frame.ts";
import { AcceptorHandshake, checkListenAddress, CLUSTER_ID_LENGTH_MAX, DialerHandshake, type HandshakeSettings } from "./handshake.ts";
import { encodeMessage } from "./message-codec.ts";
import { OutboundQueue } from "./outbound-queue.ts";
import { PeerConnection, type Closure, type PeerConnectionEvents, type PeerConnectionTiming } from "./peer-connection.ts";
import { zeroCounters, type TransportCounters } from "./transport-counters.ts";

/** Where log lines go. A pino logger fits as is. */
export interface TransportLogger {
  info(line: string): void;
  warn(line: string): void;
}

/** Certificate material in memory (PEM). `fromConfig()` reads it from pgraft.tls_*_file. */
export interface TransportTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** The CA bundle peers' certificates must chain to; undefined trusts the system's CAs. */
  readonly ca: string | Buffer | undefined;
}

export interface TransportLimits {
  /** Per peer: frames waiting for the connection. The oldest are dropped beyond either bound. */
  readonly outboundQueueMessagesMax: number;
  readonly outboundQueueBytesMax: number;
  /**
   * Per peer: a queued frame older than this is dropped instead of sent (see outbound-queue.ts).
   * The node sets it to its election timeout: by then every message in it has been superseded.
   */
  readonly queuedFrameAgeMsMax: number;
  /** Bound on one message frame's payload, both ways (a snapshot must fit). */
  readonly framePayloadBytesMax: number;
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly idleTimeoutMs: number;
  /** Accepted sockets open at once, authenticated or not; the listener refuses more. */
  readonly inboundConnectionsMax: number;
  /** A repeated identical warning (a peer refused every 2 s) is logged at most once per interval. */
  readonly repeatedLogIntervalMs: number;
}

export const TRANSPORT_LIMITS_DEFAULT: TransportLimits = Object.freeze({
  outboundQueueMessagesMax: 4096,
  outboundQueueBytesMax: 2 * FRAME_PAYLOAD_BYTES_MAX_DEFAULT + 2 * FRAME_HEADER_BYTES,
  queuedFrameAgeMsMax: 1000,
  framePayloadBytesMax: FRAME_PAYLOAD_BYTES_MAX_DEFAULT,
  backoffMsMin: 50,
  backoffMsMax: 2000,
  handshakeTimeoutMs: 5000,
  pingIntervalMs: 1000,
  idleTimeoutMs: 5000,
  inboundConnectionsMax: 64,
  repeatedLogIntervalMs: 60_000,
});

export interface PeerEvent {
  readonly nodeId: NodeId;
  readonly name: string;
  /** "host:port" as dialed. */
  readonly address: string;
  /** Why the peer went down (absent for onPeerUp). */
  readonly reason?: string;
}

export interface TcpTransportCallbacks {
  readonly onMessage: (message: Message) => void;
  readonly onPeerUp?: (event: PeerEvent) => void;
  readonly onPeerDown?: (event: PeerEvent) => void;
  /**
   * A peer refused this node, after both proved who they are, because a committed configuration
   * removed it (see markRemoved). `commitIndex` is the peer's commit index when it refused.
   */
  readonly onRemoved?: (event: { readonly by: NodeId; readonly commitIndex: number; readonly reason: string }) => void;
  readonly logger?: TransportLogger;
}

export interface TcpTransportOptions extends TcpTransportCallbacks {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly listenHost: string;
  /** 0 binds an ephemeral port; start() reports the bound one. */
  readonly listenPort: number;
  /** Every member (pgraft.initial_cluster), this node included. Port 0: address not known yet. */
  readonly members: readonly ClusterMember[];
  readonly peerAuthentication: PeerAuthentication;
  readonly tls?: TransportTls;
  readonly limits?: Partial<TransportLimits>;
  /** Jitter source for reconnect delays; Math.random when omitted. */
  readonly random?: () => number;
  /** Milliseconds on a monotonic clock, for the age of queued frames; performance.now when omitted. */
  readonly clock?: () => number;
}

/** The settings a transport needs (a PgraftConfig has them all). */
export type TransportConfig = Pick<PgraftConfig, "clusterId" | "nodeId" | "listenHost" | "listenPort" | "initialCluster" | "peerAuthentication" | "tls">;

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface PeerStatus {
  readonly nodeId: NodeId;
  readonly name: string;
  readonly address: string;
  readonly up: boolean;
  readonly queuedMessages: number;
  /** Present for a peer learned from its own hello, that no configuration names yet (see addPeer). */
  readonly learned?: true;
}

/** The transport cannot do what was asked: listen, or be configured as given. */
export class TransportError extends Error {
  override name = "TransportError";
}

interface PeerState {
  readonly nodeId: NodeId;
  readonly name: string;
  host: string;
  port: number;
  /**
   * Learned from an inbound hello rather than added (addPeer): a node that this node's configuration
   * does not name yet, dialed back at the address it advertised. addPeer() makes it a configured peer.
   */
  learned: boolean;
  readonly queue: OutboundQueue;
  connection: PeerConnection | undefined;
  up: boolean;
  /** Consecutive dials that did not reach an authenticated connection. */
  failures: number;
  reconnectTimer: NodeJS.Timeout | undefined;
}

type TransportState = "new" | "starting" | "started" | "closed";

const LINGER_MS = 1000;
/** Peers one node keeps: far above any sensible Raft cluster (each costs a connection and a queue). */
const PEERS_MAX = 64;
const THROTTLED_LOG_KEYS_MAX = 1024;

export class TcpTransport implements Transport {
  readonly nodeId: NodeId;
  readonly limits: TransportLimits;
  readonly #options: TcpTransportOptions;
  readonly #logger: TransportLogger;
  readonly #random: () => number;
  readonly #clock: () => number;
  /** Replaced (never mutated) when members join or leave: each handshake keeps the list it began with. */
  #settings: HandshakeSettings;
  readonly #peers = new Map<NodeId, PeerState>();
  readonly #inbound = new Set<PeerConnection>();
  readonly #counters = zeroCounters();
  readonly #throttledLogMs = new Map<string, number>();
  /** Nodes whose first acceptance as a learned peer was logged (once per node). */
  readonly #learnedLogged = new Set<NodeId>();
  #server: net.Server | undefined;
  #listenAddress: ListenAddress | undefined;
  #state: TransportState = "new";

  /** Builds a transport from validated settings, reading the TLS files when TLS is configured. */
  static fromConfig(config: TransportConfig, callbacks: TcpTransportCallbacks, limits: Partial<TransportLimits> = {}): TcpTransport {
    return new TcpTransport({
      ...callbacks,
      clusterId: config.clusterId,
      nodeId: config.nodeId,
      listenHost: config.listenHost,
      listenPort: config.listenPort,
      members: config.initialCluster,
      peerAuthentication: config.peerAuthentication,
      tls: config.tls === undefined ? undefined : readTlsFiles(config.tls),
      limits,
    });
  }

  constructor(options: TcpTransportOptions) {
    this.limits = checkLimits({ ...TRANSPORT_LIMITS_DEFAULT, ...options.limits });
    checkIdentity(options);
    this.nodeId = options.nodeId;
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? (() => performance.now());
    this.#settings = {
      clusterId: options.clusterId,
      nodeId: options.nodeId,
      memberIds: options.members.map((member) => member.nodeId),
      // Replaced in start() when the port is only known once bound.
      listenAddress: advertisedAddress(options, undefined),
      authentication: options.peerAuthentication,
    };
    for (const member of options.members) {
      if (member.nodeId !== options.nodeId) this.#peers.set(member.nodeId, this.#newPeer(memberAddress(member)));
    }
  }

  /** Listens on the listen address and starts dialing peers. Resolves with the bound address. */
  async start(): Promise<ListenAddress> {
    assert(this.#state === "new", `TcpTransport.start() on a transport that is ${this.#state}`);
    this.#state = "starting";
    const server = this.#createServer();
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        reject(new TransportError(
          `Cannot listen for peers on ${formatAddress(this.#options.listenHost, this.#options.listenPort)}: ${error.message}; ` +
            "stop the process holding the port or change pgraft.listen_address",
        ));
      };
      server.once("error", onError);
      server.listen(this.#options.listenPort, this.#options.listenHost, () => {
        server.off("error", onError);
        resolve();
      });
    });
    server.on("error", (error) => this.#logger.warn(`pgraft: the peer listener failed: ${error.message}`));
    const bound = server.address();
    assert(bound !== null && typeof bound === "object", "TcpTransport: the listener has no address");
    this.#listenAddress = Object.freeze({ host: bound.address, port: bound.port });
    this.#settings = { ...this.#settings, listenAddress: advertisedAddress(this.#options, bound.port) };
    if (this.#state !== "starting") {
      server.close(); // close() ran while we were binding.
      return this.#listenAddress;
    }
    this.#state = "started";
    this.#logger.info(`pgraft: node ${this.nodeId} listening for peers on ${formatAddress(bound.address, bound.port)}`);
    for (const peer of this.#peers.values()) this.#dial(peer);
    return this.#listenAddress;
  }

  get listenAddress(): ListenAddress | undefined {
    return this.#listenAddress;
  }

  /** Queues a message for its peer; best effort (Raft retries). See the header for ordering. */
  send(message: Message): void {
    assert(message.from === this.nodeId, `TcpTransport.send(): a message from node ${message.from} on node ${this.nodeId}`);
    assert(message.to !== this.nodeId, `TcpTransport.send(): node ${this.nodeId} sending ${message.type} to itself`);
    if (this.#state === "closed") {
      this.#counters.messagesDropped++;
      return;
    }
    const peer = this.#peers.get(message.to);
    if (peer === undefined) {
      this.#counters.messagesDropped++;
      this.#warnThrottled(`unroutable:${message.to}`, `pgraft: Cannot send ${message.type} to node ${message.to}: it is neither in pgraft.initial_cluster nor added since; dropping it`);
      return;
    }
    const payload = encodeMessage(message);
    if (payload.length > this.limits.framePayloadBytesMax) {
      this.#counters.messagesDropped++;
      this.#warnThrottled(
        `oversized:${peer.nodeId}:${message.type}`,
        `pgraft: Cannot send ${message.type} to ${peerLabel(peer)}: its payload of ${payload.length} bytes exceeds the ` +
          `${this.limits.framePayloadBytesMax}-byte frame limit; dropping it`,
      );
      return;
    }
    this.#counters.messagesDropped += peer.queue.push(encodeFrame("message", payload), this.#clock());
    this.#pump(peer);
  }

  /**
   * Adds a member that joined at run time (its configuration entry carried its address): it may now
   * connect to us, and we dial it. Adding a known peer again only updates its address.
   */
  addPeer(member: { readonly nodeId: NodeId; readonly name?: string; readonly host: string; readonly port: number }): void {
    if (member.nodeId === this.nodeId) return;
    const known = this.#peers.get(member.nodeId);
    if (known !== undefined && !known.learned) return this.setPeerAddress(member.nodeId, member.host, member.port);
    if (!Number.isSafeInteger(member.nodeId) || member.nodeId < 1) throw new TransportError(`Cannot add node ${member.nodeId} as a peer: a node id is a positive integer`);
    checkPort(member.port, `the port of node ${member.nodeId}`);
    // Learned from its hello, and the configuration names it now: its address and name there win.
    if (known !== undefined) this.removePeer(member.nodeId, `${peerLabel(known)} is now in this node's configuration`);
    if (this.#peers.size + 1 > PEERS_MAX) throw new TransportError(`Cannot add node ${member.nodeId} as a peer: node ${this.nodeId} already has ${PEERS_MAX} peers`);
    const peer = this.#newPeer({ nodeId: member.nodeId, name: member.name ?? `node ${member.nodeId}`, host: member.host, port: member.port });
    this.#addPeerState(peer);
    this.#logger.info(`pgraft: ${peerLabel(peer)} joined; dialing it`);
    if (this.#state === "started") this.#dial(peer);
  }

  #addPeerState(peer: PeerState): void {
    this.#peers.set(peer.nodeId, peer);
    const removed = new Map(this.#settings.removed ?? []);
    removed.delete(peer.nodeId);
    this.#settings = { ...this.#settings, memberIds: [...this.#settings.memberIds, peer.nodeId], removed };
  }

  hasPeer(nodeId: NodeId): boolean {
    return this.#peers.has(nodeId);
  }

  /**
   * Forgets a member that left the cluster: drops what was queued for it and closes its connections.
   * If it dials again it is accepted as a node this node does not know (see #learnPeer), unless
   * markRemoved() named it.
   */
  removePeer(nodeId: NodeId, why?: string): void {
    const peer = this.#peers.get(nodeId);
    if (peer === undefined) return;
    this.#peers.delete(nodeId);
    this.#settings = { ...this.#settings, memberIds: this.#settings.memberIds.filter((id) => id !== nodeId) };
    this.#cancelReconnect(peer);
    this.#counters.messagesDropped += peer.queue.clear();
    const reason = why ?? `${peerLabel(peer)} left the cluster`;
    peer.connection?.close(reason);
    if (why !== undefined) return; // Replaced by a configured peer, or it stopped dialing us: inbound connections stay.
    for (const connection of this.#inbound) if (connection.peerId === nodeId) connection.close(reason);
    this.#logger.info(`pgraft: ${peerLabel(peer)} left the cluster; no longer dialing it`);
  }

  /**
   * A committed configuration removed `nodeId` (this node's commit index is `commitIndex`): stop
   * dialing it, close its connections, and refuse it with code "removed" when it connects again, so
   * that it learns and stops. addPeer() undoes this when it is added again.
   */
  markRemoved(nodeId: NodeId, commitIndex: number): void {
    if (nodeId === this.nodeId || this.#settings.removed?.has(nodeId)) return;
    const removed = new Map(this.#settings.removed ?? []);
    removed.set(nodeId, commitIndex);
    this.#settings = { ...this.#settings, removed };
    this.removePeer(nodeId);
  }

  /** Changes where a peer is dialed (a member moved, or a test learned an ephemeral port). */
  setPeerAddress(nodeId: NodeId, host: string, port: number): void {
    const peer = this.#peers.get(nodeId);
    if (peer === undefined) throw new TransportError(`Cannot set the address of node ${nodeId}: it is not a peer of node ${this.nodeId}`);
    checkPort(port, `the port of node ${nodeId}`);
    if (peer.host === host && peer.port === port) return;
    peer.host = host;
    peer.port = port;
    peer.failures = 0;
    this.#cancelReconnect(peer);
    if (peer.connection !== undefined) peer.connection.close(`the address of ${peerLabel(peer)} changed`);
    else if (this.#state === "started") this.#dial(peer);
  }

  peers(): readonly PeerStatus[] {
    return [...this.#peers.values()].map((peer) => ({
      nodeId: peer.nodeId,
      name: peer.name,
      address: formatAddress(peer.host, peer.port),
      up: peer.up,
      queuedMessages: peer.queue.length,
      ...(peer.learned ? { learned: true as const } : {}),
    }));
  }

  /** A snapshot of the counters (a copy: later traffic does not change it). */
  counters(): Readonly<TransportCounters> {
    return Object.freeze({ ...this.#counters });
  }

  /** Stops listening, closes every connection and cancels every timer. No callback runs after this. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    const done: Promise<void>[] = [];
    for (const peer of this.#peers.values()) {
      this.#cancelReconnect(peer);
      this.#counters.messagesDropped += peer.queue.clear();
      if (peer.connection !== undefined) {
        done.push(peer.connection.done);
        peer.connection.close("this node is shutting down");
      }
    }
    for (const connection of this.#inbound) {
      done.push(connection.done);
      connection.close("this node is shutting down");
    }
    const server = this.#server;
    if (server !== undefined && server.listening) done.push(new Promise((resolve) => server.close(() => resolve())));
    await Promise.all(done);
  }

  // -------------------------------------------------------------------------------------------------
  // Outbound: dial, handshake, pump, reconnect

  #dial(peer: PeerState): void {
    assert(this.#state === "started", "#dial() before start() or after close()");
    assert(peer.connection === undefined && peer.reconnectTimer === undefined, `#dial(): node ${peer.nodeId} is already being dialed`);
    if (peer.port === 0) return; // Address not known yet: setPeerAddress() dials.
    this.#counters.connectionAttempts++;
    const tlsOptions = this.#options.tls;
    const socket = tlsOptions === undefined
      ? net.connect({ host: peer.host, port: peer.port })
      : tls.connect({
          host: peer.host,
          port: peer.port,
          cert: tlsOptions.cert,
          key: tlsOptions.key,
          ca: tlsOptions.ca,
          minVersion: "TLSv1.3",
          // SNI carries names only; an IP address is still checked against the certificate's IP SANs.
          servername: net.isIP(peer.host) === 0 ? peer.host : undefined,
        });
    peer.connection = new PeerConnection({
      socket,
      openEvent: tlsOptions === undefined ? "connect" : "secureConnect",
      handshake: new DialerHandshake(this.#settings, peer.nodeId),
      remote: formatAddress(peer.host, peer.port),
      remoteName: peerName(peer),
      nameOf: (peerId) => this.#peers.get(peerId)?.name ?? `node ${peerId}`,
      timing: this.#timing(),
      framePayloadBytesMax: this.limits.framePayloadBytesMax,
      counters: this.#counters,
      events: this.#outboundEvents(peer),
    });
  }

  #outboundEvents(peer: PeerState): PeerConnectionEvents {
    return {
      established: () => {
        peer.failures = 0;
        peer.up = true;
        this.#counters.connectionsOutbound++;
        // A later failure is news again: forget the throttled dial problems of this peer.
        for (const key of this.#throttledLogMs.keys()) if (key.startsWith(`dial:${peer.nodeId}:`)) this.#throttledLogMs.delete(key);
        this.#logger.info(`pgraft: ${peerLabel(peer)} is up`);
        this.#options.onPeerUp?.(this.#peerEvent(peer, undefined));
        this.#pump(peer);
      },
      message: () => assert(false, "a dialed connection delivered a message"),
      drain: () => this.#pump(peer),
      closed: (connection, closure) => this.#onOutboundClosed(peer, connection, closure),
    };
  }

  #onOutboundClosed(peer: PeerState, connection: PeerConnection, closure: Closure): void {
    if (peer.connection === connection) peer.connection = undefined;
    if (this.#state === "closed" || this.#peers.get(peer.nodeId) !== peer) return; // Closed, or the peer left.
    const wasUp = peer.up;
    peer.up = false;
    if (wasUp) {
      peer.failures = 0;
      this.#logger.warn(`pgraft: ${peerLabel(peer)} is down: ${closure.reason}`);
      this.#options.onPeerDown?.(this.#peerEvent(peer, closure.reason));
    } else {
      peer.failures++;
      const refusal = closure.refusal;
      if (refusal?.code === "removed" && refusal.by === "peer") {
        this.#options.onRemoved?.({ by: peer.nodeId, commitIndex: refusal.commitIndex ?? 0, reason: refusal.reason });
      }
      const line = closure.kind === "network" ? `pgraft: Cannot connect to ${peerLabel(peer)}: ${closure.reason}; retrying` : `pgraft: ${closure.reason}`;
      this.#warnThrottled(`dial:${peer.nodeId}:${closure.reason}`, line);
    }
    if (peer.connection === undefined) this.#scheduleReconnect(peer);
  }

  #scheduleReconnect(peer: PeerState): void {
    assert(peer.reconnectTimer === undefined, `#scheduleReconnect(): node ${peer.nodeId} already has a timer`);
    const delayMs = reconnectDelayMs(peer.failures, this.limits, this.#random);
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = undefined;
      if (this.#state === "started" && peer.connection === undefined) this.#dial(peer);
    }, delayMs);
  }

  #cancelReconnect(peer: PeerState): void {
    clearTimeout(peer.reconnectTimer);
    peer.reconnectTimer = undefined;
  }

  /** Writes queued frames while the connection is up and its socket has room. */
  #pump(peer: PeerState): void {
    const connection = peer.connection;
    if (connection === undefined) return;
    // Bounded by the queue length; stops early when the socket asks us to wait for 'drain'.
    const nowMs = this.#clock();
    let expired = 0;
    while (peer.queue.length > 0 && connection.writable) {
      const { frame, dropped } = peer.queue.shiftFresh(nowMs, this.limits.queuedFrameAgeMsMax);
      expired += dropped;
      if (frame !== undefined) connection.writeMessageFrame(frame);
    }
    if (expired > 0) {
      this.#counters.messagesDropped += expired;
      this.#logger.info(`pgraft: dropped ${expired} messages queued for ${peerLabel(peer)} more than ${this.limits.queuedFrameAgeMsMax} ms ago (superseded; Raft re-sends what matters)`);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Inbound: accept, handshake, deliver

  #createServer(): net.Server {
    const tlsOptions = this.#options.tls;
    let server: net.Server;
    if (tlsOptions === undefined) {
      server = net.createServer((socket) => this.#accept(socket));
    } else {
      server = tls.createServer(
        {
          cert: tlsOptions.cert,
          key: tlsOptions.key,
          ca: tlsOptions.ca,
          requestCert: true,
          // Checked in #acceptTls() instead, so a rejected certificate is counted and logged, not
          // dropped silently after the handshake.
          rejectUnauthorized: false,
          minVersion: "TLSv1.3",
          handshakeTimeout: this.limits.handshakeTimeoutMs,
        },
        (socket) => this.#acceptTls(socket),
      );
      server.on("tlsClientError", (error: NodeJS.ErrnoException, socket) => {
        this.#counters.tlsErrors++;
        // A socket the client already closed may no longer know its address.
        const from = socket.remoteAddress === undefined ? "" : ` from ${formatAddress(socket.remoteAddress, socket.remotePort ?? 0)}`;
        const detail = error.code === "ECONNRESET"
          ? "the peer closed the connection during the TLS handshake (it may have rejected this node's certificate)"
          : `${error.message.trim()}${error.code === undefined ? "" : ` (${error.code})`}`;
        this.#warnThrottled(`tls:${socket.remoteAddress}:${error.code}`, `pgraft: Refused a TLS connection${from}: ${detail}`);
      });
    }
    server.maxConnections = this.limits.inboundConnectionsMax;
    return server;
  }

  #acceptTls(socket: tls.TLSSocket): void {
    if (socket.authorized) {
      this.#accept(socket);
      return;
    }
    this.#counters.tlsErrors++;
    const remote = formatAddress(socket.remoteAddress ?? "unknown", socket.remotePort ?? 0);
    const why = String(socket.authorizationError ?? "no certificate");
    socket.destroy();
    this.#warnThrottled(
      `tls:${socket.remoteAddress}:${why}`,
      `pgraft: Refused a TLS connection from ${remote}: its certificate is not trusted (${why}); give every node a certificate signed by pgraft.tls_ca_file`,
    );
  }

  #accept(socket: net.Socket): void {
    if (this.#state !== "started") {
      socket.destroy();
      return;
    }
    const remote = formatAddress(socket.remoteAddress ?? "unknown", socket.remotePort ?? 0);
    const handshake = new AcceptorHandshake(this.#settings);
    const connection = new PeerConnection({
      socket,
      openEvent: undefined,
      handshake,
      remote,
      remoteName: `at ${remote}`,
      nameOf: (peerId) => this.#peers.get(peerId)?.name ?? `node ${peerId}`,
      timing: this.#timing(),
      framePayloadBytesMax: this.limits.framePayloadBytesMax,
      counters: this.#counters,
      events: {
        established: (accepted) => this.#onInboundEstablished(accepted, handshake.peerListenAddress),
        message: (_, message) => {
          if (this.#state !== "closed") this.#options.onMessage(message);
        },
        drain: () => {},
        closed: (closed, closure) => this.#onInboundClosed(closed, closure),
      },
    });
    this.#inbound.add(connection);
  }

  #onInboundEstablished(connection: PeerConnection, advertised: { readonly host: string; readonly port: number } | undefined): void {
    const peerId = connection.peerId;
    assert(peerId !== undefined, "an established connection without a peer id");
    this.#counters.connectionsInbound++;
    if (this.#settings.removed?.has(peerId) ?? false) {
      // markRemoved() ran while its handshake was under way.
      connection.close(`node ${peerId} was removed from the cluster`);
      return;
    }
    const peer = this.#peers.get(peerId) ?? this.#learnPeer(peerId, advertised);
    if (peer === undefined) {
      connection.close(`node ${peerId} is not a peer of node ${this.nodeId} and did not say where it listens`);
      return;
    }
    // A peer that restarted dials again before we notice its old connection died: keep the newest.
    for (const other of this.#inbound) {
      if (other !== connection && other.peerId === peerId) other.close(`replaced by a newer connection from ${peerLabel(peer)}`);
    }
    this.#logger.info(`pgraft: accepted a connection from ${connection.remoteLabel}`);
    if (peer.reconnectTimer !== undefined && this.#state === "started") {
      this.#cancelReconnect(peer);
      this.#dial(peer);
    }
  }

  #onInboundClosed(connection: PeerConnection, closure: Closure): void {
    this.#inbound.delete(connection);
    if (this.#state === "closed") return;
    this.#forgetIfSilent(connection.peerId);
    if (closure.kind === "local") return;
    if (connection.peerId !== undefined && closure.kind === "network") {
      this.#logger.info(`pgraft: the connection from ${connection.remoteLabel} closed: ${closure.reason}`);
      return;
    }
    // A misbehaving peer reconnects and fails again every few seconds: log each distinct problem once per
    // interval, whatever the source port (ports are stripped from the key).
    const who = connection.peerId ?? connection.remote.replace(/:\d+$/, "");
    this.#warnThrottled(`inbound:${who}:${closure.reason.replace(/:\d+/g, "")}`, `pgraft: ${closure.reason}`);
  }

  /**
   * A node that this node's configuration does not name proved it belongs to the cluster (same cluster
   * id and secret) and said where it listens: most likely a member added while this node was cut off,
   * now asking for its vote or sending it entries. Replies go back on a connection of our own, so dial
   * it at the address it advertised until the configuration names it (addPeer) or removes it.
   */
  #learnPeer(nodeId: NodeId, advertised: { readonly host: string; readonly port: number } | undefined): PeerState | undefined {
    if (advertised === undefined || this.#state !== "started") return undefined;
    if (this.#peers.size + 1 > PEERS_MAX) {
      this.#warnThrottled(`learn:${nodeId}`, `pgraft: Cannot accept node ${nodeId}: node ${this.nodeId} already has ${PEERS_MAX} peers`);
      return undefined;
    }
    const peer = this.#newPeer({ nodeId, name: `node ${nodeId}`, host: advertised.host, port: advertised.port }, true);
    this.#addPeerState(peer);
    if (!this.#learnedLogged.has(nodeId)) {
      if (this.#learnedLogged.size >= THROTTLED_LOG_KEYS_MAX) this.#learnedLogged.clear();
      this.#learnedLogged.add(nodeId);
      this.#logger.info(
        `pgraft: accepted node ${nodeId}, not in this node's configuration yet: it proved it is of cluster ${JSON.stringify(this.#options.clusterId)}; ` +
          `replying through ${formatAddress(advertised.host, advertised.port)}, the address it advertised, until a configuration names it`,
      );
    }
    this.#dial(peer);
    return peer;
  }

  /**
   * A learned peer is dialed only to answer it: once no connection from it remains, forget it (it is
   * learned again when it dials anew). This bounds learned peers to the nodes talking to us.
   */
  #forgetIfSilent(peerId: NodeId | undefined): void {
    if (peerId === undefined) return;
    const peer = this.#peers.get(peerId);
    if (peer?.learned !== true) return;
    for (const other of this.#inbound) if (other.peerId === peerId) return;
    this.removePeer(peerId, `node ${peerId}, which this node's configuration does not name, closed its last connection to it`);
    this.#logger.info(`pgraft: forgot ${peerLabel(peer)}: it was not in this node's configuration and no longer has a connection to this node`);
  }

  // -------------------------------------------------------------------------------------------------
  // Helpers

  /** A peer not yet dialed, with an empty outbound queue. */
  #newPeer(address: { nodeId: NodeId; name: string; host: string; port: number }, learned = false): PeerState {
    const queue = new OutboundQueue({ messagesMax: this.limits.outboundQueueMessagesMax, bytesMax: this.limits.outboundQueueBytesMax });
    return { ...address, learned, queue, connection: undefined, up: false, failures: 0, reconnectTimer: undefined };
  }

  #timing(): PeerConnectionTiming {
    const { handshakeTimeoutMs, pingIntervalMs, idleTimeoutMs } = this.limits;
    return { handshakeTimeoutMs, pingIntervalMs, idleTimeoutMs, lingerMs: LINGER_MS };
  }

  #peerEvent(peer: PeerState, reason: string | undefined): PeerEvent {
    const address = formatAddress(peer.host, peer.port);
    return reason === undefined ? { nodeId: peer.nodeId, name: peer.name, address } : { nodeId: peer.nodeId, name: peer.name, address, reason };
  }

  /** Logs a warning unless the same key was logged within repeatedLogIntervalMs. */
  #warnThrottled(key: string, line: string): void {
    const nowMs = performance.now();
    const lastMs = this.#throttledLogMs.get(key);
    if (lastMs !== undefined && nowMs - lastMs < this.limits.repeatedLogIntervalMs) return;
    if (this.#throttledLogMs.size >= THROTTLED_LOG_KEYS_MAX) this.#throttledLogMs.clear();
    this.#throttledLogMs.set(key, nowMs);
    this.#logger.warn(line);
  }
}

const SILENT_LOGGER: TransportLogger = { info: () => {}, warn: () => {} };

/**
 * Where peers reach this node, for the hello: its own entry in the members (pgraft.initial_cluster: the
 * address the others dial), or else the listen address; `boundPort` replaces a port 0 once bound.
 */
function advertisedAddress(options: TcpTransportOptions, boundPort: number | undefined): string {
  const self = options.members.find((member) => member.nodeId === options.nodeId);
  if (self !== undefined && self.port !== 0) return formatAddress(self.host, self.port);
  const wildcard = options.listenHost === "" || options.listenHost === "0.0.0.0" || options.listenHost === "::";
  const host = wildcard ? (self?.host ?? "127.0.0.1") : options.listenHost;
  const port = options.listenPort !== 0 ? options.listenPort : (boundPort ?? 0);
  return formatAddress(host, port);
}

function memberAddress(member: ClusterMember): { nodeId: NodeId; name: string; host: string; port: number } {
  return { nodeId: member.nodeId, name: member.name, host: member.host, port: member.port };
}

/** "n2 (127.0.0.1:7002)" */
function peerName(peer: { readonly name: string; readonly host: string; readonly port: number }): string {
  return `${peer.name} (${formatAddress(peer.host, peer.port)})`;
}

/** "peer n2 (127.0.0.1:7002)" */
function peerLabel(peer: { readonly name: string; readonly host: string; readonly port: number }): string {
  return `peer ${peerName(peer)}`;
}

export function formatAddress(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function readTlsFiles(files: NonNullable<PgraftConfig["tls"]>): TransportTls {
  const read = (file: string, setting: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (error) {
      throw new TransportError(`Cannot read ${setting} ${JSON.stringify(file)}: ${(error as Error).message}; correct the path or its permissions`);
    }
  };
  return {
    cert: read(files.certFile, "pgraft.tls_cert_file"),
    key: read(files.keyFile, "pgraft.tls_key_file"),
    ca: files.caFile === undefined ? undefined : read(files.caFile, "pgraft.tls_ca_file"),
  };
}

function checkIdentity(options: TcpTransportOptions): void {
  const ids = options.members.map((member) => member.nodeId);
  if (!ids.includes(options.nodeId)) {
    throw new TransportError(`Cannot create the transport: node ${options.nodeId} is not among the members (${ids.join(", ")})`);
  }
  if (new Set(ids).size !== ids.length) throw new TransportError(`Cannot create the transport: the members repeat a node id (${ids.join(", ")})`);
  if (options.clusterId.length === 0 || options.clusterId.length > CLUSTER_ID_LENGTH_MAX) {
    throw new TransportError(`Cannot create the transport: the cluster id must have 1 to ${CLUSTER_ID_LENGTH_MAX} characters`);
  }
  checkPort(options.listenPort, "the listen port");
  for (const member of options.members) checkPort(member.port, `the port of node ${member.nodeId}`);
  // The port may be known only once bound: check the rest with a stand-in.
  const advertised = advertisedAddress(options, 1);
  const checked = checkListenAddress(advertised);
  if (!checked.ok) {
    throw new TransportError(`Cannot create the transport: this node's peer address ${JSON.stringify(advertised)}, sent to peers so they can dial it back, is unusable: ${checked.problem}`);
  }
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TransportError(`Cannot configure the transport: ${what} must be an integer from 0 to 65535, received ${port}`);
  }
}

function checkLimits(limits: TransportLimits): TransportLimits {
  const positive = (name: keyof TransportLimits): void => {
    const value = limits[name];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TransportError(`Cannot create the transport: "${name}" must be a positive integer, received ${value}`);
    }
  };
  for (const name of Object.keys(TRANSPORT_LIMITS_DEFAULT) as (keyof TransportLimits)[]) positive(name);
  const rule = (ok: boolean, text: string): void => {
    if (!ok) throw new TransportError(`Cannot create the transport: ${text}`);
  };
  rule(limits.backoffMsMin <= limits.backoffMsMax, `"backoffMsMin" (${limits.backoffMsMin}) must not exceed "backoffMsMax" (${limits.backoffMsMax})`);
  rule(limits.idleTimeoutMs >= 2 * limits.pingIntervalMs, `"idleTimeoutMs" (${limits.idleTimeoutMs}) must be at least twice "pingIntervalMs" (${limits.pingIntervalMs})`);
  rule(limits.framePayloadBytesMax <= FRAME_LENGTH_FIELD_MAX, `"framePayloadBytesMax" must be at most ${FRAME_LENGTH_FIELD_MAX}`);
  rule(
    limits.outboundQueueBytesMax >= limits.framePayloadBytesMax + FRAME_HEADER_BYTES,
    `"outboundQueueBytesMax" (${limits.outboundQueueBytesMax}) must hold one full frame (${limits.framePayloadBytesMax + FRAME_HEADER_BYTES} bytes)`,
  );
  return Object.freeze(limits);
}
