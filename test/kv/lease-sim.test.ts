/**
 * Leases in the simulator (its clock, its faults): the leader expires a lease that nobody keeps alive
 * by committing a revoke, which deletes the lease's keys on every node at the same index; keep-alives
 * hold it; and after the leader dies the new leader gives every lease its full TTL again before
 * expiring any (etcd's rule), so a failover never ends a lease early.
 */
import test from "ava";
import { encodeTxnCommand } from "../../src/api/txn-codec.ts";
import type { KvWrite } from "../../src/kv/command.ts";
import type { SimCluster } from "../../sim/cluster.ts";
import { startedCluster } from "../sim/fixtures.ts";

const TTL_SEC = 5;

function submit(cluster: SimCluster, write: KvWrite): { index: number; output: unknown } {
  const leader = cluster.leader();
  if (leader === undefined) throw new Error("no leader to write to");
  let result: { index: number; output: unknown } | undefined;
  cluster.submitWrite(leader, write, 1, (answer) => {
    if (!answer.ok) throw answer.error;
    result = { index: answer.index, output: answer.output };
  });
  cluster.runForMs(5_000, () => result !== undefined);
  if (result === undefined) throw new Error(`write ${write.op} got no answer`);
  return result;
}

/** A lease of TTL_SEC with key "k" attached; returns its id and when it was granted. */
function leasedKey(cluster: SimCluster): { id: number; grantedMs: number } {
  const granted = submit(cluster, { op: "lease_grant", id: 0, ttlSec: TTL_SEC }).output as { id: number };
  const grantedMs = cluster.clock.nowMs;
  const request = encodeTxnCommand({ compare: [], success: [{ type: "put", request: { key: "k", value: "v", prevKv: false, lease: granted.id } }], failure: [] });
  submit(cluster, { op: "txn", key: "k", request });
  return { id: granted.id, grantedMs };
}

function keyEverywhere(cluster: SimCluster): boolean[] {
  return cluster.liveIds().map((id) => cluster.node(id)!.store.get("k") !== undefined);
}

test("a lease nobody keeps alive expires after its TTL, and its key goes on every node at one index", (t) => {
  const cluster = startedCluster(11);
  const { grantedMs } = leasedKey(cluster);
  cluster.runForMs(TTL_SEC * 1000 - 500);
  t.deepEqual(keyEverywhere(cluster), [true, true, true], "the key outlives its TTL's first part");
  cluster.runForMs(20_000, () => keyEverywhere(cluster).every((present) => !present));
  t.deepEqual(keyEverywhere(cluster), [false, false, false]);
  const goneAfterMs = cluster.clock.nowMs - grantedMs;
  t.true(goneAfterMs >= TTL_SEC * 1000, `deleted ${goneAfterMs} ms after the grant`);
  const indexes = cluster.liveIds().map((id) => cluster.node(id)!.store.appliedIndex);
  t.is(new Set(indexes).size, 1);
});

test("keep-alives hold a lease past its TTL", (t) => {
  const cluster = startedCluster(12);
  const { id } = leasedKey(cluster);
  for (let round = 0; round < 6; round++) {
    cluster.runForMs(2_000);
    let answered: number | undefined;
    cluster.node(cluster.leader()!)!.keepAlive(id, (result) => {
      answered = result.ok ? result.ttlSec : -1;
    });
    cluster.runForMs(2_000, () => answered !== undefined);
    t.is(answered, TTL_SEC);
  }
  t.deepEqual(keyEverywhere(cluster), [true, true, true], "12 s and more later the key is still there");
});

test("after the leader dies, the new leader gives the lease its full TTL again before expiring it", (t) => {
  for (const seed of [21, 22, 23]) {
    const cluster = startedCluster(seed);
    const { id } = leasedKey(cluster);
    cluster.runForMs(TTL_SEC * 1000 - 1_000); // the lease has about a second left on the old leader
    const old = cluster.leader()!;
    cluster.crash(old);
    cluster.runForMs(10_000, () => cluster.leader() !== undefined && cluster.leader() !== old);
    const newLeader = cluster.leader();
    t.truthy(newLeader, `seed ${seed}: a new leader`);
    const electedMs = cluster.clock.nowMs;
    cluster.runForMs(30_000, () => cluster.node(newLeader!)!.store.get("k") === undefined);
    const expiredAfterMs = cluster.clock.nowMs - electedMs;
    t.true(expiredAfterMs >= TTL_SEC * 1000 - 100, `seed ${seed}: the key went ${expiredAfterMs} ms after the new leader took over (TTL ${TTL_SEC} s)`);
    t.false(cluster.node(newLeader!)!.store.hasLease(id), `seed ${seed}: the lease is gone in the end`);
  }
});
