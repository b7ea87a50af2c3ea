// The `pgraft` command: bad settings and bad usage exit 2 with a message that names the problem and
// what to do; `pgraft status` renders a patronictl-style table of the members.
import test from "ava";
import { spawnSync } from "node:child_process";
import { formatStatus, parseArguments, UsageError } from "../../src/cli/pgraft.ts";

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
