// A gateway watch (POST /v3/watch, the chunked JSON stream Patroni reads) on real `pgraft start`
// processes keeps its events across a kill -9 of the leader: served by a follower that survives, it
// delivers every acknowledged write exactly once, in revision order, before and after the failover.
// Writes whose outcome the client never learned may appear or not, but at most once.
import test from "ava";
import { ProcessCluster, base64, put, type ProcessNode } from "../server/process-cluster.ts";
import { freeBasePort } from "./targets.ts";
import { readJsonLines } from "./json-lines.ts";

const WRITES_BEFORE = 20;
const WRITES_AFTER = 20;
/** How long the test waits for the stream to deliver the acknowledged writes, at most. */
const DELIVERY_WAIT_MS_MAX = 30_000;

let cluster: ProcessCluster | undefined;
const onSigint = (): void => void cluster?.close().then(() => process.exit(130));
test.before(() => process.once("SIGINT", onSigint));
test.after.always(async () => {
  process.off("SIGINT", onSigint);
  await cluster?.close();
});

interface SeenEvent {
  readonly key: string;
  readonly modRevision: number;
}

/** Opens a prefix watch on `node` and collects its put events until `signal` aborts. */
function watchPrefix(node: ProcessNode, prefix: string, signal: AbortSignal): { events: SeenEvent[]; created: Promise<void>; errors: string[] } {
  const events: SeenEvent[] = [];
  const errors: string[] = [];
  const rangeEnd = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  let resolveCreated!: () => void;
  const created = new Promise<void>((resolve) => (resolveCreated = resolve));
  void (async () => {
    try {
      const response = await fetch(`${node.clientUrl}/v3/watch`, {
        method: "POST",
        body: JSON.stringify({ create_request: { key: base64(prefix), range_end: base64(rangeEnd) } }),
        signal,
      });
      await readJsonLines(response.body!, (message: { result?: { created?: boolean; events?: Array<{ type?: string; kv: { key: string; mod_revision: string } }> }; error?: unknown }) => {
        if (message.error !== undefined) errors.push(JSON.stringify(message.error));
        if (message.result?.created) resolveCreated();
        for (const event of message.result?.events ?? []) {
          if (event.type === "DELETE") continue;
          events.push({ key: Buffer.from(event.kv.key, "base64").toString("utf8"), modRevision: Number(event.kv.mod_revision) });
        }
      });
    } catch (error) {
      if (!signal.aborted) errors.push((error as Error).message);
    }
  })();
  return { events, created, errors };
}

/** One write, retried (bounded) while there is no leader; "ok", or "unknown" when no answer said either way. */
async function write(node: ProcessNode, key: string): Promise<"ok" | "unknown"> {
  for (let attempt = 0; attempt < 40; attempt++) {
    try {
      const answer = await put(node.clientUrl, key, "v");
      if (answer.status === 200) return "ok";
    } catch {
      return "unknown"; // Timed out: the write may have been committed.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return "unknown";
}

test.serial("a watch on a surviving follower delivers every acknowledged write once, in revision order, across a kill -9 of the leader", async (t) => {
  t.timeout(240_000);
  cluster = new ProcessCluster(3, await freeBasePort(25600, 3));
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  const watcherNode = cluster.nodes.find((node) => node !== leader)!;
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const watch = watchPrefix(watcherNode, "w/", abort.signal);
  await watch.created;

  const outcomes = new Map<string, "ok" | "unknown">();
  for (let i = 0; i < WRITES_BEFORE; i++) outcomes.set(`w/a${i}`, await write(watcherNode, `w/a${i}`));
  await cluster.kill(leader);
  await cluster.waitForLeader(60_000, leader);
  for (let i = 0; i < WRITES_AFTER; i++) outcomes.set(`w/b${i}`, await write(watcherNode, `w/b${i}`));

  const acknowledged = [...outcomes].filter(([, outcome]) => outcome === "ok").map(([key]) => key);
  t.true(acknowledged.length >= WRITES_BEFORE, `only ${acknowledged.length} writes were acknowledged`);
  const deadline = Date.now() + DELIVERY_WAIT_MS_MAX;
  while (Date.now() < deadline && !acknowledged.every((key) => watch.events.some((event) => event.key === key))) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  abort.abort();

  t.deepEqual(watch.errors, [], "the stream reported no error");
  const missing = acknowledged.filter((key) => !watch.events.some((event) => event.key === key));
  t.deepEqual(missing, [], "every acknowledged write reached the watch");
  const counts = new Map<string, number>();
  for (const event of watch.events) counts.set(event.key, (counts.get(event.key) ?? 0) + 1);
  t.deepEqual([...counts].filter(([, count]) => count > 1), [], "no event was delivered twice");
  const revisions = watch.events.map((event) => event.modRevision);
  t.true(revisions.every((revision, i) => i === 0 || revision > revisions[i - 1]!), `revisions out of order: ${revisions.join(",")}`);
  t.true(watch.events.every((event) => outcomes.has(event.key)), "only written keys appear");
  t.log(`${acknowledged.length} acknowledged, ${outcomes.size - acknowledged.length} unknown, ${watch.events.length} events, revisions ${revisions[0]}..${revisions.at(-1)}`);
});
