/**
 * The SQL interface on a real three-node cluster: PostgreSQL 15 servers, each supervised by a
 * `pgraft start --pgdata` process that reads its pgraft.* settings from the server's postgresql.conf.
 * The operations guide's queries run verbatim through psql; values travel between SQL and the etcd API;
 * followers refuse leader-only calls naming the leader; privileges; fencing; kill -9 of a node;
 * PostgreSQL killed under a running node.
 */
import test from "ava";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initdb, SMALL_SERVER_SETTINGS } from "../../src/postgres/supervisor.ts";
import { findRunningPostmaster } from "../../src/postgres/data-directory.ts";
import { TEMPLATE_CACHE_DIRECTORY, waitFor } from "./harness.ts";
import { PgNodeCluster, type PgNode } from "./pg-node-cluster.ts";
import { get, put } from "../server/process-cluster.ts";

/** The operations guide's "Quick health check" and "Detailed status", character for character. */
const GUIDE_QUICK_HEALTH_CHECK = `SELECT 
    pgraft_is_leader() as is_leader,
    pgraft_get_term() as term,
    pgraft_get_leader() as leader_id,
    pgraft_get_worker_state() as worker;`;
const GUIDE_DETAILED_STATUS = `SELECT * FROM pgraft_get_cluster_status();
SELECT * FROM pgraft_get_nodes();
SELECT * FROM pgraft_log_get_stats();`;

let cluster: PgNodeCluster;

test.before(async () => {
  cluster = await PgNodeCluster.create(3);
  cluster.startAll();
  for (const node of cluster.nodes) await cluster.waitForWorker(node);
});

test.after.always(async () => {
  await cluster?.close();
});

async function followers(leader: PgNode): Promise<PgNode[]> {
  return cluster.nodes.filter((node) => node !== leader);
}

test.serial("the guide's health checks run verbatim in psql on every node and agree on one leader", async (t) => {
  const leader = await cluster.waitForLeader();
  for (const node of cluster.nodes) {
    const quick = await cluster.psql(node, GUIDE_QUICK_HEALTH_CHECK, { aligned: true });
    t.is(quick.code, 0, quick.stderr);
    t.regex(quick.stdout, /is_leader \| term \| leader_id \| worker/);
    const detailed = await cluster.psql(node, GUIDE_DETAILED_STATUS, { aligned: true });
    t.is(detailed.code, 0, detailed.stderr);
    t.regex(detailed.stdout, /node_id \| current_term \| leader_id \| +state +\| num_nodes \| messages_processed \| heartbeats_sent \| elections_triggered/);
    t.regex(detailed.stdout, /node_id \| +address +\| +port +\| is_leader/);
    t.regex(detailed.stdout, /log_size \| last_index \| commit_index \| last_applied \| replicated \| committed \| applied \| errors/);
    t.log(`${node.name}:\n${quick.stdout}\n${detailed.stdout}`);
  }
  // What they say is true: one leader, known to everyone, in one term; real counters.
  const terms = new Set<string>();
  for (const node of cluster.nodes) {
    const [row] = await cluster.query<{ is_leader: boolean; term: string; leader_id: string; worker: string }>(node, GUIDE_QUICK_HEALTH_CHECK);
    t.is(row!.is_leader, node === leader, `${node.name} is_leader`);
    t.is(Number(row!.leader_id), leader.id, `${node.name} leader_id`);
    t.is(row!.worker, "RUNNING");
    terms.add(row!.term);
    const [status] = await cluster.query<Record<string, string | number>>(node, "SELECT * FROM pgraft_get_cluster_status()");
    t.is(status!.node_id, node.id);
    t.is(status!.state, node === leader ? "leader" : "follower");
    t.is(status!.num_nodes, 3);
    t.true(Number(status!.messages_processed) > 0, "messages were processed");
    if (node === leader) t.true(Number(status!.heartbeats_sent) > 0, "the leader sent heartbeats");
    const nodes = await cluster.query<{ node_id: number; address: string; port: number; is_leader: boolean; name: string }>(node, "SELECT * FROM pgraft_get_nodes()");
    t.deepEqual(
      nodes.map((row) => [row.node_id, row.name, row.address, row.port, row.is_leader]),
      cluster.nodes.map((n) => [n.id, n.name, "127.0.0.1", n.peerPort, n === leader]),
    );
    const [stats] = await cluster.query<Record<string, string>>(node, "SELECT * FROM pgraft_log_get_stats()");
    t.true(Number(stats!.commit_index) >= 1 && Number(stats!.last_index) >= Number(stats!.commit_index));
  }
  t.is(terms.size, 1, "every node reports the same term");
  const replication = await cluster.query<{ node_id: number; match_index: string; lag: string; last_contact: Date }>(leader, "SELECT * FROM pgraft_log_get_replication_status()");
  t.deepEqual(
    replication.map((row) => row.node_id),
    (await followers(leader)).map((node) => node.id),
  );
  t.is(await cluster.value<string>(leader, "SELECT pgraft_get_version()"), "0.1.0");
});

test.serial("a value put through SQL on the leader is read on every node through SQL and the etcd API, and back", async (t) => {
  const leader = await cluster.waitForLeader();
  t.true(await cluster.value<boolean>(leader, "SELECT pgraft_kv_put('guide/key', 'värde 1')"));
  // The leader's own table has it when the call returns.
  t.is(await cluster.value<string>(leader, "SELECT pgraft_kv_get('guide/key')"), "värde 1");
  for (const node of cluster.nodes) {
    await waitFor(`guide/key on ${node.name}`, async () => ((await cluster.value<string>(node, "SELECT pgraft_kv_get('guide/key')")) === "värde 1" ? true : undefined));
    t.true(await cluster.value<boolean>(node, "SELECT pgraft_kv_exists('guide/key')"));
    t.is(await get(node.clientUrl, "guide/key"), "värde 1");
  }
  // Written through the etcd API (bytes that are not UTF-8 included), read through SQL.
  const written = await put(leader.clientUrl, "from/etcd", "hello");
  t.is(written.status, 200);
  const binary = Buffer.from([0xff, 0x00, 0xfe, 0x41]);
  const response = await fetch(`${leader.clientUrl}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: Buffer.from("from/etcd/bytes").toString("base64"), value: binary.toString("base64") }),
  });
  t.is(response.status, 200, await response.clone().text());
  for (const node of cluster.nodes) {
    await waitFor(`from/etcd on ${node.name}`, async () => ((await cluster.value<string>(node, "SELECT pgraft_kv_get('from/etcd')")) === "hello" ? true : undefined));
    await waitFor(`binary value on ${node.name}`, async () => {
      const value = await cluster.value<Buffer | null>(node, "SELECT pgraft_kv_get_bytes(convert_to('from/etcd/bytes', 'UTF8'))");
      return value !== null && Buffer.compare(value, binary) === 0 ? true : undefined;
    });
    // Not UTF-8 text: the text column is NULL, the bytes are exact.
    t.is(await cluster.value<string | null>(node, "SELECT pgraft_kv_get('from/etcd/bytes')"), null);
    const keys = await cluster.query<{ pgraft_kv_list_keys: string }>(node, "SELECT * FROM pgraft_kv_list_keys()");
    t.deepEqual(keys.map((row) => row.pgraft_kv_list_keys), ["from/etcd", "from/etcd/bytes", "guide/key"]);
  }
  // A delete through SQL reaches the etcd API.
  t.true(await cluster.value<boolean>(leader, "SELECT pgraft_kv_delete('from/etcd')"));
  t.false(await cluster.value<boolean>(leader, "SELECT pgraft_kv_exists('from/etcd')"));
  t.is(await get(leader.clientUrl, "from/etcd"), undefined);
  // Versions follow etcd's rules, from the one store.
  await cluster.value(leader, "SELECT pgraft_kv_put('guide/key', 'värde 2')");
  const [row] = await cluster.query<{ version: string; create_revision: string; mod_revision: string }>(leader, "SELECT version, create_revision, mod_revision FROM pgraft.kv WHERE key = 'guide/key'");
  t.is(row!.version, "2");
  t.true(Number(row!.mod_revision) > Number(row!.create_revision));
});

test.serial("on a follower, leader-only functions fail with a pgraft SQLSTATE that names the leader", async (t) => {
  const leader = await cluster.waitForLeader();
  const [follower] = await followers(leader);
  for (const call of ["SELECT pgraft_kv_put('k', 'v')", "SELECT pgraft_kv_delete('k')", "SELECT pgraft_remove_node(3)", "SELECT pgraft_add_node(9, '127.0.0.1', 7999)"]) {
    const error = await t.throwsAsync(cluster.query(follower!, call), undefined, call);
    t.is((error as { code?: string }).code, "PR001", call);
    t.regex(error!.message, new RegExp(`not the leader; the leader is ${leader.name} \\(node ${leader.id}, peer 127\\.0\\.0\\.1:${leader.peerPort}`), call);
  }
  // psql shows the SQLSTATE and the hint as an operator sees them.
  const shown = await cluster.psql(follower!, "SELECT pgraft_kv_put('k', 'v')");
  t.is(shown.code, 1);
  t.regex(shown.stderr, /ERROR: {2}PR001: pgraft: cannot put on n\d/);
  t.regex(shown.stderr, /HINT: {2}Run it on the leader/);
  // Bad arguments are refused before anything is proposed.
  const invalid = await t.throwsAsync(cluster.query(leader, "SELECT pgraft_add_node(9, 'not a host!', 7999)"));
  t.is((invalid as { code?: string }).code, "22023");
  const nullKey = await t.throwsAsync(cluster.query(leader, "SELECT pgraft_kv_put(NULL, 'v')"));
  t.is((nullKey as { code?: string }).code, "22023");
});

test.serial("functions are revoked from PUBLIC; pgraft_monitor may read status but change nothing; pgraft.kv refuses writes", async (t) => {
  const leader = await cluster.waitForLeader();
  await cluster.query(leader, "CREATE ROLE app LOGIN");
  for (const call of ["SELECT pgraft_is_leader()", "SELECT * FROM pgraft_get_cluster_status()", "SELECT pgraft_kv_get('guide/key')", "SELECT pgraft_kv_put('a', 'b')", "SELECT * FROM pgraft.kv"]) {
    const error = await t.throwsAsync(cluster.query(leader, call, [], "app"), undefined, call);
    t.is((error as { code?: string }).code, "42501", `${call}: ${error?.message}`);
  }
  await cluster.query(leader, "GRANT pgraft_monitor TO app");
  t.is(await cluster.query(leader, "SELECT pgraft_is_leader() AS l", [], "app").then((rows) => rows[0]!.l), true);
  t.is((await cluster.query(leader, "SELECT * FROM pgraft_get_nodes()", [], "app")).length, 3);
  t.is((await cluster.query(leader, "SELECT * FROM pgraft.member_list", [], "app")).length, 3);
  for (const call of ["SELECT pgraft_kv_put('a', 'b')", "SELECT pgraft_remove_node(2)", "SELECT pgraft_kv_get('guide/key')"]) {
    const error = await t.throwsAsync(cluster.query(leader, call, [], "app"), undefined, call);
    t.is((error as { code?: string }).code, "42501", call);
  }
  // Not even a superuser writes the replicated table behind the node's back.
  for (const call of ["INSERT INTO pgraft.kv (key_bytes, key, value_bytes, version, create_revision, mod_revision, created_at, updated_at) VALUES ('\\x01', 'x', '\\x01', 1, 1, 1, now(), now())", "UPDATE pgraft.kv SET value = 'x'", "DELETE FROM pgraft.kv", "TRUNCATE pgraft.kv", "UPDATE pgraft.applied SET applied_index = 0"]) {
    const error = await t.throwsAsync(cluster.query(leader, call), undefined, call);
    t.is((error as { code?: string }).code, "42501", call);
    t.regex(error!.message, /only the pgraft node writes this table/);
  }
  const members = await cluster.query<{ id: string; status: string; name: string; peer_addrs: string; client_addrs: string; is_learner: boolean }>(leader, "SELECT * FROM pgraft.member_list ORDER BY name");
  t.deepEqual(
    members.map((member) => [member.id, member.status, member.name, member.peer_addrs, member.client_addrs, member.is_learner]),
    cluster.nodes.map((node) => [node.id.toString(16), "started", node.name, `http://127.0.0.1:${node.peerPort}`, node.clientUrl, false]),
  );
});

test.serial("fencing: followers' PostgreSQL refuse writes in new transactions, the leader's accept them", async (t) => {
  const leader = await cluster.waitForLeader();
  await waitFor("the leader's server to accept writes", async () => ((await cluster.value<string>(leader, "SHOW default_transaction_read_only")) === "off" ? true : undefined));
  await cluster.query(leader, "CREATE TABLE app_table (id int)");
  for (const follower of await followers(leader)) {
    t.is(await cluster.value<string>(follower, "SHOW default_transaction_read_only"), "on");
    const error = await t.throwsAsync(cluster.query(follower, "CREATE TABLE app_table (id int)"));
    t.is((error as { code?: string }).code, "25006", error?.message);
    // Reads work; pgraft's own status keeps flowing (the node's sessions are not fenced).
    t.is(await cluster.value<string>(follower, "SELECT pgraft_get_worker_state()"), "RUNNING");
  }
});

test.serial("kill -9 of a node: its server says STOPPED and not leader; restarted, it rejoins and catches up", async (t) => {
  const leader = await cluster.waitForLeader();
  const [stale] = await cluster.query<{ stale_after_ms: number }>(leader, "SELECT stale_after_ms FROM pgraft.node_status");
  t.is(stale!.stale_after_ms, 250, "status older than 2.5 heartbeat intervals (the node reports every half interval) means STOPPED");
  await cluster.kill(leader);
  const killedAtMs = Date.now();
  await waitFor("STOPPED on the killed node's server", async () => ((await cluster.value<string>(leader, "SELECT pgraft_get_worker_state()")) === "STOPPED" ? true : undefined), { intervalMs: 10 });
  t.log(`STOPPED seen ${Date.now() - killedAtMs} ms after kill -9 (heartbeat interval 100 ms)`);
  t.false(await cluster.value<boolean>(leader, "SELECT pgraft_is_leader()"));
  t.is(Number(await cluster.value<string>(leader, "SELECT pgraft_get_leader()")), 0);
  t.is(await cluster.value<string>(leader, "SELECT state FROM pgraft_get_cluster_status()"), "stopped");
  const error = await t.throwsAsync(cluster.query(leader, "SELECT pgraft_kv_put('k', 'v')"));
  t.is((error as { code?: string }).code, "PR004");
  const others = cluster.nodes.filter((node) => node !== leader);
  const next = await cluster.waitForLeader(30_000, others);
  await cluster.value(next, "SELECT pgraft_kv_put('after/kill', 'yes')");
  cluster.start(leader);
  await cluster.waitForWorker(leader);
  await waitFor("after/kill on the restarted node", async () => ((await cluster.value<string>(leader, "SELECT pgraft_kv_get('after/kill')")) === "yes" ? true : undefined));
  t.pass();
});

test.serial("PostgreSQL killed under a running node: Raft goes on, the server is restarted, pgraft.kv catches up", async (t) => {
  const leader = await cluster.waitForLeader();
  const [follower] = await followers(leader);
  const postmaster = findRunningPostmaster(follower!.pgdata);
  t.truthy(postmaster, "the follower's postmaster runs");
  process.kill(postmaster!.pid, "SIGKILL");
  // While the server is down (or restarting), the cluster takes writes and the node stays healthy.
  for (let i = 0; i < 5; i++) t.is((await put(leader.clientUrl, `while/pg/down/${i}`, `v${i}`)).status, 200);
  const health = await fetch(`${follower!.clientUrl}/health`);
  t.is(health.status, 200);
  await waitFor("the follower's PostgreSQL to be restarted with the rows", async () => {
    const value = await cluster.value<string>(follower!, "SELECT pgraft_kv_get('while/pg/down/4')").catch(() => undefined);
    return value === "v4" ? true : undefined;
  });
  t.regex(follower!.log, /lost the connection to PostgreSQL|cannot reach PostgreSQL/);
  t.regex(follower!.log, /restart/i);
  t.is(await cluster.value<string>(follower!, "SELECT pgraft_get_worker_state()"), "RUNNING");
  // /health reports the PostgreSQL side.
  const report = (await (await fetch(`${follower!.clientUrl}/health`)).json()) as { postgres?: { state: string; applied_index: number } };
  t.is(report.postgres?.state, "connected");
  t.true((report.postgres?.applied_index ?? 0) > 0);
  // So do the metrics: connected, caught up, fenced (a follower), one connection lost at least.
  const metrics = await (await fetch(follower!.metricsUrl)).text();
  t.regex(metrics, /^pgraft_postgres_up 1$/m);
  t.regex(metrics, /^pgraft_postgres_fenced 1$/m);
  t.regex(metrics, /^pgraft_postgres_connection_failures_total [1-9]\d*$/m);
  t.regex(metrics, /^pgraft_postgres_applied_index [1-9]\d*$/m);
});

test("bad pgraft settings in postgresql.conf are refused with the setting, the file and line, and a suggestion", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-badconf-"));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  chmodSync(directory, 0o711);
  const pgdata = join(directory, "pg");
  await initdb(pgdata, {
    templateCacheDirectory: TEMPLATE_CACHE_DIRECTORY,
    noSync: true,
    settings: { ...SMALL_SERVER_SETTINGS, "pgraft.cluster_id": "c", "pgraft.name": "n1", "pgraft.initial_cluster": "n1=127.0.0.1:7001", "pgraft.election_timout": "1000", "pgraft.heartbeat_interval": "5000" },
  });
  const result = spawnSync(process.execPath, ["bin/pgraft.js", "start", "--pgdata", pgdata], { encoding: "utf8", timeout: 30_000 });
  t.is(result.status, 2, result.stderr);
  t.regex(result.stderr, /pgraft\.election_timout/);
  t.regex(result.stderr, /did you mean "pgraft\.election_timeout"\?/);
  t.regex(result.stderr, /postgresql\.conf:\d+/);
  t.is(findRunningPostmaster(pgdata), undefined, "nothing was started");
});
