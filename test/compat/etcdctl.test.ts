// The etcd compatibility suite: the same etcdctl 3.4 commands and the same gateway requests, with the
// same assertions, against a 3-node pgraft cluster (real `pgraft start` processes) and a 3-member
// etcd 3.4 (Debian's etcd-server), and then the two transcripts must be equal. What legitimately
// differs is normalized before comparing: member ids, names, ports, cluster ids, lease ids and
// revision numbers (pgraft's revisions are Raft log indexes, etcd's count writes), time left on a
// lease, etcd's patch version. Fails, naming the packages, when etcd or etcdctl is missing.
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { sleep } from "../server/process-cluster.ts";
import { etcdctl, requirePrograms, startEtcd, startPgraft, type EtctlResult, type Target } from "./targets.ts";
import { readJsonLines } from "./json-lines.ts";

const targets: Target[] = [];
let closing: Promise<void> | undefined;
const closeAll = (): Promise<void> => (closing ??= Promise.all(targets.map((target) => target.close())).then(() => undefined));
const onSigint = (): void => void closeAll().then(() => process.exit(130));

test.before(async () => {
  requirePrograms();
  process.once("SIGINT", onSigint);
  // One after the other: the machine is small, and a failure to start stops the suite at once.
  targets.push(await startPgraft(24300));
  targets.push(await startEtcd(24600));
});

test.after.always(async () => {
  process.off("SIGINT", onSigint);
  await closeAll();
});

/** Runs `check` on every target (its assertions name the target) and requires equal transcripts. */
function compat(title: string, check: (t: ExecutionContext, target: Target) => Promise<unknown>): void {
  test.serial(title, async (t) => {
    t.is(targets.length, 2, "both pgraft and etcd must be running");
    const transcripts: Record<string, unknown> = {};
    for (const target of targets) transcripts[target.name] = await check(t, target);
    t.deepEqual(transcripts.pgraft, transcripts.etcd, "pgraft's transcript differs from etcd's");
  });
}

async function ok(t: ExecutionContext, target: Target, args: string[], input?: string): Promise<string> {
  const result = await etcdctl(target.endpoints, args, { input });
  t.is(result.code, 0, `${target.name}: etcdctl ${args.join(" ")} failed: ${result.stderr}\n${target.logs()}`);
  return result.stdout;
}

/** The "Error: ..." line of a failed command (clientv3's retry warnings left out), and its exit code. */
async function fails(t: ExecutionContext, target: Target, args: string[]): Promise<{ code: number | null; error: string }> {
  const result: EtctlResult = await etcdctl(target.endpoints, args);
  t.not(result.code, 0, `${target.name}: etcdctl ${args.join(" ")} should fail: ${result.stdout}`);
  const error = result.stderr.split("\n").find((line) => line.startsWith("Error:")) ?? result.stderr;
  return { code: result.code, error };
}

/** etcdctl's JSON with every integer as a string (ids are uint64: JSON.parse would round them). */
function parseJson(text: string): any {
  return JSON.parse(text.replace(/([:[,])(-?\d+)(?=[,}\]])/g, '$1"$2"'));
}

const b64 = (text: string): string => Buffer.from(text, "latin1").toString("base64");
const unb64 = (text: string | undefined): string => Buffer.from(text ?? "", "base64").toString("latin1");

async function revisionOfPut(t: ExecutionContext, target: Target, key: string, value: string): Promise<number> {
  const json = parseJson(await ok(t, target, ["put", key, value, "-w", "json"]));
  const revision = Number(json.header.revision);
  t.true(revision > 0, `${target.name}: put answered revision ${json.header.revision}`);
  return revision;
}

compat("put and get, with --prefix, --keys-only, --limit and -w json", async (t, target) => {
  const transcript: unknown[] = [];
  transcript.push(await ok(t, target, ["put", "compat/kv/a", "1"]));
  transcript.push(await ok(t, target, ["put", "compat/kv/b", "2"]));
  transcript.push(await ok(t, target, ["put", "compat/kv/c", "3"]));
  transcript.push(await ok(t, target, ["get", "compat/kv/a"]));
  transcript.push(await ok(t, target, ["get", "--prefix", "compat/kv/"]));
  transcript.push(await ok(t, target, ["get", "--prefix", "--keys-only", "compat/kv/"]));
  transcript.push(await ok(t, target, ["get", "--prefix", "--limit=2", "--order=DESCEND", "compat/kv/"]));
  transcript.push(await ok(t, target, ["get", "compat/kv/none"]));
  t.is(transcript[4], "compat/kv/a\n1\ncompat/kv/b\n2\ncompat/kv/c\n3\n", target.name);
  const json = parseJson(await ok(t, target, ["get", "compat/kv/", "--prefix", "-w", "json"]));
  t.is(json.count, "3", target.name);
  t.deepEqual(
    json.kvs.map((kv: any) => [unb64(kv.key), unb64(kv.value), kv.version]),
    [
      ["compat/kv/a", "1", "1"],
      ["compat/kv/b", "2", "1"],
      ["compat/kv/c", "3", "1"],
    ],
    target.name,
  );
  const revisions = json.kvs.map((kv: any) => Number(kv.mod_revision));
  t.true(revisions[0] < revisions[1] && revisions[1] < revisions[2], `${target.name}: mod revisions ${revisions} grow with each put`);
  t.true(Number(json.header.revision) >= revisions[2], `${target.name}: the header's revision is the store's`);
  t.truthy(json.header.cluster_id && json.header.member_id && json.header.raft_term, `${target.name}: the header names cluster, member and term`);
  transcript.push(json.kvs.map((kv: any) => ({ ...kv, create_revision: "<rev>", mod_revision: "<rev>" })));
  return transcript;
});

compat("get --rev reads the store as it was", async (t, target) => {
  const first = await revisionOfPut(t, target, "compat/rev", "v1");
  const second = await revisionOfPut(t, target, "compat/rev", "v2");
  t.true(second > first, target.name);
  return [
    await ok(t, target, ["get", "compat/rev", `--rev=${first}`]),
    await ok(t, target, ["get", "compat/rev", `--rev=${second}`]),
    await ok(t, target, ["get", "compat/rev", `--rev=${first - 1}`]),
    await ok(t, target, ["get", "compat/rev"]),
    await fails(t, target, ["get", "compat/rev", `--rev=${second + 1_000_000}`]),
  ];
});

compat("del, with --prev-kv and --prefix", async (t, target) => {
  for (const key of ["x", "y", "z"]) await ok(t, target, ["put", `compat/del/${key}`, key.toUpperCase()]);
  const transcript = [
    await ok(t, target, ["del", "compat/del/x"]),
    await ok(t, target, ["del", "--prev-kv", "compat/del/y"]),
    await ok(t, target, ["del", "--prefix", "compat/del/"]),
    await ok(t, target, ["del", "compat/del/none"]),
    await ok(t, target, ["get", "--prefix", "compat/del/"]),
  ];
  t.deepEqual(transcript, ["1\n", "1\ncompat/del/y\nY\n", "1\n", "0\n", ""], target.name);
  return transcript;
});

compat("txn -i with compares on value, version, create and mod", async (t, target) => {
  const revision = await revisionOfPut(t, target, "compat/txn/k", "v1");
  const txn = (compares: string[], success: string[], failure: string[]): Promise<string> =>
    ok(t, target, ["txn", "-i"], `${compares.join("\n")}\n\n${success.join("\n")}\n\n${failure.join("\n")}\n\n`);
  const transcript = [
    await txn(['value("compat/txn/k") = "v1"', 'version("compat/txn/k") = "1"'], ["put compat/txn/k v2", "get compat/txn/k"], ["put compat/txn/failed yes"]),
    // (etcdctl 3.4 cannot write a lease compare: its parser panics; the gateway test covers LEASE.)
    await txn(['create("compat/txn/none") = "0"', `mod("compat/txn/k") > "${revision}"`], ["get compat/txn/k"], []),
    await txn(['value("compat/txn/k") = "v1"'], ["put compat/txn/k v3"], ["put compat/txn/failed yes", "del compat/txn/none"]),
    await txn([`mod("compat/txn/k") < "${revision}"`], [], ["get compat/txn/ --prefix"]),
  ];
  t.regex(transcript[0]!, /SUCCESS\n\nOK\n\ncompat\/txn\/k\nv2\n$/, target.name);
  t.regex(transcript[2]!, /FAILURE\n\nOK\n\n0\n$/, target.name);
  return transcript;
});

/** etcdctl watch as a running process: its output so far, and a bounded wait for more. */
function startWatch(target: Target, args: string[]): { output(): string; waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>; stop(): void } {
  const child = spawn("etcdctl", [`--endpoints=${target.endpoints.join(",")}`, "watch", ...args], { env: { ...process.env, ETCDCTL_API: "3" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return {
    output: () => output,
    async waitFor(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output) && Date.now() < deadline && child.exitCode === null) await sleep(50);
      return output;
    },
    stop() {
      clearTimeout(killer);
      child.kill("SIGKILL");
    },
  };
}

compat("watch --prefix --rev replays history, then follows new events", async (t, target) => {
  const first = await revisionOfPut(t, target, "compat/w/1", "a");
  await ok(t, target, ["put", "compat/w/2", "b"]);
  await ok(t, target, ["del", "compat/w/1"]);
  await ok(t, target, ["put", "compat/other", "not watched"]);
  const watch = startWatch(target, ["--prefix", "compat/w/", `--rev=${first}`]);
  try {
    const replayed = await watch.waitFor(/DELETE\ncompat\/w\/1\n/);
    t.is(replayed, "PUT\ncompat/w/1\na\nPUT\ncompat/w/2\nb\nDELETE\ncompat/w/1\n\n", `${target.name}: the history from --rev`);
    await ok(t, target, ["put", "compat/w/3", "c"]);
    const followed = await watch.waitFor(/compat\/w\/3\nc\n/);
    t.is(followed, `${replayed}PUT\ncompat/w/3\nc\n`, `${target.name}: a new event follows`);
    return followed;
  } finally {
    watch.stop();
  }
});

compat("watch of a single key with --prev-kv", async (t, target) => {
  const first = await revisionOfPut(t, target, "compat/wk", "old");
  await ok(t, target, ["put", "compat/wk", "new"]);
  await ok(t, target, ["put", "compat/wk2", "other key"]);
  const watch = startWatch(target, ["--prev-kv", "compat/wk", `--rev=${first + 1}`]);
  try {
    const output = await watch.waitFor(/new\n/);
    t.is(output, "PUT\ncompat/wk\nold\ncompat/wk\nnew\n", target.name);
    return output;
  } finally {
    watch.stop();
  }
});

compat("lease grant, put --lease, timetolive, keep-alive, list, revoke", async (t, target) => {
  const granted = await ok(t, target, ["lease", "grant", "120"]);
  const match = /^lease ([0-9a-f]{16}) granted with TTL\(120s\)\n$/.exec(granted);
  t.truthy(match, `${target.name}: ${granted}`);
  const id = match![1]!;
  const normalize = (text: string): string => text.replaceAll(id, "<lease>").replace(/remaining\(\d+s\)/, "remaining(<n>s)");
  const transcript: unknown[] = [normalize(granted)];
  transcript.push(await ok(t, target, ["put", `--lease=${id}`, "compat/lease/k", "v"]));
  const json = await ok(t, target, ["get", "compat/lease/k", "-w", "json"]);
  t.is(BigInt(parseJson(json).kvs[0].lease), BigInt(`0x${id}`), `${target.name}: the key carries the lease`);
  const ttl = await ok(t, target, ["lease", "timetolive", id, "--keys"]);
  t.regex(ttl, /granted with TTL\(120s\), remaining\((11\d|120)s\), attached keys\(\[compat\/lease\/k\]\)/, target.name);
  transcript.push(normalize(ttl));
  transcript.push(normalize(await ok(t, target, ["lease", "keep-alive", "--once", id])));
  const list = await ok(t, target, ["lease", "list"]);
  t.true(list.split("\n").includes(id), `${target.name}: lease list names ${id}: ${list}`);
  transcript.push(normalize(await ok(t, target, ["lease", "revoke", id])));
  transcript.push(await ok(t, target, ["get", "compat/lease/k"]));
  transcript.push(await fails(t, target, ["lease", "revoke", id]));
  transcript.push(normalize(await ok(t, target, ["lease", "timetolive", id])));
  transcript.push(await fails(t, target, ["lease", "keep-alive", "--once", id]));
  transcript.push(await fails(t, target, ["put", `--lease=${id}`, "compat/lease/k", "v"]));
  t.deepEqual(transcript.slice(2), [
    "lease <lease> granted with TTL(120s), remaining(<n>s), attached keys([compat/lease/k])\n",
    "lease <lease> keepalived with TTL(120)\n",
    "lease <lease> revoked\n",
    "",
    { code: 1, error: "Error: failed to revoke lease (etcdserver: requested lease not found)" },
    "lease <lease> already expired\n",
    { code: 2, error: "Error: etcdserver: requested lease not found" },
    { code: 1, error: "Error: etcdserver: requested lease not found" },
  ], target.name);
  return transcript;
});

compat("a lease that is not kept alive expires and takes its keys", async (t, target) => {
  const granted = await ok(t, target, ["lease", "grant", "3"]);
  const id = /^lease ([0-9a-f]{16}) granted/.exec(granted)?.[1];
  t.truthy(id, `${target.name}: ${granted}`);
  await ok(t, target, ["put", `--lease=${id}`, "compat/expiring", "v"]);
  t.is(await ok(t, target, ["get", "compat/expiring", "--print-value-only"]), "v\n", target.name);
  // Bounded wait (not a timing assertion): the key must go, whenever the leader expires the lease.
  const deadline = Date.now() + 30_000;
  let value = "v\n";
  while (value !== "" && Date.now() < deadline) {
    await sleep(250);
    value = await ok(t, target, ["get", "compat/expiring", "--print-value-only"]);
  }
  t.is(value, "", `${target.name}: the key outlived its lease by far`);
  return [value, (await ok(t, target, ["lease", "timetolive", id!])).replace(id!, "<lease>")];
});

compat("member list names every member with its client URL", async (t, target) => {
  const lines = (await ok(t, target, ["member", "list"])).trim().split("\n");
  t.is(lines.length, 3, target.name);
  const members = lines.map((line) => /^([0-9a-f]+), started, (\S+), (http:\/\/127\.0\.0\.1:\d+), (http:\/\/127\.0\.0\.1:\d+), false$/.exec(line));
  t.true(members.every((member) => member !== null), `${target.name}: ${lines.join(" | ")}`);
  t.deepEqual(members.map((member) => member![4]).sort(), [...target.endpoints].sort(), `${target.name}: client URLs`);
  t.is(new Set(members.map((member) => member![1])).size, 3, `${target.name}: ids are distinct`);
  const json = parseJson(await ok(t, target, ["member", "list", "-w", "json"]));
  t.is(json.members.length, 3, target.name);
  t.truthy(json.header.cluster_id, target.name);
  return [lines.map(() => "<id>, started, <name>, <peer URL>, <client URL>, false"), json.members.map((member: any) => Object.keys(member).sort())];
});

compat("member remove of an id that is not a member answers etcd's NOT_FOUND, over gRPC and the gateway", async (t, target) => {
  // etcdctl (gRPC) takes the id in hex: 999 is 2457, a member of neither cluster.
  const viaGrpc = await fails(t, target, ["member", "remove", "999"]);
  t.is(viaGrpc.error, "Error: etcdserver: member not found", target.name);
  // The gateway, on the leader (a pgraft follower answers 503 with the leader's id for any change).
  const leader = await leaderEndpoint(target);
  const viaGateway = await gateway(leader, "/v3/cluster/member/remove", { ID: "2457" });
  t.is(viaGateway.status, 404, `${target.name}: ${JSON.stringify(viaGateway.json)}`);
  t.is(viaGateway.json.code, 5, target.name);
  // Nobody was removed.
  t.is((await ok(t, target, ["member", "list"])).trim().split("\n").length, 3, target.name);
  return [viaGrpc, { status: viaGateway.status, error: viaGateway.json.error, code: viaGateway.json.code, message: viaGateway.json.message }];
});

/** The endpoint whose maintenance status names itself leader. */
async function leaderEndpoint(target: Target): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    for (const endpoint of target.endpoints) {
      const status = await gateway(endpoint, "/v3/maintenance/status", {}).catch(() => undefined);
      if (status?.status === 200 && status.json.leader !== undefined && status.json.leader === status.json.header?.member_id) return endpoint;
    }
    await sleep(100);
  }
  throw new Error(`${target.name}: no endpoint reports itself leader\n${target.logs()}`);
}

compat("endpoint status and endpoint health, one endpoint and --cluster", async (t, target) => {
  const statuses = parseJson(await ok(t, target, ["endpoint", "status", "--cluster", "-w", "json"]));
  t.is(statuses.length, 3, target.name);
  t.deepEqual(statuses.map((status: any) => status.Endpoint).sort(), [...target.endpoints].sort(), target.name);
  const leaders = new Set(statuses.map((status: any) => status.Status.leader));
  t.is(leaders.size, 1, `${target.name}: every member names the same leader`);
  t.is(statuses.filter((status: any) => status.Status.header.member_id === status.Status.leader).length, 1, `${target.name}: exactly one member is the leader`);
  for (const { Status: status } of statuses) {
    t.regex(status.version, /^3\.4\./, target.name);
    t.true(Number(status.raftTerm) >= 1 && Number(status.raftIndex) >= 1, `${target.name}: ${JSON.stringify(status)}`);
  }
  const table = await ok(t, target, ["endpoint", "status", "-w", "table"]);
  t.regex(table, /\| +ENDPOINT +\| +ID +\| VERSION \| DB SIZE \| IS LEADER \| IS LEARNER \| RAFT TERM \| RAFT INDEX \| RAFT APPLIED INDEX \| ERRORS \|/, target.name);
  t.is(table.split("\n").filter((line) => line.startsWith("| http://")).length, 3, `${target.name}: one row per endpoint`);
  // etcdctl 3.4 writes the health lines to stderr.
  const checked = await etcdctl(target.endpoints, ["endpoint", "health", "--cluster"]);
  t.is(checked.code, 0, `${target.name}: ${checked.stderr}`);
  const health = `${checked.stdout}${checked.stderr}`.trim().split("\n").sort();
  t.deepEqual(
    health.map((line) => /^(\S+) is healthy: successfully committed proposal: took = \S+$/.exec(line)?.[1]),
    [...target.endpoints].sort(),
    `${target.name}: ${health.join(" | ")}`,
  );
  // dbSize differs in meaning (etcd: its bolt file; pgraft: the store's bytes, left out while 0).
  const fields = (status: any): string[] => Object.keys(status.Status).filter((name) => !name.startsWith("dbSize")).sort();
  return [statuses.map(fields), health.length];
});

compat("compaction: older revisions answer etcd's compacted error, in get and in watch", async (t, target) => {
  const first = await revisionOfPut(t, target, "compat/cmp", "v1");
  const second = await revisionOfPut(t, target, "compat/cmp", "v2");
  await ok(t, target, ["put", "compat/cmp", "v3"]);
  const compacted = await ok(t, target, ["compaction", String(second)]);
  t.is(compacted, `compacted revision ${second}\n`, target.name);
  const watch = startWatch(target, ["compat/cmp", `--rev=${first}`]);
  let watched: string;
  try {
    watched = await watch.waitFor(/canceled/);
  } finally {
    watch.stop();
  }
  t.regex(watched, /watch was canceled \(etcdserver: mvcc: required revision has been compacted\)/, target.name);
  return [
    compacted.replace(String(second), "<rev>"),
    await fails(t, target, ["get", "compat/cmp", `--rev=${first}`]),
    await ok(t, target, ["get", "compat/cmp", `--rev=${second}`]),
    await ok(t, target, ["get", "compat/cmp"]),
    watched.split("\n")[0],
  ];
});

async function gateway(url: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
  return { status: response.status, json: await response.json() };
}

/** Reads a gateway watch stream until `enough(lines)` holds (bounded), then closes it. */
async function gatewayWatch(url: string, request: unknown, enough: (lines: any[]) => boolean): Promise<any[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20_000);
  const lines: any[] = [];
  try {
    const response = await fetch(`${url}/v3/watch`, { method: "POST", body: JSON.stringify(request), signal: controller.signal });
    await readJsonLines(response.body!, (line) => {
      lines.push(line);
      return enough(lines);
    });
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return lines;
}

compat("a gateway client: bytes that are not UTF-8 round-trip, and etcdctl reads the same bytes", async (t, target) => {
  const [one, two, three] = target.endpoints;
  const key = `compat/bin/${String.fromCharCode(0xff, 0x00, 0x80, 0xfe)}`;
  const value = String.fromCharCode(0x00, 0xc3, 0x28, 0xff, 0x0a, 0xe2, 0x82);
  const put = await gateway(one!, "/v3/kv/put", { key: b64(key), value: b64(value), prev_kv: true });
  t.is(put.status, 200, `${target.name}: ${JSON.stringify(put.json)}`);
  const revision = Number(put.json.header.revision);
  const range = await gateway(two!, "/v3/kv/range", { key: b64(key) });
  t.is(range.status, 200, target.name);
  t.is(unb64(range.json.kvs[0].key), key, `${target.name}: the key's bytes`);
  t.is(unb64(range.json.kvs[0].value), value, `${target.name}: the value's bytes`);
  const viaGrpc = parseJson(await ok(t, target, ["get", "--prefix", "compat/bin/", "-w", "json"]));
  t.is(viaGrpc.kvs[0].key, b64(key), `${target.name}: etcdctl (gRPC) sees the key's bytes`);
  t.is(viaGrpc.kvs[0].value, b64(value), `${target.name}: etcdctl (gRPC) sees the value's bytes`);
  const txn = await gateway(three!, "/v3/kv/txn", {
    compare: [
      { key: b64(key), target: "VALUE", result: "EQUAL", value: b64(value) },
      { key: b64(key), target: "LEASE", result: "EQUAL", lease: "0" },
    ],
    success: [{ request_put: { key: b64(key), value: b64(`${value}!`) } }],
  });
  t.is(txn.status, 200, target.name);
  t.true(txn.json.succeeded, `${target.name}: a value compare on raw bytes holds`);
  const eventsOf = (lines: any[]): any[] => lines.flatMap((line) => line.result?.events ?? []);
  const watched = await gatewayWatch(one!, { create_request: { key: b64(key), start_revision: String(revision) } }, (lines) => eventsOf(lines).length >= 2);
  t.true(watched[0]?.result?.created, `${target.name}: ${JSON.stringify(watched)}`);
  const events = eventsOf(watched);
  t.deepEqual(events.map((event: any) => unb64(event.kv.value)), [value, `${value}!`], `${target.name}: the gateway's watch stream`);
  const compacted = await gateway(two!, "/v3/kv/range", { key: b64(key), revision: "1" });
  const status = await gateway(three!, "/v3/maintenance/status", {});
  t.is(status.status, 200, target.name);
  t.truthy(status.json.leader, target.name);
  const version = await (await fetch(`${one}/version`)).json();
  t.regex(version.etcdcluster, /^3\.4\./, target.name);
  const missingLease = await gateway(one!, "/v3/lease/revoke", { ID: "12345" });
  return [
    put.json.prev_kv ?? null,
    range.json.count,
    txn.json.responses.map((response: any) => Object.keys(response)),
    { status: compacted.status, error: compacted.json.error, code: compacted.json.code },
    { status: missingLease.status, error: missingLease.json.error, code: missingLease.json.code },
    Object.keys(version).filter((name) => name.startsWith("etcd")).sort(),
  ];
});
