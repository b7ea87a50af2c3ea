// The README's walk-through on real `pgraft start` processes: three founders; n4 joins with its
// client URL (pgraft member add --client-url); n2 is removed and stops by itself, saying what to do,
// and refuses to start again on its data directory;
// every member's name and client URL are in the membership (each node publishes its own), so a
// follower forwards to n4 when it leads, `pgraft status` and `pgraft member` given only n1 reach the
// whole cluster, and a kill -9 of the leader afterwards leaves a working cluster. A second test:
// with pgraft.on_removed = idle a removed node stays up with /health answering 503.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { freePorts } from "./free-ports.ts";
import { get, ProcessCluster, put, sleep, type ProcessNode } from "./process-cluster.ts";

const run = promisify(execFile);

/** A cluster whose ports the OS reported free. */
async function clusterOf(size: number, extraSettings: string[] = []): Promise<ProcessCluster> {
  const c = new ProcessCluster(size, 1, extraSettings);
  const ports = await freePorts(2 * size);
  c.nodes.forEach((node, i) => Object.assign(node, { peerPort: ports[2 * i], clientPort: ports[2 * i + 1], clientUrl: `http://127.0.0.1:${ports[2 * i + 1]}` }));
  return c;
}

async function pgraft(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["bin/pgraft.js", ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

interface Member {
  readonly ID: string;
  readonly name: string;
  readonly clientURLs: string[];
  readonly peerURLs: string[];
}

async function members(node: ProcessNode): Promise<Member[]> {
  const response = await fetch(`${node.clientUrl}/v3/cluster/member/list`, { method: "POST", body: "{}", signal: AbortSignal.timeout(3_000) });
  return ((await response.json()) as { members: Member[] }).members;
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(200);
  }
}

function exited(node: ProcessNode): Promise<number | null> {
  const child = node.process!;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

test("add n4 with its client URL, remove n2 (it exits, saying what to do), forward to n4, kill -9 the leader", async (t) => {
  const c = await clusterOf(4);
  t.teardown(() => c.close());
  const [n1, n2, n3, n4] = c.nodes as [ProcessNode, ProcessNode, ProcessNode, ProcessNode];
  const founders = [n1, n2, n3];
  for (const node of founders) c.start(node, [], founders);
  await c.waitForLeader(30_000);

  // Each founder publishes its name and client URL.
  await waitFor("the founders to publish their client URLs", async () => {
    const listed = await members(n1);
    return founders.every((node) => listed.some((member) => member.ID === String(node.id) && member.name === node.name && member.clientURLs[0] === node.clientUrl));
  });

  // n4: its own data directory and ports, started first, then added with its client URL.
  c.start(n4, ["pgraft.initial_cluster_state=existing"]);
  await c.waitForHealthy(n4, 30_000);
  const added = await pgraft(["member", "add", "--peer-url", `http://127.0.0.1:${n4.peerPort}`, "--client-url", n4.clientUrl, "--name", "n4", "--endpoints", n1.clientUrl, "--json"]);
  t.is(added.code, 0, added.stderr);
  const addedMember = (JSON.parse(added.stdout) as { member: Member }).member;
  t.is(addedMember.name, "n4", "named by its name, not node4");
  t.deepEqual(addedMember.clientURLs, [n4.clientUrl]);

  // n2 is removed; it learns so, says what happened and what to do, and exits with code 3.
  const leaderBefore = await c.waitForLeader(20_000);
  if (leaderBefore === n2) {
    const moved = await fetch(`${n2.clientUrl}/v3/maintenance/transfer-leadership`, { method: "POST", body: JSON.stringify({ targetID: "1" }), signal: AbortSignal.timeout(10_000) });
    t.is(moved.status, 200, await moved.text());
  }
  const removed = await pgraft(["member", "remove", "--id", "2", "--endpoints", n1.clientUrl, "--json"]);
  t.is(removed.code, 0, removed.stderr);
  t.is(await exited(n2), 3, n2.log.slice(-3000));
  t.regex(n2.log, /This node \(n2, node 2\) was removed from the cluster/);
  t.regex(n2.log, /wipe its data directory/);
  t.notRegex(n2.log, /restore the failed nodes/);
  const logLengths = [n1, n3, n4].map((node) => node.log.length);
  await sleep(4_000); // Over two election timeouts: a removed node still campaigning would show here.
  [n1, n3, n4].forEach((node, i) => t.notRegex(node.log.slice(logLengths[i]), /MsgPreVote from 2\b/, `${node.name} heard no campaign from n2`));

  // Started again as it is, n2 refuses at once: its data directory holds the mark of its removal
  // (without it, a restarted n2 did not know it had been a member and pre-campaigned for good).
  const n2LogBefore = n2.log.length;
  c.start(n2, [], founders);
  t.is(await exited(n2), 3, n2.log.slice(-3000));
  t.regex(n2.log.slice(n2LogBefore), /Cannot start n2 \(node 2\): it was removed from cluster \S+ on \d{4}-\d\d-\d\dT\S+ \(.+\), as \S+REMOVED records\. Do not start it again as it is/);
  t.regex(n2.log.slice(n2LogBefore), /wipe its data directory/);

  // n4 leads; n1, whose pgraft.client_urls has no n4, forwards to it from the membership.
  const leader = await c.waitForLeader(20_000);
  if (leader !== n4) {
    const moved = await fetch(`${leader.clientUrl}/v3/maintenance/transfer-leadership`, { method: "POST", body: JSON.stringify({ targetID: "4" }), signal: AbortSignal.timeout(10_000) });
    t.is(moved.status, 200, await moved.text());
  }
  t.is(await c.waitForLeader(20_000), n4);
  const forwarded = await put(n1.clientUrl, "via-n1", "1");
  t.is(forwarded.status, 200, JSON.stringify(forwarded.body));
  t.is(await get(n4.clientUrl, "via-n1"), "1");

  // status and member commands given only n1 reach every member, the leader included.
  const status = await pgraft(["status", "--endpoints", n1.clientUrl, "--json"]);
  t.is(status.code, 0, status.stderr);
  const report = JSON.parse(status.stdout) as { leader_id: number; member_id: number; members: { id: number; name: string | null; reachable: boolean | null }[] };
  t.is(report.leader_id, 4);
  t.is(report.member_id, 4, "the leader's own view");
  t.deepEqual(report.members.map((member) => [member.id, member.name]), [[1, "n1"], [3, "n3"], [4, "n4"]]);
  t.true(report.members.every((member) => member.reachable !== false), JSON.stringify(report.members));
  const listed = await pgraft(["member", "list", "--endpoints", n1.clientUrl, "--json"]);
  t.deepEqual((JSON.parse(listed.stdout) as { members: Member[] }).members.map((member) => member.name), ["n1", "n3", "n4"]);

  // kill -9 of the leader: n1 and n3 go on, and n1 forwards to whichever of them leads.
  await c.kill(n4);
  const next = await c.waitForLeader(30_000, n4);
  t.true(next === n1 || next === n3);
  const follower = next === n1 ? n3 : n1;
  const afterKill = await put(follower.clientUrl, "after-kill", "2");
  t.is(afterKill.status, 200, JSON.stringify(afterKill.body));
  t.is(await get(next.clientUrl, "after-kill"), "2");
  const removedAgain = await pgraft(["member", "remove", "--id", "4", "--endpoints", n1.clientUrl]);
  t.is(removedAgain.code, 0, `member commands reach the new leader: ${removedAgain.stderr}`);
});

test("with pgraft.on_removed = idle a removed node stays up, /health answers 503, and the others hear no campaign", async (t) => {
  const c = await clusterOf(3);
  t.teardown(() => c.close());
  const [n1, n2, n3] = c.nodes as [ProcessNode, ProcessNode, ProcessNode];
  c.start(n1);
  c.start(n2);
  c.start(n3, ["pgraft.on_removed=idle"]);
  await c.waitForLeader(30_000);
  let leader = await c.waitForLeader(30_000);
  if (leader === n3) {
    const moved = await fetch(`${n3.clientUrl}/v3/maintenance/transfer-leadership`, { method: "POST", body: JSON.stringify({ targetID: "1" }), signal: AbortSignal.timeout(10_000) });
    t.is(moved.status, 200, await moved.text());
    leader = await c.waitForLeader(20_000, n3);
  }
  const removed = await pgraft(["member", "remove", "--id", "3", "--endpoints", `${n1.clientUrl},${n2.clientUrl}`]);
  t.is(removed.code, 0, removed.stderr);
  await waitFor("n3 to learn it was removed", async () => /This node \(n3, node 3\) was removed from the cluster/.test(n3.log));
  t.regex(n3.log, /it idles \(pgraft\.on_removed = idle\) with \/health answering 503/);
  t.is(await c.statusCode(n3, "/health"), 503);
  t.is(n3.process!.exitCode, null, "still running");
  const lengths = [n1.log.length, n2.log.length];
  await sleep(4_000);
  t.notRegex(n1.log.slice(lengths[0]), /MsgPreVote from 3\b/);
  t.notRegex(n2.log.slice(lengths[1]), /MsgPreVote from 3\b/);
  t.is((await put(leader.clientUrl, "k", "v")).status, 200);
  n3.process!.kill("SIGTERM");
  t.is(await exited(n3), 0);
});
