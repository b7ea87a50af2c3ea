// Leases on real `pgraft start` processes (3 nodes on 127.0.0.1), through the gateway as Patroni uses
// them: a kill -9 of the leader does not expire a lease early (the new leader extends every lease by
// its TTL before expiring any, etcd's rule), and the lease still expires afterwards, taking its key.
//
// "Early" is judged one-sidedly, so a slow machine cannot fail it: only a read that *returned* before
// grant-sent + TTL counts, and such a read must find the key (the lease cannot have run out yet,
// whatever the clock of any node). No assertion on how long anything took.
import test from "ava";
import { performance } from "node:perf_hooks";
import { ProcessCluster, base64, sleep, type ProcessNode } from "../server/process-cluster.ts";
import { freeBasePort } from "./targets.ts";

const TTL_S = 40;
let cluster: ProcessCluster | undefined;
const onSigint = (): void => void cluster?.close().then(() => process.exit(130));

test.before(() => process.once("SIGINT", onSigint));
test.after.always(async () => {
  process.off("SIGINT", onSigint);
  await cluster?.close();
});

async function call(node: ProcessNode, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${node.clientUrl}${path}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(5_000) });
  return { status: response.status, json: await response.json() };
}

/** A linearizable read of `key`: "present", "absent", or undefined when no leader answered. */
async function read(node: ProcessNode, key: string): Promise<"present" | "absent" | undefined> {
  try {
    const answer = await call(node, "/v3/kv/range", { key: base64(key) });
    if (answer.status !== 200) return undefined;
    return (answer.json.kvs?.length ?? 0) > 0 ? "present" : "absent";
  } catch {
    return undefined;
  }
}

test.serial("kill -9 of the leader does not expire a lease early, and the lease still expires after", async (t) => {
  t.timeout(240_000);
  cluster = new ProcessCluster(3, await freeBasePort(25300, 3));
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  const survivor = cluster.nodes.find((node) => node !== leader)!;

  const grantSentMs = performance.now();
  const grant = await call(leader, "/v3/lease/grant", { TTL: String(TTL_S) });
  t.is(grant.status, 200, JSON.stringify(grant.json));
  t.is(grant.json.TTL, String(TTL_S));
  const put = await call(leader, "/v3/kv/put", { key: base64("lease/held"), value: base64("v"), lease: grant.json.ID });
  t.is(put.status, 200, JSON.stringify(put.json));

  await cluster.kill(leader);
  const newLeader = await cluster.waitForLeader(60_000, leader);
  t.not(newLeader, leader);

  // Until grant + TTL, every read that returned in time must find the key.
  const expiresNoEarlierThanMs = grantSentMs + TTL_S * 1000;
  let inTime = 0;
  let absentEarly = 0;
  let state: "present" | "absent" | undefined;
  const deadline = performance.now() + 4 * TTL_S * 1000;
  do {
    state = await read(survivor, "lease/held");
    const returnedMs = performance.now();
    if (state !== undefined && returnedMs < expiresNoEarlierThanMs) {
      inTime++;
      if (state === "absent") absentEarly++;
    }
    if (state !== "absent") await sleep(250);
  } while (state !== "absent" && performance.now() < deadline);

  t.is(absentEarly, 0, "the key was gone before its lease could have expired");
  t.is(state, "absent", `the key outlived its lease by far (${4 * TTL_S} s after the grant)\n${newLeader.log.slice(-3000)}`);
  t.log(`${inTime} reads under the new leader found the key before grant + TTL`);
  // The lease itself is gone too.
  const ttl = await call(survivor, "/v3/lease/timetolive", { ID: grant.json.ID });
  t.is(ttl.status, 200, JSON.stringify(ttl.json));
  t.is(ttl.json.TTL, "-1", "an expired lease answers TTL -1, as etcd does");
});
