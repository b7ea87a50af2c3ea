/**
 * The chaos runner's SQL side without real servers: the checks that hold the guide's SQL functions to
 * /health (shown catching two leaders of one term, an unconfirmed leader, and passing an agreeing run),
 * and how a pgraft_kv_put outcome lands in the history (acknowledged with its version, refused as
 * failed, unknown when PostgreSQL cannot say), through fake connections.
 */
import test from "ava";
import { HistoryRecorder } from "../../sim/history.ts";
import { loadScenarioFile } from "../../sim/scenario/index.ts";
import type { NodeView, Sample } from "../../chaos/runner/observer.ts";
import { SqlFailure, type SqlConnections } from "../../chaos/runner/sql-connections.ts";
import { checkSqlAgainstHealth, settleAgreement, tenures, type SqlSample } from "../../chaos/runner/sql-observer.ts";
import { SqlWorkload } from "../../chaos/runner/sql-workload.ts";

function view(role: string, term: number, leaderId: number): NodeView {
  return { role, term, leaderId, quorumActive: role === "leader", commit: 1, applied: 1 };
}

/** A /health sample where `leader` leads `term` and the others follow it. */
function health(timeMs: number, leader: number, term: number): Sample {
  const views = new Map([1, 2, 3].map((id) => [id, view(id === leader ? "leader" : "follower", term, leader)]));
  return { timeMs, leader, leaderRoles: [{ id: leader, term }], terms: new Map([...views].map(([id, v]) => [id, v.term])), termMax: term, views, stale: new Set() };
}

function sql(timeMs: number, id: number, isLeader: boolean, leaderId: number, term: number): SqlSample {
  return { timeMs, id, view: { isLeader, leaderId, term, workerState: "RUNNING" }, error: undefined };
}

const steady = Array.from({ length: 50 }, (_, i) => health(i * 100, 1, 2));

test("SQL agreeing with /health passes", (t) => {
  const samples = [sql(500, 1, true, 1, 2), sql(500, 2, false, 1, 2), sql(900, 3, false, 0, 2)];
  t.deepEqual(checkSqlAgainstHealth(steady, samples), []);
  t.deepEqual(tenures(steady), [{ leader: 1, term: 2, fromMs: 0, untilMs: 4900 }]);
});

test("a SQL view naming another leader of the same term is caught", (t) => {
  const problems = checkSqlAgainstHealth(steady, [sql(500, 1, true, 1, 2), sql(1500, 2, true, 2, 2)]);
  t.is(problems.length, 1);
  t.regex(problems[0]!, /two leaders of term 2: .*n1.* SQL on n2 at 1.50s \(pgraft_is_leader\(\)\) named n2/);
});

test("a lasting /leader tenure that pgraft_is_leader() never confirmed is caught; a short one is not required", (t) => {
  const problems = checkSqlAgainstHealth(steady, [sql(500, 1, false, 1, 2), sql(900, 1, false, 1, 2)]);
  t.is(problems.length, 1);
  t.regex(problems[0]!, /n1 led term 2 from 0.00s to 4.90s by \/health .* never said so in 2 samples/);
  t.deepEqual(checkSqlAgainstHealth(steady.slice(0, 10), []), [], "a 0.9 s tenure needs no confirmation");
});

/** Connections answering from a script: each call takes the next answer (rows, or an error to throw). */
function scripted(answers: (Record<string, unknown>[] | Error)[]): SqlConnections & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    query: async (id: number, text: string, params: readonly unknown[]) => {
      calls.push(`n${id}: ${text.split(" ")[1]} ${JSON.stringify(params)}`);
      const answer = answers.shift();
      if (answer === undefined) throw new SqlFailure("script ended", false, undefined);
      if (answer instanceof Error) throw answer;
      return answer;
    },
  } as unknown as SqlConnections & { calls: string[] };
}

async function runOne(answers: (Record<string, unknown>[] | Error)[]): Promise<{ history: HistoryRecorder; workload: SqlWorkload }> {
  const history = new HistoryRecorder();
  const scenario = loadScenarioFile("scenarios/lost-quorum.yaml");
  let time = 0;
  const workload = new SqlWorkload(scripted(answers), history, { ...scenario.workload, thinkTimeMsMean: 0 }, { nowMs: () => ++time, leader: () => 2 }, 1);
  workload.start();
  while (history.size === 0 || history.pendingCount > 0) await new Promise((resolve) => setTimeout(resolve, 1));
  await workload.stop();
  return { history, workload };
}

test("an acknowledged SQL put is recorded with the version read back on its connection", async (t) => {
  const { history } = await runOne([[{ ok: true }], [{ value: "sql-1", version: "4" }]]);
  const first = history.operations()[0]!;
  t.is(first.outcome, "ok");
  t.deepEqual(first.output, { op: "put", version: 4 });
});

test("a SQL put whose key another write changed first is recorded as unknown, not with a wrong version", async (t) => {
  const { history, workload } = await runOne([[{ ok: true }], [{ value: "c0-7", version: "9" }]]);
  t.is(history.operations()[0]!.outcome, "unknown");
  t.is(workload.versionsUnknown, 1);
  t.is(workload.writesAcknowledged, 1);
});

test("refusals are failed writes, an unknown outcome or a broken connection is unknown", async (t) => {
  for (const [error, outcome] of [
    [new SqlFailure("not the leader", true, "PR001"), "failed"],
    [new SqlFailure("read-only", true, "PR002"), "failed"],
    [new SqlFailure("cannot connect", false, undefined), "failed"],
    [new SqlFailure("timed out", true, "PR003"), "unknown"],
    [new SqlFailure("connection terminated", true, undefined), "unknown"],
  ] as const) {
    const { history } = await runOne([error]);
    t.is(history.operations()[0]!.outcome, outcome, error.message);
  }
});

test("agreement after recovery waits for SQL to name the /leader node, and says what it saw when it never does", async (t) => {
  const running = { is_leader: false, leader_id: 1, term: 3, worker_state: "RUNNING" };
  const agreeing = scripted([[{ ...running, is_leader: true }], [running]]);
  t.is(await settleAgreement(agreeing, () => [1, 2], () => 1, 1000, async () => undefined), undefined);
  const stale = scripted(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? [{ ...running, worker_state: "STOPPED" }] : [running])));
  const problem = await settleAgreement(stale, () => [1, 2], () => 1, 0, async () => undefined);
  t.regex(problem ?? "", /\/leader names n1; SQL: n1 STOPPED, is_leader false, leader 1, term 3; n2 RUNNING/);
});

test("agreement re-reads the running nodes each round: a node that stopped while we waited no longer counts", async (t) => {
  const running = { is_leader: false, leader_id: 1, term: 3, worker_state: "RUNNING" };
  // n3 answers nothing (its server went away); n1 leads and n2 follows.
  const rounds = Array.from({ length: 10 }, () => [[{ ...running, is_leader: true }], [running]]).flat();
  const queried: number[] = [];
  const connections = {
    async query(id: number) {
      queried.push(id);
      if (id === 3) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
      return rounds.shift() ?? [];
    },
  } as unknown as Parameters<typeof settleAgreement>[0];
  let ids = [1, 2, 3];
  let round = 0;
  const problem = await settleAgreement(connections, () => ids, () => 1, 60_000, async () => {
    round++;
    if (round === 2) ids = [1, 2]; // n3 exited on its own after the second round
  });
  t.is(problem, undefined);
  t.true(queried.filter((id) => id === 3).length === 2, `n3 was read in the first two rounds only: ${queried.join(",")}`);
  // With a list taken once, the same history never settles: n3 keeps failing.
  const once = [1, 2, 3];
  const stuck = await settleAgreement(connections, () => once, () => 1, 0, async () => undefined);
  t.regex(stuck ?? "", /n3 error \(connect ECONNREFUSED/);
});

test("agreement needs the /health leader among the nodes read: the others agreeing is not enough, and nodes that stopped are named", async (t) => {
  const running = { is_leader: false, leader_id: 1, term: 3, worker_state: "RUNNING" };
  const followersOnly = scripted(Array.from({ length: 4 }, () => [running]));
  let ids = [1, 2];
  const problem = await settleAgreement(followersOnly, () => ids, () => 1, 0, async () => undefined);
  t.not(problem, undefined, "n1 is read but does not say it leads");
  ids = [2];
  // n1, the leader, is not among the running nodes: n2 naming it is not agreement.
  const gone = await settleAgreement(scripted([[running]]), () => ids, () => 1, 0, async () => undefined);
  t.regex(gone ?? "", /n2 RUNNING/);
  let round = 0;
  const named = await settleAgreement(scripted(Array.from({ length: 4 }, () => [running])), () => (round++ === 0 ? [1, 2] : [2]), () => 1, 0, async () => undefined);
  t.regex(named ?? "", /stopped while waiting: n1/);
});
