/**
 * The client API over a real RaftNode: a one-node cluster on real timers elects itself, then serves
 * puts, linearizable and serializable ranges (single key and prefix), single-key deletes, the
 * compare-and-set transactions the state machine applies, and read-only transactions; what the state
 * machine cannot do atomically yet (range deletes, prev_kv, other transactions) is refused with 501.
 * With fake nodes: a node that never answers hits the backstop timeout, and a follower's refusal
 * becomes a 503 naming the leader. The health endpoints see the real node lead.
 */
import test from "ava";
import { clusterIdNumber } from "../../src/api/header.ts";
import { createHealthRoute } from "../../src/api/health.ts";
import { prefixRangeEnd } from "../../src/api/kv-model.ts";
import { casShape, RaftNodeBackend, type RaftNodeLike } from "../../src/api/raft-node-backend.ts";
import type { TxnRequest } from "../../src/api/kv-types.ts";
import { HARD_STATE_EMPTY } from "../../src/core/types.ts";
import { NotLeaderError } from "../../src/errors.ts";
import { KvStore } from "../../src/kv/kv-store.ts";
import { RaftNode } from "../../src/node/raft-node.ts";
import { b64, call, fakeStatus, post, startApi, TEST_TIMERS, unb64, waitFor, type ApiServer } from "./fixtures.ts";

const ELECTION_TIMEOUT_MS = 100;
const TICK_MS = 10;

function singleNode(): RaftNode {
  return new RaftNode({
    id: 1,
    membership: { voters: [1], learners: [] },
    tickMs: TICK_MS,
    electionTimeoutMs: ELECTION_TIMEOUT_MS,
    heartbeatIntervalMs: TICK_MS,
    preVote: true,
    checkQuorum: true,
    entriesPerAppendMax: 100,
    maxBatchDelayMs: 0,
    requestTimeoutMs: 2000,
    restored: { hardState: HARD_STATE_EMPTY, entries: [] },
    persistence: { save() {}, compact() {} },
    transport: { send() {} },
    timers: TEST_TIMERS,
    random: Math.random,
  });
}

async function withLeader(run: (api: ApiServer, node: RaftNode) => Promise<void>): Promise<void> {
  const node = singleNode();
  node.start();
  const api = await startApi({
    backend: new RaftNodeBackend({ node, clusterId: "pgraft-test", requestTimeoutMs: 2000 }),
  }, [createHealthRoute({ status: () => node.status(), clusterId: "pgraft-test", electionTimeoutTicks: ELECTION_TIMEOUT_MS / TICK_MS })]);
  try {
    if (!(await waitFor(() => node.status().role === "leader", 3000))) throw new Error("the one-node cluster elected no leader within 3 s");
    await run(api, node);
  } finally {
    node.stop();
    await api.close();
  }
}

function prefixEnd(prefix: string): string {
  return Buffer.from(prefixRangeEnd(Buffer.from(prefix))).toString("base64");
}

test("RaftNodeBackend: put commits through the log and range reads it back with the node's term and index", async (t) => {
  await withLeader(async ({ url }, node) => {
    const put = await post(url, "/v3/kv/put", { key: b64("foo"), value: b64("bar") });
    t.is(put.status, 200, put.text);
    const index = node.store.get("foo")!.modIndex;
    t.deepEqual(put.json.header, {
      cluster_id: clusterIdNumber("pgraft-test"),
      member_id: "1",
      revision: String(index),
      raft_term: String(node.status().term),
    });
    const range = await post(url, "/v3/kv/range", { key: b64("foo") });
    t.is(range.status, 200, range.text);
    t.deepEqual(range.json.kvs, [{ key: b64("foo"), value: b64("bar"), version: "1", create_revision: String(index), mod_revision: String(index) }]);
    t.true(Number(range.json.header.revision) >= index);
  });
});

test("RaftNodeBackend: a prefix range is served linearizably and serializably", async (t) => {
  await withLeader(async ({ url }) => {
    for (const key of ["job/2", "job/1", "jobs", "x"]) {
      const put = await post(url, "/v3/kv/put", { key: b64(key), value: b64(key) });
      t.is(put.status, 200, put.text);
    }
    for (const serializable of [false, true]) {
      const range = await post(url, "/v3/kv/range", { key: b64("job/"), range_end: prefixEnd("job/"), serializable });
      t.is(range.status, 200, range.text);
      t.deepEqual(range.json.kvs.map((kv: { key: string }) => unb64(kv.key)), ["job/1", "job/2"]);
      t.is(range.json.count, "2");
    }
  });
});

test("RaftNodeBackend: deleterange deletes one key, or a range of keys atomically with their previous values", async (t) => {
  await withLeader(async ({ url }, node) => {
    await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    const deleted = await post(url, "/v3/kv/deleterange", { key: b64("k") });
    t.is(deleted.status, 200, deleted.text);
    t.is(deleted.json.deleted, "1");
    t.is(node.store.get("k"), undefined);
    const missing = await post(url, "/v3/kv/deleterange", { key: b64("k") });
    t.is(missing.json.deleted, undefined);
    for (const key of ["k/1", "k/2", "l"]) await post(url, "/v3/kv/put", { key: b64(key), value: b64(`v-${key}`) });
    const prefix = await post(url, "/v3/kv/deleterange", { key: b64("k/"), range_end: prefixEnd("k/"), prev_kv: true });
    t.is(prefix.status, 200, prefix.text);
    t.is(prefix.json.deleted, "2");
    t.deepEqual(prefix.json.prev_kvs.map((kv: { value: string }) => unb64(kv.value)), ["v-k/1", "v-k/2"]);
    t.deepEqual(node.store.keys(), ["l"]);
    const prevKv = await post(url, "/v3/kv/put", { key: b64("l"), value: b64("new"), prev_kv: true });
    t.is(prevKv.status, 200, prevKv.text);
    t.is(unb64(prevKv.json.prev_kv.value), "v-l");
    t.is(node.store.get("l")!.value, "new");
  });
});

test("RaftNodeBackend: a create-if-absent or version-equal txn becomes one compare-and-set", async (t) => {
  await withLeader(async ({ url }, node) => {
    const create = (value: string) => ({
      compare: [{ target: "CREATE", result: "EQUAL", key: b64("lock"), create_revision: "0" }],
      success: [{ request_put: { key: b64("lock"), value: b64(value) } }],
    });
    const first = await post(url, "/v3/kv/txn", create("a"));
    t.is(first.status, 200, first.text);
    t.true(first.json.succeeded);
    t.deepEqual(first.json.responses, [{ response_put: { header: { revision: first.json.header.revision } } }]);
    const second = await post(url, "/v3/kv/txn", create("b"));
    t.is(second.status, 200);
    t.is(second.json.succeeded, undefined);
    t.is(second.json.responses, undefined);
    t.is(node.store.get("lock")!.value, "a");
    const byVersion = await post(url, "/v3/kv/txn", {
      compare: [{ target: "VERSION", result: "EQUAL", key: b64("lock"), version: "1" }],
      success: [{ request_put: { key: b64("lock"), value: b64("c") } }],
    });
    t.true(byVersion.json.succeeded);
    t.is(node.store.get("lock")!.value, "c");
    t.is(node.store.get("lock")!.version, 2);
  });
});

test("RaftNodeBackend: a read-only txn with any compares is served through ReadIndex", async (t) => {
  await withLeader(async ({ url }) => {
    await post(url, "/v3/kv/put", { key: b64("a"), value: b64("1") });
    await post(url, "/v3/kv/put", { key: b64("b"), value: b64("2") });
    const answer = await post(url, "/v3/kv/txn", {
      compare: [
        { target: "VALUE", result: "EQUAL", key: b64("a"), value: b64("1") },
        { target: "VERSION", result: "GREATER", key: b64("b"), version: "0" },
      ],
      success: [{ request_range: { key: b64("a"), range_end: prefixEnd("b") } }],
      failure: [],
    });
    t.is(answer.status, 200, answer.text);
    t.true(answer.json.succeeded);
    t.deepEqual(answer.json.responses[0].response_range.kvs.map((kv: { value: string }) => unb64(kv.value)), ["1", "2"]);
  });
});

test("RaftNodeBackend: a multi-op write txn with value and mod_revision compares applies atomically", async (t) => {
  await withLeader(async ({ url }, node) => {
    await post(url, "/v3/kv/put", { key: b64("a"), value: b64("1") });
    const modRevision = node.store.get("a")!.modIndex;
    const txn = (value: string) => ({
      compare: [
        { target: "VALUE", result: "EQUAL", key: b64("a"), value: b64(value) },
        { target: "MOD", result: "EQUAL", key: b64("a"), mod_revision: String(modRevision) },
      ],
      success: [{ request_put: { key: b64("a"), value: b64("2") } }, { request_put: { key: b64("b"), value: b64("x") } }],
      failure: [{ request_range: { key: b64("a") } }],
    });
    const miss = await post(url, "/v3/kv/txn", txn("nope"));
    t.is(miss.status, 200, miss.text);
    t.is(miss.json.succeeded, undefined, miss.text);
    t.is(unb64(miss.json.responses[0].response_range.kvs[0].value), "1");
    t.is(node.store.get("b"), undefined);
    const hit = await post(url, "/v3/kv/txn", txn("1"));
    t.true(hit.json.succeeded, hit.text);
    t.is(node.store.get("a")!.value, "2");
    t.is(node.store.get("b")!.value, "x");
    // Both writes carry the same revision: one log index, one atomic step.
    t.is(node.store.get("a")!.modIndex, node.store.get("b")!.modIndex);
  });
});

test("RaftNodeBackend: the health endpoints see the one-node cluster's leader", async (t) => {
  await withLeader(async ({ url }) => {
    t.is((await call(url, "GET", "/leader")).status, 200);
    t.is((await call(url, "GET", "/replica")).status, 503);
    const cluster = await call(url, "GET", "/cluster");
    t.is(cluster.json.members.length, 1);
    t.is(cluster.json.members[0].role, "leader");
  });
});

/** A node that never calls back, or refuses as a follower of node 3. */
function fakeNode(behaviour: "silent" | "follower"): RaftNodeLike {
  return {
    id: 2,
    store: new KvStore(),
    status: () => fakeStatus({ id: 2, leaderId: 3, term: 6 }),
    write: (_write, callback) => {
      if (behaviour === "follower") callback({ ok: false, error: new NotLeaderError(3, "write") });
    },
    read: (_key, callback) => {
      if (behaviour === "follower") callback({ ok: false, error: new NotLeaderError(3, "read") });
    },
  };
}

test("RaftNodeBackend: a node that never answers fails the request after its timeout plus grace, outcome unknown", async (t) => {
  const backend = new RaftNodeBackend({ node: fakeNode("silent"), clusterId: "c", requestTimeoutMs: 50, graceMs: 50, timers: TEST_TIMERS });
  const api = await startApi({ backend });
  try {
    const started = performance.now();
    const answer = await post(api.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(answer.status, 504);
    t.is(answer.json.outcome, "unknown");
    t.true(performance.now() - started >= 95);
    const read = await post(api.url, "/v3/kv/range", { key: b64("k") });
    t.is(read.status, 504);
    t.is(read.json.outcome, "failed");
  } finally {
    await api.close();
  }
});

test("RaftNodeBackend: a follower's refusal becomes 503 naming the leader, and serializable reads stay local", async (t) => {
  const node = fakeNode("follower");
  const api = await startApi({ backend: new RaftNodeBackend({ node, clusterId: "c", requestTimeoutMs: 1000, timers: TEST_TIMERS }) });
  try {
    const answer = await post(api.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(answer.status, 503);
    t.is(answer.json.leader_id, "3");
    const local = await post(api.url, "/v3/kv/range", { key: b64("k"), serializable: true });
    t.is(local.status, 200);
    t.is(local.json.header.member_id, "2");
    t.is(local.json.header.raft_term, "6");
  } finally {
    await api.close();
  }
});

test("casShape() maps only one version-equal compare with one put of the same key and no failure ops", (t) => {
  const key = "k";
  const put = { type: "put" as const, request: { key, value: "v", prevKv: false } };
  const compare = (target: "VERSION" | "CREATE" | "MOD", operand: number) =>
    ({ target, result: "EQUAL" as const, key, rangeEnd: new Uint8Array(), operand });
  const txn = (overrides: Partial<TxnRequest>): TxnRequest => ({ compare: [compare("VERSION", 3)], success: [put], failure: [], ...overrides });
  t.deepEqual(casShape(txn({})), { key, expectedVersion: 3, value: "v" });
  t.deepEqual(casShape(txn({ compare: [compare("CREATE", 0)] })), { key, expectedVersion: 0, value: "v" });
  t.deepEqual(casShape(txn({ compare: [compare("MOD", 0)] })), { key, expectedVersion: 0, value: "v" });
  t.is(casShape(txn({ compare: [compare("MOD", 5)] })), undefined);
  t.is(casShape(txn({ compare: [{ ...compare("VERSION", 3), result: "GREATER" }] })), undefined);
  t.is(casShape(txn({ success: [{ type: "put", request: { key: "other", value: "v", prevKv: false } }] })), undefined);
  t.is(casShape(txn({ failure: [put] })), undefined);
  t.is(casShape(txn({ compare: [] })), undefined);
});
