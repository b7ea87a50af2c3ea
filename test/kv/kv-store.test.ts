/**
 * KvStore: byte-string keys in byte order, the history behind watches and past-revision ranges,
 * compaction, and leases (grant, keys attached, revoke deleting them, snapshots keeping them).
 */
import test from "ava";
import { encodeTxnCommand } from "../../src/api/txn-codec.ts";
import type { TxnRequest } from "../../src/api/kv-types.ts";
import { KvStore } from "../../src/kv/kv-store.ts";

function putWithLease(key: string, value: string, lease: number): { op: "txn"; key: string; request: string } {
  const request: TxnRequest = { compare: [], success: [{ type: "put", request: { key, value, prevKv: false, lease } }], failure: [] };
  return { op: "txn", key, request: encodeTxnCommand(request) };
}

test("keys are byte strings: any bytes are kept as sent and sorted by byte", (t) => {
  const store = new KvStore();
  const keys = [Buffer.from([0x6b, 0xff]), Buffer.from([0x6b, 0x00]), Buffer.from([0x6b, 0x80, 0x01])].map((bytes) => bytes.toString("latin1"));
  keys.forEach((key, i) => store.apply(i + 1, { op: "put", key, value: "\xff\x00" }));
  t.deepEqual(store.keys().map((key) => [...Buffer.from(key, "latin1")]), [[0x6b, 0x00], [0x6b, 0x80, 0x01], [0x6b, 0xff]]);
  t.is(store.get(keys[0]!)?.value, "\xff\x00");
  t.deepEqual([...store.entries()].map(([key]) => key), store.keys());
});

test("the history gives every change once, in order, and the records as of any kept revision", (t) => {
  const store = new KvStore();
  store.apply(1, { op: "put", key: "a", value: "1" });
  store.apply(2, { op: "put", key: "a", value: "2" });
  store.apply(3, { op: "delete", key: "a" });
  store.skip(4);
  store.apply(5, { op: "put", key: "b", value: "x" });
  t.deepEqual(store.eventsFrom(2).map((event) => [event.revision, event.key, event.record?.value ?? null, event.prev?.value ?? null]), [
    [2, "a", "2", "1"],
    [3, "a", null, "2"],
    [5, "b", "x", null],
  ]);
  t.is(store.viewAt(1).get("a")?.value, "1");
  t.deepEqual(store.viewAt(2).keys(), ["a"]);
  t.deepEqual(store.viewAt(4).keys(), []);
  t.deepEqual(store.viewAt(5).keys(), ["b"]);
  t.is(store.revisionProblem(6), "future");
});

test("compaction drops older history: those revisions are refused, later ones still served", (t) => {
  const store = new KvStore();
  for (let index = 1; index <= 5; index++) store.apply(index, { op: "put", key: "k", value: String(index) });
  t.deepEqual(store.apply(6, { op: "compact", revision: 4 }), { op: "compact", compactedRevision: 4 });
  t.is(store.revisionProblem(3), "compacted");
  t.is(store.viewAt(4).get("k")?.value, "4");
  t.deepEqual(store.eventsFrom(0).map((event) => event.revision), [4, 5]);
  t.is((store.apply(7, { op: "compact", revision: 2 }) as { problem?: string }).problem, "compacted");
  t.is((store.apply(8, { op: "compact", revision: 9 }) as { problem?: string }).problem, "future");
});

test("the history is bounded: the oldest whole revisions are compacted away", (t) => {
  const store = new KvStore({ historyEventsMax: 3 });
  for (let index = 1; index <= 5; index++) store.apply(index, { op: "put", key: `k${index}`, value: "v" });
  t.deepEqual(store.eventsFrom(0).map((event) => event.revision), [3, 4, 5]);
  t.is(store.compactedRevision, 3);
  t.is(store.revisionProblem(2), "compacted");
});

test("a put naming a missing lease applies nothing; a revoke deletes the lease's keys, each as a change", (t) => {
  const store = new KvStore();
  t.like(store.apply(1, putWithLease("a", "1", 7)), { op: "txn", leaseNotFound: 7 });
  t.is(store.size, 0);
  t.deepEqual(store.apply(2, { op: "lease_grant", id: 0, ttlSec: 10 }), { op: "lease_grant", granted: true, id: 2, ttlSec: 10 });
  t.is((store.apply(3, { op: "lease_grant", id: 2, ttlSec: 5 }) as { granted: boolean }).granted, false);
  store.apply(4, putWithLease("a", "1", 2));
  store.apply(5, putWithLease("b", "1", 2));
  store.apply(6, { op: "put", key: "b", value: "2" }); // a put without the lease detaches the key
  store.apply(7, { op: "put", key: "c", value: "3" });
  t.deepEqual(store.lease(2)?.keys, ["a"]);
  t.is(store.get("a")?.lease, 2);
  t.deepEqual(store.apply(8, { op: "lease_revoke", id: 2, expired: true }), { op: "lease_revoke", found: true, deleted: 1 });
  t.deepEqual(store.lastChanges, [{ key: "a", record: undefined }]);
  t.deepEqual(store.keys(), ["b", "c"]);
  t.false(store.hasLease(2));
  t.deepEqual(store.apply(9, { op: "lease_revoke", id: 2 }), { op: "lease_revoke", found: false, deleted: 0 });
});

test("a snapshot keeps leases and which keys they hold", (t) => {
  const store = new KvStore();
  store.apply(1, { op: "lease_grant", id: 0, ttlSec: 10 });
  store.apply(2, putWithLease("a", "1", 1));
  const restored = KvStore.restore(store.snapshot());
  t.deepEqual(restored.lease(1), { id: 1, ttlSec: 10, keys: ["a"] });
  t.is(restored.compactedRevision, 2);
  restored.apply(3, { op: "lease_revoke", id: 1 });
  t.is(restored.size, 0);
});
