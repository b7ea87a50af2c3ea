// The `pgraft` command: bad settings and bad usage exit 2 with a message that names the problem and
// what to do; `pgraft status` renders a patronictl-style table of the members.
import test from "ava";
import { spawnSync } from "node:child_process";
import { formatMembers, formatStatus, parseArguments, UsageError } from "../../src/cli/pgraft.ts";

function pgraft(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const result = spawnSync(process.execPath, ["bin/pgraft.js", ...args], { encoding: "utf8", timeout: 30_000, env: { ...process.env, PGDATA: "" } });
  return { status: result.status, stderr: result.stderr, stdout: result.stdout };
}

test("pgraft start with a misspelt setting exits 2 and suggests the right name", (t) => {
  const result = pgraft(["start", "pgraft.cluster_id=c", "pgraft.name=n1", "pgraft.initial_cluster=n1=127.0.0.1:7001", "pgraft.auth=off", "pgraft.data_dir=/tmp/x", "pgraft.election_timout=2s"]);
  t.is(result.status, 2);
  t.regex(result.stderr, /Unknown setting "pgraft\.election_timout".*did you mean "pgraft\.election_timeout"\?/s);
});

test("pgraft start without required settings names each of them", (t) => {
  const result = pgraft(["start", "pgraft.auth=off"]);
  t.is(result.status, 2);
  t.regex(result.stderr, /pgraft\.cluster_id/);
  t.regex(result.stderr, /pgraft\.initial_cluster/);
});

test("pgraft with an unknown command or argument exits 2 with the usage", (t) => {
  const result = pgraft(["strat"]);
  t.is(result.status, 2);
  t.regex(result.stderr, /Unknown command "strat"/);
  t.throws(() => parseArguments(["--bogus"]), { instanceOf: UsageError, message: /Unknown argument "--bogus"/ });
});

test("pgraft status fails clearly when no endpoint answers", (t) => {
  const result = pgraft(["status", "--endpoints", "http://127.0.0.1:1"]);
  t.is(result.status, 1);
  t.regex(result.stderr, /Cannot read the cluster status: no endpoint answered/);
});

test("formatStatus() renders one aligned row per member and names the leader", (t) => {
  const text = formatStatus({
    cluster_id: "prod",
    member_id: 2,
    term: 7,
    leader_id: 2,
    members: [
      { id: 1, name: "n1", role: "follower", state: "running", term: 7, commit: 40, applied: 40, last_index: 40, match: 40, lag: 0, reachable: true },
      { id: 2, name: "n2", role: "leader", state: "running", term: 7, commit: 40, applied: 40, last_index: 40, match: 40, lag: 0, reachable: true },
      { id: 3, name: "n3", role: null, state: "unreachable", term: null, commit: null, applied: null, last_index: null, match: 12, lag: 28, reachable: false },
    ],
  });
  t.regex(text, /^Cluster: prod \(leader: n2 \(node 2\), term 7\)/);
  t.regex(text, /\| n3 +\| 3 +\| - +\| unreachable \| - +\| - +\| - +\| 28 +\| NO +\|/);
  const lines = text.split("\n");
  t.true(lines.slice(1).every((line) => line.length === lines[1]!.length), "every table line has the same width");
});

test("pgraft member refuses incomplete commands with exit 2 and says what is missing", (t) => {
  const missing = pgraft(["member"]);
  t.is(missing.status, 2);
  t.regex(missing.stderr, /Missing member command: use list, add or remove/);
  const unknown = pgraft(["member", "ad"]);
  t.is(unknown.status, 2);
  t.regex(unknown.stderr, /Unknown member command "ad": use list, add or remove/);
  const add = pgraft(["member", "add", "--id", "4"]);
  t.is(add.status, 2);
  t.regex(add.stderr, /pgraft member add needs --peer-url http:\/\/host:port/);
  const remove = pgraft(["member", "remove"]);
  t.is(remove.status, 2);
  t.regex(remove.stderr, /pgraft member remove needs --id N/);
});

test("pgraft member list fails clearly when no endpoint answers", (t) => {
  const result = pgraft(["member", "list", "--endpoints", "http://127.0.0.1:1"]);
  t.is(result.status, 1);
  t.regex(result.stderr, /Cannot list members: no endpoint answered it \(http:\/\/127\.0\.0\.1:1: /);
});

test("formatMembers() renders one aligned row per member", (t) => {
  const text = formatMembers([
    { ID: "1", name: "n1", peerURLs: ["http://127.0.0.1:7001"], clientURLs: ["http://127.0.0.1:2371"], isLearner: false },
    { ID: "4", name: "node4", peerURLs: ["http://10.0.0.4:7004"], clientURLs: [], isLearner: true },
  ]);
  const lines = text.split("\n");
  t.is(lines.length, 6);
  t.regex(lines[1]!, /^\| Id \| Name  \| Peer URL              \| Client URL            \| Learner \|$/);
  t.regex(lines[3]!, /^\| 1  \| n1    \| http:\/\/127\.0\.0\.1:7001 \| http:\/\/127\.0\.0\.1:2371 \| no      \|$/);
  t.regex(lines[4]!, /^\| 4  \| node4 \| http:\/\/10\.0\.0\.4:7004  \| -                     \| yes     \|$/);
});
