/**
 * TcpTransport over real sockets on 127.0.0.1 (ephemeral ports): messages flow in order between three
 * nodes, a killed peer is reported down at once and reconnected when it comes back, garbage, bad
 * messages, silence and wrong secrets close only the offending connection (the transport keeps
 * working and says why in its log), a full queue drops the oldest messages, and close() stops
 * everything. One test kills a peer process with SIGKILL. Every wait is bounded.
 */
import test from "ava";
import { spawn } from "node:child_process";
import * as net from "node:net";
import { fileURLToPath } from "node:url";
import type { Message } from "../../src/core/types.ts";
import { encodeFrame, FrameDecoder, type Frame } from "../../src/transport/frame.ts";
import { AcceptorHandshake, DialerHandshake, type HandshakeSettings } from "../../src/transport/handshake.ts";
import { encodeMessage } from "../../src/transport/message-codec.ts";
import { TcpTransport, TransportError } from "../../src/transport/tcp-transport.ts";
import { AUTH_OFF, handshakeSettings, heartbeat, members, SAMPLE_LIST, SHARED_SECRET, waitFor } from "./fixtures.ts";
import { closeAll, closedWithin, connectAll, rawConnect, startCluster, startNode, type TestNode } from "./tcp-harness.ts";

const WAIT_MS = 5000;

function contexts(node: TestNode, from: number): number[] {
  return node.received.filter((message) => message.from === from && message.type === "MsgHeartbeat" && message.term === 1).map((message) => (message as { context: number }).context);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Completes a real handshake as `settings.nodeId` against a transport, over a raw socket. */
async function rawHandshake(port: number, settings: HandshakeSettings, target: number): Promise<{ socket: net.Socket; frames: Frame[] }> {
  const socket = await rawConnect(port);
  const handshake = new DialerHandshake(settings, target);
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (const frame of handshake.start().outgoing) socket.write(encodeFrame(frame.type, frame.payload));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("raw handshake timed out")), WAIT_MS);
    socket.on("data", (chunk: Buffer) => {
      decoder.push(chunk);
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        if (handshake.finished) {
          frames.push(frame);
          continue;
        }
        const step = handshake.receive(frame);
        for (const out of step.outgoing) socket.write(encodeFrame(out.type, out.payload));
        if (step.outcome.state === "established") {
          clearTimeout(timer);
          resolve();
        } else if (step.outcome.state === "refused") {
          clearTimeout(timer);
          reject(new Error(step.outcome.refusal.reason));
        }
      }
    });
  });
  return { socket, frames };
}

test("three transports exchange every message type, and heartbeats in order", async (t) => {
  const nodes = await startCluster(3);
  try {
    const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
    // Sent before any connection is up: queued, then delivered in order.
    for (let i = 0; i < 300; i++) {
      n1.transport.send(heartbeat(1, 2, i));
      n1.transport.send(heartbeat(1, 3, i));
      n2.transport.send(heartbeat(2, 1, i));
      n3.transport.send(heartbeat(3, 2, i));
    }
    for (const message of SAMPLE_LIST) n1.transport.send(message); // All addressed 1 -> 2.
    await waitFor(() => contexts(n2, 1).length === 300 && contexts(n3, 1).length === 300 && contexts(n1, 2).length === 300 && contexts(n2, 3).length === 300, WAIT_MS, "all heartbeats");
    await waitFor(() => n2.received.length === 300 + 300 + SAMPLE_LIST.length, WAIT_MS, "every sample message");
    t.deepEqual(contexts(n2, 1).slice(0, 300), range(0, 300));
    t.deepEqual(contexts(n3, 1), range(0, 300));
    t.deepEqual(contexts(n1, 2), range(0, 300));
    t.deepEqual(contexts(n2, 3), range(0, 300));
    const samples = n2.received.filter((message) => message.from === 1).slice(300);
    t.deepEqual(samples, [...SAMPLE_LIST] as Message[]);
    await waitFor(() => n1.events.length >= 2, WAIT_MS, "peer up events");
    t.deepEqual([...n1.events].sort(), ["up n2", "up n3"]);
    t.true(n1.logs.some((line) => /^pgraft: peer n2 \(127\.0\.0\.1:\d+\) is up$/.test(line)), n1.logs.join("\n"));
    const counters = n1.transport.counters();
    t.is(counters.messagesSent, 600 + SAMPLE_LIST.length);
    t.is(counters.messagesReceived, 300);
    t.is(counters.connectionsOutbound, 2);
    t.is(counters.connectionsInbound, 2);
    t.true(counters.bytesSent > 0 && counters.bytesReceived > 0);
    t.is(counters.decodeErrors + counters.refusalsSent + counters.refusalsReceived + counters.messagesDropped, 0);
    t.deepEqual(n1.transport.peers().map((peer) => [peer.name, peer.up]), [["n2", true], ["n3", true]]);
  } finally {
    await closeAll(nodes);
  }
});

test("a killed peer is reported down at once and reconnected when it restarts on the same port", async (t) => {
  const nodes = await startCluster(2);
  const [n1, n2] = nodes as [TestNode, TestNode];
  let restarted: TestNode | undefined;
  try {
    await waitFor(() => n1.events.includes("up n2") && n2.events.includes("up n1"), WAIT_MS, "peers up");
    const killedMs = Date.now();
    await n2.transport.close();
    await waitFor(() => n1.events.some((event) => event.startsWith("down n2")), WAIT_MS, "peer down");
    t.true(Date.now() - killedMs < 1000, `peer down took ${Date.now() - killedMs} ms`);
    t.true(n1.logs.some((line) => line.startsWith("pgraft: peer n2 (127.0.0.1:") && line.includes(" is down: ")), n1.logs.join("\n"));
    // While n2 is away, messages queue (bounded) on n1.
    for (let i = 0; i < 5; i++) n1.transport.send(heartbeat(1, 2, i));
    restarted = await startNode({ id: 2, count: 2, listenPort: n2.port, ports: [n1.port, n2.port] });
    await waitFor(() => n1.events.filter((event) => event === "up n2").length === 2, WAIT_MS, "n2 up again");
    await waitFor(() => contexts(restarted!, 1).length === 5, WAIT_MS, "queued messages after restart");
    t.deepEqual(contexts(restarted, 1), range(0, 5));
    restarted.transport.send(heartbeat(2, 1, 99));
    await waitFor(() => contexts(n1, 2).includes(99), WAIT_MS, "a message from the restarted node");
    t.true(n1.transport.counters().connectionsOutbound >= 2);
  } finally {
    await closeAll(restarted === undefined ? [n1] : [n1, restarted]);
  }
});

test("a raw socket sending garbage is disconnected and the transport keeps working", async (t) => {
  const nodes = await startCluster(2);
  const [n1, n2] = nodes as [TestNode, TestNode];
  try {
    const garbage = await rawConnect(n2.port);
    garbage.write("GET / HTTP/1.1\r\nHost: pgraft\r\n\r\n");
    await closedWithin(garbage, WAIT_MS);
    const lie = await rawConnect(n2.port);
    lie.write(Buffer.from([1, 1, 0xff, 0xff, 0xff, 0xff])); // A hello claiming 4 GiB.
    await closedWithin(lie, WAIT_MS);
    await waitFor(() => n2.transport.counters().decodeErrors === 2, WAIT_MS, "two decode errors");
    t.true(n2.logs.some((line) => /^pgraft: Cannot decode frame from peer 127\.0\.0\.1:\d+: unknown frame version 71/.test(line)), n2.logs.join("\n"));
    n1.transport.send(heartbeat(1, 2, 7));
    await waitFor(() => contexts(n2, 1).includes(7), WAIT_MS, "a message after the garbage");
    t.pass();
  } finally {
    await closeAll(nodes);
  }
});

test("an authenticated peer sending a bad or misaddressed message is disconnected, others are not", async (t) => {
  // Three members; node 3 is played by raw sockets that know the secret.
  const nodes = await startCluster(2, () => ({ count: 3 }));
  const [n1, n2] = nodes as [TestNode, TestNode];
  try {
    const malformed = await rawHandshake(n2.port, handshakeSettings(3), 2);
    malformed.socket.write(encodeFrame("message", Buffer.from('{"type":"MsgHeartbeat","from":3,"to":2,"term":1,"commit":-1,"context":0}')));
    await closedWithin(malformed.socket, WAIT_MS);
    const spoofed = await rawHandshake(n2.port, handshakeSettings(3), 2);
    spoofed.socket.write(encodeFrame("message", encodeMessage(heartbeat(1, 2, 1000))));
    await closedWithin(spoofed.socket, WAIT_MS);
    const wrongWay = await rawHandshake(n2.port, handshakeSettings(3), 2);
    wrongWay.socket.write(encodeFrame("pong"));
    await closedWithin(wrongWay.socket, WAIT_MS);
    await waitFor(() => n2.transport.counters().decodeErrors === 3, WAIT_MS, "three decode errors");
    await waitFor(() => n2.logs.filter((line) => line.includes("closing the connection")).length === 3, WAIT_MS, "three logged closures");
    const text = n2.logs.join("\n");
    t.regex(text, /pgraft: Cannot decode Raft message from peer n3 at 127\.0\.0\.1:\d+: field "commit" must be an integer >= 0: received -1; closing the connection/);
    t.regex(text, /claims to come from node 1, but the connection authenticated node 3/);
    t.regex(text, /Cannot accept a pong frame from peer n3 at 127\.0\.0\.1:\d+ on a connection the peer dialed/);
    t.false(n2.received.some((message) => message.from === 3 || (message.type === "MsgHeartbeat" && message.context === 1000)));
    n1.transport.send(heartbeat(1, 2, 8));
    await waitFor(() => contexts(n2, 1).includes(8), WAIT_MS, "n1 still delivers");
    t.false(n1.events.some((event) => event.startsWith("down")));
  } finally {
    await closeAll(nodes);
  }
});

test("a silent connection is closed by the handshake timeout, and a silent peer by the idle timeout", async (t) => {
  const nodes = await startCluster(2, () => ({ count: 3, limits: { handshakeTimeoutMs: 200, pingIntervalMs: 50, idleTimeoutMs: 200 } }));
  const [, n2] = nodes as [TestNode, TestNode];
  try {
    const mute = await rawConnect(n2.port);
    const startedMs = Date.now();
    const received: Buffer[] = [];
    mute.on("data", (chunk: Buffer) => received.push(chunk));
    await closedWithin(mute, WAIT_MS);
    t.true(Date.now() - startedMs >= 150, "not before the timeout");
    const decoder = new FrameDecoder();
    decoder.push(Buffer.concat(received));
    t.is(decoder.next()?.type, "refuse", "the peer is told why");
    await waitFor(() => n2.logs.some((line) => /^pgraft: Refused peer at 127\.0\.0\.1:\d+: the handshake between the peer and node 2 did not finish within 200 ms$/.test(line)), WAIT_MS, "the timeout logged");

    const idle = await rawHandshake(n2.port, handshakeSettings(3), 2);
    const establishedMs = Date.now();
    await closedWithin(idle.socket, WAIT_MS);
    t.true(Date.now() - establishedMs >= 150, "not before the idle timeout");
    await waitFor(() => n2.logs.some((line) => /^pgraft: nothing arrived from peer n3 at 127\.0\.0\.1:\d+ for \d+ ms$/.test(line)), WAIT_MS, "the idle closure logged");
  } finally {
    await closeAll(nodes);
  }
});

test("a peer that stops answering pings is reported down by the idle timeout", async (t) => {
  // A fake node 2 that completes the handshake and then never answers.
  const server = net.createServer((socket) => {
    const handshake = new AcceptorHandshake(handshakeSettings(2, { memberIds: [1, 2] }));
    const decoder = new FrameDecoder();
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      decoder.push(chunk);
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        if (handshake.finished) continue; // Swallow pings: a hung process.
        for (const out of handshake.receive(frame).outgoing) socket.write(encodeFrame(out.type, out.payload));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const n1 = await startNode({ id: 1, count: 2, ports: [0, port], limits: { pingIntervalMs: 50, idleTimeoutMs: 250 } });
  try {
    await waitFor(() => n1.events.includes("up n2"), WAIT_MS, "up");
    await waitFor(() => n1.events.some((event) => event.startsWith("down n2")), WAIT_MS, "down");
    t.regex(n1.events.find((event) => event.startsWith("down n2"))!, /down n2: nothing arrived from peer n2 \(127\.0\.0\.1:\d+\) for \d+ ms/);
  } finally {
    await n1.transport.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("a peer with the wrong secret is refused over TCP, and both sides log why", async (t) => {
  const nodes = await startCluster(2, (id) => ({
    authentication: id === 1 ? SHARED_SECRET : { mode: "shared_secret", secret: "a-different-secret-for-node-2", secretFile: undefined },
  }));
  const [n1, n2] = nodes as [TestNode, TestNode];
  try {
    n1.transport.send(heartbeat(1, 2, 1));
    await waitFor(
      () => n1.logs.some((line) => line.includes("could not prove")) && n2.logs.some((line) => line.includes("could not prove")),
      WAIT_MS,
      "refusals logged on both sides",
    );
    // Each node dials the other: as a dialer it refuses the acceptor's proof, as an acceptor it hears why.
    for (const [node, other] of [[n1, n2], [n2, n1]] as const) {
      await waitFor(() => node.logs.some((line) => line.includes("refused this node")), WAIT_MS, `n${node.id} hears the refusal`);
      const text = node.logs.join("\n");
      t.regex(text, new RegExp(`pgraft: Refused peer n${other.id} \\(127\\.0\\.0\\.1:\\d+\\): node ${other.id} could not prove it holds node ${node.id}'s secret`));
      t.regex(text, new RegExp(`pgraft: Peer at 127\\.0\\.0\\.1:\\d+ refused this node: node ${node.id} could not prove it holds node ${other.id}'s secret`));
    }
    t.deepEqual(n1.events, []);
    t.deepEqual(n2.events, []);
    t.deepEqual(n2.received, []);
    const counters = [n1.transport.counters(), n2.transport.counters()];
    t.true(counters.every((c) => c.refusalsSent > 0 && c.refusalsReceived > 0), JSON.stringify(counters));
    t.is(n1.transport.peers()[0]?.queuedMessages, 1);
  } finally {
    await closeAll(nodes);
  }
});

test("a node of another cluster is refused over TCP with both cluster ids in the log", async (t) => {
  const nodes = await startCluster(2, (id) => ({ clusterId: id === 1 ? "prod" : "staging", authentication: AUTH_OFF }));
  const [n1, n2] = nodes as [TestNode, TestNode];
  try {
    await waitFor(() => n1.logs.some((line) => line.includes('"staging"')) && n2.logs.some((line) => line.includes('"staging"')), WAIT_MS, "logs");
    t.true(n1.logs.some((line) => /^pgraft: Refused peer at 127\.0\.0\.1:\d+: node 2 presented cluster id "staging" but node 1 is in cluster "prod"/.test(line)), n1.logs.join("\n"));
    t.true(n2.logs.some((line) => /^pgraft: Peer n1 \(127\.0\.0\.1:\d+\) refused this node: node 2 presented cluster id "staging"/.test(line)), n2.logs.join("\n"));
    t.deepEqual(n1.events, []);
  } finally {
    await closeAll(nodes);
  }
});

test("a full outbound queue drops the oldest messages and delivers the newest in order", async (t) => {
  const n1 = await startNode({ id: 1, count: 2, limits: { outboundQueueMessagesMax: 10 }, clock: () => 0 });
  let n2: TestNode | undefined;
  try {
    for (let i = 0; i < 25; i++) n1.transport.send(heartbeat(1, 2, i)); // n2's address is not known yet.
    t.is(n1.transport.peers()[0]?.queuedMessages, 10);
    t.is(n1.transport.counters().messagesDropped, 15);
    n2 = await startNode({ id: 2, count: 2, ports: [n1.port, 0] });
    connectAll([n1, n2]);
    await waitFor(() => contexts(n2!, 1).length === 10, WAIT_MS, "the newest ten");
    t.deepEqual(contexts(n2, 1), range(15, 25));
  } finally {
    await closeAll(n2 === undefined ? [n1] : [n1, n2]);
  }
});

test("messages queued longer than queuedFrameAgeMsMax for a down peer are dropped, not delivered late", async (t) => {
  // A leader that lost its quorum queued heartbeats for its crashed followers, then stepped down. When
  // a follower restarts seconds later, those heartbeats must not reach it: it would follow a leader that
  // no longer leads and refuse the pre-votes of the next election for an election timeout.
  let nowMs = 0;
  const n1 = await startNode({ id: 1, count: 2, limits: { queuedFrameAgeMsMax: 1000 }, clock: () => nowMs });
  let n2: TestNode | undefined;
  try {
    for (let i = 0; i < 5; i++) n1.transport.send(heartbeat(1, 2, i)); // Queued at 0 ms: n2 is down.
    nowMs = 900;
    for (let i = 5; i < 8; i++) n1.transport.send(heartbeat(1, 2, i)); // Queued at 900 ms.
    nowMs = 1500; // The first five are now 1500 ms old, the last three 600 ms.
    t.is(n1.transport.peers()[0]?.queuedMessages, 8, "frames are kept until the connection could send them");
    n2 = await startNode({ id: 2, count: 2, ports: [n1.port, 0] });
    connectAll([n1, n2]);
    await waitFor(() => contexts(n2!, 1).length === 3, WAIT_MS, "the three fresh heartbeats");
    t.deepEqual(contexts(n2, 1), range(5, 8));
    t.is(n1.transport.counters().messagesDropped, 5);
    t.true(n1.logs.some((line) => /dropped 5 messages queued for peer n2 \(127\.0\.0\.1:\d+\) more than 1000 ms ago/.test(line)), n1.logs.join("\n"));
    // Once connected, messages flow at once whatever the clock says.
    nowMs = 100_000;
    n1.transport.send(heartbeat(1, 2, 8));
    await waitFor(() => contexts(n2!, 1).length === 4, WAIT_MS, "a heartbeat sent while connected");
  } finally {
    await closeAll(n2 === undefined ? [n1] : [n1, n2]);
  }
});

test("send() drops a message too large for a frame, with a warning", async (t) => {
  const n1 = await startNode({ id: 1, count: 2, limits: { framePayloadBytesMax: 200 } });
  try {
    const big: Message = { type: "MsgApp", from: 1, to: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, commit: 0, entries: [{ index: 1, term: 1, kind: "command", data: "x".repeat(500) }] };
    n1.transport.send(big);
    t.is(n1.transport.counters().messagesDropped, 1);
    t.is(n1.transport.peers()[0]?.queuedMessages, 0);
    t.true(n1.logs.some((line) => /Cannot send MsgApp to peer n2 \(127\.0\.0\.1:0\): its payload of \d+ bytes exceeds the 200-byte frame limit; dropping it/.test(line)), n1.logs.join("\n"));
  } finally {
    await n1.transport.close();
  }
});

test("close() stops listening and dialing, and no callback runs afterwards", async (t) => {
  const nodes = await startCluster(2);
  const [n1, n2] = nodes as [TestNode, TestNode];
  await waitFor(() => n1.events.includes("up n2") && n2.events.includes("up n1"), WAIT_MS, "peers up");
  await n1.transport.close();
  await n1.transport.close(); // Idempotent.
  const eventsAtClose = n1.events.length;
  n1.transport.send(heartbeat(1, 2, 1));
  t.is(n1.transport.counters().messagesDropped, 1);
  // The port is free again: nothing listens on it any more.
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(n1.port, "127.0.0.1", resolve);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  await waitFor(() => n2.events.some((event) => event.startsWith("down n1")), WAIT_MS, "n2 sees n1 down");
  await n2.transport.close();
  t.is(n1.events.length, eventsAtClose);
});

test("start() reports a port in use as a TransportError that says what to do", async (t) => {
  const n1 = await startNode({ id: 1, count: 2 });
  try {
    const clash = new TcpTransport({
      clusterId: "prod",
      nodeId: 2,
      listenHost: "127.0.0.1",
      listenPort: n1.port,
      members: members(2),
      peerAuthentication: SHARED_SECRET,
      onMessage: () => {},
    });
    const error = await t.throwsAsync(clash.start(), { instanceOf: TransportError });
    t.regex(error?.message ?? "", /^Cannot listen for peers on 127\.0\.0\.1:\d+: .*EADDRINUSE.*; stop the process holding the port or change pgraft.listen_address$/);
    await clash.close();
    t.throws(() => new TcpTransport({ clusterId: "prod", nodeId: 5, listenHost: "127.0.0.1", listenPort: 0, members: members(2), peerAuthentication: SHARED_SECRET, onMessage: () => {} }), {
      instanceOf: TransportError,
      message: /node 5 is not among the members \(1, 2\)/,
    });
    t.throws(() => new TcpTransport({ clusterId: "prod", nodeId: 1, listenHost: "127.0.0.1", listenPort: 0, members: members(2), peerAuthentication: SHARED_SECRET, onMessage: () => {}, limits: { backoffMsMin: 0 } }), {
      message: /"backoffMsMin" must be a positive integer, received 0/,
    });
  } finally {
    await n1.transport.close();
  }
});

test("a peer process killed with SIGKILL is reported down at once", async (t) => {
  const n1 = await startNode({ id: 1, count: 2 });
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./peer-process.ts", import.meta.url)), String(n1.port)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the peer process did not start within 15 s")), 15_000);
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString("utf8");
        const match = /listening (\d+)/.exec(output);
        if (match !== null) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.once("exit", (code) => reject(new Error(`the peer process exited with ${code}`)));
    });
    n1.transport.setPeerAddress(2, "127.0.0.1", port);
    await waitFor(() => n1.events.includes("up n2"), WAIT_MS, "the peer process up");
    const killedMs = Date.now();
    child.kill("SIGKILL");
    await waitFor(() => n1.events.some((event) => event.startsWith("down n2")), WAIT_MS, "peer down");
    const downMs = Date.now() - killedMs;
    t.true(downMs < 1000, `peer down took ${downMs} ms`);
    t.log(`peer down ${downMs} ms after SIGKILL: ${n1.events.find((event) => event.startsWith("down n2"))}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await n1.transport.close();
  }
});
