// Patroni 3.0 (Debian's patroni, etcd3 DCS) on pgraft: three PostgreSQL 15 servers and three pgraft
// nodes on 127.0.0.1 (patroni/stack.ts). The steps run in order on one stack, with a writer on every
// PostgreSQL node from the first failover to the end:
//   1. Patroni bootstraps a primary and two streaming replicas;
//   2. kill -9 of the primary's Patroni and PostgreSQL gives a new primary;
//   3. kill -9 of the pgraft leader changes nothing for PostgreSQL: the same postmaster stays primary on
//      the same timeline while Patroni keeps writing its status key through the new pgraft leader;
//   4. losing the pgraft majority makes Patroni demote the primary (failsafe_mode off);
//   5. no two nodes ever accepted writes at the same time (patroni/overlap.ts);
//   6. and that check does catch two primaries: Patroni killed, both replicas promoted by hand.
// Every wait is bounded; nothing asserts on durations. Everything started is stopped, also on failure.
import test, { type ExecutionContext } from "ava";
import { performance } from "node:perf_hooks";
import { waitForDcsLeader, type DcsNode } from "../../patroni/dcs.ts";
import { describeOverlap, overlaps, writePeriods } from "../../patroni/overlap.ts";
import { killChild, postmasterPid, sleep } from "../../patroni/processes.ts";
import { PatroniStack, SCOPE, type PatroniNode } from "../../patroni/stack.ts";
import { Writers } from "../../patroni/writer.ts";

const STEP_TIMEOUT_MS = 240_000;
const WAIT_MS = 150_000;
const WRITERS_LIMIT_MS = 900_000;

let stack: PatroniStack | undefined;
let writers: Writers | undefined;
let primary: PatroniNode | undefined;
let closing: Promise<void> | undefined;
const closeAll = (): Promise<void> => (closing ??= (async () => {
  await writers?.stop();
  await stack?.close();
})());
const onSigint = (): void => void closeAll().then(() => process.exit(130));

test.before(() => {
  process.once("SIGINT", onSigint);
});

test.after.always(async () => {
  process.off("SIGINT", onSigint);
  await closeAll();
});

function ready(t: ExecutionContext): { stack: PatroniStack; writers: Writers; primary: PatroniNode } {
  if (stack === undefined || writers === undefined || primary === undefined) {
    t.fail("an earlier step failed; this step needs its stack");
    throw new Error("no stack");
  }
  return { stack, writers, primary };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Waited ${timeoutMs} ms for ${what}\n${stack?.logs() ?? ""}`);
    await sleep(250);
  }
}

/** mod_revision of a key through one DCS node's gateway, or undefined when it does not answer. */
async function modRevision(node: DcsNode, key: string): Promise<number | undefined> {
  try {
    const response = await fetch(`${node.clientUrl}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: Buffer.from(key).toString("base64") }), signal: AbortSignal.timeout(2_000) });
    if (response.status !== 200) return undefined;
    const body = (await response.json()) as { kvs?: { mod_revision?: string }[] };
    const revision = body.kvs?.[0]?.mod_revision;
    return revision === undefined ? undefined : Number(revision);
  } catch {
    return undefined;
  }
}

const timeline = async (s: PatroniStack, node: PatroniNode): Promise<number | undefined> => {
  const rows = await s.query<{ timeline_id: number }>(node, "SELECT timeline_id FROM pg_control_checkpoint()");
  return rows?.[0]?.timeline_id;
};

test.serial("Patroni on pgraft bootstraps a primary and two streaming replicas", async (t) => {
  t.timeout(STEP_TIMEOUT_MS);
  stack = await PatroniStack.create({ dcs: "pgraft" });
  stack.startAllPatroni();
  primary = await stack.waitForPrimary({ replicas: 2, timeoutMs: WAIT_MS });
  await stack.createProbeTable(primary);
  t.deepEqual((await stack.primaries()).map((node) => node.name), [primary.name]);
  const replicas = await stack.query<{ application_name: string }>(primary, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1");
  t.deepEqual(
    replicas?.map((row) => row.application_name),
    stack.nodes.filter((node) => node !== primary).map((node) => node.name),
  );
  writers = new Writers(stack, WRITERS_LIMIT_MS);
  await until(`a write accepted by ${primary.name}`, async () => (writers!.acceptedBy(primary!.name) > 0 ? true : undefined));
});

test.serial("kill -9 of the primary's PostgreSQL and Patroni gives a new primary", async (t) => {
  t.timeout(STEP_TIMEOUT_MS);
  const s = ready(t);
  const killedAtMs = performance.now();
  await s.stack.killNode(s.primary);
  const first = await until("a write accepted by another node", async () => s.writers.firstAcceptedSince(killedAtMs, s.primary.name));
  const next = s.stack.nodes.find((node) => node.name === first.node)!;
  t.is(await s.stack.role(next), "primary");
  t.deepEqual((await s.stack.primaries()).map((node) => node.name), [next.name], "exactly one primary");
  // The remaining replica follows the new primary.
  await s.stack.waitForPrimary({ replicas: 1, exclude: s.primary, timeoutMs: WAIT_MS });
  primary = next;
});

test.serial("kill -9 of the pgraft leader changes nothing for PostgreSQL", async (t) => {
  t.timeout(STEP_TIMEOUT_MS);
  const s = ready(t);
  const pid = postmasterPid(s.primary.dataDir);
  const line = await timeline(s.stack, s.primary);
  t.truthy(pid, "the primary's postmaster is running");
  t.truthy(line, "the primary answers its timeline");
  const leader = await waitForDcsLeader(s.stack.dcs, WAIT_MS);
  const killedAtMs = performance.now();
  await s.stack.dcs.kill(leader);
  const newLeader = await waitForDcsLeader(s.stack.dcs, WAIT_MS);
  t.not(newLeader, leader);
  const elapsed = (): string => `${((performance.now() - killedAtMs) / 1000).toFixed(1)} s`;
  t.log(`pgraft ${leader.name} killed; ${newLeader.name} leads after ${elapsed()}`);
  // Patroni's leader writes its status key every loop: two writes through the new pgraft leader show
  // that Patroni went on holding the leader lock across the change.
  const statusKey = `/service/${SCOPE}/status`;
  const since = await until("the status key", () => modRevision(newLeader, statusKey));
  const first = await until("Patroni writing its status through the new pgraft leader", async () => {
    const revision = await modRevision(newLeader, statusKey);
    return revision !== undefined && revision > since ? revision : undefined;
  });
  const second = await until("Patroni writing its status again", async () => {
    const revision = await modRevision(newLeader, statusKey);
    return revision !== undefined && revision > first ? revision : undefined;
  });
  t.true(second > since);
  t.log(`Patroni wrote its status through ${newLeader.name} (revisions ${since}, ${first}, ${second}) by ${elapsed()}`);
  t.is(postmasterPid(s.primary.dataDir), pid, "the primary's postmaster was not restarted");
  t.is(await s.stack.role(s.primary), "primary");
  t.is(await timeline(s.stack, s.primary), line, "no new timeline (no failover)");
  t.deepEqual((await s.stack.primaries()).map((node) => node.name), [s.primary.name]);
  t.true(s.writers.acceptedBy(s.primary.name, killedAtMs) > 0, "the primary accepted writes after the pgraft leader was killed");
  // Back to three pgraft nodes for the next step.
  s.stack.dcs.start(leader);
  await until(`${leader.name} answering again`, async () => (await modRevision(leader, statusKey)) ?? undefined);
  t.log(`pgraft ${leader.name} restarted and answering by ${elapsed()}`);
});

test.serial("losing the pgraft majority makes Patroni demote the primary (failsafe_mode off)", async (t) => {
  t.timeout(STEP_TIMEOUT_MS);
  const s = ready(t);
  const leader = await waitForDcsLeader(s.stack.dcs, WAIT_MS);
  const other = s.stack.dcs.nodes.find((node) => node !== leader)!;
  await Promise.all([s.stack.dcs.kill(leader), s.stack.dcs.kill(other)]);
  const lostAtMs = performance.now();
  await until(`${s.primary.name} demoted`, async () => ((await s.stack.role(s.primary)) === "replica" ? true : undefined));
  t.deepEqual(await s.stack.primaries(), [], "no primary without a DCS majority");
  // Once demoted, no node accepts writes any more.
  const demotedAtMs = performance.now();
  await sleep(2_000);
  t.is(s.writers.attempts.filter((attempt) => attempt.ok && attempt.startMs >= demotedAtMs).length, 0, "a write was accepted after the demotion");
  t.true(s.writers.attempts.some((attempt) => attempt.startMs >= lostAtMs), "the writers kept trying");
});

test.serial("no two primaries ever accepted writes at the same time", async (t) => {
  const s = ready(t);
  await s.writers.stop();
  const periods = writePeriods(s.writers.attempts);
  const writersOf = new Set(periods.map((period) => period.node));
  t.true(writersOf.size >= 2, `writes were accepted by two primaries one after the other (by ${[...writersOf].join(", ")})`);
  const split = overlaps(s.writers.attempts);
  t.deepEqual(split.map(describeOverlap), []);
  t.log(periods.map((period) => `${period.node}: ${period.writes} writes, ${period.fromMs.toFixed(0)}-${period.toMs.toFixed(0)} ms`).join("\n"));
});

test.serial("the overlap check catches two primaries: with Patroni gone, both replicas promoted by hand", async (t) => {
  t.timeout(STEP_TIMEOUT_MS);
  const s = ready(t);
  // Without Patroni nothing fences them: both running replicas become primaries that accept writes.
  await Promise.all(s.stack.nodes.map((node) => killChild(node.child)));
  const running = s.stack.nodes.filter((node) => postmasterPid(node.dataDir) !== undefined);
  t.is(running.length, 2, "two PostgreSQL servers left running");
  for (const node of running) s.stack.pgCtl(node, ["promote", "-w"]);
  const rogue = new Writers(s.stack, 60_000);
  try {
    await until("writes accepted by both promoted nodes", async () => (running.every((node) => rogue.acceptedBy(node.name) >= 3) ? true : undefined), 60_000);
  } finally {
    await rogue.stop();
  }
  const split = overlaps(rogue.attempts);
  t.true(split.length > 0, "the check must report two primaries accepting writes at the same time");
  t.log(split.map(describeOverlap).join("\n"));
});
