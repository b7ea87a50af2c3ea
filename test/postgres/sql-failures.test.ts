/**
 * The operations guide's emergencies on real PostgreSQL nodes: lost quorum (SQL writes refused as
 * read-only, PostgreSQL fenced; the majority back restores both), complete cluster failure (every node
 * and server killed, all restarted: a leader, and every acknowledged write still there), and a node
 * killed inside an apply transaction (pgraft.kv neither loses nor repeats an entry).
 */
import test from "ava";
import { findRunningPostmaster } from "../../src/postgres/data-directory.ts";
import { killPostmasterOf, waitFor } from "./harness.ts";
import { PgNodeCluster } from "./pg-node-cluster.ts";

let cluster: PgNodeCluster;

test.before(async () => {
  cluster = await PgNodeCluster.create(3);
  cluster.startAll();
  for (const node of cluster.nodes) await cluster.waitForWorker(node);
});

test.after.always(async () => {
  await cluster?.close();
});

test.serial("a node killed inside an apply transaction neither loses nor repeats an entry in pgraft.kv", async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.nodes.find((node) => node !== leader)!;
  for (let i = 1; i <= 5; i++) await cluster.value(leader, "SELECT pgraft_kv_put('counter', $1)", [`v${i}`]);
  await waitFor("v5 on the victim", async () => ((await cluster.value<string>(victim, "SELECT pgraft_kv_get('counter')")) === "v5" ? true : undefined));
  const before = Number(await cluster.value<string>(victim, "SELECT applied_index FROM pgraft.applied"));
  await cluster.kill(victim);
  for (let i = 6; i <= 10; i++) await cluster.value(leader, "SELECT pgraft_kv_put('counter', $1)", [`v${i}`]);
  // Restarted with the fault armed, the node dies inside its first apply transaction, before COMMIT.
  cluster.start(victim, [], { PGRAFT_FAULT: "crash-before-commit" });
  await new Promise<void>((resolve) => victim.process!.once("exit", () => resolve()));
  t.is(victim.process!.signalCode, "SIGKILL", victim.log.slice(-2000));
  t.regex(victim.log, /fault injection: killing the node inside an apply transaction/);
  // Nothing of the cut transaction is visible: the table is exactly as of its recorded index.
  t.is(Number(await cluster.value<string>(victim, "SELECT applied_index FROM pgraft.applied")), before);
  const [cut] = await cluster.query<{ value: string; version: string }>(victim, "SELECT value, version FROM pgraft.kv WHERE key = 'counter'");
  t.deepEqual(cut, { value: "v5", version: "5" });
  // Restarted without the fault, it applies each missing entry once.
  cluster.start(victim);
  await cluster.waitForWorker(victim);
  await waitFor("v10 on the victim", async () => ((await cluster.value<string>(victim, "SELECT pgraft_kv_get('counter')")) === "v10" ? true : undefined));
  const [after] = await cluster.query<{ value: string; version: string }>(victim, "SELECT value, version FROM pgraft.kv WHERE key = 'counter'");
  t.deepEqual(after, { value: "v10", version: "10" });
  const [leaderRow] = await cluster.query<{ version: string; create_revision: string; mod_revision: string }>(leader, "SELECT version, create_revision, mod_revision FROM pgraft.kv WHERE key = 'counter'");
  const [victimRow] = await cluster.query<{ version: string; create_revision: string; mod_revision: string }>(victim, "SELECT version, create_revision, mod_revision FROM pgraft.kv WHERE key = 'counter'");
  t.deepEqual(victimRow, leaderRow);
});

test.serial("lost quorum: SQL writes fail as read-only, PostgreSQL refuses writes; with the majority back both recover", async (t) => {
  const leader = await cluster.waitForLeader();
  await cluster.value(leader, "SELECT pgraft_kv_put('before/quorum/loss', 'kept')");
  await waitFor("the leader's server to accept writes", async () => ((await cluster.value<string>(leader, "SHOW default_transaction_read_only")) === "off" ? true : undefined));
  const failed = cluster.nodes.filter((node) => node !== leader);
  for (const node of failed) await cluster.kill(node);
  // The old leader steps down (CheckQuorum) and fences its server.
  await waitFor("the old leader to step down", async () => ((await cluster.value<boolean>(leader, "SELECT pgraft_is_leader()")) === false ? true : undefined));
  const error = await t.throwsAsync(cluster.query(leader, "SELECT pgraft_kv_put('during/loss', 'x')"));
  t.is((error as { code?: string }).code, "PR002", error?.message);
  t.regex(error!.message, /the cluster is read-only, it has no quorum/);
  await waitFor("the old leader's server to refuse writes", async () => ((await cluster.value<string>(leader, "SHOW default_transaction_read_only")) === "on" ? true : undefined));
  const write = await t.throwsAsync(cluster.query(leader, "CREATE TABLE during_loss (id int)"));
  t.is((write as { code?: string }).code, "25006");
  // Reads of the replicated table still work everywhere.
  t.is(await cluster.value<string>(leader, "SELECT pgraft_kv_get('before/quorum/loss')"), "kept");
  for (const node of failed) cluster.start(node);
  const next = await cluster.waitForLeader(60_000);
  t.true(await cluster.value<boolean>(next, "SELECT pgraft_kv_put('after/quorum/back', 'yes')"));
  await waitFor("the new leader's server to accept writes", async () => ((await cluster.value<string>(next, "SHOW default_transaction_read_only")) === "off" ? true : undefined));
  await cluster.query(next, "CREATE TABLE after_quorum (id int)");
  t.is(await cluster.value<string>(next, "SELECT pgraft_kv_get('before/quorum/loss')"), "kept");
  t.false(await cluster.value<boolean>(next, "SELECT pgraft_kv_exists('during/loss')"), "the refused write did not happen");
});

test.serial("complete cluster failure: every node and server killed, all restarted, a leader and every acknowledged write", async (t) => {
  const leader = await cluster.waitForLeader(60_000);
  const acknowledged: string[] = [];
  for (let i = 0; i < 20; i++) {
    if (await cluster.value<boolean>(leader, "SELECT pgraft_kv_put($1, $2)", [`ccf/${i}`, `value ${i}`])) acknowledged.push(`ccf/${i}`);
  }
  t.is(acknowledged.length, 20);
  for (const node of cluster.nodes) {
    await cluster.kill(node);
    killPostmasterOf(node.pgdata);
  }
  for (const node of cluster.nodes) await waitFor(`${node.name}'s postmaster to be gone`, () => (findRunningPostmaster(node.pgdata) === undefined ? true : undefined));
  const restartedAtMs = Date.now();
  cluster.startAll();
  const next = await cluster.waitForLeader(60_000);
  t.log(`a leader (${next.name}) ${Date.now() - restartedAtMs} ms after restarting every node and server (the guide allows 10 s)`);
  for (const node of cluster.nodes) {
    await waitFor(`every acknowledged write on ${node.name}`, async () => {
      const rows = await cluster.query<{ key: string }>(node, "SELECT key FROM pgraft.kv WHERE key LIKE 'ccf/%'").catch(() => []);
      return rows.length === acknowledged.length ? true : undefined;
    });
    for (const key of acknowledged) t.is(await cluster.value<string>(node, "SELECT pgraft_kv_get($1)", [key]), `value ${key.slice(4)}`);
  }
});
