/**
 * Real TcpTransports on 127.0.0.1 for the TCP and TLS tests: each node records what it received, its
 * peer events and its log lines, and a cluster is wired on ephemeral ports (listen on port 0, then
 * tell every node where the others are).
 */
import * as net from "node:net";
import type { ClusterMember, PeerAuthentication } from "../../src/config/index.ts";
import type { Message, NodeId } from "../../src/core/types.ts";
import { TcpTransport, type TcpTransportOptions, type TransportLimits, type TransportTls } from "../../src/transport/tcp-transport.ts";
import { members, SHARED_SECRET } from "./fixtures.ts";

export interface TestNode {
  readonly id: NodeId;
  readonly transport: TcpTransport;
  readonly port: number;
  readonly received: Message[];
  /** "up n2", "down n2: reason" */
  readonly events: string[];
  readonly logs: string[];
}

export const FAST_LIMITS: Partial<TransportLimits> = { backoffMsMin: 20, backoffMsMax: 300, handshakeTimeoutMs: 2000 };

export interface NodeOptions {
  readonly id: NodeId;
  readonly count: number;
  readonly listenPort?: number;
  readonly ports?: readonly number[];
  readonly clusterId?: string;
  readonly authentication?: PeerAuthentication;
  readonly tls?: TransportTls;
  readonly limits?: Partial<TransportLimits>;
  readonly members?: readonly ClusterMember[];
  /** The transport's clock for queued frames' ages (a test moves it by hand). */
  readonly clock?: () => number;
}

export async function startNode(options: NodeOptions): Promise<TestNode> {
  const received: Message[] = [];
  const events: string[] = [];
  const logs: string[] = [];
  const transportOptions: TcpTransportOptions = {
    clusterId: options.clusterId ?? "prod",
    nodeId: options.id,
    listenHost: "127.0.0.1",
    listenPort: options.listenPort ?? 0,
    members: options.members ?? members(options.count, options.ports),
    peerAuthentication: options.authentication ?? SHARED_SECRET,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    limits: { ...FAST_LIMITS, ...options.limits },
    onMessage: (message) => received.push(message),
    onPeerUp: (event) => events.push(`up ${event.name}`),
    onPeerDown: (event) => events.push(`down ${event.name}: ${event.reason}`),
    logger: { info: (line) => logs.push(line), warn: (line) => logs.push(line) },
  };
  const transport = new TcpTransport(transportOptions);
  const address = await transport.start();
  return { id: options.id, transport, port: address.port, received, events, logs };
}

/** Starts `count` nodes on ephemeral ports and tells each where the others listen. */
export async function startCluster(count: number, perNode: (id: NodeId) => Partial<NodeOptions> = () => ({})): Promise<TestNode[]> {
  const nodes: TestNode[] = [];
  for (let id = 1; id <= count; id++) nodes.push(await startNode({ id, count, ...perNode(id) }));
  connectAll(nodes);
  return nodes;
}

export function connectAll(nodes: readonly TestNode[]): void {
  for (const node of nodes) {
    for (const other of nodes) if (other.id !== node.id) node.transport.setPeerAddress(other.id, "127.0.0.1", other.port);
  }
}

export async function closeAll(nodes: readonly TestNode[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.transport.close()));
}

/** A raw client socket, connected. */
export async function rawConnect(port: number): Promise<net.Socket> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Resolves when the socket closes (with whether the other end closed it), or rejects after timeoutMs. */
export async function closedWithin(socket: net.Socket, timeoutMs: number): Promise<void> {
  if (socket.destroyed) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on("error", () => {});
    socket.resume();
  });
}
