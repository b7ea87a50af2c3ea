/**
 * Followers and the leader: a follower forwards writes and linearizable reads to the leader's client
 * API (one hop, within a timeout) and serves serializable reads itself; without the leader's URL it
 * answers 503 naming the leader; a forwarded request never travels a second hop; an unreachable or
 * silent leader gives 503 or 504 with the right outcome.
 */
import test from "ava";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { FORWARDED_BY_HEADER } from "../../src/api/forward.ts";
import { MemoryKvBackend, MemoryKvState } from "../../src/api/memory-backend.ts";
import { BusyError } from "../../src/errors.ts";
import { b64, post, startApi, unb64, type ApiServer } from "./fixtures.ts";

interface Pair {
  readonly leader: ApiServer;
  readonly follower: ApiServer;
  readonly leaderBackend: MemoryKvBackend;
  readonly followerBackend: MemoryKvBackend;
}

/** Node 1 leads; node 2 follows with its own (stale, empty) state. */
async function withPair(run: (pair: Pair) => Promise<void>, forwardTimeoutMs = 2000): Promise<void> {
  const leaderBackend = new MemoryKvBackend({ memberId: 1, clusterId: "c", term: 4 });
  const followerBackend = new MemoryKvBackend({ memberId: 2, clusterId: "c", term: 4, leaderId: 1 });
  const leader = await startApi({ backend: leaderBackend });
  const follower = await startApi({ backend: followerBackend, peerClientUrls: (id) => (id === 1 ? leader.url : undefined), forwardTimeoutMs });
  try {
    await run({ leader, follower, leaderBackend, followerBackend });
  } finally {
    await follower.close();
    await leader.close();
  }
}

test("a follower forwards a put to the leader and passes its answer back", async (t) => {
  await withPair(async ({ follower, leaderBackend, followerBackend }) => {
    const answer = await post(follower.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(answer.status, 200);
    t.is(answer.json.header.member_id, "1", "the leader served it");
    t.is(leaderBackend.state.get("k")?.value, "v");
    t.is(followerBackend.state.get("k"), undefined);
    t.deepEqual(leaderBackend.calls, ["put"]);
  });
});

test("a follower forwards a linearizable range but serves a serializable one from its own state", async (t) => {
  await withPair(async ({ leader, follower, followerBackend }) => {
    await post(leader.url, "/v3/kv/put", { key: b64("k"), value: b64("fresh") });
    followerBackend.state.set("k", { value: "stale", version: 1, createIndex: 1, modIndex: 1 });
    const linearizable = await post(follower.url, "/v3/kv/range", { key: b64("k") });
    t.is(unb64(linearizable.json.kvs[0].value), "fresh");
    t.is(linearizable.json.header.member_id, "1");
    const serializable = await post(follower.url, "/v3/kv/range", { key: b64("k"), serializable: true });
    t.is(unb64(serializable.json.kvs[0].value), "stale");
    t.is(serializable.json.header.member_id, "2");
  });
});

test("a follower forwards a txn, and the leader's errors come back unchanged", async (t) => {
  await withPair(async ({ follower, leaderBackend }) => {
    const txn = await post(follower.url, "/v3/kv/txn", {
      compare: [{ target: "VERSION", key: b64("k"), version: "0" }],
      success: [{ request_put: { key: b64("k"), value: b64("v") } }],
    });
    t.is(txn.status, 200);
    t.true(txn.json.succeeded);
    leaderBackend.failNext(new BusyError("pending writes", 5));
    const busy = await post(follower.url, "/v3/kv/put", { key: b64("k"), value: b64("w") });
    t.is(busy.status, 429);
    t.regex(busy.json.message, /pending writes reached its limit of 5/);
  });
});

test("a follower checks the request itself before forwarding it", async (t) => {
  await withPair(async ({ follower, leaderBackend }) => {
    const answer = await post(follower.url, "/v3/kv/put", "{oops");
    t.is(answer.status, 400);
    t.deepEqual(leaderBackend.calls, []);
  });
});

test("a follower without the leader's URL answers 503 naming the leader", async (t) => {
  const backend = new MemoryKvBackend({ memberId: 2, leaderId: 3 });
  const api = await startApi({ backend });
  try {
    const answer = await post(api.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(answer.status, 503);
    t.is(answer.json.code, 14);
    t.is(answer.json.leader_id, "3");
    t.regex(answer.json.message, /send the request to the leader, node 3/);
  } finally {
    await api.close();
  }
});

test("a node that knows no leader answers 503 saying the cluster is read-only", async (t) => {
  const backend = new MemoryKvBackend({ memberId: 2, leaderId: 0 });
  const api = await startApi({ backend, peerClientUrls: () => "http://127.0.0.1:1" });
  try {
    const answer = await post(api.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(answer.status, 503);
    t.regex(answer.json.message, /read-only without a quorum/);
    t.is(answer.json.leader_id, undefined);
  } finally {
    await api.close();
  }
});

test("a forwarded request is never forwarded again, even when two nodes each believe the other leads", async (t) => {
  const state = new MemoryKvState();
  const a = new MemoryKvBackend({ memberId: 1, leaderId: 2, state });
  const b = new MemoryKvBackend({ memberId: 2, leaderId: 1, state });
  const urls = new Map<number, string>();
  const apiA = await startApi({ backend: a, peerClientUrls: (id) => urls.get(id) });
  const apiB = await startApi({ backend: b, peerClientUrls: (id) => urls.get(id) });
  urls.set(1, apiA.url);
  urls.set(2, apiB.url);
  try {
    const answer = await post(apiA.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(answer.status, 503);
    t.regex(answer.json.message, /node 1 forwarded it here as to the leader, but node 2 is a follower of node 1/);
    t.deepEqual(a.calls, ["put"]);
    t.deepEqual(b.calls, ["put"]);
    const direct = await post(apiB.url, "/v3/kv/put", { key: b64("k"), value: b64("v") }, { [FORWARDED_BY_HEADER]: "9" });
    t.is(direct.status, 503);
  } finally {
    await apiA.close();
    await apiB.close();
  }
});

test("an unreachable leader gives 503 and a write that certainly did not happen", async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const backend = new MemoryKvBackend({ memberId: 2, leaderId: 1 });
  const api = await startApi({ backend, peerClientUrls: () => `http://127.0.0.1:${port}` });
  try {
    const answer = await post(api.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(answer.status, 503);
    t.is(answer.json.code, 14);
    t.is(answer.json.outcome, "failed");
    t.regex(answer.json.message, /Cannot forward the request to the leader, node 1 at http:\/\/127\.0\.0\.1:\d+: .*; it did not take effect/);
  } finally {
    await api.close();
  }
});

test("a leader that never answers gives 504 within the forward timeout: a write's outcome unknown, a read's failed", async (t) => {
  const silent: Server = createServer(() => {
    // Takes the request and never answers.
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const port = (silent.address() as AddressInfo).port;
  const backend = new MemoryKvBackend({ memberId: 2, leaderId: 1 });
  const api = await startApi({ backend, peerClientUrls: () => `http://127.0.0.1:${port}`, forwardTimeoutMs: 200 });
  try {
    const started = performance.now();
    const write = await post(api.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    const elapsedMs = performance.now() - started;
    t.is(write.status, 504);
    t.is(write.json.code, 4);
    t.is(write.json.outcome, "unknown");
    t.regex(write.json.message, /no answer within 200 ms; it may still take effect/);
    t.true(elapsedMs >= 190 && elapsedMs < 2000, `answered after ${elapsedMs} ms`);
    const read = await post(api.url, "/v3/kv/range", { key: b64("k") });
    t.is(read.status, 504);
    t.is(read.json.outcome, "failed");
  } finally {
    await api.close();
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
