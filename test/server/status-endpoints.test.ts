/**
 * Which endpoints `pgraft status` and `pgraft member add|remove` ask. Following the README's
 * walk-through, n1.conf's pgraft.client_urls still lists n2 after `pgraft member remove --id 2`; the
 * status printed "warning: http://127.0.0.1:2372: fetch failed" for a node that is no longer a member.
 * A configured endpoint that does not answer and that no member has as its client URL is now left out
 * (unless given with --endpoints); a member that does not answer is still asked, and warned about.
 */
import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { endpointsToAsk, type MemberJson } from "../../src/cli/pgraft.ts";

const member = (id: number, clientUrl: string): MemberJson => ({ ID: String(id), name: `n${id}`, peerURLs: [`http://127.0.0.1:700${id}`], clientURLs: [clientUrl], isLearner: false });
const [u1, u2, u3, u4] = [1, 2, 3, 4].map((i) => `http://127.0.0.1:237${i}`) as [string, string, string, string];

test("a configured endpoint that is not answering and not a member is left out; members are added", (t) => {
  const members = [member(1, u1), member(3, u3), member(4, u4)];
  // n2 removed and gone: dropped; n4 (added later, not configured) found through the membership.
  t.deepEqual(endpointsToAsk([u1, u2, u3], [members, undefined, members], false), [u1, u3, u4]);
  // A member that is down is still asked (its warning is news), and a trailing "/" is the same URL.
  t.deepEqual(endpointsToAsk([u1, `${u3}/`], [members, undefined], false), [u1, `${u3}/`, u4]);
  // --endpoints: what the user named is asked, member or not.
  t.deepEqual(endpointsToAsk([u1, u2], [members, undefined], true), [u1, u2, u3, u4]);
  // Nobody answered: nothing is known, everything configured is asked.
  t.deepEqual(endpointsToAsk([u1, u2], [undefined, undefined], false), [u1, u2]);
  // An endpoint that answers is kept even if no member lists it (a node whose client URL differs).
  t.deepEqual(endpointsToAsk(["http://localhost:2371", u2], [members, undefined], false), ["http://localhost:2371", u1, u3, u4]);
});

/** A stand-in node: answers the member list and /cluster as a pgraft leader would. */
async function fakeNode(members: () => MemberJson[]): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    response.setHeader("content-type", "application/json");
    if (request.url === "/v3/cluster/member/list") return response.end(JSON.stringify({ members: members() }));
    if (request.url === "/cluster") {
      return response.end(
        JSON.stringify({
          cluster_id: "demo",
          member_id: 1,
          term: 2,
          leader_id: 1,
          members: members().map((m) => ({ id: Number(m.ID), name: m.name, role: m.ID === "1" ? "leader" : "follower", state: "running", term: 2, commit: 9, applied: 9, last_index: 9, match: 9, lag: 0, reachable: true })),
        }),
      );
    }
    response.statusCode = 404;
    response.end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A port nothing listens on (bound, then closed: the removed node). */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function pgraft(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/pgraft.js", ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

test("pgraft status with settings that still list a removed node warns only about members", async (t) => {
  const removed = await deadUrl();
  let members: MemberJson[] = [];
  const n1 = await fakeNode(() => members);
  t.teardown(() => n1.server.close());
  // n1.conf as the README writes it: pgraft.client_urls lists the founders, n2 among them.
  const directory = mkdtempSync(join(tmpdir(), "pgraft-status-endpoints-"));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  writeFileSync(join(directory, "secret"), "0123456789abcdef0123456789abcdef\n");
  const config = join(directory, "n1.conf");
  writeFileSync(
    config,
    [
      "pgraft.cluster_id = 'demo'",
      "pgraft.name = 'n1'",
      "pgraft.initial_cluster = 'n1=127.0.0.1:7001,n2=127.0.0.1:7002'",
      `pgraft.client_address = '${new URL(n1.url).host}'`,
      `pgraft.client_urls = 'n1=${new URL(n1.url).host},n2=${new URL(removed).host}'`,
      `pgraft.data_dir = '${join(directory, "n1")}'`,
      `pgraft.auth_secret_file = '${join(directory, "secret")}'`,
      "",
    ].join("\n"),
  );
  members = [member(1, n1.url)];
  const status = await pgraft(["status", "--config", config]);
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /Cluster: demo \(leader: n1 \(node 1\), term 2\)/);
  t.false(status.stderr.includes(removed), status.stderr);
  // The same URL while it is still a member is asked, and its silence reported.
  members = [member(1, n1.url), member(2, removed)];
  const down = await pgraft(["status", "--config", config]);
  t.is(down.code, 0, down.stderr);
  t.regex(down.stderr, new RegExp(`warning: ${removed.replaceAll(".", "\\.")}: `));
});
