/**
 * One peer socket, dialed or accepted: the handshake, then frames in both directions, with bounded
 * timers around everything. It owns no policy (reconnects, queues, who is up): the TcpTransport does.
 *
 * Connections are one-way for Raft messages. The node that dials a connection sends messages and pings
 * on it; the node that accepted it only receives messages and answers pings with pongs. So each pair of
 * nodes holds two connections, one per direction, each with a single writer: ordering per direction
 * is TCP's ordering, and two nodes dialing each other at once never have to decide whose connection
 * survives.
 *
 * Anything a peer sends that breaks the protocol (a frame that does not decode, a message that fails
 * validation or claims another sender, a frame type not allowed in this direction) closes the
 * connection and is reported to the transport with a reason; it never throws out of a socket handler.
 * Exceptions from the transport's own callbacks are not caught: they are bugs, and crash loudly.
 */
import type * as net from "node:net";
import { performance } from "node:perf_hooks";
import { assert } from "../assert.ts";
import type { Message, NodeId } from "../core/types.ts";
import { encodeFrame, FrameDecoder, FrameError, HANDSHAKE_PAYLOAD_BYTES_MAX, type Frame } from "./frame.ts";
import { describeRefusal, DialerHandshake, type AcceptorHandshake, type HandshakeRefusal, type HandshakeStep } from "./handshake.ts";
import { checkMessageRoute, decodeMessage, MessageDecodeError } from "./message-codec.ts";
import type { TransportCounters } from "./transport-counters.ts";

export interface PeerConnectionTiming {
  /** From socket creation to an authenticated peer (TCP connect and TLS included). */
  readonly handshakeTimeoutMs: number;
  /** How often the dialer pings, and how often both sides check for silence. */
  readonly pingIntervalMs: number;
  /** A connection that received nothing for this long is closed (the peer vanished without a FIN). */
  readonly idleTimeoutMs: number;
  /** How long a refusing side waits for its refuse frame to flush before it destroys the socket. */
  readonly lingerMs: number;
}

/** Why a connection closed, for the transport's logs and peer events. */
export type ClosureKind = "refused" | "protocol_error" | "idle" | "network" | "local";

export interface Closure {
  readonly kind: ClosureKind;
  /** A sentence for a log line. */
  readonly reason: string;
  readonly refusal?: HandshakeRefusal;
}

export interface PeerConnectionEvents {
  established(connection: PeerConnection): void;
  message(connection: PeerConnection, message: Message): void;
  /** The socket can take more writes after `writable` went false. */
  drain(connection: PeerConnection): void;
  /** Called exactly once, after the socket closed. */
  closed(connection: PeerConnection, closure: Closure): void;
}

export interface PeerConnectionOptions {
  readonly socket: net.Socket;
  /**
   * The socket event after which the handshake may start: "connect" for a dialed TCP socket,
   * "secureConnect" for a dialed TLS socket; undefined for an accepted socket, which is ready.
   */
  readonly openEvent: "connect" | "secureConnect" | undefined;
  readonly handshake: DialerHandshake | AcceptorHandshake;
  /** The remote address ("127.0.0.1:50312"), for frame errors. */
  readonly remote: string;
  /** How logs name the other end before the handshake: "n2 (127.0.0.1:7002)" or "at 127.0.0.1:50312". */
  readonly remoteName: string;
  /** How logs name an authenticated peer on an accepted connection ("n2"). */
  readonly nameOf: (peerId: NodeId) => string;
  readonly timing: PeerConnectionTiming;
  readonly framePayloadBytesMax: number;
  readonly counters: TransportCounters;
  readonly events: PeerConnectionEvents;
}

type ConnectionState = "opening" | "handshaking" | "established" | "closing" | "closed";

export class PeerConnection {
  readonly role: "dialer" | "acceptor";
  readonly remote: string;
  /** Resolves once the socket has closed and `closed` was emitted. */
  readonly done: Promise<void>;
  readonly #options: PeerConnectionOptions;
  readonly #socket: net.Socket;
  readonly #decoder: FrameDecoder;
  #state: ConnectionState = "opening";
  #peerId: NodeId | undefined;
  #remoteName: string;
  #closure: Closure | undefined;
  #tcpConnected = false;
  #lastReceivedMs = performance.now();
  #handshakeTimer: NodeJS.Timeout | undefined;
  #livenessTimer: NodeJS.Timeout | undefined;
  #lingerTimer: NodeJS.Timeout | undefined;
  #resolveDone!: () => void;

  constructor(options: PeerConnectionOptions) {
    const timing = options.timing;
    assert(timing.idleTimeoutMs > timing.pingIntervalMs, "PeerConnection: idleTimeoutMs must exceed pingIntervalMs");
    this.#options = options;
    this.#socket = options.socket;
    this.role = options.handshake instanceof DialerHandshake ? "dialer" : "acceptor";
    this.remote = options.remote;
    this.#remoteName = options.remoteName;
    // Until the peer is authenticated, no frame may be larger than a handshake frame.
    this.#decoder = new FrameDecoder({ payloadBytesMax: HANDSHAKE_PAYLOAD_BYTES_MAX, source: options.remote });
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#socket.setNoDelay(true);
    this.#socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on("error", (error: Error) => this.#onError(error));
    this.#socket.on("close", () => this.#onClose());
    this.#socket.on("drain", () => {
      if (this.#state === "established") options.events.drain(this);
    });
    this.#socket.once("connect", () => (this.#tcpConnected = true));
    this.#handshakeTimer = setTimeout(() => this.#onHandshakeTimeout(), timing.handshakeTimeoutMs);
    if (options.openEvent === undefined) this.#open();
    else this.#socket.once(options.openEvent, () => this.#open());
  }

  /** The authenticated peer; undefined until the handshake succeeds. */
  get peerId(): NodeId | undefined {
    return this.#peerId;
  }

  /** "peer n2 (127.0.0.1:7002)", "peer at 127.0.0.1:50312", or "peer n2 at 127.0.0.1:50312" once known. */
  get remoteLabel(): string {
    return `peer ${this.#remoteName}`;
  }

  get established(): boolean {
    return this.#state === "established";
  }

  /** True when a message frame may be written now without growing the socket's buffer further. */
  get writable(): boolean {
    return this.#state === "established" && this.role === "dialer" && !this.#socket.writableNeedDrain;
  }

  /** Writes one encoded message frame; only the dialer writes messages, only once established. */
  writeMessageFrame(frame: Uint8Array): void {
    assert(this.role === "dialer", "writeMessageFrame() on an accepted connection");
    assert(this.#state === "established", `writeMessageFrame() on a connection that is ${this.#state}`);
    this.#write(frame);
    this.#options.counters.messagesSent++;
  }

  /** Closes the connection now, for a reason of this node's own (shutdown, a replaced connection). */
  close(reason: string): void {
    this.#noteClosure({ kind: "local", reason });
    this.#destroy();
  }

  // -------------------------------------------------------------------------------------------------
  // Socket events

  #open(): void {
    if (this.#state !== "opening") return;
    this.#state = "handshaking";
    if (this.#options.handshake instanceof DialerHandshake) this.#apply(this.#options.handshake.start());
  }

  #onData(chunk: Buffer): void {
    if (this.#state !== "handshaking" && this.#state !== "established") return;
    this.#options.counters.bytesReceived += chunk.length;
    this.#lastReceivedMs = performance.now();
    this.#decoder.push(chunk);
    // Bounded: every frame consumes at least FRAME_HEADER_BYTES of this chunk and what was buffered.
    for (;;) {
      let frame: Frame | undefined;
      try {
        frame = this.#decoder.next();
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        this.#protocolError(error.message);
        return;
      }
      if (frame === undefined) return;
      this.#onFrame(frame);
      if (this.#state !== "handshaking" && this.#state !== "established") return;
    }
  }

  #onError(error: Error): void {
    const tls = this.#options.openEvent === "secureConnect" && this.#state === "opening" && this.#tcpConnected;
    if (tls) this.#options.counters.tlsErrors++;
    const code = (error as NodeJS.ErrnoException).code;
    const detail = code !== undefined && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
    this.#noteClosure({ kind: "network", reason: tls ? `TLS handshake failed: ${detail}` : detail });
  }

  #onClose(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#clearTimers();
    const closure = this.#closure ?? { kind: "network", reason: "the connection was closed by the other end" };
    try {
      this.#options.events.closed(this, closure);
    } finally {
      this.#resolveDone(); // Even if the callback throws, close() must not wait forever.
    }
  }

  #onHandshakeTimeout(): void {
    this.#handshakeTimer = undefined;
    if (this.#state === "opening") {
      this.#noteClosure({ kind: "network", reason: `could not connect within ${this.#options.timing.handshakeTimeoutMs} ms` });
      this.#destroy();
    } else if (this.#state === "handshaking") {
      this.#apply(this.#options.handshake.timeout(this.#options.timing.handshakeTimeoutMs));
    }
  }

  #onLivenessCheck(): void {
    const silentMs = performance.now() - this.#lastReceivedMs;
    if (silentMs > this.#options.timing.idleTimeoutMs) {
      this.#noteClosure({ kind: "idle", reason: `nothing arrived from ${this.remoteLabel} for ${Math.round(silentMs)} ms` });
      this.#destroy();
      return;
    }
    // A ping queued behind a full socket buffer would add nothing: data is already waiting to flow.
    if (this.role === "dialer" && !this.#socket.writableNeedDrain) this.#write(encodeFrame("ping"));
  }

  // -------------------------------------------------------------------------------------------------
  // Frames

  #onFrame(frame: Frame): void {
    if (this.#state === "handshaking") {
      this.#apply(this.#options.handshake.receive(frame));
      return;
    }
    assert(this.#state === "established", `#onFrame() while ${this.#state}`);
    const direction = this.role === "acceptor" ? "a connection the peer dialed" : "a connection this node dialed";
    switch (frame.type) {
      case "message":
        if (this.role === "acceptor") return this.#onMessageFrame(frame);
        break;
      case "ping":
        if (this.role === "acceptor") return this.#write(encodeFrame("pong"));
        break;
      case "pong":
        if (this.role === "dialer") return; // Arrival alone refreshed #lastReceivedMs.
        break;
      default:
        break;
    }
    this.#protocolError(`Cannot accept a ${frame.type} frame from ${this.remoteLabel} on ${direction} after the handshake; closing the connection`);
  }

  #onMessageFrame(frame: Frame): void {
    const peerId = this.#peerId;
    assert(peerId !== undefined, "message frame without an authenticated peer");
    let message: Message;
    try {
      message = decodeMessage(frame.payload, { source: this.#remoteName });
      checkMessageRoute(message, { from: peerId, to: this.#options.handshake.settings.nodeId, source: this.#remoteName });
    } catch (error) {
      if (!(error instanceof MessageDecodeError)) throw error;
      this.#protocolError(`${error.message}; closing the connection`);
      return;
    }
    this.#options.counters.messagesReceived++;
    this.#options.events.message(this, message);
  }

  #apply(step: HandshakeStep): void {
    for (const frame of step.outgoing) this.#write(encodeFrame(frame.type, frame.payload));
    const outcome = step.outcome;
    switch (outcome.state) {
      case "pending":
        return;
      case "established":
        this.#establish(outcome.peerId);
        return;
      case "refused": {
        const refusal = outcome.refusal;
        if (refusal.by === "local") this.#options.counters.refusalsSent++;
        else this.#options.counters.refusalsReceived++;
        this.#noteClosure({ kind: "refused", reason: describeRefusal(refusal, this.remoteLabel), refusal });
        this.#closeAfterFlush();
        return;
      }
    }
  }

  #establish(peerId: NodeId): void {
    this.#state = "established";
    this.#peerId = peerId;
    if (this.role === "acceptor") this.#remoteName = `${this.#options.nameOf(peerId)} at ${this.remote}`;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#decoder.payloadBytesMax = this.#options.framePayloadBytesMax;
    this.#lastReceivedMs = performance.now();
    this.#livenessTimer = setInterval(() => this.#onLivenessCheck(), this.#options.timing.pingIntervalMs);
    this.#options.events.established(this);
  }

  #protocolError(reason: string): void {
    this.#options.counters.decodeErrors++;
    this.#noteClosure({ kind: "protocol_error", reason });
    this.#destroy();
  }

  // -------------------------------------------------------------------------------------------------
  // Writing and closing

  #write(bytes: Uint8Array): void {
    if (this.#state === "closing" || this.#state === "closed" || this.#socket.destroyed) return;
    this.#socket.write(bytes);
    this.#options.counters.bytesSent += bytes.length;
  }

  /** The first reason recorded is the one reported: later ones are consequences of it. */
  #noteClosure(closure: Closure): void {
    if (this.#closure === undefined) this.#closure = closure;
  }

  /** Lets a refuse frame reach the peer (end() flushes, then sends FIN), but only for `lingerMs`. */
  #closeAfterFlush(): void {
    if (this.#state === "closed" || this.#state === "closing") return;
    this.#state = "closing";
    this.#clearTimers();
    this.#socket.end();
    this.#lingerTimer = setTimeout(() => this.#socket.destroy(), this.#options.timing.lingerMs);
  }

  #destroy(): void {
    if (this.#state === "closed") return;
    if (this.#state !== "closing") this.#state = "closing";
    this.#clearTimers();
    this.#socket.destroy();
  }

  #clearTimers(): void {
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#livenessTimer);
    clearTimeout(this.#lingerTimer);
    this.#handshakeTimer = undefined;
    this.#livenessTimer = undefined;
    this.#lingerTimer = undefined;
  }
}
