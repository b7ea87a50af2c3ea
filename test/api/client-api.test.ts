/**
 * The client API over HTTP against the in-memory backend (etcd's full KV semantics): every endpoint's
 * success and failure paths, base64 and int64-as-string encoding, the response header, etcd's habit of
 * leaving default fields out, and the errors a client meets (malformed JSON, unknown fields, bad
 * base64, oversized bodies, wrong methods and paths, backend failures), in etcd's gateway shape.
 */
import test from "ava";
import { request } from "node:http";
import { clusterIdNumber } from "../../src/api/header.ts";
import { MemoryKvBackend } from "../../src/api/memory-backend.ts";
import { prefixRangeEnd } from "../../src/api/kv-model.ts";
import { BusyError, NoQuorumError, RequestTimeoutError } from "../../src/errors.ts";
import { b64, call, post, startApi, unb64, type ApiServer } from "./fixtures.ts";

async function withApi(run: (api: ApiServer, backend: MemoryKvBackend) => Promise<void>, bodyBytesMax?: number): Promise<void> {
  const backend = new MemoryKvBackend({ memberId: 7, clusterId: "pgraft-test", term: 3 });
  const api = await startApi({ backend, bodyBytesMax });
  try {
    await run(api, backend);
  } finally {
    await api.close();
  }
}

function prefixEnd(prefix: string): string {
  return Buffer.from(prefixRangeEnd(Buffer.from(prefix, "utf8"))).toString("base64");
}

test("put then range returns the value in base64 with etcd's header and revisions as strings", async (t) => {
  await withApi(async ({ url }) => {
    const put = await post(url, "/v3/kv/put", { key: b64("foo"), value: b64("bar") });
    t.is(put.status, 200);
    t.is(put.headers["content-type"], "application/json");
    t.deepEqual(put.json, { header: { cluster_id: clusterIdNumber("pgraft-test"), member_id: "7", revision: "1", raft_term: "3" } });
    const range = await post(url, "/v3/kv/range", { key: b64("foo") });
    t.is(range.status, 200);
    t.deepEqual(range.json, {
      header: { cluster_id: clusterIdNumber("pgraft-test"), member_id: "7", revision: "1", raft_term: "3" },
      kvs: [{ key: b64("foo"), value: b64("bar"), version: "1", create_revision: "1", mod_revision: "1" }],
      count: "1",
    });
  });
});

test("put increments the version, keeps create_revision, and returns prev_kv when asked", async (t) => {
  await withApi(async ({ url }) => {
    await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v1") });
    await post(url, "/v3/kv/put", { key: b64("other"), value: b64("x") });
    const second = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v2"), prev_kv: true });
    t.is(second.status, 200);
    t.deepEqual(second.json.prev_kv, { key: b64("k"), value: b64("v1"), version: "1", create_revision: "1", mod_revision: "1" });
    t.is(second.json.header.revision, "3");
    const range = await post(url, "/v3/kv/range", { key: b64("k") });
    t.deepEqual(range.json.kvs, [{ key: b64("k"), value: b64("v2"), version: "2", create_revision: "1", mod_revision: "3" }]);
  });
});

test("range of a missing key answers the header only, as etcd's gateway leaves defaults out", async (t) => {
  await withApi(async ({ url }) => {
    const range = await post(url, "/v3/kv/range", { key: b64("nothing") });
    t.is(range.status, 200);
    t.deepEqual(Object.keys(range.json), ["header"]);
  });
});

test("range with a prefix's range_end returns the prefix's keys in byte order, with count, limit and more", async (t) => {
  await withApi(async ({ url }) => {
    for (const key of ["app/b", "app/a", "app/c", "apple", "ap", "b"]) await post(url, "/v3/kv/put", { key: b64(key), value: b64(`v-${key}`) });
    const all = await post(url, "/v3/kv/range", { key: b64("app/"), range_end: prefixEnd("app/") });
    t.deepEqual(all.json.kvs.map((kv: { key: string }) => unb64(kv.key)), ["app/a", "app/b", "app/c"]);
    t.is(all.json.count, "3");
    t.is(all.json.more, undefined);
    const limited = await post(url, "/v3/kv/range", { key: b64("app/"), range_end: prefixEnd("app/"), limit: "2" });
    t.deepEqual(limited.json.kvs.map((kv: { key: string }) => unb64(kv.key)), ["app/a", "app/b"]);
    t.is(limited.json.count, "3");
    t.is(limited.json.more, true);
    const keysOnly = await post(url, "/v3/kv/range", { key: b64("app/"), range_end: prefixEnd("app/"), keys_only: true });
    t.true(keysOnly.json.kvs.every((kv: { value?: string }) => kv.value === undefined));
    const countOnly = await post(url, "/v3/kv/range", { key: b64("app/"), range_end: prefixEnd("app/"), count_only: true });
    t.deepEqual(Object.keys(countOnly.json).sort(), ["count", "header"]);
    t.is(countOnly.json.count, "3");
    const descending = await post(url, "/v3/kv/range", { key: b64("app/"), range_end: prefixEnd("app/"), sort_order: "DESCEND" });
    t.deepEqual(descending.json.kvs.map((kv: { key: string }) => unb64(kv.key)), ["app/c", "app/b", "app/a"]);
  });
});

test("range with range_end \\0 reads from a key on, and key \\0 with range_end \\0 reads every key", async (t) => {
  await withApi(async ({ url }) => {
    for (const key of ["a", "b", "c"]) await post(url, "/v3/kv/put", { key: b64(key), value: b64("v") });
    const fromB = await post(url, "/v3/kv/range", { key: b64("b"), range_end: "AA==" });
    t.deepEqual(fromB.json.kvs.map((kv: { key: string }) => unb64(kv.key)), ["b", "c"]);
    const every = await post(url, "/v3/kv/range", { key: "AA==", range_end: "AA==" });
    t.is(every.json.count, "3");
  });
});

test("range sorts by mod_revision when asked, ascending by default, and accepts enums as numbers", async (t) => {
  await withApi(async ({ url }) => {
    for (const key of ["z", "y", "x"]) await post(url, "/v3/kv/put", { key: b64(key), value: b64("v") });
    const byMod = await post(url, "/v3/kv/range", { key: "AA==", range_end: "AA==", sort_target: "MOD" });
    t.deepEqual(byMod.json.kvs.map((kv: { key: string }) => unb64(kv.key)), ["z", "y", "x"]);
    const byModDescending = await post(url, "/v3/kv/range", { key: "AA==", range_end: "AA==", sortTarget: 3, sortOrder: 2 });
    t.deepEqual(byModDescending.json.kvs.map((kv: { key: string }) => unb64(kv.key)), ["x", "y", "z"]);
  });
});

test("range at a revision other than the current one is refused with OUT_OF_RANGE", async (t) => {
  await withApi(async ({ url }) => {
    await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    const current = await post(url, "/v3/kv/range", { key: b64("k"), revision: "1" });
    t.is(current.status, 200);
    const future = await post(url, "/v3/kv/range", { key: b64("k"), revision: "9" });
    t.is(future.status, 400);
    t.is(future.json.code, 11);
    t.regex(future.json.message, /future revision/);
  });
});

test("deleterange deletes one key, says how many, and leaves deleted out when nothing matched", async (t) => {
  await withApi(async ({ url }) => {
    await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    const deleted = await post(url, "/v3/kv/deleterange", { key: b64("k") });
    t.is(deleted.status, 200);
    t.is(deleted.json.deleted, "1");
    t.is(deleted.json.header.revision, "2");
    const range = await post(url, "/v3/kv/range", { key: b64("k") });
    t.is(range.json.kvs, undefined);
    const again = await post(url, "/v3/kv/deleterange", { key: b64("k") });
    t.is(again.status, 200);
    t.is(again.json.deleted, undefined);
  });
});

test("deleterange over a prefix returns prev_kvs on the in-memory backend", async (t) => {
  await withApi(async ({ url }) => {
    for (const key of ["p/1", "p/2", "q"]) await post(url, "/v3/kv/put", { key: b64(key), value: b64(key) });
    const deleted = await post(url, "/v3/kv/deleterange", { key: b64("p/"), range_end: prefixEnd("p/"), prev_kv: true });
    t.is(deleted.json.deleted, "2");
    t.deepEqual(deleted.json.prev_kvs.map((kv: { value: string }) => unb64(kv.value)), ["p/1", "p/2"]);
    const rest = await post(url, "/v3/kv/range", { key: "AA==", range_end: "AA==" });
    t.deepEqual(rest.json.kvs.map((kv: { key: string }) => unb64(kv.key)), ["q"]);
  });
});

test("txn creates a key only when absent, and its failure branch reads the existing value", async (t) => {
  await withApi(async ({ url }) => {
    const txn = (value: string) => ({
      compare: [{ target: "CREATE", result: "EQUAL", key: b64("lock"), create_revision: "0" }],
      success: [{ request_put: { key: b64("lock"), value: b64(value) } }],
      failure: [{ request_range: { key: b64("lock") } }],
    });
    const first = await post(url, "/v3/kv/txn", txn("owner-1"));
    t.is(first.status, 200);
    t.true(first.json.succeeded);
    t.deepEqual(first.json.responses, [{ response_put: { header: { revision: "1" } } }]);
    const second = await post(url, "/v3/kv/txn", txn("owner-2"));
    t.is(second.status, 200);
    t.is(second.json.succeeded, undefined);
    t.is(unb64(second.json.responses[0].response_range.kvs[0].value), "owner-1");
  });
});

test("txn compares values, versions and mod revisions, with camelCase names and numeric enums", async (t) => {
  await withApi(async ({ url }) => {
    await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v1") });
    const byValue = await post(url, "/v3/kv/txn", {
      compare: [{ target: "VALUE", result: "EQUAL", key: b64("k"), value: b64("v1") }],
      success: [{ requestPut: { key: b64("k"), value: b64("v2") } }],
    });
    t.true(byValue.json.succeeded);
    const byVersion = await post(url, "/v3/kv/txn", {
      compare: [{ target: 0, result: 1, key: b64("k"), version: 5 }],
      success: [{ request_delete_range: { key: b64("k") } }],
    });
    t.is(byVersion.json.succeeded, undefined, "version 2 is not greater than 5");
    const byMod = await post(url, "/v3/kv/txn", {
      compare: [{ target: "MOD", result: "LESS", key: b64("k"), modRevision: "100" }],
      success: [{ request_delete_range: { key: b64("k") } }],
    });
    t.true(byMod.json.succeeded);
    t.is(byMod.json.responses[0].response_delete_range.deleted, "1");
  });
});

test("txn that puts one key twice in a branch is refused, as etcd refuses it", async (t) => {
  await withApi(async ({ url }) => {
    const answer = await post(url, "/v3/kv/txn", {
      success: [{ request_put: { key: b64("k"), value: b64("1") } }, { request_put: { key: b64("k"), value: b64("2") } }],
    });
    t.is(answer.status, 400);
    t.is(answer.json.code, 3);
    t.regex(answer.json.message, /put twice/);
  });
});

test("malformed JSON is a 400 in etcd's gateway error shape that says what to send", async (t) => {
  await withApi(async ({ url }) => {
    const answer = await post(url, "/v3/kv/put", '{"key": "Zm9v",');
    t.is(answer.status, 400);
    t.deepEqual(Object.keys(answer.json).sort(), ["code", "error", "message", "outcome"]);
    t.is(answer.json.code, 3);
    t.is(answer.json.error, answer.json.message);
    t.regex(answer.json.message, /^Cannot parse the request body as JSON: .*; send a JSON object/);
    const array = await post(url, "/v3/kv/range", "[1, 2]");
    t.is(array.status, 400);
    t.regex(array.json.message, /expected a JSON object, received \[1,2\]/);
  });
});

test("an unknown field is refused and the nearest known one suggested", async (t) => {
  await withApi(async ({ url }) => {
    const answer = await post(url, "/v3/kv/range", { key: b64("a"), rangeend: "AA==" });
    t.is(answer.status, 400);
    t.regex(answer.json.message, /unknown field "rangeend"; did you mean "range_end"\?/);
  });
});

test("bad base64, an empty key and a non-integer limit are refused with 400", async (t) => {
  await withApi(async ({ url }) => {
    const badBase64 = await post(url, "/v3/kv/put", { key: "not base64!", value: b64("v") });
    t.is(badBase64.status, 400);
    t.regex(badBase64.json.message, /"key" must be a base64 string/);
    const empty = await post(url, "/v3/kv/put", { value: b64("v") });
    t.is(empty.status, 400);
    t.regex(empty.json.message, /"key" is missing or empty/);
    const limit = await post(url, "/v3/kv/range", { key: b64("a"), limit: "ten" });
    t.is(limit.status, 400);
    t.regex(limit.json.message, /"limit" must be an integer/);
  });
});

test("keys and values are bytes: any bytes go in and come back as sent, in byte order", async (t) => {
  await withApi(async ({ url }) => {
    const keys = [Buffer.from([0x6b, 0xff, 0x00]), Buffer.from([0x6b, 0x80]), Buffer.from([0x6b, 0x7f])];
    const value = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]);
    for (const key of keys) t.is((await post(url, "/v3/kv/put", { key: key.toString("base64"), value: value.toString("base64") })).status, 200);
    const range = await post(url, "/v3/kv/range", { key: b64("k"), range_end: b64("l") });
    t.is(range.status, 200);
    t.deepEqual(
      range.json.kvs.map((kv: { key: string }) => [...Buffer.from(kv.key, "base64")]),
      [[0x6b, 0x7f], [0x6b, 0x80], [0x6b, 0xff, 0x00]],
    );
    t.deepEqual([...Buffer.from(range.json.kvs[2].value, "base64")], [...value]);
  });
});

test("a put with a lease that does not exist answers etcd's exact lease-not-found error", async (t) => {
  await withApi(async ({ url }) => {
    const answer = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v"), lease: "42" });
    t.is(answer.status, 404);
    t.is(answer.json.code, 5);
    t.is(answer.json.error, "etcdserver: requested lease not found");
    t.regex(answer.json.hint, /Cannot use lease 42: it does not exist/);
  });
});

test("a body over the limit is refused with 413 before it is parsed", async (t) => {
  await withApi(
    async ({ url }, backend) => {
      const answer = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("x".repeat(4096)) });
      t.is(answer.status, 413);
      t.is(answer.json.code, 3);
      t.regex(answer.json.message, /larger than 1024 bytes/);
      t.deepEqual(backend.calls, []);
      const small = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("small") });
      t.is(small.status, 200);
    },
    1024,
  );
});

test("a chunked body that grows past the limit is refused with 413 while it streams", async (t) => {
  await withApi(
    async ({ url }, backend) => {
      const status = await new Promise<number>((resolve, reject) => {
        const upload = request(new URL("/v3/kv/put", url), { method: "POST", headers: { "transfer-encoding": "chunked" } });
        upload.on("response", (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        });
        upload.on("error", reject);
        for (let i = 0; i < 20; i++) upload.write("A".repeat(64 * 1024));
        upload.end();
      });
      t.is(status, 413);
      t.deepEqual(backend.calls, []);
    },
    256 * 1024,
  );
});

test("a wrong method gets 405 with Allow; an unimplemented etcd endpoint gets etcd's 501 and one warning per endpoint", async (t) => {
  const warnings: string[] = [];
  const logger = { warn: (line: string) => warnings.push(line), error: () => {} };
  const api = await startApi({ backend: new MemoryKvBackend({ memberId: 1 }), logger });
  try {
    const get = await call(api.url, "GET", "/v3/kv/range");
    t.is(get.status, 405);
    t.is(get.headers.allow, "POST");
    for (let i = 0; i < 3; i++) {
      const auth = await post(api.url, "/v3/auth/authenticate", {});
      t.is(auth.status, 501);
      t.is(auth.json.code, 12);
      t.regex(auth.json.message, /Cannot serve POST \/v3\/auth\/authenticate: pgraft does not implement it/);
    }
    const compact = await post(api.url, "/v3/kv/compaction", { revision: "1" });
    t.is(compact.status, 501, "no maintenance backend: compaction is unimplemented here");
    t.is(warnings.filter((line) => line.includes("/v3/auth/authenticate")).length, 1, "three requests, one warning");
    t.true(warnings.some((line) => line.includes("/v3/kv/compaction")));
  } finally {
    await api.close();
  }
});

test("backend failures map to etcd's codes: busy 429, no quorum 503, a timed-out write 504 with an unknown outcome", async (t) => {
  await withApi(async ({ url }, backend) => {
    backend.failNext(new BusyError("pending writes", 10));
    const busy = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(busy.status, 429);
    t.is(busy.json.code, 8);
    t.is(busy.json.outcome, "failed");
    backend.failNext(new NoQuorumError("write", "1 of 3 nodes reachable"));
    const noQuorum = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(noQuorum.status, 503);
    t.is(noQuorum.json.code, 14);
    t.regex(noQuorum.json.message, /read-only without a quorum: 1 of 3 nodes reachable/);
    backend.failNext(new RequestTimeoutError("write", 5000, "unknown"));
    const timeout = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(timeout.status, 504);
    t.is(timeout.json.code, 4);
    t.is(timeout.json.outcome, "unknown");
  });
});

test("observeRequest sees each request's operation and outcome", async (t) => {
  const backend = new MemoryKvBackend({ memberId: 1 });
  const seen: string[] = [];
  const api = await startApi({ backend, observeRequest: (operation, outcome) => seen.push(`${operation}:${outcome}`) });
  try {
    await post(api.url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    await post(api.url, "/v3/kv/range", "{");
    backend.failNext(new RequestTimeoutError("write", 1, "unknown"));
    await post(api.url, "/v3/kv/txn", { success: [{ request_put: { key: b64("k"), value: b64("v") } }] });
    t.deepEqual(seen, ["put:ok", "range:failed", "txn:unknown"]);
  } finally {
    await api.close();
  }
});
