/**
 * What the Toxiproxy-compatible server's tests share: a server on an ephemeral port with a
 * toxiproxy-node-client pointed at it, upstream servers on 127.0.0.1 (an echo, one that answers and
 * closes), and a test client socket that records what it receives, when, and how it closed. Every wait
 * is bounded, and everything a test starts is closed by its teardown.
 */
import type { ExecutionContext } from "ava";
import * as net from "node:net";
import { performance } from "node:perf_hooks";
import { Toxiproxy, type ICreateToxicBody, type Proxy } from "toxiproxy-node-client";
import { ToxiproxyServer } from "../../chaos/toxiproxy/index.ts";

/** The bound on every wait in these tests; none should come near it. */
export const WAIT_MS = 5000;

export interface TestToxiproxy {
  readonly server: ToxiproxyServer;
  readonly client: Toxiproxy;
  readonly url: string;
}

export async function startToxiproxy(t: ExecutionContext, seed?: number): Promise<TestToxiproxy> {
  const server = await ToxiproxyServer.start({ host: "127.0.0.1", port: 0, ...(seed === undefined ? {} : { seed }) });
  t.teardown(() => server.close());
  return { server, client: new Toxiproxy(server.url), url: server.url };
}

export interface TestUpstream {
  readonly port: number;
  readonly address: string;
  /** Sockets the upstream accepted, in order. */
  readonly sockets: net.Socket[];
}

/** A TCP server on 127.0.0.1 that runs `onSocket` for each connection; closed at teardown. */
export async function startUpstream(t: ExecutionContext, onSocket: (socket: net.Socket) => void): Promise<TestUpstream> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port, address: `127.0.0.1:${port}`, sockets };
}

export async function startEcho(t: ExecutionContext): Promise<TestUpstream> {
  return startUpstream(t, (socket) => socket.pipe(socket));
}

/** A proxy named `name` on 127.0.0.1:0 to `upstream`, created through the client. */
export async function createProxy(toxiproxy: TestToxiproxy, name: string, upstream: TestUpstream): Promise<Proxy> {
  return toxiproxy.client.createProxy({ name, listen: "127.0.0.1:0", upstream: upstream.address });
}

/** The port a proxy listens on, from the listen address the server wrote back. */
export function portOf(proxy: Proxy): number {
  const match = /^127\.0\.0\.1:(\d+)$/.exec(proxy.listen);
  if (match === null) throw new Error(`proxy ${proxy.name} listens on ${proxy.listen}, not on 127.0.0.1:<port>`);
  return Number(match[1]);
}

/** A toxic body with the client's required fields filled with the server's defaults. */
export function toxic<T>(type: ICreateToxicBody<T>["type"], attributes: T, fields: Partial<ICreateToxicBody<T>> = {}): ICreateToxicBody<T> {
  const stream = fields.stream ?? "downstream";
  return { type, attributes, stream, name: fields.name ?? `${type}_${stream}`, toxicity: fields.toxicity ?? 1 };
}

export interface CloseRecord {
  readonly atMs: number;
  /** The error code the socket failed with (ECONNRESET for a reset), if it did. */
  readonly errorCode: string | undefined;
  /** The peer ended the stream with a FIN before the socket closed. */
  readonly ended: boolean;
}

/** A client socket that records every chunk with its arrival time, and how and when it closed. */
export class TestClient {
  readonly chunks: { readonly data: Buffer; readonly atMs: number }[] = [];
  readonly connectedAtMs: number;
  #errorCode: string | undefined;
  #ended = false;
  #close: CloseRecord | undefined;
  readonly #closed: Promise<CloseRecord>;

  private constructor(readonly socket: net.Socket) {
    this.connectedAtMs = performance.now();
    socket.on("data", (data: Buffer) => this.chunks.push({ data, atMs: performance.now() }));
    socket.on("end", () => {
      this.#ended = true;
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      this.#errorCode = error.code ?? error.message;
    });
    this.#closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#close = { atMs: performance.now(), errorCode: this.#errorCode, ended: this.#ended };
        resolve(this.#close);
      }),
    );
  }

  static async connect(t: ExecutionContext, port: number): Promise<TestClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const candidate = net.connect({ host: "127.0.0.1", port });
      candidate.once("connect", () => resolve(candidate));
      candidate.once("error", reject);
    });
    socket.setNoDelay(true);
    t.teardown(() => socket.destroy());
    return new TestClient(socket);
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks.map((chunk) => chunk.data));
  }

  get closeRecord(): CloseRecord | undefined {
    return this.#close;
  }

  /** Resolves with the arrival time of the chunk that brought the total to `bytes`. */
  async waitForBytes(bytes: number, timeoutMs = WAIT_MS): Promise<number> {
    await waitFor(() => this.received.length >= bytes || this.#close !== undefined, timeoutMs, `${bytes} bytes (got ${this.received.length})`);
    let total = 0;
    for (const chunk of this.chunks) {
      total += chunk.data.length;
      if (total >= bytes) return chunk.atMs;
    }
    throw new Error(`the connection closed after ${total} of ${bytes} bytes`);
  }

  async waitForClose(timeoutMs = WAIT_MS): Promise<CloseRecord> {
    return await withTimeout(this.#closed, timeoutMs, "the connection to close");
  }
}

/** Sends `payload` and resolves with the time until all of it came back (through an echo upstream). */
export async function echoRoundTripMs(client: TestClient, payload: Buffer): Promise<number> {
  const already = client.received.length;
  const sentAtMs = performance.now();
  client.socket.write(payload);
  const atMs = await client.waitForBytes(already + payload.length);
  return atMs - sentAtMs;
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Connects and expects a refusal (the proxy is not listening). */
export async function connectError(port: number): Promise<string> {
  return await new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** A fetch against the server, returning status, headers and the raw body text. */
export async function request(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}
