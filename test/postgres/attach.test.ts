/**
 * `pgraft start --postgres CONNINFO` beside a server it did not start: it finds the server's
 * postgresql.conf (SHOW config_file) and takes its pgraft.* settings from there, installs the SQL
 * interface, leads its one-node cluster, and on SIGTERM stops without stopping the server.
 */
import test from "ava";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts, startTestPostgres, waitFor } from "./harness.ts";

test("a node attached to a running server reads its settings from the server's postgresql.conf", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-attach-"));
  chmodSync(directory, 0o711);
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const secret = join(directory, "secret");
  writeFileSync(secret, "correct horse battery staple\n");
  const [peerPort, clientPort] = await freePorts(2);
  const server = await startTestPostgres(t, {
    settings: {
      "pgraft.cluster_id": "attached",
      "pgraft.name": "solo",
      "pgraft.initial_cluster": `solo=127.0.0.1:${peerPort}`,
      "pgraft.client_address": `127.0.0.1:${clientPort}`,
      "pgraft.data_dir": join(directory, "raft"),
      "pgraft.auth_secret_file": secret,
    },
  });
  const conninfo = `host=${server.supervisor.connectionConfig().host} port=${server.port} user=postgres dbname=postgres`;
  const child = spawn(process.execPath, ["bin/pgraft.js", "start", "--postgres", conninfo], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (chunk: Buffer) => (log += chunk.toString("utf8")));
  t.teardown(() => void child.kill("SIGKILL"));
  await waitFor("the attached node to lead", async () => {
    const rows = await server.query<{ l: boolean }>("SELECT pgraft_is_leader() AS l").catch(() => []);
    return rows[0]?.l === true ? true : undefined;
  }).catch((error: Error) => {
    throw new Error(`${error.message}\n${log}`);
  });
  // Settings from postgresql.conf are also visible to PostgreSQL itself, as custom settings.
  t.is((await server.query<{ name: string }>("SELECT current_setting('pgraft.name') AS name"))[0]!.name, "solo");
  t.is((await server.query<{ v: string }>("SELECT name AS v FROM pgraft_get_nodes()"))[0]!.v, "solo");
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  t.is(await exited, 0, log);
  t.is((await server.query<{ one: number }>("SELECT 1 AS one"))[0]!.one, 1, "the server it attached to keeps running");
});
