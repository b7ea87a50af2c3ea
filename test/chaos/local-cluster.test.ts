/**
 * `npm run cluster`, end to end with real processes: a detached cluster's JSON, the operations guide's
 * quick health check through psql on every node, a value put through one node's client URL read back
 * through another's, the refusal of a second cluster with the same name, `--stop` leaving no process
 * and no directory; and the foreground mode started over a stale cluster's leftovers, stopped by SIGINT.
 *
 * Every test uses cluster names of its own (with this process's pid), so a developer's own
 * `npm run cluster` keeps running; each teardown runs `--stop` and then SIGKILLs whatever is left.
 */
import test, { type ExecutionContext } from "ava";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isProcessAlive } from "../../src/postgres/data-directory.ts";
import { QUICK_HEALTH_CHECK } from "../../chaos/local-cluster/health.ts";
import { clusterDirectory, identify, processesUsing, type ClusterState, type NodeState } from "../../chaos/local-cluster/state.ts";

const CLI = ["--import", "tsx", "chaos/local-cluster/cli.ts"];
/** Bounds against hangs, not timing assertions: a loaded 2-core machine needs a fraction of them. */
const START_WAIT_MS = 240_000;
const STOP_WAIT_MS = 120_000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface NodeJson {
  readonly name: string;
  readonly id: number;
  readonly psql: string;
  readonly psqlCommand: string;
  readonly clientUrl: string;
  readonly metricsUrl: string;
  readonly pid: number;
  readonly postmasterPid: number;
  readonly pgdata: string;
}

interface ClusterJson {
  readonly name: string;
  readonly leader: string;
  readonly nodes: NodeJson[];
  readonly directory: string;
  readonly stateFile: string;
  readonly stopCommand: string;
}

function cli(args: readonly string[], timeoutMs = START_WAIT_MS): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function psql(connection: string, sql: string): Run {
  const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PG")));
  const result = spawnSync("psql", ["-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", connection, "-c", sql], { env: environment, encoding: "utf8", timeout: 30_000 });
  return { code: result.status, stdout: result.stdout.trim(), stderr: result.stderr.trim() };
}

/** `--stop` for the teardown, then SIGKILL to anything of the cluster that still runs. */
function stopForTeardown(t: ExecutionContext, name: string, pids: () => number[]): void {
  t.teardown(async () => {
    await cli(["--stop", "--name", name], STOP_WAIT_MS);
    for (const pid of [...pids(), ...processesUsing(clusterDirectory(name))]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone, as it should be
      }
    }
  });
}

/** Every process the cluster started is gone, and so is its directory. */
function assertNothingLeft(t: ExecutionContext, directory: string, pids: readonly number[]): void {
  t.true(pids.length > 0);
  for (const pid of pids) t.false(isProcessAlive(pid), `pid ${pid} still runs`);
  t.false(existsSync(directory), `${directory} still exists`);
  t.deepEqual(processesUsing(directory), [], `processes still use ${directory}`);
}

test("a detached cluster: JSON, the quick health check on every node, one store, a refused twin, and --stop leaves nothing", async (t) => {
  const name = `test-${process.pid}-d`;
  let cluster: ClusterJson | undefined;
  stopForTeardown(t, name, () => cluster?.nodes.flatMap((node) => [node.pid, node.postmasterPid]) ?? []);

  const started = await cli(["--detach", "--json", "--name", name]);
  t.is(started.code, 0, started.stderr);
  // One JSON object and nothing else on stdout; progress went to stderr.
  cluster = JSON.parse(started.stdout) as ClusterJson;
  t.is(started.stdout.trim().split("\n").length, 1);
  t.regex(started.stderr, /ready in/);
  t.is(cluster.name, name);
  t.deepEqual(cluster.nodes.map((node) => node.name), ["n1", "n2", "n3"]);
  for (const node of cluster.nodes) {
    t.regex(node.psql, /^host=\S+ port=\d+ user=\S+ dbname=postgres$/);
    t.is(node.psqlCommand, `psql "${node.psql}"`);
    t.regex(node.clientUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    t.regex(node.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  }
  const ports = cluster.nodes.flatMap((node) => [node.psql.match(/port=(\d+)/)![1], node.clientUrl.split(":")[2], node.metricsUrl.split(":")[2]!.split("/")[0]]);
  t.is(new Set(ports).size, ports.length, "every node has ports of its own");

  // The guide's quick health check, verbatim, through psql on each node: exactly one leader, named by all.
  // A node starved of CPU (a loaded 2-core machine) may miss its status deadline for a moment, and the
  // SQL then says STOPPED, truthfully: ask again, a bounded number of times, for a settled answer.
  const look = (): Array<{ node: ClusterJson["nodes"][number]; isLeader: boolean; term: number; leaderId: number; worker: string | undefined }> =>
    cluster!.nodes.map((node) => {
      const result = psql(node.psql, QUICK_HEALTH_CHECK);
      t.is(result.code, 0, result.stderr);
      const [isLeader, term, leaderId, worker] = result.stdout.split("|");
      return { node, isLeader: isLeader === "t", term: Number(term), leaderId: Number(leaderId), worker };
    });
  let rows = look();
  for (let attempt = 1; attempt < 10 && !rows.every((row) => row.worker === "RUNNING"); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    rows = look();
  }
  const leaders = rows.filter((row) => row.isLeader);
  t.is(leaders.length, 1, JSON.stringify(rows));
  t.is(leaders[0]!.node.name, cluster.leader);
  for (const row of rows) {
    t.is(row.worker, "RUNNING");
    t.is(row.leaderId, leaders[0]!.node.id);
    t.true(row.term >= 1);
  }
  const metrics = await fetch(cluster.nodes[0]!.metricsUrl);
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), /^pgraft_/m);

  // A put through one node's client URL is read back through another's.
  const key = Buffer.from(`local-cluster-${randomBytes(4).toString("hex")}`).toString("base64");
  const value = Buffer.from(randomBytes(8).toString("hex")).toString("base64");
  const writer = cluster.nodes.find((node) => node.name !== cluster!.leader)!;
  const reader = cluster.nodes.find((node) => node !== writer && node.name !== cluster!.leader)!;
  const put = await fetch(`${writer.clientUrl}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key, value }) });
  t.is(put.status, 200, await put.clone().text());
  const range = (await (await fetch(`${reader.clientUrl}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key }) })).json()) as { kvs?: Array<{ value: string }> };
  t.deepEqual(range.kvs?.map((kv) => kv.value), [value]);

  // The same name again is refused, saying how to stop the running one or pick another name.
  const twin = await cli(["--detach", "--json", "--name", name]);
  t.is(twin.code, 1);
  t.is(twin.stdout, "");
  t.regex(twin.stderr, new RegExp(`Cannot start cluster "${name}": one with that name runs already`));
  t.true(twin.stderr.includes(`npm run cluster -- --stop --name ${name}`), twin.stderr);
  t.regex(twin.stderr, /--name OTHER/);

  const pids = cluster.nodes.flatMap((node) => [node.pid, node.postmasterPid]);
  for (const pid of pids) t.true(isProcessAlive(pid), `pid ${pid} should run before --stop`);
  t.true(cluster.nodes.every((node) => existsSync(`${node.pgdata}/postmaster.pid`)));
  const stopped = await cli(["--stop", "--name", name], STOP_WAIT_MS);
  t.is(stopped.code, 0, stopped.stderr);
  t.regex(stopped.stderr, /no process left/);
  assertNothingLeft(t, cluster.directory, pids);
  t.true(cluster.nodes.every((node) => !existsSync(`${node.pgdata}/postmaster.pid`)));

  const again = await cli(["--stop", "--name", name], STOP_WAIT_MS);
  t.is(again.code, 0);
  t.regex(again.stderr, new RegExp(`No cluster named "${name}" to stop`));
});

test("the foreground cluster replaces a stale one's files, prints psql lines and the health check, and SIGINT stops everything", async (t) => {
  const name = `test-${process.pid}-f`;
  const directory = clusterDirectory(name);
  let state: ClusterState | undefined;
  const pids = (): number[] => state?.nodes.flatMap((node) => [node.process?.pid ?? 0, node.postmasterPid ?? 0]).filter((pid) => pid > 1) ?? [];
  stopForTeardown(t, name, pids);
  writeStaleCluster(name, directory);

  const child = spawn(process.execPath, [...CLI, "--name", name, "--nodes", "2"], { stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void child.kill("SIGKILL"));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "Press Ctrl-C" within ${START_WAIT_MS} ms:\n${stdout}\n${stderr}`)), START_WAIT_MS);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
      if (stdout.includes("Press Ctrl-C")) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`npm run cluster exited (${code}) before it was ready:\n${stdout}\n${stderr}`)));
  });
  t.regex(stderr, /found the files of cluster .* whose processes are all gone; removing/);
  state = JSON.parse(readFileSync(`${directory}/state.json`, "utf8")) as ClusterState;
  t.is(state.nodes.length, 2);
  for (const node of state.nodes) t.true(stdout.includes(`psql:     psql "${node.psql}"`), `${node.name}'s psql line`);
  t.true(stdout.includes(QUICK_HEALTH_CHECK));
  t.is(stdout.match(/^ is_leader \| term \| leader_id \| worker\s*$/gm)?.length, 2, stdout);
  t.is(stdout.match(/^ t {9}\|/gm)?.length, 1, "exactly one node says it leads");
  t.is(stdout.match(/\| RUNNING\s*$/gm)?.length, 2);
  for (const pid of pids()) t.true(isProcessAlive(pid));

  child.kill("SIGINT");
  t.is(await exited, 0, stderr);
  t.regex(stderr, /received SIGINT: stopping 2 nodes/);
  t.regex(stderr, /stopped; removed/);
  assertNothingLeft(t, directory, pids());
});

test("bad arguments get the reason and the usage, and exit 2", async (t) => {
  const runs = await Promise.all([["--nodes", "9"], ["--name", "no/slash"], ["--json"], ["--stop", "--detach"], ["--bogus"]].map((args) => cli(args, 60_000)));
  const reasons = [/--nodes "9": give a whole number from 1 to 7/, /--name "no\/slash"/, /--json without --detach/, /--detach with --stop/, /"--bogus": it is not a flag/];
  runs.forEach((run, index) => {
    t.is(run.code, 2);
    t.is(run.stdout, "");
    t.regex(run.stderr, reasons[index]!);
    t.regex(run.stderr, /Usage:/);
  });
});

/** A cluster directory as a machine crash leaves it: a state file naming processes that are gone. */
function writeStaleCluster(name: string, directory: string): void {
  const gone = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
  const pid = Number(gone.stdout.trim());
  const deadNode = (id: number): NodeState => ({
    name: `n${id}`,
    id,
    pgdata: `${directory}/n${id}/pgdata`,
    logFile: `${directory}/n${id}.log`,
    pgPort: 1,
    peerPort: 1,
    clientPort: 1,
    metricsPort: 1,
    pgUser: "postgres",
    psql: "",
    psqlCommand: "",
    clientUrl: "",
    metricsUrl: "",
    process: { pid, startTime: 1 },
    postmasterPid: undefined,
  });
  mkdirSync(`${directory}/n1/pgdata`, { recursive: true });
  const stale: ClusterState = {
    version: 1,
    name,
    directory,
    stateFile: `${directory}/state.json`,
    mode: "detached",
    createdAt: new Date(0).toISOString(),
    owner: { ...identify(pid), startTime: 1 },
    status: "running",
    secretFile: `${directory}/secret`,
    nodes: [deadNode(1), deadNode(2)],
  };
  writeFileSync(stale.stateFile, JSON.stringify(stale));
}
