/**
 * `pgraft start --pgdata` does not hold Raft back while its PostgreSQL starts: crash recovery after a
 * kill can take long, and a node that cannot vote meanwhile turns a restart of a majority into a longer
 * outage than it needs to be (the chaos scenario lost-quorum measures exactly that). And a PostgreSQL
 * that cannot start at all still stops the node with the reason and exit code 1.
 *
 * The slow start is a gate, not a guess at timing: the node runs postgres from a `--pg-bin` directory
 * whose `postgres` waits for a file the test creates (at most 60 s) before it execs the real server.
 * So the node can only lead before the gate opens if Raft does not wait for PostgreSQL.
 */
import test from "ava";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { findPostgresBinaries } from "../../src/postgres/pg-binaries.ts";
import { readPostmasterPid } from "../../src/postgres/data-directory.ts";
import { PgNodeCluster } from "./pg-node-cluster.ts";
import { waitFor } from "./harness.ts";

/** The longest the gated postgres waits for its gate before it starts anyway (a bounded loop). */
const GATE_WAIT_S_MAX = 60;

test.serial("Raft elects a leader while PostgreSQL has not started, and the SQL interface follows once it does", async (t) => {
  t.timeout(120_000);
  const cluster = await PgNodeCluster.create(1);
  t.teardown(() => cluster.close());
  const node = cluster.nodes[0]!;
  const real = await findPostgresBinaries();
  const binDirectory = join(cluster.directory, "gated-bin");
  const gate = join(cluster.directory, "gate-open");
  mkdirSync(binDirectory, { mode: 0o755 });
  for (const name of ["initdb", "pg_isready", "psql"]) symlinkSync(join(real.binDirectory, name), join(binDirectory, name));
  const script = [
    "#!/bin/sh",
    `case "$1" in --version|-V) exec '${real.postgres}' "$@";; esac`,
    `waited=0; while [ ! -e '${gate}' ] && [ "$waited" -lt ${GATE_WAIT_S_MAX * 10} ]; do sleep 0.1; waited=$((waited + 1)); done`,
    `exec '${real.postgres}' "$@"`,
    "",
  ].join("\n");
  writeFileSync(join(binDirectory, "postgres"), script);
  chmodSync(join(binDirectory, "postgres"), 0o755);

  cluster.start(node, ["--pg-bin", binDirectory]);
  // The node answers, and leads its one-node cluster, while postgres waits at the gate.
  await waitFor("the node to lead while PostgreSQL waits", async () => {
    const response = await fetch(`${node.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
    if (response === undefined) return undefined;
    const body = (await response.json()) as { role?: string };
    return body.role === "leader" ? true : undefined;
  }, { timeoutMs: 30_000 });
  t.is(readPostmasterPid(node.pgdata), undefined, "PostgreSQL had not started when the node led");
  const early = await cluster.psql(node, "SELECT 1");
  t.not(early.code, 0, "psql cannot connect before the gate opens");

  writeFileSync(gate, "");
  // Once PostgreSQL accepts connections, the bridge connects at once and the SQL functions tell the truth.
  const leader = await waitFor("pgraft_is_leader() in SQL", async () => {
    const result = await cluster.psql(node, "SELECT pgraft_is_leader()").catch(() => undefined);
    return result?.code === 0 && result.stdout.trim() === "t" ? result.stdout.trim() : undefined;
  }, { timeoutMs: 60_000 });
  t.is(leader, "t");
  t.regex(node.log, /started PostgreSQL \(pid \d+\)/);
  t.is(node.process?.exitCode, null, "the node still runs");
});

test.serial("a PostgreSQL that cannot start stops the node with the reason and exit code 1, leaving no process", async (t) => {
  t.timeout(60_000);
  const cluster = await PgNodeCluster.create(1);
  t.teardown(() => cluster.close());
  const node = cluster.nodes[0]!;
  // Someone else holds PostgreSQL's port.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(node.pgPort, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())));

  cluster.start(node);
  const child = node.process!;
  const code = await new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (exitCode) => resolve(exitCode));
  });
  t.is(code, 1);
  t.regex(node.log, new RegExp(`port ${node.pgPort} on 127\\.0\\.0\\.1 is taken by another process`));
  t.regex(node.log, /PostgreSQL did not start: stopping/);
  const pidFile = readPostmasterPid(node.pgdata);
  t.true(pidFile === undefined || !processAlive(pidFile.pid), "no postmaster is left");
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
