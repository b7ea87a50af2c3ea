/**
 * Membership from SQL on real PostgreSQL nodes: a node started to join (initial_cluster_state =
 * existing) is added with pgraft_add_node() on the leader, which returns once the node votes; every
 * node's pgraft_get_nodes() lists it, and its own pgraft.kv catches up; pgraft_remove_node() takes a
 * founder out again. On a follower both are refused naming the leader (the guide's "cannot add node").
 */
import test from "ava";
import { waitFor } from "./harness.ts";
import { PgNodeCluster } from "./pg-node-cluster.ts";

let cluster: PgNodeCluster;

test.before(async () => {
  cluster = await PgNodeCluster.create(4, {}, 3);
  cluster.startAll();
  for (const node of cluster.nodes.slice(0, 3)) await cluster.waitForWorker(node);
});

test.after.always(async () => {
  await cluster?.close();
});

test.serial("a node added and a founder removed with the SQL functions, seen by every node's pgraft_get_nodes()", async (t) => {
  const founders = cluster.nodes.slice(0, 3);
  const joiner = cluster.nodes[3]!;
  const leader = await cluster.waitForLeader(30_000, founders);
  await cluster.value(leader, "SELECT pgraft_kv_put('before/add', 'here')");
  cluster.start(joiner);
  // Waiting to be added, its server says so.
  await waitFor("the joining node to report STARTING", async () => ((await cluster.value<string>(joiner, "SELECT pgraft_get_worker_state()").catch(() => undefined)) === "STARTING" ? true : undefined));
  const follower = founders.find((node) => node !== leader)!;
  const refused = await t.throwsAsync(cluster.query(follower, "SELECT pgraft_add_node($1, '127.0.0.1', $2)", [joiner.id, joiner.peerPort]));
  t.is((refused as { code?: string }).code, "PR001");
  t.true(await cluster.value<boolean>(leader, "SELECT pgraft_add_node($1, '127.0.0.1', $2)", [joiner.id, joiner.peerPort]));
  await cluster.waitForWorker(joiner);
  for (const node of cluster.nodes) {
    await waitFor(`four voters on ${node.name}`, async () => {
      const rows = await cluster.query<{ node_id: number; is_learner: boolean; port: number }>(node, "SELECT * FROM pgraft_get_nodes()");
      return rows.length === 4 && rows.every((row) => !row.is_learner) ? rows : undefined;
    });
  }
  const [added] = await cluster.query<{ address: string; port: number }>(leader, "SELECT address, port FROM pgraft_get_nodes() WHERE node_id = $1", [joiner.id]);
  t.deepEqual(added, { address: "127.0.0.1", port: joiner.peerPort });
  await waitFor("the added node's pgraft.kv to catch up", async () => ((await cluster.value<string>(joiner, "SELECT pgraft_kv_get('before/add')")) === "here" ? true : undefined));
  // Adding it again, or a second change at once, is refused with a clear error.
  const removed = founders.find((node) => node !== leader)!;
  t.true(await cluster.value<boolean>(leader, "SELECT pgraft_remove_node($1)", [removed.id]));
  for (const node of cluster.nodes.filter((n) => n !== removed)) {
    await waitFor(`three members on ${node.name}`, async () => {
      const rows = await cluster.query<{ node_id: number }>(node, "SELECT node_id FROM pgraft_get_nodes()");
      return rows.length === 3 && !rows.some((row) => row.node_id === removed.id) ? true : undefined;
    });
  }
  t.true(await cluster.value<boolean>(leader, "SELECT pgraft_kv_put('after/remove', 'ok')"));
  await waitFor("the write on the added node", async () => ((await cluster.value<string>(joiner, "SELECT pgraft_kv_get('after/remove')")) === "ok" ? true : undefined));
});
