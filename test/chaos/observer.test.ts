/**
 * The observer's samples when a poll times out: a busy node keeps its last view for a bounded number
 * of polls (so one slow /health of a loaded leader is not "no leader", as in the bridge scenario on a
 * loaded machine), while a node the runner stopped, a node that refuses connections, a node silent
 * for longer than the bound, and a stale leader that the answering nodes do not back all still count
 * as gone. The leader checks are the simulator's own evaluators, fed as the runner feeds them.
 */
import test from "ava";
import { createServer, type Server, type Socket } from "node:net";
import { leaderEvaluator, termEvaluator } from "../../sim/scenario/expectations.ts";
import type { Check } from "../../sim/scenario/index.ts";
import { pollHealth, SampleBuilder, STALE_POLLS_MAX, type NodeView, type Poll, type Sample } from "../../chaos/runner/observer.ts";

function view(role: string, term: number, leaderId: number, quorumActive = role === "leader"): Poll {
  const nodeView: NodeView = { role, term, leaderId, quorumActive, commit: 5, applied: 5 };
  return { kind: "view", view: nodeView };
}
const TIMEOUT: Poll = { kind: "timeout" };
const DOWN: Poll = { kind: "down" };

/** Rounds of polls for nodes 1..3, as the observer makes them, 100 ms apart. */
function samples(builder: SampleBuilder, rounds: readonly (readonly Poll[])[], stopped: (id: number) => boolean = () => false): Sample[] {
  return rounds.map((polls, round) => builder.build(round * 100, polls.map((poll, i) => [i + 1, poll] as const), stopped));
}

const steady: Poll[] = [view("leader", 1, 1), view("follower", 1, 1), view("follower", 1, 1)];
/** The bridge scenario after its heal: the leader misses a poll, n2 still names it, n3 has lost it. */
const leaderBusy: Poll[] = [TIMEOUT, view("follower", 1, 1), view("pre-candidate", 1, 0, false)];

const resolver = {
  resolveOne: () => "unused",
  resolveSet: () => "unused",
};
const stable: Check & { check: "leader" } = { check: "leader", state: "stable" } as Check & { check: "leader" };
const none: Check & { check: "leader" } = { check: "leader", state: "none" } as Check & { check: "leader" };

function verdict(check: Check & { check: "leader" }, sampled: readonly Sample[]): string | undefined {
  const evaluator = leaderEvaluator(resolver as never, check);
  for (const sample of sampled) evaluator.sample(sample);
  return evaluator.verdict();
}

test("a leader whose poll times out while a follower names it keeps leading, marked stale", (t) => {
  const sampled = samples(new SampleBuilder(), [steady, leaderBusy, leaderBusy, steady]);
  t.deepEqual(sampled.map((sample) => sample.leader), [1, 1, 1, 1]);
  t.deepEqual([...sampled[1]!.stale], [1]);
  t.is(sampled[1]!.views.get(1)?.role, "leader");
  t.is(verdict(stable, sampled), undefined);
  const term = termEvaluator();
  for (const sample of sampled) term.sample(sample);
  t.is(term.verdict(), undefined);
});

test("without keeping the last view (the old observer), the same polls break 'leader: stable'", (t) => {
  const sampled = samples(new SampleBuilder(0), [steady, leaderBusy, steady]);
  t.is(sampled[1]!.leader, undefined);
  t.regex(verdict(stable, sampled) ?? "", /no node led with a live quorum/);
});

test("a node silent for longer than the bound is down: the leader is gone", (t) => {
  const rounds = [steady, ...Array.from({ length: STALE_POLLS_MAX + 1 }, () => leaderBusy)];
  const sampled = samples(new SampleBuilder(), rounds);
  const last = sampled[sampled.length - 1]!;
  t.is(last.leader, undefined);
  t.false(last.views.has(1));
  t.false(last.stale.has(1));
  t.regex(verdict(stable, sampled) ?? "", /no node led/);
});

test("a leader the runner paused or crashed is gone at its first missed poll", (t) => {
  const sampled = samples(new SampleBuilder(), [steady, leaderBusy], (id) => id === 1);
  t.is(sampled[1]!.leader, undefined);
  t.false(sampled[1]!.views.has(1));
  t.deepEqual(sampled[1]!.leaderRoles, []);
});

test("a refused connection is down at once, whoever stopped the node", (t) => {
  const sampled = samples(new SampleBuilder(), [steady, [DOWN, view("follower", 1, 1), view("follower", 1, 1)]]);
  t.is(sampled[1]!.leader, undefined);
  t.false(sampled[1]!.views.has(1));
});

test("a stale leader that no answering node backs does not lead, but still counts for 'leader: none'", (t) => {
  const unbacked: Poll[] = [TIMEOUT, view("pre-candidate", 1, 0, false), view("pre-candidate", 1, 0, false)];
  const sampled = samples(new SampleBuilder(), [steady, unbacked]);
  t.is(sampled[1]!.leader, undefined);
  t.deepEqual(sampled[1]!.leaderRoles, [{ id: 1, term: 1 }]);
  t.regex(verdict(none, sampled.slice(1)) ?? "", /n1 was still leader of term 1/);
});

test("a stale leader is over once an answering node reports a higher term", (t) => {
  const deposed: Poll[] = [TIMEOUT, view("leader", 2, 2), view("follower", 2, 2)];
  const sampled = samples(new SampleBuilder(), [steady, deposed]);
  t.is(sampled[1]!.leader, 2);
  t.deepEqual(sampled[1]!.leaderRoles, [{ id: 2, term: 2 }]);
  t.is(sampled[1]!.termMax, 2);
});

test("the builder refuses a negative bound", (t) => {
  t.throws(() => new SampleBuilder(-1), { message: /stalePollsMax must be an integer >= 0/ });
});

/** A TCP server on a free loopback port; `silent` accepts and never answers. */
async function listen(silent: boolean): Promise<{ server: Server; url: string; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    if (!silent) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("Cannot listen: no port");
  return { server, url: `http://127.0.0.1:${address.port}`, sockets };
}

test("a poll tells a node that does not answer in time from one that refuses", async (t) => {
  const silent = await listen(true);
  t.teardown(() => {
    for (const socket of silent.sockets) socket.destroy();
    silent.server.close();
  });
  t.deepEqual(await pollHealth(silent.url, 200), { kind: "timeout" });
  const closed = await listen(false);
  const url = closed.url;
  await new Promise<void>((resolve) => closed.server.close(() => resolve()));
  t.deepEqual(await pollHealth(url, 2000), { kind: "down" });
});
