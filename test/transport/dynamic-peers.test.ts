/**
 * TcpTransport.addPeer(), removePeer() and markRemoved() over real sockets on 127.0.0.1 (ephemeral
 * ports): a node that starts knowing only the founding members accepts a node it was not told about
 * when that node proves it is of the cluster, and replies by dialing it back at the address it
 * advertised, until addPeer() moves it to its configured address; a node of another cluster, one with a
 * malformed advertised address and one that markRemoved() named are refused and never dialed; once a
 * node is removed, its connections close and messages to it are dropped. Re-adding a known peer
 * only moves it, adding itself is ignored, and bad ids and ports are refused. Every wait is bounded and
 * every transport is closed in a finally block.
 */
import test from "ava";
import * as net from "node:net";
import type { ClusterMember } from "../../src/config/index.ts";
import type { NodeId } from "../../src/core/types.ts";
import { encodeFrame, FrameDecoder, type Frame } from "../../src/transport/frame.ts";
import { TcpTransport, TransportError } from "../../src/transport/tcp-transport.ts";
import { heartbeat, members, SHARED_SECRET, waitFor } from "./fixtures.ts";
import { closeAll, closedWithin, FAST_LIMITS, rawConnect, startNode, type TestNode } from "./tcp-harness.ts";

const WAIT_MS = 5000;
/** Several reconnect backoffs (FAST_LIMITS caps them at 300 ms): long enough to see a dial that should not happen. */
const QUIET_MS = 1200;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function contexts(node: TestNode, from: NodeId): number[] {
  return node.received.filter((message) => message.from === from && message.type === "MsgHeartbeat").map((message) => (message as { context: number }).context);
}

function member(name: string, nodeId: NodeId, port: number): ClusterMember {
  return { name, nodeId, host: "127.0.0.1", port };
}

/** A transport that is never started: addPeer() checks need no sockets. */
function unstarted(nodeId: NodeId = 1, count = 2): TcpTransport {
  return new TcpTransport({
    clusterId: "prod",
    nodeId,
    listenHost: "127.0.0.1",
    listenPort: 0,
    members: members(count),
    peerAuthentication: SHARED_SECRET,
    limits: FAST_LIMITS,
    onMessage: () => {},
  });
}

/**
 * Node 1 of a two-node cluster whose node 2 is not running (port 0: never dialed), and node 3, started
 * with a member list of node 1 and itself: node 3 dials node 1, which does not know it yet.
 */
async function startOutsider(): Promise<{ n1: TestNode; n3: TestNode }> {
  const n1 = await startNode({ id: 1, count: 2 });
  try {
    const n3 = await startNode({ id: 3, count: 0, members: [member("n1", 1, n1.port), member("n3", 3, 0)] });
    return { n1, n3 };
  } catch (error) {
    await n1.transport.close();
    throw error;
  }
}

/** Adds node 3 to node 1 and waits until both directions are up. */
async function join(n1: TestNode, n3: TestNode): Promise<void> {
  n1.transport.addPeer({ nodeId: 3, name: "n3", host: "127.0.0.1", port: n3.port });
  await waitFor(() => n1.events.includes("up n3") && n3.events.includes("up n1"), WAIT_MS, "node 1 and node 3 up to each other");
}

test("before addPeer() node 1 accepts node 3, which it does not know, and replies by dialing it back; addPeer() then moves it to its configured address", async (t) => {
  const { n1, n3 } = await startOutsider();
  try {
    // Node 3 dials node 1; node 1 accepts it and dials back at the address node 3 advertised.
    await waitFor(() => n3.events.includes("up n1") && n1.events.includes("up node 3"), WAIT_MS, "node 1 and node 3 up to each other");
    t.is(n1.transport.counters().refusalsSent, 0, "nothing refused");
    t.is(n3.transport.counters().refusalsReceived, 0);
    const learned = n1.transport.peers().find((peer) => peer.nodeId === 3);
    t.deepEqual(learned, { nodeId: 3, name: "node 3", address: `127.0.0.1:${n3.port}`, up: true, queuedMessages: 0, learned: true });
    const accepted = n1.logs.filter((line) => line.startsWith("pgraft: accepted node 3, not in this node's configuration yet: "));
    t.is(accepted.length, 1, n1.logs.join("\n"));
    t.true(accepted[0]!.includes(`replying through 127.0.0.1:${n3.port}, the address it advertised`), accepted[0]);

    // A request from node 3 and node 1's replies.
    for (let i = 0; i < 5; i++) n3.transport.send(heartbeat(3, 1, i));
    await waitFor(() => contexts(n1, 3).length === 5, WAIT_MS, "node 3's heartbeats at node 1");
    for (let i = 0; i < 5; i++) n1.transport.send(heartbeat(1, 3, i));
    await waitFor(() => contexts(n3, 1).length === 5, WAIT_MS, "node 1's replies at node 3");
    t.deepEqual(contexts(n1, 3), [0, 1, 2, 3, 4]);
    t.deepEqual(contexts(n3, 1), [0, 1, 2, 3, 4]);

    // The configuration names node 3 now: the learned peer gives way to the configured one.
    n1.transport.addPeer({ nodeId: 3, name: "n3", host: "127.0.0.1", port: n3.port });
    await waitFor(() => n1.events.includes("up n3"), WAIT_MS, "node 1 up to node 3 as a configured peer");
    t.deepEqual(n1.transport.peers().find((peer) => peer.nodeId === 3), { nodeId: 3, name: "n3", address: `127.0.0.1:${n3.port}`, up: true, queuedMessages: 0 });
    t.true(n1.logs.some((line) => line.startsWith(`pgraft: peer n3 (127.0.0.1:${n3.port}) joined; dialing it`)), n1.logs.join("\n"));
    for (let i = 5; i < 10; i++) n1.transport.send(heartbeat(1, 3, i));
    for (let i = 5; i < 10; i++) n3.transport.send(heartbeat(3, 1, i));
    await waitFor(() => contexts(n3, 1).length === 10 && contexts(n1, 3).length === 10, WAIT_MS, "heartbeats both ways");
    t.deepEqual(contexts(n1, 3), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "node 3's connection into node 1 survived the change");
    t.deepEqual(contexts(n3, 1).slice(5), [5, 6, 7, 8, 9]);
    t.is(n1.logs.filter((line) => line.startsWith("pgraft: accepted node 3,")).length, 1, "logged once");
  } finally {
    await closeAll([n1, n3]);
  }
});

test("a node that markRemoved() named is still refused, while another unknown node is accepted", async (t) => {
  const n1 = await startNode({ id: 1, count: 2 });
  const nodes: TestNode[] = [n1];
  try {
    n1.transport.markRemoved(3, 17);
    const n3 = await startNode({ id: 3, count: 0, members: [member("n1", 1, n1.port), member("n3", 3, 0)] });
    nodes.push(n3);
    const n5 = await startNode({ id: 5, count: 0, members: [member("n1", 1, n1.port), member("n5", 5, 0)] });
    nodes.push(n5);
    const removedRefusal = (): boolean => n3.logs.some((line) => line.includes("node 3 was removed from the cluster") && line.includes("commit index 17"));
    await waitFor(() => removedRefusal() && n1.events.includes("up node 5") && n5.events.includes("up n1"), WAIT_MS, "node 3 refused and node 5 accepted");
    await sleep(QUIET_MS);
    t.false(n3.events.includes("up n1"), "node 3 never gets through");
    t.deepEqual(n1.transport.peers().map((peer) => peer.nodeId), [2, 5], "node 3 is not learned");
    t.false(n1.logs.some((line) => line.startsWith("pgraft: accepted node 3")));
    t.is(n3.transport.counters().connectionsInbound, 0, "node 1 never dials node 3");
  } finally {
    await closeAll(nodes);
  }
});

test("a node of another cluster is refused even though it advertises where it listens, and node 1 does not dial it", async (t) => {
  const n1 = await startNode({ id: 1, count: 2 });
  const nodes: TestNode[] = [n1];
  try {
    const other = await startNode({ id: 3, count: 0, clusterId: "other", members: [member("n1", 1, n1.port), member("n3", 3, 0)] });
    nodes.push(other);
    const refused = (): boolean => n1.logs.some((line) => line.includes('node 3 presented cluster id "other" but node 1 is in cluster "prod"'));
    await waitFor(refused, WAIT_MS, "node 1 refusing the other cluster's node");
    // The same node id in the right cluster is accepted: the refusal is about the cluster id alone.
    const same = await startNode({ id: 4, count: 0, members: [member("n1", 1, n1.port), member("n4", 4, 0)] });
    nodes.push(same);
    await waitFor(() => n1.events.includes("up node 4"), WAIT_MS, "node 1 accepting node 4 of its own cluster");
    t.false(other.events.includes("up n1"));
    t.deepEqual(n1.transport.peers().map((peer) => peer.nodeId), [2, 4]);
    t.is(other.transport.counters().connectionsInbound, 0, "node 1 never dials the other cluster's node");
  } finally {
    await closeAll(nodes);
  }
});

test("a hello with a malformed advertised address is refused with a clear reason, and node 1 keeps serving", async (t) => {
  const n1 = await startNode({ id: 1, count: 2 });
  try {
    const socket = await rawConnect(n1.port);
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    socket.on("data", (chunk: Buffer) => {
      decoder.push(chunk);
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) frames.push(frame);
    });
    const hello = { protocolVersion: 2, clusterId: "prod", nodeId: 3, targetNodeId: 1, auth: "shared_secret", nonce: "09".repeat(32), listenAddress: "127.0.0.1:99999" };
    socket.write(encodeFrame("hello", Buffer.from(JSON.stringify(hello))));
    await closedWithin(socket, WAIT_MS);
    t.deepEqual(frames.map((frame) => frame.type), ["refuse"]);
    const body = JSON.parse(Buffer.from(frames[0]!.payload).toString("utf8")) as { code: string; reason: string };
    t.is(body.code, "malformed");
    t.is(
      body.reason,
      'node 3 advertised the listen address "127.0.0.1:99999", which node 1 cannot dial back: port "99999" in "127.0.0.1:99999" is out of range; use a port from 1 to 65535; ' +
        "give node 3 a valid host:port in pgraft.initial_cluster (or the address it was added with)",
    );
    await waitFor(() => n1.logs.some((line) => line.includes("cannot dial back")), WAIT_MS, "the refusal in node 1's log");
    t.deepEqual(n1.transport.peers().map((peer) => peer.nodeId), [2], "nothing learned");
    t.is(n1.transport.counters().connectionAttempts, 0, "nothing dialed");
  } finally {
    await n1.transport.close();
  }
});

test("a transport whose own peer address cannot be advertised is refused at construction", (t) => {
  t.throws(
    () =>
      new TcpTransport({
        clusterId: "prod",
        nodeId: 1,
        listenHost: "127.0.0.1",
        listenPort: 0,
        members: [member("n1", 1, 7001), member("n2", 2, 7002)].map((entry, i) => (i === 0 ? { ...entry, host: "bad host" } : entry)),
        peerAuthentication: SHARED_SECRET,
        onMessage: () => {},
      }),
    { instanceOf: TransportError, message: /^Cannot create the transport: this node's peer address "bad host:7001", sent to peers so they can dial it back, is unusable: "bad host" in "bad host:7001" is not a valid host name/ },
  );
});

test("removePeer() closes the connections both ways and drops later sends; markRemoved() keeps node 1 from dialing node 3 again", async (t) => {
  const { n1, n3 } = await startOutsider();
  try {
    await join(n1, n3);
    n1.transport.send(heartbeat(1, 3, 1));
    await waitFor(() => contexts(n3, 1).includes(1), WAIT_MS, "a message before the removal");
    const refusalsBefore = n1.transport.counters().refusalsSent;

    n1.transport.markRemoved(3, 9);
    t.deepEqual(n1.transport.peers().map((peer) => peer.nodeId), [2]);
    t.true(n1.logs.some((line) => line.startsWith(`pgraft: peer n3 (127.0.0.1:${n3.port}) left the cluster; no longer dialing it`)), n1.logs.join("\n"));
    // Node 1 closed node 3's inbound connection, so node 3 sees node 1 go down; and node 1's dial to 3 is gone.
    await waitFor(() => n3.events.some((event) => event.startsWith("down n1")), WAIT_MS, "node 3 seeing node 1 down");
    const dropped = n1.transport.counters().messagesDropped;
    n1.transport.send(heartbeat(1, 3, 2));
    t.is(n1.transport.counters().messagesDropped, dropped + 1, "a send to a removed node is dropped");

    const attempts = n1.transport.counters().connectionAttempts;
    const inboundAt3 = n3.transport.counters().connectionsInbound;
    const fromThree = contexts(n1, 3).length;
    n3.transport.send(heartbeat(3, 1, 50));
    await sleep(QUIET_MS);
    t.is(n1.transport.counters().connectionAttempts, attempts, "node 1 does not dial the removed node");
    t.is(n3.transport.counters().connectionsInbound, inboundAt3, "node 3's listener sees no new connection from node 1");
    t.false(contexts(n3, 1).includes(2));
    t.is(contexts(n1, 3).length, fromThree, "node 3's messages no longer reach node 1");
    t.true(n1.transport.counters().refusalsSent > refusalsBefore, "node 3 keeps dialing and node 1 refuses it again");
    t.false(n1.events.some((event) => event.startsWith("down n3")), "a removed peer is forgotten, not reported down");
  } finally {
    await closeAll([n1, n3]);
  }
});

test("a learned peer is forgotten once its last connection to node 1 closes, and learned again when it dials anew", async (t) => {
  const { n1, n3 } = await startOutsider();
  try {
    await waitFor(() => n1.events.includes("up node 3"), WAIT_MS, "node 1 dialing node 3 back");
    await n3.transport.close();
    await waitFor(() => !n1.transport.peers().some((peer) => peer.nodeId === 3), WAIT_MS, "node 1 forgetting node 3");
    t.true(n1.logs.some((line) => line.startsWith(`pgraft: forgot peer node 3 (127.0.0.1:${n3.port}): it was not in this node's configuration`)), n1.logs.join("\n"));
    const attempts = n1.transport.counters().connectionAttempts;
    await sleep(QUIET_MS);
    t.is(n1.transport.counters().connectionAttempts, attempts, "node 1 no longer dials the node it forgot");
    const again = await startNode({ id: 3, count: 0, members: [member("n1", 1, n1.port), member("n3", 3, 0)] });
    try {
      await waitFor(() => n1.events.filter((event) => event === "up node 3").length === 2 && again.events.includes("up n1"), WAIT_MS, "node 3 learned again");
      t.like(n1.transport.peers().find((peer) => peer.nodeId === 3), { address: `127.0.0.1:${again.port}`, learned: true });
      t.is(n1.logs.filter((line) => line.startsWith("pgraft: accepted node 3,")).length, 1, "the acceptance is logged once per node");
    } finally {
      await again.transport.close();
    }
  } finally {
    await closeAll([n1, n3]);
  }
});

test("after removePeer() alone (no removal committed), a node that dials again is accepted as one not known yet", async (t) => {
  const { n1, n3 } = await startOutsider();
  try {
    await join(n1, n3);
    n1.transport.removePeer(3);
    t.deepEqual(n1.transport.peers().map((peer) => peer.nodeId), [2]);
    await waitFor(() => n1.events.includes("up node 3"), WAIT_MS, "node 1 dialing node 3 back after its redial");
    n3.transport.send(heartbeat(3, 1, 60));
    await waitFor(() => contexts(n1, 3).includes(60), WAIT_MS, "node 3's message at node 1");
    n1.transport.send(heartbeat(1, 3, 61));
    await waitFor(() => contexts(n3, 1).includes(61), WAIT_MS, "node 1's reply at node 3");
    t.like(n1.transport.peers().find((peer) => peer.nodeId === 3), { name: "node 3", learned: true });
  } finally {
    await closeAll([n1, n3]);
  }
});

test("removePeer() stops the redials of a peer that never answered the handshake", async (t) => {
  // Node 3 is a bare listener that drops every connection: node 1 keeps redialing it with backoff.
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const n1 = await startNode({ id: 1, count: 2 });
  try {
    n1.transport.addPeer({ nodeId: 3, host: "127.0.0.1", port });
    await waitFor(() => accepted >= 3, WAIT_MS, "node 1 redialing node 3");
    t.is(n1.transport.peers().find((peer) => peer.nodeId === 3)?.name, "node 3", "a peer added without a name is named by its id");
    n1.transport.removePeer(3);
    await sleep(100); // A dial already in flight may still land.
    const seen = accepted;
    const attempts = n1.transport.counters().connectionAttempts;
    await sleep(QUIET_MS);
    t.is(accepted, seen, "no connection reaches node 3's listener after the removal");
    t.is(n1.transport.counters().connectionAttempts, attempts);
  } finally {
    await n1.transport.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
});

test("removePeer() drops what was queued for the peer and counts it", async (t) => {
  const n1 = await startNode({ id: 1, count: 2 });
  try {
    n1.transport.addPeer({ nodeId: 3, name: "n3", host: "127.0.0.1", port: 0 }); // Port 0: queued, never dialed.
    for (let i = 0; i < 4; i++) n1.transport.send(heartbeat(1, 3, i));
    t.is(n1.transport.peers().find((peer) => peer.nodeId === 3)?.queuedMessages, 4);
    const dropped = n1.transport.counters().messagesDropped;
    n1.transport.removePeer(3);
    t.is(n1.transport.counters().messagesDropped, dropped + 4);
    t.notThrows(() => n1.transport.removePeer(3), "removing an unknown peer is a no-op");
    t.notThrows(() => n1.transport.removePeer(42));
    t.is(n1.transport.counters().messagesDropped, dropped + 4);
  } finally {
    await n1.transport.close();
  }
});

test("a removed peer added again is dialed and reached again", async (t) => {
  const { n1, n3 } = await startOutsider();
  try {
    await join(n1, n3);
    n1.transport.removePeer(3);
    await waitFor(() => n3.events.some((event) => event.startsWith("down n1")), WAIT_MS, "node 3 seeing node 1 down");
    n1.transport.addPeer({ nodeId: 3, name: "n3", host: "127.0.0.1", port: n3.port });
    await waitFor(() => n1.events.filter((event) => event === "up n3").length === 2 && n3.events.filter((event) => event === "up n1").length === 2, WAIT_MS, "both up again");
    n1.transport.send(heartbeat(1, 3, 7));
    n3.transport.send(heartbeat(3, 1, 8));
    await waitFor(() => contexts(n3, 1).includes(7) && contexts(n1, 3).includes(8), WAIT_MS, "messages after re-adding");
    t.pass();
  } finally {
    await closeAll([n1, n3]);
  }
});

test("a peer added before start() is dialed when the transport starts", async (t) => {
  const n3 = await startNode({ id: 3, count: 0, members: [member("n1", 1, 0), member("n3", 3, 0)] });
  const transport = unstarted();
  const received: number[] = [];
  try {
    transport.addPeer({ nodeId: 3, name: "n3", host: "127.0.0.1", port: n3.port });
    t.is(transport.counters().connectionAttempts, 0, "nothing is dialed before start()");
    transport.send(heartbeat(1, 3, 5));
    await transport.start();
    await waitFor(() => contexts(n3, 1).includes(5), WAIT_MS, "the queued message");
    received.push(...contexts(n3, 1));
    t.deepEqual(received, [5]);
    t.true(transport.counters().connectionAttempts >= 1);
  } finally {
    await transport.close();
    await n3.transport.close();
  }
});

test("addPeer() of a known peer only updates its address and dials it there", async (t) => {
  const n1 = await startNode({ id: 1, count: 2 }); // Node 2 at port 0: not dialed yet.
  let n2: TestNode | undefined;
  try {
    n2 = await startNode({ id: 2, count: 2, ports: [n1.port, 0] });
    t.is(n1.transport.counters().connectionAttempts, 0);
    n1.transport.addPeer({ nodeId: 2, name: "renamed", host: "127.0.0.1", port: n2.port });
    const peers = n1.transport.peers();
    t.is(peers.length, 1, "no second peer for the same id");
    t.like(peers[0], { nodeId: 2, name: "n2", address: `127.0.0.1:${n2.port}` });
    await waitFor(() => n1.events.includes("up n2"), WAIT_MS, "node 1 up to node 2 at its new address");
    n1.transport.send(heartbeat(1, 2, 3));
    await waitFor(() => contexts(n2!, 1).includes(3), WAIT_MS, "a message at the new address");
    t.false(n1.logs.some((line) => line.includes("joined; dialing it")), "a known peer does not join again");
    t.throws(() => n1.transport.addPeer({ nodeId: 2, host: "127.0.0.1", port: 70_000 }), {
      instanceOf: TransportError,
      message: "Cannot configure the transport: the port of node 2 must be an integer from 0 to 65535, received 70000",
    });
    t.like(n1.transport.peers()[0], { address: `127.0.0.1:${n2.port}` }, "a refused update leaves the address alone");
  } finally {
    await closeAll(n2 === undefined ? [n1] : [n1, n2]);
  }
});

test("addPeer() of the node itself is ignored", async (t) => {
  const n1 = await startNode({ id: 1, count: 2 });
  try {
    const before = n1.transport.peers();
    n1.transport.addPeer({ nodeId: 1, name: "me", host: "127.0.0.1", port: n1.port });
    t.deepEqual(n1.transport.peers(), before);
    await sleep(100);
    t.is(n1.transport.counters().connectionAttempts, 0, "it does not dial itself");
    t.false(n1.logs.some((line) => line.includes("joined")));
  } finally {
    await n1.transport.close();
  }
});

test("addPeer() refuses an invalid node id or port with a TransportError and adds nothing", (t) => {
  const transport = unstarted();
  for (const nodeId of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
    t.throws(() => transport.addPeer({ nodeId, host: "127.0.0.1", port: 7003 }), {
      instanceOf: TransportError,
      message: `Cannot add node ${nodeId} as a peer: a node id is a positive integer`,
    }, String(nodeId));
  }
  for (const port of [-1, 65_536, 1.5, Number.NaN]) {
    t.throws(() => transport.addPeer({ nodeId: 3, host: "127.0.0.1", port }), {
      instanceOf: TransportError,
      message: `Cannot configure the transport: the port of node 3 must be an integer from 0 to 65535, received ${port}`,
    }, String(port));
  }
  t.deepEqual(transport.peers().map((peer) => peer.nodeId), [2], "nothing was added");
  transport.addPeer({ nodeId: 3, host: "127.0.0.1", port: 65_535 });
  transport.addPeer({ nodeId: 4, host: "127.0.0.1", port: 0 });
  t.deepEqual(transport.peers().map((peer) => peer.nodeId), [2, 3, 4], "the bounds themselves are accepted");
});

test("addPeer() refuses a peer beyond the bound of 64", (t) => {
  const transport = unstarted();
  for (let nodeId = 3; nodeId <= 65; nodeId++) transport.addPeer({ nodeId, host: "127.0.0.1", port: 0 });
  t.is(transport.peers().length, 64);
  t.throws(() => transport.addPeer({ nodeId: 66, host: "127.0.0.1", port: 0 }), {
    instanceOf: TransportError,
    message: "Cannot add node 66 as a peer: node 1 already has 64 peers",
  });
  t.notThrows(() => transport.addPeer({ nodeId: 65, host: "127.0.0.1", port: 9 }), "moving a known peer is still allowed");
  transport.removePeer(65);
  t.notThrows(() => transport.addPeer({ nodeId: 66, host: "127.0.0.1", port: 0 }), "a removal makes room");
});
