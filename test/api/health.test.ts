/**
 * The Patroni-style health endpoints: status codes for a leader with and without a live quorum, a
 * follower, a candidate and a stopped node; HEAD and OPTIONS; refused methods and parameters; and
 * /cluster from the leader's view and, with peer URLs, from a follower that asks every member.
 */
import test from "ava";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createHealthRoute, type HealthOptions } from "../../src/api/health.ts";
import { startHttpServer, type RunningHttpServer } from "../../src/api/http-server.ts";
import type { RaftStatus } from "../../src/core/raft.ts";
import { call, fakeStatus } from "./fixtures.ts";

const NAMES = new Map([
  [1, "alpha"],
  [2, "beta"],
  [3, "gamma"],
]);

async function withHealth(
  status: () => RaftStatus | undefined,
  run: (server: RunningHttpServer) => Promise<void>,
  extra: Partial<HealthOptions> = {},
): Promise<void> {
  const server = await startHttpServer({
    routes: [createHealthRoute({ status, clusterId: "prod", memberName: (id) => NAMES.get(id), electionTimeoutTicks: 10, ...extra })],
  });
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

const ENDPOINTS = ["/health", "/liveness", "/leader", "/primary", "/read-write", "/replica", "/read-only", "/readiness"] as const;

async function codes(url: string): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const path of ENDPOINTS) result[path] = (await call(url, "GET", path)).status;
  return result;
}

const leader = fakeStatus({
  id: 1,
  role: "leader",
  term: 7,
  leaderId: 1,
  quorumActive: true,
  commit: 40,
  applied: 40,
  lastIndex: 42,
  peers: [
    { id: 2, match: 42, next: 43, state: "replicate", ticksSinceResponse: 1 },
    { id: 3, match: 30, next: 31, state: "probe", ticksSinceResponse: 25 },
  ],
});

test("a leader backed by a quorum answers 200 on /leader and 503 on /replica", async (t) => {
  await withHealth(() => leader, async ({ url }) => {
    t.deepEqual(await codes(url), {
      "/health": 200,
      "/liveness": 200,
      "/leader": 200,
      "/primary": 200,
      "/read-write": 200,
      "/replica": 503,
      "/read-only": 200,
      "/readiness": 200,
    });
    const body = (await call(url, "GET", "/leader")).json;
    t.like(body, { state: "running", member_id: 1, name: "alpha", cluster_id: "prod", role: "leader", term: 7, leader_id: 1, quorum_active: true });
  });
});

test("an isolated leader without a live quorum answers 503 on /leader", async (t) => {
  await withHealth(() => ({ ...leader, quorumActive: false }), async ({ url }) => {
    const result = await codes(url);
    t.is(result["/leader"], 503);
    t.is(result["/read-only"], 503);
    t.is(result["/health"], 200);
  });
});

test("a follower of a known leader is a replica; a candidate is neither", async (t) => {
  await withHealth(() => fakeStatus({ id: 2, role: "follower", leaderId: 1, term: 7 }), async ({ url }) => {
    t.like(await codes(url), { "/health": 200, "/leader": 503, "/replica": 200, "/read-only": 200, "/readiness": 200 });
  });
  await withHealth(() => fakeStatus({ id: 2, role: "candidate", leaderId: 0, term: 8 }), async ({ url }) => {
    t.like(await codes(url), { "/health": 200, "/leader": 503, "/replica": 503, "/read-only": 503, "/readiness": 503 });
  });
  await withHealth(() => fakeStatus({ id: 2, role: "follower", leaderId: 0, term: 8 }), async ({ url }) => {
    t.is((await call(url, "GET", "/replica")).status, 503);
  });
});

test("a stopped node answers 503 everywhere with state stopped", async (t) => {
  await withHealth(() => undefined, async ({ url }) => {
    for (const path of [...ENDPOINTS, "/cluster"]) {
      const answer = await call(url, "GET", path);
      t.is(answer.status, 503, path);
      t.deepEqual(answer.json, { health: "false", state: "stopped" });
    }
  });
});

test("HEAD and OPTIONS give the status without a body; POST gets 405 and a parameter 400", async (t) => {
  await withHealth(() => leader, async ({ url }) => {
    for (const method of ["HEAD", "OPTIONS"]) {
      const ok = await call(url, method, "/leader");
      t.is(ok.status, 200, method);
      t.is(ok.text, "");
      t.is((await call(url, method, "/replica")).status, 503, method);
    }
    const post = await call(url, "POST", "/leader");
    t.is(post.status, 405);
    t.is(post.headers.allow, "GET, HEAD, OPTIONS");
    const lag = await call(url, "GET", "/replica?lag=10MB");
    t.is(lag.status, 400);
    t.regex(lag.json.error, /query parameter "lag" is not supported/);
    t.is((await call(url, "GET", "/elsewhere")).status, 404);
  });
});

test("/cluster on a leader lists members with roles, match, lag and reachability", async (t) => {
  await withHealth(() => leader, async ({ url }) => {
    const answer = await call(url, "GET", "/cluster");
    t.is(answer.status, 200);
    t.like(answer.json, { cluster_id: "prod", member_id: 1, term: 7, leader_id: 1 });
    const [one, two, three] = answer.json.members;
    t.like(one, { id: 1, name: "alpha", role: "leader", state: "running", term: 7, commit: 40, applied: 40, last_index: 42, lag: 0, reachable: true });
    t.like(two, { id: 2, name: "beta", role: "follower", match: 42, lag: 0, reachable: true, term: null, state: "unknown" });
    t.like(three, { id: 3, name: "gamma", role: "follower", match: 30, lag: 12, reachable: false });
  });
});

test("/cluster with peer URLs asks each member: a follower reports everyone's term and lag, and a dead member as unreachable", async (t) => {
  const leaderServer = await startHttpServer({
    routes: [createHealthRoute({ status: () => leader, clusterId: "prod", electionTimeoutTicks: 10 })],
  });
  const dead = createServer();
  await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
  const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => dead.close(() => resolve()));
  const follower = fakeStatus({ id: 2, role: "follower", leaderId: 1, term: 7, commit: 38, applied: 37, lastIndex: 39 });
  const urls = new Map([
    [1, leaderServer.url],
    [3, deadUrl],
  ]);
  try {
    await withHealth(
      () => follower,
      async ({ url }) => {
        const answer = await call(url, "GET", "/cluster");
        t.is(answer.status, 200);
        const [one, two, three] = answer.json.members;
        t.like(one, { id: 1, role: "leader", state: "running", term: 7, last_index: 42, lag: 0, reachable: true });
        t.like(two, { id: 2, role: "follower", term: 7, commit: 38, applied: 37, lag: 3, reachable: true });
        t.like(three, { id: 3, role: null, state: "unreachable", term: null, lag: null, reachable: false });
      },
      { peerHealthUrls: (id) => urls.get(id), peerTimeoutMs: 300 },
    );
  } finally {
    await leaderServer.close();
  }
});
