/**
 * One client connection through a proxy: the accepted client socket, the socket dialled to the upstream,
 * and two links between them (upstream: client to server; downstream: server to client).
 *
 * Closing follows the real server, which has no half-close: when a link's stream ends, it closes its
 * destination socket entirely (after flushing what was written, bounded by `FLUSH_MS_MAX`); the other
 * link then sees its source close, passes that close through its own toxics, and closes the other
 * socket. Once a reset_peer toxic has reset one socket, the other is reset too, as SO_LINGER=0 on both
 * sockets does in the real server. Both sockets closed, the links are disposed and every timer is gone.
 */
import * as net from "node:net";
import { assert } from "../../src/assert.ts";
import type { HostPort } from "./address.ts";
import type { Link, LinkEnds } from "./link.ts";
import type { CloseMode } from "./stage.ts";
import type { Stream } from "./toxic-spec.ts";

/** The real server dials without a timeout; an upstream that never answers must not pin a client. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How long a closing socket may take to flush what was written before it is destroyed. */
export const FLUSH_MS_MAX = 10_000;

export interface ConnectionOptions {
  readonly client: net.Socket;
  readonly upstream: HostPort;
  /** Builds the link of one direction with the toxics in force now, and registers it for changes. */
  readonly createLink: (stream: Stream, ends: LinkEnds) => Link;
  /** Unregisters a link created by `createLink`, once its connection is finished. */
  readonly releaseLink: (link: Link) => void;
  /** Called once, when both sockets are closed and the links disposed. */
  readonly onFinished: (connection: Connection) => void;
  readonly onLog?: (line: string) => void;
}

export class Connection {
  readonly #options: ConnectionOptions;
  readonly #client: net.Socket;
  #server: net.Socket | undefined;
  readonly #links: Link[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  /** A reset_peer toxic reset one socket: the other is reset too. */
  #lingerZero = false;
  #socketsClosed = 0;
  #finished = false;

  constructor(options: ConnectionOptions) {
    this.#options = options;
    this.#client = options.client;
    this.#client.on("error", (error) => this.#log(`client socket error: ${error.message}`));
    this.#client.once("close", () => {
      if (this.#links.length === 0) this.#server?.destroy();
      this.#socketClosed();
    });
    this.#dial();
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Closes both sockets now (the proxy was disabled, deleted or the server is closing). */
  destroy(): void {
    if (this.#finished) return;
    for (const link of this.#links) link.dispose();
    for (const socket of [this.#client, this.#server]) {
      if (socket === undefined || socket.destroyed) continue;
      if (this.#lingerZero) socket.resetAndDestroy();
      else socket.destroy();
    }
    this.#finish();
  }

  #dial(): void {
    const server = net.connect({ host: this.#options.upstream.host, port: this.#options.upstream.port, allowHalfOpen: true });
    this.#server = server;
    const connectTimer = this.#setTimer(CONNECT_TIMEOUT_MS, () => server.destroy(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)));
    server.on("error", (error) => this.#log(`upstream socket error: ${error.message}`));
    server.once("close", () => {
      if (!this.#links.length) this.#client.destroy();
      this.#socketClosed();
    });
    server.once("connect", () => {
      this.#clearTimer(connectTimer);
      if (this.#finished || this.#client.destroyed) {
        server.destroy();
        return;
      }
      this.#wire(server);
    });
  }

  #wire(server: net.Socket): void {
    const client = this.#client;
    client.setNoDelay(true);
    server.setNoDelay(true);
    const upstreamLink = this.#options.createLink("upstream", this.#endsOf(server, client));
    const downstreamLink = this.#options.createLink("downstream", this.#endsOf(client, server));
    this.#links.push(upstreamLink, downstreamLink);
    const wireSource = (source: net.Socket, link: Link, destination: net.Socket): void => {
      source.on("data", (data: Buffer) => link.receive(data));
      source.once("end", () => link.sourceEnded());
      source.once("close", () => link.sourceEnded());
      destination.on("drain", () => link.checkPressure());
    };
    wireSource(client, upstreamLink, server);
    wireSource(server, downstreamLink, client);
    client.resume();
  }

  #endsOf(destination: net.Socket, source: net.Socket): LinkEnds {
    return {
      write: (data) => {
        if (!destination.destroyed && !destination.writableEnded) destination.write(data);
      },
      close: (mode) => this.#close(destination, mode),
      pendingWriteBytes: () => destination.writableLength,
      setSourcePaused: (paused) => {
        if (paused) source.pause();
        else source.resume();
      },
    };
  }

  /** Closes one socket as the real server's Close does: after what was written, or at once with an RST. */
  #close(socket: net.Socket, mode: CloseMode): void {
    if (mode === "reset") this.#lingerZero = true;
    if (socket.destroyed) return;
    if (this.#lingerZero) {
      socket.resetAndDestroy();
      return;
    }
    if (socket.writableEnded) return;
    socket.end();
    const flushTimer = this.#setTimer(FLUSH_MS_MAX, () => socket.destroy());
    socket.once("finish", () => {
      this.#clearTimer(flushTimer);
      socket.destroy();
    });
  }

  #socketClosed(): void {
    this.#socketsClosed += 1;
    assert(this.#socketsClosed <= 2, "Connection: more than two sockets closed");
    const serverGone = this.#server === undefined || this.#server.destroyed;
    if (this.#client.destroyed && serverGone) this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const link of this.#links) {
      link.dispose();
      this.#options.releaseLink(link);
    }
    this.#options.onFinished(this);
  }

  #setTimer(delayMs: number, callback: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      callback();
    }, delayMs);
    this.#timers.add(timer);
    return timer;
  }

  #clearTimer(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.#timers.delete(timer);
  }

  #log(line: string): void {
    this.#options.onLog?.(line);
  }
}
