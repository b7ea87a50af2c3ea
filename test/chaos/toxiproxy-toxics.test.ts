/**
 * Each toxic's effect on real TCP traffic: a client on 127.0.0.1 talks through a proxy of the
 * Toxiproxy-compatible server to a local upstream (an echo, or one that answers and closes), and the
 * test checks what arrives, when, and how the connection ends. Toxics are set through
 * toxiproxy-node-client. Timing checks are lower bounds only ("at least the latency"), since the machine
 * may be slow; "nothing arrives" checks wait a fixed spell and see nothing.
 */
import test from "ava";
import { performance } from "node:perf_hooks";
import type { Bandwidth, Latency, Slicer, Slowclose, Timeout } from "toxiproxy-node-client";
import { createProxy, echoRoundTripMs, portOf, sleep, startEcho, startToxiproxy, startUpstream, TestClient, toxic, waitFor, WAIT_MS } from "./toxiproxy-harness.ts";

/** The client declares these attribute types but does not export them. */
interface LimitData {
  readonly bytes: number;
}
interface ResetPeer {
  readonly timeout: number;
}

/** Lets a freshly accepted connection be dialled through before a toxic is added to it. */
async function openEchoConnection(t: Parameters<typeof startEcho>[0], port: number): Promise<TestClient> {
  const client = await TestClient.connect(t, port);
  await echoRoundTripMs(client, Buffer.from("warm"));
  return client;
}

test("latency delays each echo by at least the latency, downstream and upstream, and chained latencies add up", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic<Latency>("latency", { latency: 200, jitter: 0 }));
  const client = await TestClient.connect(t, portOf(proxy));
  for (let round = 0; round < 3; round++) t.true((await echoRoundTripMs(client, Buffer.from(`ping ${round}`))) >= 200);
  t.is(client.received.toString(), "ping 0ping 1ping 2");

  await proxy.addToxic(toxic<Latency>("latency", { latency: 150, jitter: 0 }, { stream: "upstream" }));
  const both = await TestClient.connect(t, portOf(proxy));
  t.true((await echoRoundTripMs(both, Buffer.from("both"))) >= 350);
  await proxy.addToxic(toxic<Latency>("latency", { latency: 150, jitter: 0 }, { name: "second" }));
  t.true((await echoRoundTripMs(both, Buffer.from("chained"))) >= 500);
});

test("latency with jitter delays by at least latency - jitter and keeps the order of the data", async (t) => {
  const toxiproxy = await startToxiproxy(t, 11);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic<Latency>("latency", { latency: 100, jitter: 80 }));
  const client = await TestClient.connect(t, portOf(proxy));
  const sentAtMs = performance.now();
  const messages = Array.from({ length: 20 }, (_, i) => `<${i}>`);
  for (const message of messages) {
    client.socket.write(message);
    await sleep(2);
  }
  const lastAtMs = await client.waitForBytes(messages.join("").length);
  t.is(client.received.toString(), messages.join(""));
  t.true(client.chunks[0]!.atMs - sentAtMs >= 20);
  t.true(lastAtMs - sentAtMs >= 20);
});

test("a latency toxic added or updated while a connection is open applies to that connection", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  const client = await openEchoConnection(t, portOf(proxy));
  const added = await proxy.addToxic(toxic<Latency>("latency", { latency: 250, jitter: 0 }));
  t.true((await echoRoundTripMs(client, Buffer.from("added"))) >= 250);
  await added.update(toxic<Latency>("latency", { latency: 400, jitter: 0 }));
  t.true((await echoRoundTripMs(client, Buffer.from("updated"))) >= 400);
  // Data held by a latency toxic when it is removed is passed on, not lost.
  client.socket.write("held");
  await sleep(50);
  await added.remove();
  await client.waitForBytes("warmaddedupdatedheld".length);
  t.is(client.received.toString(), "warmaddedupdatedheld");
});

test("timeout drops the data and closes the connection after the timeout", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic<Timeout>("timeout", { timeout: 300 }));
  const client = await TestClient.connect(t, portOf(proxy));
  client.socket.write("lost");
  const closed = await client.waitForClose();
  t.is(client.received.length, 0);
  t.true(closed.atMs - client.connectedAtMs >= 300);
  t.is(closed.errorCode, undefined);
});

test("timeout 0 holds the connection open with every byte dropped; added live it applies at once; removing it closes the connection", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  const client = await openEchoConnection(t, portOf(proxy));
  const timeout = await proxy.addToxic(toxic<Timeout>("timeout", { timeout: 0 }, { stream: "upstream" }));
  client.socket.write("dropped");
  await sleep(400);
  t.is(client.received.toString(), "warm");
  t.is(client.closeRecord, undefined);
  t.is(echo.sockets[0]!.bytesRead, 4, "the upstream saw nothing after the toxic was added");
  await timeout.remove();
  await client.waitForClose();
  t.is(client.received.toString(), "warm");
});

test("limit_data closes the connection after exactly the given number of bytes", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic<LimitData>("limit_data", { bytes: 10 }));
  const client = await TestClient.connect(t, portOf(proxy));
  client.socket.write(Buffer.alloc(100, "a"));
  const closed = await client.waitForClose();
  t.is(client.received.toString(), "a".repeat(10));
  t.true(closed.ended);

  // The count survives an update: raising the limit lets only the difference through.
  const limited = await proxy.getToxic<LimitData>("limit_data_downstream");
  await limited.update(toxic<LimitData>("limit_data", { bytes: 30 }));
  const second = await TestClient.connect(t, portOf(proxy));
  await echoRoundTripMs(second, Buffer.alloc(20, "b"));
  await limited.update(toxic<LimitData>("limit_data", { bytes: 25 }));
  second.socket.write(Buffer.alloc(20, "c"));
  await second.waitForClose();
  t.is(second.received.toString(), "b".repeat(20) + "c".repeat(5));
});

test("reset_peer resets the client's connection (ECONNRESET) after the first data and the timeout", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic<ResetPeer>("reset_peer", { timeout: 300 }));
  const client = await TestClient.connect(t, portOf(proxy));
  const sentAtMs = performance.now();
  client.socket.write("hello");
  const closed = await client.waitForClose();
  t.is(closed.errorCode, "ECONNRESET");
  t.true(closed.atMs - sentAtMs >= 300);
  t.is(client.received.length, 0);

  await proxy.getToxic<ResetPeer>("reset_peer_downstream").then((reset) => reset.update(toxic<ResetPeer>("reset_peer", { timeout: 0 })));
  const immediate = await TestClient.connect(t, portOf(proxy));
  immediate.socket.write("hello");
  t.is((await immediate.waitForClose()).errorCode, "ECONNRESET");
});

test("slicer cuts data into several smaller chunks, in order and complete", async (t) => {
  const toxiproxy = await startToxiproxy(t, 3);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic<Slicer>("slicer", { average_size: 100, size_variation: 20, delay: 20_000 }));
  const client = await TestClient.connect(t, portOf(proxy));
  const payload = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  const sentAtMs = performance.now();
  client.socket.write(payload);
  const lastAtMs = await client.waitForBytes(payload.length);
  t.true(client.received.equals(payload));
  // Pieces hold at most 120 bytes, so 1000 bytes make at least 9, with 20 ms after each but the last
  // (TCP may still merge two pieces on a busy machine, so only a few separate reads are required).
  t.true(client.chunks.length >= 3, `the data arrived in ${client.chunks.length} reads`);
  t.true(lastAtMs - sentAtMs >= 8 * 20);
});

test("bandwidth makes a transfer take at least size / rate, and an update changes the rate of an open connection", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic<Bandwidth>("bandwidth", { rate: 100 }));
  const client = await TestClient.connect(t, portOf(proxy));
  const payload = Buffer.alloc(50_000, "z");
  t.true((await echoRoundTripMs(client, payload)) >= 500, "50 000 bytes at 100 KB/s take at least 500 ms");
  t.true(client.received.equals(payload));

  const bandwidth = await proxy.getToxic<Bandwidth>("bandwidth_downstream");
  await bandwidth.update(toxic<Bandwidth>("bandwidth", { rate: 20 }));
  t.true((await echoRoundTripMs(client, Buffer.alloc(10_000, "y"))) >= 500, "10 000 bytes at 20 KB/s take at least 500 ms");
});

test("bandwidth 0 holds the data until the toxic is removed", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  const held = await proxy.addToxic(toxic<Bandwidth>("bandwidth", { rate: 0 }));
  const client = await TestClient.connect(t, portOf(proxy));
  client.socket.write("held");
  await sleep(300);
  t.is(client.received.length, 0);
  await held.remove();
  await client.waitForBytes(4);
  t.is(client.received.toString(), "held");
});

test("slow_close delays the close the upstream sent by at least the delay, after the data", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const upstream = await startUpstream(t, (socket) => socket.once("data", () => socket.end("bye")));
  const proxy = await createProxy(toxiproxy, "db", upstream);
  await proxy.addToxic(toxic<Slowclose>("slow_close", { delay: 400 }));
  const client = await TestClient.connect(t, portOf(proxy));
  const sentAtMs = performance.now();
  client.socket.write("close please");
  const closed = await client.waitForClose();
  t.is(client.received.toString(), "bye");
  t.true(closed.ended);
  t.true(closed.atMs - sentAtMs >= 400);
});

test("toxicity 0 never applies a toxic, toxicity 1 always does", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  const never = await proxy.addToxic(toxic<Timeout>("timeout", { timeout: 0 }, { toxicity: 0 }));
  for (let i = 0; i < 8; i++) {
    const client = await TestClient.connect(t, portOf(proxy));
    await echoRoundTripMs(client, Buffer.from(`try ${i}`));
    t.is(client.received.toString(), `try ${i}`);
  }
  await never.update({ ...never.toJson(), toxicity: 1 });
  const dropped = await TestClient.connect(t, portOf(proxy));
  dropped.socket.write("dropped");
  await sleep(300);
  t.is(dropped.received.length, 0);
});

test("disabling a proxy closes its open connections, whatever their toxics hold, and releases their links", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic<Latency>("latency", { latency: 60_000, jitter: 0 }));
  await proxy.addToxic(toxic<Timeout>("timeout", { timeout: 60_000 }, { stream: "upstream" }));
  const clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(t, portOf(proxy))));
  for (const client of clients) client.socket.write("stuck");
  await waitFor(() => toxiproxy.server.proxies.get("db").connectionCount === 3, WAIT_MS, "three connections");
  await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
  for (const client of clients) await client.waitForClose();
  t.is(toxiproxy.server.proxies.get("db").connectionCount, 0);
  t.is(toxiproxy.server.proxies.get("db").toxics.linkCount, 0);
  await proxy.remove();
});
