// Membership at run time, on real `pgraft start` processes: a fourth node started with
// pgraft.initial_cluster_state = existing is added through the cluster API (etcd's
// /v3/cluster/member/add), catches up and votes; followers refuse membership changes naming the
// leader; a founding member is removed; and a restarted leader still reaches the added node, whose
// address it only knows from the configuration entry in its own log.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { base64, get, ProcessCluster, put, sleep, type ProcessNode } from "./process-cluster.ts";

const run = promisify(execFile);

/** `pgraft member ...` against every given node's client API, as an operator runs it. */
async function pgraftMember(args: string[], nodes: readonly ProcessNode[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ["bin/pgraft.js", "member", ...args, "--endpoints", nodes.map((node) => node.clientUrl).join(","), "--json"], { timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

interface Member {
  readonly ID: string;
  readonly name: string;
  readonly peerURLs: string[];
  readonly isLearner: boolean;
}

async function cluster(node: ProcessNode, operation: "list" | "add" | "remove", body: unknown, timeoutMs = 30_000): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${node.clientUrl}/v3/cluster/member/${operation}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function ids(body: Record<string, unknown>): string[] {
  return (body.members as Member[]).map((member) => member.ID);
}

/** A serializable read on `node` itself: what its own state machine holds, without asking the leader. */
async function localValue(node: ProcessNode, key: string): Promise<string | undefined> {
  try {
    const response = await fetch(`${node.clientUrl}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: base64(key), serializable: true }), signal: AbortSignal.timeout(2_000) });
    if (response.status !== 200) return undefined;
    const value = ((await response.json()) as { kvs?: { value?: string }[] }).kvs?.[0]?.value;
    return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
  } catch {
    return undefined;
  }
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(100);
  }
}

test("a node joins a running cluster through the cluster API, votes, survives a leader restart, and a founder leaves", async (t) => {
  const c = new ProcessCluster(4, 27400);
  const founders = c.nodes.slice(0, 3);
  const joiner = c.nodes[3]!;
  try {
    for (const node of founders) c.start(node, [], founders);
    const leader = await c.waitForLeader();
    t.is((await put(leader.clientUrl, "before-join", "1")).status, 200);

    // The new node starts first, knowing the founders, and waits to be added.
    c.start(joiner, ["pgraft.initial_cluster_state=existing"]);
    await c.waitForHealthy(joiner);
    const listedBefore = await cluster(leader, "list", {});
    t.deepEqual(ids(listedBefore.body), ["1", "2", "3"]);

    // A follower refuses, naming the leader.
    const follower = founders.find((node) => node !== leader)!;
    const refused = await cluster(follower, "add", { ID: "4", peerURLs: [`http://127.0.0.1:${joiner.peerPort}`] });
    t.is(refused.status, 503);
    t.regex(JSON.stringify(refused.body), new RegExp(`node ${leader.id}`));

    // Bad requests say what is wrong.
    const noUrl = await cluster(leader, "add", { ID: "4" });
    t.is(noUrl.status, 400);
    t.regex(String(noUrl.body.error ?? noUrl.body.message), /peerURLs/);

    const added = await cluster(leader, "add", { ID: "4", peerURLs: [`http://127.0.0.1:${joiner.peerPort}`] });
    t.is(added.status, 200, JSON.stringify(added.body));
    const member = added.body.member as Member;
    t.is(member.ID, "4");
    t.false(member.isLearner, "the add answers once the node has caught up and votes");
    t.deepEqual(member.peerURLs, [`http://127.0.0.1:${joiner.peerPort}`]);
    t.deepEqual(ids(added.body), ["1", "2", "3", "4"]);
    await waitFor("the joiner to hold the write made before it joined", async () => (await localValue(joiner, "before-join")) === "1");
    t.deepEqual(ids((await cluster(joiner, "list", {})).body), ["1", "2", "3", "4"]);
    t.deepEqual(ids(await pgraftMember(["list"], [joiner])), ["1", "2", "3", "4"], "pgraft member list on the new node");

    // The leader restarts: it knows node 4's address only from its log, and must reach it again.
    await c.kill(leader);
    c.start(leader, [], founders);
    const next = await c.waitForLeader(20_000);
    t.is((await put(next.clientUrl, "after-restart", "2")).status, 200);
    await waitFor("the joiner to apply a write made after the leader restarted", async () => (await localValue(joiner, "after-restart")) === "2");
    await waitFor("the restarted founder to catch up", async () => (await localValue(leader, "after-restart")) === "2");

    // A founder that is not the leader leaves; the other three go on.
    const current = await c.waitForLeader(20_000);
    const leaving = founders.find((node) => node !== current)!;
    // Through the command, given every node: followers answer 503 and it goes on until the leader does.
    const followersFirst = [...c.nodes.filter((node) => node !== current), current];
    const removed = await pgraftMember(["remove", "--id", String(leaving.id)], followersFirst);
    t.false(ids(removed).includes(String(leaving.id)));
    t.is(ids(removed).length, 3);
    await c.kill(leaving);
    t.is((await put(current.clientUrl, "after-remove", "3")).status, 200);
    t.is(await get(joiner.clientUrl, "after-remove"), "3");

    // The added node leads, then removes itself: the others must keep answering it until the removal
    // commits (they drop it as a peer only then), or it can never commit its own removal.
    // (The restart above may already have made it leader.)
    if (current !== joiner) {
      const moved = await fetch(`${current.clientUrl}/v3/maintenance/transfer-leadership`, { method: "POST", body: JSON.stringify({ targetID: "4" }), signal: AbortSignal.timeout(10_000) });
      t.is(moved.status, 200, await moved.text());
    }
    t.is(await c.waitForLeader(10_000), joiner);
    const left = await cluster(joiner, "remove", { ID: "4" }, 15_000);
    t.is(left.status, 200, JSON.stringify(left.body));
    t.deepEqual(ids(left.body), founders.filter((node) => node !== leaving).map((node) => String(node.id)));
    const last = await c.waitForLeader(20_000, joiner);
    t.not(last, joiner);
    t.is((await put(last.clientUrl, "after-leader-left", "4")).status, 200);
    t.false(/Cannot send MsgApp to node 4: it is neither/.test(c.nodes.map((node) => node.log).join("")), "no append to the added node was dropped as unroutable");
  } finally {
    await c.close();
  }
});
