/**
 * The cluster API (/v3/cluster/member/{list,add,remove}) over HTTP against a fake ClusterBackend: the
 * member list and where each field comes from, what an add or a remove hands the backend and answers,
 * every request it refuses before reaching the backend (with a message saying what is wrong), and a
 * backend refusal in the same shape the KV API gives it.
 */
import test from "ava";
import { ClientApi } from "../../src/api/client-api.ts";
import { ClusterApi, type ClusterBackend, type ClusterApiOptions } from "../../src/api/cluster-api.ts";
import { startHttpServer, type RunningHttpServer } from "../../src/api/http-server.ts";
import { MemoryKvBackend } from "../../src/api/memory-backend.ts";
import type { ResponseHeader } from "../../src/api/kv-types.ts";
import { changeMembership } from "../../src/core/membership.ts";
import type { Membership, NodeId } from "../../src/core/types.ts";
import { MembershipChangeInProgressError, NotLeaderError, type PgraftError } from "../../src/errors.ts";
import type { AdminResult, MembershipChange } from "../../src/node/raft-node.ts";
import { b64, call, post } from "./fixtures.ts";

const HEADER: ResponseHeader = { clusterId: "1234567890", memberId: "1", revision: 17, raftTerm: 4 };
const HEADER_JSON = { cluster_id: "1234567890", member_id: "1", revision: "17", raft_term: "4" };

/**
 * A node as RaftNode.changeMembership() presents it: an add answers once the node is a voter, a remove
 * once it is gone; or, when `refuseWith` is set, the refusal.
 */
class FakeBackend implements ClusterBackend {
  current: Membership;
  readonly changes: MembershipChange[] = [];
  refuseWith: PgraftError | undefined;

  constructor(membership: Membership) {
    this.current = membership;
  }

  membership(): Membership {
    return this.current;
  }

  changeMembership(change: MembershipChange, callback: (result: AdminResult) => void): void {
    this.changes.push(change);
    if (this.refuseWith !== undefined) {
      const error = this.refuseWith;
      setImmediate(() => callback({ ok: false, error }));
      return;
    }
    let result = changeMembership(this.current, change);
    if (result.ok && change.type === "add") result = changeMembership(result.membership, { type: "promote", nodeId: change.nodeId });
    if (!result.ok) throw new Error(`the fake backend cannot apply ${JSON.stringify(change)}: ${result.reason}`);
    this.current = result.membership;
    setImmediate(() => callback({ ok: true, membership: this.current }));
  }

  readonly transfers: number[] = [];

  transferLeadership(target: number, callback: (result: AdminResult) => void): void {
    this.transfers.push(target);
    if (this.refuseWith !== undefined) {
      const error = this.refuseWith;
      setImmediate(() => callback({ ok: false, error }));
      return;
    }
    setImmediate(() => callback({ ok: true, membership: this.current }));
  }

  header(): ResponseHeader {
    return HEADER;
  }
}

const FOUNDERS: Readonly<Record<number, { name: string; address: string }>> = {
  1: { name: "alpha", address: "10.0.0.1:7001" },
  2: { name: "beta", address: "10.0.0.2:7002" },
  3: { name: "gamma", address: "10.0.0.3:7003" },
};

interface Served {
  readonly url: string;
  readonly backend: FakeBackend;
  readonly kv: MemoryKvBackend;
}

async function withCluster(membership: Membership, run: (served: Served) => Promise<void>, options: Partial<ClusterApiOptions> = {}): Promise<void> {
  const backend = new FakeBackend(membership);
  const cluster = new ClusterApi({ backend, initialMember: (id: NodeId) => FOUNDERS[id], ...options });
  // The KV API on the same server, as in production (the cluster route first), to compare refusals.
  const kv = new MemoryKvBackend({ memberId: 1, clusterId: "pgraft-test" });
  const client = new ClientApi({ backend: kv });
  let server: RunningHttpServer | undefined;
  try {
    server = await startHttpServer({ routes: [cluster.route, client.route] });
    await run({ url: server.url, backend, kv });
  } finally {
    client.close();
    await server?.close();
  }
}

const THREE: Membership = { voters: [1, 2, 3], learners: [] };

function member(id: number, name: string, peerUrl: string | undefined, isLearner = false, clientUrl?: string): Record<string, unknown> {
  return { ID: String(id), name, peerURLs: peerUrl === undefined ? [] : [peerUrl], clientURLs: clientUrl === undefined ? [] : [clientUrl], isLearner };
}

// ---------------------------------------------------------------------------------------------------
// list

test("list returns every member by id, with names and peer URLs from the initial cluster or the configuration", async (t) => {
  const membership: Membership = { voters: [1, 2, 5, 6], learners: [4], addresses: { "4": "[::1]:7004", "5": "h5.example:7005" } };
  await withCluster(
    membership,
    async ({ url, backend }) => {
      const answer = await post(url, "/v3/cluster/member/list", {});
      t.is(answer.status, 200);
      t.is(answer.headers["content-type"], "application/json");
      t.deepEqual(answer.json, {
        header: HEADER_JSON,
        members: [
          member(1, "alpha", "http://10.0.0.1:7001", false, "http://10.0.0.1:2379"),
          member(2, "beta", "http://10.0.0.2:7002"),
          member(4, "node4", "http://[::1]:7004", true),
          member(5, "node5", "http://h5.example:7005"),
          member(6, "node6", undefined),
        ],
      });
      t.deepEqual(backend.changes, [], "a list changes nothing");
    },
    { clientUrl: (id) => (id === 1 ? "http://10.0.0.1:2379" : undefined) },
  );
});

test("list prefers the configuration's address to the initial cluster's for the same id", async (t) => {
  await withCluster({ voters: [1, 2], learners: [], addresses: { "2": "moved:7102" } }, async ({ url }) => {
    const answer = await post(url, "/v3/cluster/member/list", {});
    t.deepEqual(answer.json.members[1], member(2, "beta", "http://moved:7102"));
  });
});

test("list accepts an empty body and reads the backend's membership at each request", async (t) => {
  await withCluster(THREE, async ({ url, backend }) => {
    const first = await post(url, "/v3/cluster/member/list");
    t.is(first.status, 200);
    t.deepEqual(first.json.members.map((entry: { ID: string }) => entry.ID), ["1", "2", "3"]);
    backend.current = { voters: [1, 3], learners: [8] };
    const second = await post(url, "/v3/cluster/member/list", {});
    t.deepEqual(second.json.members.map((entry: { ID: string; isLearner: boolean }) => [entry.ID, entry.isLearner]), [["1", false], ["3", false], ["8", true]]);
  });
});

// ---------------------------------------------------------------------------------------------------
// add

test("add with one peer URL hands the backend the node id and host:port, and answers member and members", async (t) => {
  await withCluster(THREE, async ({ url, backend }) => {
    const answer = await post(url, "/v3/cluster/member/add", { peerURLs: ["http://10.0.0.9:7009"], ID: "9" });
    t.is(answer.status, 200, answer.text);
    t.deepEqual(backend.changes, [{ type: "add", nodeId: 9, address: "10.0.0.9:7009" }]);
    t.deepEqual(answer.json, {
      header: HEADER_JSON,
      member: member(9, "node9", "http://10.0.0.9:7009"),
      members: [
        member(1, "alpha", "http://10.0.0.1:7001"),
        member(2, "beta", "http://10.0.0.2:7002"),
        member(3, "gamma", "http://10.0.0.3:7003"),
        member(9, "node9", "http://10.0.0.9:7009"),
      ],
    });
  });
});

test("add takes the ID as a number too, and host names, https and IPv6 peer URLs", async (t) => {
  await withCluster(THREE, async ({ url, backend }) => {
    t.is((await post(url, "/v3/cluster/member/add", { peerURLs: ["https://db-4.example.com:7004/"], ID: 4 })).status, 200);
    t.is((await post(url, "/v3/cluster/member/add", { peerURLs: ["http://[::1]:7005"], ID: "5" })).status, 200);
    t.deepEqual(backend.changes, [
      { type: "add", nodeId: 4, address: "db-4.example.com:7004" },
      { type: "add", nodeId: 5, address: "[::1]:7005" },
    ]);
  });
});

test("add without an ID picks the highest member id plus one, learners included", async (t) => {
  await withCluster({ voters: [1, 2, 3], learners: [7] }, async ({ url, backend }) => {
    const answer = await post(url, "/v3/cluster/member/add", { peerURLs: ["http://10.0.0.8:7008"] });
    t.is(answer.status, 200, answer.text);
    t.deepEqual(backend.changes, [{ type: "add", nodeId: 8, address: "10.0.0.8:7008" }]);
    t.is(answer.json.member.ID, "8");
    const next = await post(url, "/v3/cluster/member/add", { peerURLs: ["http://10.0.0.9:7009"] });
    t.is(next.json.member.ID, "9", "the id after the one just added");
  });
});

interface Refused {
  readonly title: string;
  readonly path: string;
  readonly body: unknown;
  readonly message: RegExp;
}

const REFUSED: readonly Refused[] = [
  { title: "an add with isLearner: true", path: "add", body: { peerURLs: ["http://h:1"], isLearner: true }, message: /^Cannot add a learner: pgraft adds every node as a learner and promotes it/ },
  { title: "an add without peerURLs", path: "add", body: { ID: "4" }, message: /^Cannot add a member without its peer address: send \{"peerURLs": \["http:\/\/host:port"\]\} with exactly one URL/ },
  { title: "an add with an empty peerURLs", path: "add", body: { peerURLs: [] }, message: /^Cannot add a member without its peer address/ },
  { title: "an add with two peerURLs", path: "add", body: { peerURLs: ["http://h:1", "http://h:2"] }, message: /with exactly one URL/ },
  { title: "an add with a peer URL that is not a string", path: "add", body: { peerURLs: [7004] }, message: /^Cannot add a member without its peer address/ },
  { title: "an add with a peer URL without a port", path: "add", body: { peerURLs: ["http://10.0.0.4"] }, message: /^Cannot use peer URL "http:\/\/10\.0\.0\.4": write it as http:\/\/host:port, with a port from 1 to 65535/ },
  { title: "an add with a peer URL with a path", path: "add", body: { peerURLs: ["http://10.0.0.4:7004/raft"] }, message: /^Cannot use peer URL "http:\/\/10\.0\.0\.4:7004\/raft": .*nothing after it/ },
  { title: "an add with a peer URL with a query", path: "add", body: { peerURLs: ["http://10.0.0.4:7004?x=1"] }, message: /^Cannot use peer URL .*nothing after it/ },
  { title: "an add with a peer URL of another scheme", path: "add", body: { peerURLs: ["ftp://10.0.0.4:7004"] }, message: /^Cannot use peer URL "ftp:\/\/10\.0\.0\.4:7004"/ },
  { title: "an add with a peer URL that is not a URL", path: "add", body: { peerURLs: ["10.0.0.4:7004 x"] }, message: /^Cannot use peer URL "10\.0\.0\.4:7004 x": write it as http:\/\/host:port, with a port from 1 to 65535 and nothing after it/ },
  { title: 'an add with ID "0"', path: "add", body: { peerURLs: ["http://h:1"], ID: "0" }, message: /^Cannot use ID "0": a member id is a positive integer up to 1000000/ },
  { title: 'an add with ID "x"', path: "add", body: { peerURLs: ["http://h:1"], ID: "x" }, message: /^Cannot use ID "x": a member id is a positive integer/ },
  { title: "an add with ID -1", path: "add", body: { peerURLs: ["http://h:1"], ID: -1 }, message: /^Cannot use ID -1: a member id is a positive integer/ },
  { title: "an add with a fractional ID", path: "add", body: { peerURLs: ["http://h:1"], ID: 4.5 }, message: /^Cannot use ID 4\.5: a member id is a positive integer/ },
  { title: "an add with an ID above the bound", path: "add", body: { peerURLs: ["http://h:1"], ID: "1000001" }, message: /^Cannot use ID "1000001"/ },
  { title: "a remove without an ID", path: "remove", body: {}, message: /^Cannot remove a member without its id: send \{"ID": "3"\}$/ },
  { title: 'a remove with ID "x"', path: "remove", body: { ID: "x" }, message: /^Cannot use ID "x": a member id is a positive integer/ },
  { title: "a body that is a JSON array", path: "list", body: "[1]", message: /^Cannot use the request body: send a JSON object$/ },
  { title: "a body that is a JSON number", path: "add", body: "3", message: /^Cannot use the request body: send a JSON object$/ },
  { title: "a body that is JSON null", path: "remove", body: "null", message: /^Cannot use the request body: send a JSON object$/ },
  { title: "a body that is not JSON", path: "add", body: "{", message: /^Cannot parse the request body as JSON: .*send a JSON object/ },
];

for (const { title, path, body, message } of REFUSED) {
  test(`${title} is a 400 that says what is wrong, and the backend is not asked`, async (t) => {
    await withCluster(THREE, async ({ url, backend }) => {
      const answer = await post(url, `/v3/cluster/member/${path}`, body);
      t.is(answer.status, 400, answer.text);
      t.like(answer.json, { code: 3, outcome: "failed" });
      t.regex(answer.json.message, message);
      t.is(answer.json.error, answer.json.message);
      t.deepEqual(backend.changes, []);
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// remove

test("remove hands the backend the node id and answers the members left", async (t) => {
  await withCluster({ voters: [1, 2, 3], learners: [4], addresses: { "4": "h4:7004" } }, async ({ url, backend }) => {
    const answer = await post(url, "/v3/cluster/member/remove", { ID: "4" });
    t.is(answer.status, 200, answer.text);
    t.deepEqual(backend.changes, [{ type: "remove", nodeId: 4 }]);
    t.deepEqual(answer.json, {
      header: HEADER_JSON,
      members: [member(1, "alpha", "http://10.0.0.1:7001"), member(2, "beta", "http://10.0.0.2:7002"), member(3, "gamma", "http://10.0.0.3:7003")],
    });
    const byNumber = await post(url, "/v3/cluster/member/remove", { ID: 3 });
    t.is(byNumber.status, 200);
    t.deepEqual(backend.changes.at(-1), { type: "remove", nodeId: 3 });
  });
});

// ---------------------------------------------------------------------------------------------------
// Backend refusals, routes and methods

test("a NotLeaderError from the backend is a 503 naming the leader, exactly as the KV API answers it", async (t) => {
  await withCluster(THREE, async ({ url, backend, kv }) => {
    backend.refuseWith = new NotLeaderError(3, "add node 9");
    const cluster = await post(url, "/v3/cluster/member/add", { peerURLs: ["http://10.0.0.9:7009"], ID: "9" });
    kv.failNext(new NotLeaderError(3, "add node 9"));
    const kvAnswer = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(kvAnswer.status, 503, "the KV API's answer, as the reference");
    t.is(cluster.status, kvAnswer.status);
    t.deepEqual(cluster.json, kvAnswer.json);
    t.deepEqual(cluster.json, {
      error: "Cannot add node 9 on this node: it is a follower; send the request to the leader, node 3",
      code: 14,
      message: "Cannot add node 9 on this node: it is a follower; send the request to the leader, node 3",
      outcome: "failed",
      leader_id: "3",
    });
    backend.refuseWith = new NotLeaderError(2, "remove node 3");
    const removal = await post(url, "/v3/cluster/member/remove", { ID: "3" });
    t.is(removal.status, 503);
    t.is(removal.json.leader_id, "2");
  });
});

test("other backend refusals keep the gateway shape with the error's outcome", async (t) => {
  await withCluster(THREE, async ({ url, backend }) => {
    backend.refuseWith = new MembershipChangeInProgressError(12);
    const answer = await post(url, "/v3/cluster/member/remove", { ID: "2" });
    t.like(answer.json, { outcome: "failed" });
    t.regex(answer.json.message, /^Cannot change membership: another change \(log index 12\) is not committed yet/);
    t.is(answer.json.error, answer.json.message);
  });
});

test("an unknown cluster path is a 404 listing the served ones; other paths still reach the KV API", async (t) => {
  await withCluster(THREE, async ({ url, backend }) => {
    for (const path of ["/v3/cluster/member/update", "/v3/cluster/member", "/v3/cluster/member/list/extra", "/v3/cluster/"]) {
      const answer = await post(url, path, {});
      t.is(answer.status, 404, path);
      t.is(answer.json.code, 5, path);
      t.regex(answer.json.message, /serves POST \/v3\/cluster\/member\/list, \/v3\/cluster\/member\/add and \/v3\/cluster\/member\/remove$/, path);
    }
    const put = await post(url, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    t.is(put.status, 200, "the cluster route leaves /v3/kv/ to the KV API");
    t.deepEqual(backend.changes, []);
  });
});

test("GET is a 405 that asks for a POST and names the method allowed", async (t) => {
  await withCluster(THREE, async ({ url, backend }) => {
    for (const path of ["list", "add", "remove"]) {
      const answer = await call(url, "GET", `/v3/cluster/member/${path}`);
      t.is(answer.status, 405, path);
      t.is(answer.headers["allow"], "POST");
      t.is(answer.json.message, `Cannot serve GET /v3/cluster/member/${path}: send a POST with a JSON body`);
    }
    t.deepEqual(backend.changes, []);
  });
});

// ---------------------------------------------------------------------------------------------------
// Bugs a review found, fixed: each test failed before its fix.

test("a peer URL with the scheme's default port (http://h:80) is accepted", async (t) => {
  // WHATWG URL drops a default port (url.port === ""): the API once refused "http://h:80" as having no
  // explicit port although it has one.
  await withCluster(THREE, async ({ url, backend }) => {
    const answer = await post(url, "/v3/cluster/member/add", { peerURLs: ["http://10.0.0.4:80"], ID: "4" });
    t.is(answer.status, 200, answer.text);
    t.deepEqual(backend.changes, [{ type: "add", nodeId: 4, address: "10.0.0.4:80" }]);
  });
});

test("a peer URL whose host the wire format cannot carry is refused up front", async (t) => {
  // A 300-character host is a valid URL host and once passed changeMembership(), but the message codec
  // bounds an address at 262 characters: a MsgSnap carrying that membership made encodeMessage() assert.
  await withCluster(THREE, async ({ url, backend }) => {
    const answer = await post(url, "/v3/cluster/member/add", { peerURLs: [`http://${"a".repeat(300)}:7004`], ID: "4" });
    t.is(answer.status, 400, answer.text);
    t.deepEqual(backend.changes, []);
  });
});

test("transfer-leadership (etcd's MoveLeader) hands the target to the node and refuses a request without one", async (t) => {
  await withCluster(THREE, async ({ url, backend }) => {
    const moved = await post(url, "/v3/maintenance/transfer-leadership", { targetID: "2" });
    t.is(moved.status, 200, moved.text);
    t.deepEqual(backend.transfers, [2]);
    const missing = await post(url, "/v3/maintenance/transfer-leadership", {});
    t.is(missing.status, 400);
    t.regex(missing.json.message, /send \{"targetID": "2"\}/);
    t.deepEqual(backend.transfers, [2]);
  });
});
