/**
 * pgraft_add_node with the new member's client URL and name, on real PostgreSQL nodes, as
 * `pgraft member add --client-url --name` gives them: they go into the replicated membership with the
 * node, so every node's pgraft_get_nodes() names it and knows where its client API is even before it
 * has started (it is added while it is down, so nothing but the call can have put them there). Bad
 * values are refused with 22023 and change nothing; the guide's three-argument call still resolves.
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

interface NodeRow {
  node_id: number;
  name: string;
  client_url: string | null;
  is_learner: boolean;
}

test.serial("bad client URLs and names are refused with 22023 and add nothing; the three-argument form still resolves", async (t) => {
  const founders = cluster.nodes.slice(0, 3);
  const joiner = cluster.nodes[3]!;
  const leader = await cluster.waitForLeader(30_000, founders);
  const calls: [string, unknown[], RegExp][] = [
    ["SELECT pgraft_add_node($1, '127.0.0.1', $2, '127.0.0.1:2374')", [joiner.id, joiner.peerPort], /client_url "127\.0\.0\.1:2374" is not a client URL; write it as http:\/\/host:port/],
    ["SELECT pgraft_add_node($1, '127.0.0.1', $2, 'http://127.0.0.1:2374/path', 'n4')", [joiner.id, joiner.peerPort], /client_url "http:\/\/127\.0\.0\.1:2374\/path" is not a client URL/],
    ["SELECT pgraft_add_node($1, '127.0.0.1', $2, NULL, '')", [joiner.id, joiner.peerPort], /the name is empty; pass the new node's pgraft\.name, or NULL to leave it out/],
    ["SELECT pgraft_add_node($1, '127.0.0.1', $2, client_url => $3, name => 'n 4')", [joiner.id, joiner.peerPort, joiner.clientUrl], /name "n 4" is not a member name/],
    ["SELECT pgraft_add_node(NULL, '127.0.0.1', 7999, 'http://127.0.0.1:2374')", [], /node_id, address and port must not be NULL/],
    // The operations guide's form resolves to one function (no "is not unique"), and its checks still apply.
    ["SELECT pgraft_add_node(9, 'not a host!', 7999)", [], /cannot add node 9/],
    // So does the name-only form the operations guide shows (client_url => NULL).
    ["SELECT pgraft_add_node(9, 'not a host!', 7999, client_url => NULL, name => 'n9')", [], /cannot add node 9/],
  ];
  for (const [sql, params, message] of calls) {
    const error = await t.throwsAsync(cluster.query(leader, sql, params), undefined, sql);
    t.is((error as { code?: string }).code, "22023", `${sql}: ${error?.message}`);
    t.regex(error!.message, message);
  }
  const rows = await cluster.query<NodeRow>(leader, "SELECT node_id FROM pgraft_get_nodes()");
  t.deepEqual(
    rows.map((row) => row.node_id),
    founders.map((node) => node.id),
    "no refused call changed the membership",
  );
});

test.serial("a node added with its client URL and name is listed with them by every node before it starts, and joins", async (t) => {
  const founders = cluster.nodes.slice(0, 3);
  const joiner = cluster.nodes[3]!;
  const leader = await cluster.waitForLeader(30_000, founders);
  const wanted = { node_id: joiner.id, name: joiner.name, client_url: joiner.clientUrl };
  // Named notation, with a trailing "/" on the URL (dropped, as pgraft member add drops it).
  const added = cluster.value<boolean>(leader, "SELECT pgraft_add_node($1, '127.0.0.1', $2, client_url => $3, name => $4)", [joiner.id, joiner.peerPort, `${joiner.clientUrl}/`, joiner.name]);
  added.catch(() => undefined);
  // The joiner is not running: only the call can have put its name and client URL in the membership,
  // where every founder reads them (the leader's pgraft.client_urls does not list it).
  for (const node of founders) {
    const row = await waitFor(`${node.name} to list the learner ${joiner.name}`, async () => {
      const rows = await cluster.query<NodeRow>(node, "SELECT node_id, name, client_url, is_learner FROM pgraft_get_nodes() WHERE node_id = $1", [joiner.id]);
      return rows[0];
    });
    t.deepEqual({ node_id: row.node_id, name: row.name, client_url: row.client_url }, wanted, node.name);
  }
  cluster.start(joiner);
  t.true(await added, "pgraft_add_node returns true once the node votes");
  await cluster.waitForWorker(joiner);
  for (const node of cluster.nodes) {
    await waitFor(`four voters on ${node.name}, ${joiner.name} with its client URL`, async () => {
      const rows = await cluster.query<NodeRow>(node, "SELECT node_id, name, client_url, is_learner FROM pgraft_get_nodes()");
      const row = rows.find((r) => r.node_id === joiner.id);
      return rows.length === 4 && rows.every((r) => !r.is_learner) && row?.name === wanted.name && row.client_url === wanted.client_url ? true : undefined;
    });
  }
  // The member list view (etcdctl member list's columns) shows it too.
  const [member] = await cluster.query<{ name: string; client_addrs: string }>(leader, "SELECT name, client_addrs FROM pgraft.member_list WHERE id = to_hex($1::bigint)", [joiner.id]);
  t.deepEqual(member, { name: joiner.name, client_addrs: joiner.clientUrl });
});
