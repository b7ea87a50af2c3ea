/**
 * Installing the SQL interface on a real server: idempotent, upgraded in place from an older schema,
 * refused when the schema is newer than the node, refused for a non-superuser; the guide's functions
 * answer sensibly before any node has reported (a server whose node never started).
 */
import test from "ava";
import pg from "pg";
import { installedVersion, installSqlInterface, PostgresSetupError } from "../../src/postgres/install.ts";
import { SCHEMA_VERSION } from "../../src/postgres/schema.ts";
import { startTestPostgres, type TestPostgres } from "./harness.ts";

async function withClient<T>(server: TestPostgres, user: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...server.supervisor.connectionConfig(), user });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

test("installs once, again without change, upgrades an older schema in place and refuses a newer one", async (t) => {
  const server = await startTestPostgres(t);
  await withClient(server, "postgres", async (client) => {
    t.is(await installedVersion(client), 0);
    t.deepEqual(await installSqlInterface(client, { packageVersion: "0.0.1", targetVersion: 1 }), { from: 0, to: 1, database: "postgres" });
    // Version 1 has no member list view yet.
    t.is((await client.query("SELECT to_regclass('pgraft.member_list') AS view")).rows[0].view, null);
    t.deepEqual(await installSqlInterface(client, { packageVersion: "0.1.0" }), { from: 1, to: SCHEMA_VERSION, database: "postgres" });
    t.is((await client.query("SELECT to_regclass('pgraft.member_list')::text AS view")).rows[0].view, "pgraft.member_list");
    t.deepEqual(await installSqlInterface(client, { packageVersion: "0.1.0" }), { from: SCHEMA_VERSION, to: SCHEMA_VERSION, database: "postgres" });
    t.is((await client.query("SELECT pgraft_get_version() AS v")).rows[0].v, "0.1.0");
    // A newer schema (written by a later pgraft) is left alone, with a message saying what to do.
    await client.query("UPDATE pgraft.meta SET value = '99' WHERE key = 'schema_version'");
    const error = await t.throwsAsync(installSqlInterface(client, { packageVersion: "0.1.0" }), { instanceOf: PostgresSetupError });
    t.regex(error!.message, /schema version 99, newer than this node's version 2 .*run the newer pgraft that installed it, or drop the schema/);
    t.is(await installedVersion(client), 99, "the refused install changed nothing");
  });
});

test("before any node reports, the status functions say the worker is STOPPED and nobody leads", async (t) => {
  const server = await startTestPostgres(t);
  await withClient(server, "postgres", async (client) => {
    await installSqlInterface(client, { packageVersion: "0.1.0" });
    const row = (await client.query("SELECT pgraft_is_leader() AS l, pgraft_get_term() AS term, pgraft_get_leader() AS leader, pgraft_get_worker_state() AS worker")).rows[0];
    t.deepEqual(row, { l: false, term: "0", leader: "0", worker: "STOPPED" });
    t.is((await client.query("SELECT * FROM pgraft_get_nodes()")).rowCount, 0);
    const error = await t.throwsAsync(client.query("SELECT pgraft_kv_put('k', 'v')"));
    t.is((error as { code?: string }).code, "PR004");
    t.regex(error!.message, /the pgraft node of this PostgreSQL server is not running/);
  });
});

test("a non-superuser cannot install the interface, and is told why", async (t) => {
  const server = await startTestPostgres(t);
  await server.query("CREATE ROLE plain LOGIN");
  await withClient(server, "plain", async (client) => {
    const error = await t.throwsAsync(installSqlInterface(client, { packageVersion: "0.1.0" }), { instanceOf: PostgresSetupError });
    t.regex(error!.message, /user "plain" is not a superuser; connect the node as a superuser/);
  });
});
