// A 3-node cluster of real `pgraft start` processes on loopback: it elects a leader, replicates
// writes, survives kill -9 of its leader, and loses no acknowledged write across 50 rounds of kill -9
// at random moments under write load. Peers with a wrong secret or cluster id are refused.
import test from "ava";
import seedrandom from "seedrandom";
import { ProcessCluster, get, put, sleep } from "./process-cluster.ts";

/** Waits (bounded) until the logs match `pattern`; processes start slowly on a loaded machine. */
async function logShows(logs: () => string, pattern: RegExp, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(logs())) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/** Retries a write refused for want of a leader (a refusal is definite, so a retry cannot apply twice). */
async function putEventually(url: string, key: string, value: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + 15_000;
  let result = await put(url, key, value);
  while (result.status === 503 && result.body.outcome === "failed" && Date.now() < deadline) {
    await sleep(100);
    result = await put(url, key, value);
  }
  return result;
}

test.serial("a cluster of real processes elects a leader, replicates, and replaces a killed leader", async (t) => {
  const cluster = new ProcessCluster(3, 27100);
  try {
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    const follower = cluster.nodes.find((node) => node !== leader)!;
    // A write sent to a follower is forwarded to the leader.
    const written = await putEventually(follower.clientUrl, "greeting", "hello");
    t.is(written.status, 200, JSON.stringify(written.body));
    for (const node of cluster.nodes) t.is(await get(node.clientUrl, "greeting"), "hello");
    await cluster.kill(leader);
    const next = await cluster.waitForLeader(10_000, leader);
    t.not(next, leader);
    t.is(await get(next.clientUrl, "greeting"), "hello");
    t.is((await putEventually(next.clientUrl, "after", "failover")).status, 200);
    cluster.start(leader);
    await sleep(1_500);
    t.is(await get(leader.clientUrl, "after"), "failover");
  } finally {
    await cluster.close();
  }
});

test.serial("50 rounds of kill -9 at random moments under write load lose no acknowledged write", async (t) => {
  const cluster = new ProcessCluster(3, 27200);
  const random = seedrandom("kill-rounds");
  const acknowledged = new Map<string, string>();
  let attempts = 0;
  let stop = false;
  try {
    cluster.startAll();
    await cluster.waitForLeader();
    // Two writers, each with its own keys, sending to any node (followers forward).
    const writer = async (writerId: number): Promise<void> => {
      for (let sequence = 0; !stop && sequence < 100_000; sequence++) {
        const node = cluster.nodes[Math.floor(random() * cluster.nodes.length)]!;
        // One key per write: an acknowledged write must be there at the end, whatever else happened.
        const key = `w${writerId}-${sequence}`;
        const value = `${writerId}:${sequence}:${Math.floor(random() * 1e9)}`;
        attempts++;
        try {
          const result = await put(node.clientUrl, key, value, 2_000);
          if (result.status === 200) acknowledged.set(key, value);
        } catch {
          // Unknown outcome (connection dropped or timed out): the write may or may not have happened.
        }
      }
    };
    const writers = [writer(1), writer(2)];
    for (let round = 0; round < 50; round++) {
      await sleep(100 + Math.floor(random() * 500));
      const victim = cluster.nodes[Math.floor(random() * cluster.nodes.length)]!;
      await cluster.kill(victim);
      await sleep(Math.floor(random() * 300));
      cluster.start(victim);
      // The next kill comes once the restarted process serves again, so the majority keeps working.
      await cluster.waitForHealthy(victim);
    }
    stop = true;
    await Promise.all(writers);
    const leader = await cluster.waitForLeader(15_000);
    t.true(acknowledged.size > 20, `${acknowledged.size} keys acknowledged of ${attempts} attempts`);
    for (const [key, value] of acknowledged) t.is(await get(leader.clientUrl, key), value, key);
  } finally {
    stop = true;
    await cluster.close();
  }
});

test.serial("a peer with the wrong secret or the wrong cluster id is refused and never joins", async (t) => {
  const cluster = new ProcessCluster(3, 27300);
  try {
    for (const node of cluster.nodes.slice(0, 2)) cluster.start(node);
    await cluster.waitForLeader();
    const intruder = cluster.nodes[2]!;
    cluster.start(intruder, ["pgraft.auth_secret_file=", "pgraft.auth_secret=a-completely-wrong-secret"]);
    t.true(await logShows(() => cluster.nodes[0]!.log + cluster.nodes[1]!.log, /[Rr]efused/), "the members log the refusal");
    t.not(await cluster.statusCode(intruder, "/replica"), 200, "the intruder must not follow the leader");
    await cluster.kill(intruder);
    intruder.log = "";
    cluster.start(intruder, ["pgraft.cluster_id=another-cluster"]);
    t.true(await logShows(() => intruder.log + cluster.nodes[0]!.log, /cluster id/), "the refusal names the cluster id");
    t.not(await cluster.statusCode(intruder, "/replica"), 200);
  } finally {
    await cluster.close();
  }
});
