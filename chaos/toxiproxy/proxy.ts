/**
 * One proxy (the real server's Proxy): a TCP listener, and per accepted client a connection dialled to the
 * upstream, with the proxy's toxics in between.
 *
 * Enabled means listening. Disabling closes the listener and every open connection (the "down" fault,
 * which is not a toxic); a change of listen or upstream stops the proxy and, if it stays enabled, starts
 * it again, so old connections never keep reaching the old upstream. Once started, `listen` holds the
 * address actually bound, so a port of 0 is written back as the ephemeral port the system chose.
 */
import * as net from "node:net";
import { assert } from "../../src/assert.ts";
import { formatHostPort, parseUpstream, resolveListen } from "./address.ts";
import { proxyStartFailed } from "./api-error.ts";
import { Connection } from "./connection.ts";
import type { StageEnvironment } from "./stage.ts";
import { ToxicCollection } from "./toxic-collection.ts";
import { toxicJson } from "./toxic-spec.ts";

/** Open connections per proxy; a client past this is closed at once. */
export const PROXY_CONNECTIONS_MAX = 1024;

export interface ProxyAddresses {
  readonly listen: string;
  readonly upstream: string;
}

export interface ProxyOptions extends ProxyAddresses {
  readonly name: string;
  readonly environment: StageEnvironment;
  readonly allowNonLoopback: boolean;
  readonly onLog?: (line: string) => void;
}

export class Proxy {
  readonly name: string;
  readonly toxics: ToxicCollection;
  readonly #options: ProxyOptions;
  #listen: string;
  #upstream: string;
  #enabled = false;
  #listener: net.Server | undefined;
  readonly #connections = new Set<Connection>();

  /** Checks both addresses (a 400 if malformed); does not start listening. */
  constructor(options: ProxyOptions) {
    checkAddresses(options, options.allowNonLoopback);
    this.name = options.name;
    this.#options = options;
    this.#listen = options.listen;
    this.#upstream = options.upstream;
    this.toxics = new ToxicCollection(options.name, options.environment);
  }

  get listen(): string {
    return this.#listen;
  }

  get upstream(): string {
    return this.#upstream;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Listens on `listen` (an ApiError 500 if the address cannot be bound); a no-op when enabled. */
  async start(): Promise<void> {
    if (this.#enabled) return;
    const address = resolveListen(this.#listen, this.#options.allowNonLoopback);
    const upstream = parseUpstream(this.#upstream);
    const listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.#accept(client, upstream));
    try {
      await new Promise<void>((resolve, reject) => {
        listener.once("error", reject);
        listener.listen({ host: address.host, port: address.port }, () => {
          listener.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      listener.close();
      throw proxyStartFailed(this.name, formatHostPort(address), bindFailure(error as NodeJS.ErrnoException));
    }
    listener.on("error", (error) => this.#log(`listener error: ${error.message}`));
    const bound = listener.address();
    assert(bound !== null && typeof bound === "object", `Proxy ${this.name}: the listener has no address after listening`);
    this.#listen = formatHostPort({ host: bound.address, port: bound.port });
    this.#listener = listener;
    this.#enabled = true;
    this.#log(`started proxy ${this.name} on ${this.#listen} to ${this.#upstream}`);
  }

  /** Closes the listener and every open connection; a no-op when disabled. */
  stop(): void {
    if (!this.#enabled) return;
    this.#enabled = false;
    this.#listener?.close();
    this.#listener = undefined;
    for (const connection of [...this.#connections]) connection.destroy();
    assert(this.#connections.size === 0, `Proxy ${this.name}: connections left open after stop()`);
    this.#log(`stopped proxy ${this.name} on ${this.#listen}`);
  }

  /** Applies listen, upstream and enabled as the real Proxy.Update does. */
  async update(input: ProxyAddresses & { readonly enabled: boolean }): Promise<void> {
    if (input.listen !== this.#listen || input.upstream !== this.#upstream) {
      checkAddresses(input, this.#options.allowNonLoopback);
      this.stop();
      this.#listen = input.listen;
      this.#upstream = input.upstream;
    }
    if (input.enabled && !this.#enabled) await this.start();
    if (!input.enabled) this.stop();
  }

  /** The API's JSON, in the real server's field order. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, listen: this.#listen, upstream: this.#upstream, enabled: this.#enabled, toxics: this.toxics.list().map(toxicJson) };
  }

  #accept(client: net.Socket, upstream: ReturnType<typeof parseUpstream>): void {
    if (!this.#enabled || this.#connections.size >= PROXY_CONNECTIONS_MAX) {
      this.#log(`refused a client of proxy ${this.name}: ${this.#connections.size} connections open, at most ${PROXY_CONNECTIONS_MAX}`);
      client.destroy();
      return;
    }
    const connection = new Connection({
      client,
      upstream,
      createLink: (stream, ends) => this.toxics.createLink(stream, ends),
      releaseLink: (link) => this.toxics.releaseLink(link),
      onFinished: (finished) => this.#connections.delete(finished),
      ...(this.#options.onLog === undefined ? {} : { onLog: (line: string) => this.#log(`proxy ${this.name}: ${line}`) }),
    });
    this.#connections.add(connection);
  }

  #log(line: string): void {
    this.#options.onLog?.(line);
  }
}

/**
 * Both addresses are checked whenever they are set, so a malformed one is a 400 at once, even for a
 * disabled proxy (the real server lets a disabled proxy keep a bad address until it starts).
 */
function checkAddresses(addresses: ProxyAddresses, allowNonLoopback: boolean): void {
  parseUpstream(addresses.upstream);
  resolveListen(addresses.listen, allowNonLoopback);
}

/** Words the real server's error carries for the usual bind failures ("bind: address already in use"). */
function bindFailure(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "EADDRINUSE":
      return "bind: address already in use";
    case "EADDRNOTAVAIL":
      return "bind: cannot assign requested address";
    case "EACCES":
      return "bind: permission denied";
    default:
      return error.message;
  }
}
