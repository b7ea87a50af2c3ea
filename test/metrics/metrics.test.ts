/**
 * The Prometheus metrics: every required series is exposed with values from the node's status,
 * derived counters only grow (also across a node restart inside the process), per-peer series follow
 * the leader's view or the transport's, explicit observations land in their histograms, the names
 * follow Prometheus conventions, and /metrics serves the exposition over HTTP.
 */
import test from "ava";
import { startHttpServer } from "../../src/api/http-server.ts";
import type { RaftStatus } from "../../src/core/raft.ts";
import { createMetricsRoute, NodeMetrics, type TransportView } from "../../src/metrics/metrics.ts";
import { call, fakeStatus } from "../api/fixtures.ts";

const REQUIRED = [
  "pgraft_term",
  "pgraft_leader_id",
  "pgraft_is_leader",
  "pgraft_log_size",
  "pgraft_commit_index",
  "pgraft_applied_index",
  "pgraft_elections_total",
  "pgraft_leader_changes_total",
  "pgraft_quorum_active",
  "pgraft_peer_reachable",
  "pgraft_replication_lag_entries",
  "pgraft_proposals_total",
  "pgraft_commit_latency_seconds",
  "pgraft_fsync_duration_seconds",
  "pgraft_snapshots_total",
  "pgraft_messages_sent_total",
  "pgraft_messages_received_total",
  "pgraft_heartbeats_sent_total",
];

function leaderStatus(overrides: Partial<RaftStatus> = {}): RaftStatus {
  return fakeStatus({
    id: 1,
    role: "leader",
    term: 5,
    leaderId: 1,
    quorumActive: true,
    commit: 90,
    applied: 88,
    lastIndex: 100,
    firstIndex: 61,
    peers: [
      { id: 2, match: 100, next: 101, state: "replicate", ticksSinceResponse: 1 },
      { id: 3, match: 70, next: 71, state: "probe", ticksSinceResponse: 10 },
    ],
    counters: {
      messagesReceived: 400,
      messagesSent: 500,
      heartbeatsSent: 300,
      preVotesStarted: 2,
      electionsStarted: 2,
      electionsWon: 1,
      leaderChanges: 3,
      proposalsAccepted: 70,
      proposalsRejected: 4,
    },
    ...overrides,
  });
}

/** The value of one series in the exposition text, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    if (line.slice(0, space) === series) return Number(line.slice(space + 1));
  }
  return undefined;
}

test("NodeMetrics exposes every required metric with values from the node's status", async (t) => {
  const metrics = new NodeMetrics({ status: () => leaderStatus(), electionTimeoutTicks: 10, info: { nodeId: 1, name: "alpha", clusterId: "prod", version: "0.1.0" } });
  const text = await metrics.metrics();
  for (const name of REQUIRED) t.true(text.includes(`# TYPE ${name} `), `${name} is missing`);
  t.is(sample(text, "pgraft_term"), 5);
  t.is(sample(text, "pgraft_leader_id"), 1);
  t.is(sample(text, "pgraft_is_leader"), 1);
  t.is(sample(text, "pgraft_quorum_active"), 1);
  t.is(sample(text, "pgraft_log_size"), 40);
  t.is(sample(text, "pgraft_commit_index"), 90);
  t.is(sample(text, "pgraft_applied_index"), 88);
  t.is(sample(text, 'pgraft_role{role="leader"}'), 1);
  t.is(sample(text, 'pgraft_role{role="follower"}'), 0);
  t.is(sample(text, 'pgraft_peer_reachable{peer="2"}'), 1);
  t.is(sample(text, 'pgraft_peer_reachable{peer="3"}'), 0, "10 ticks without an answer is an election timeout");
  t.is(sample(text, 'pgraft_replication_lag_entries{peer="2"}'), 0);
  t.is(sample(text, 'pgraft_replication_lag_entries{peer="3"}'), 30);
  t.is(sample(text, 'pgraft_proposals_total{outcome="accepted"}'), 70);
  t.is(sample(text, 'pgraft_proposals_total{outcome="rejected"}'), 4);
  t.is(sample(text, "pgraft_elections_total"), 2);
  t.is(sample(text, "pgraft_leader_changes_total"), 3);
  t.is(sample(text, "pgraft_messages_sent_total"), 500);
  t.is(sample(text, "pgraft_messages_received_total"), 400);
  t.is(sample(text, "pgraft_heartbeats_sent_total"), 300);
  t.is(sample(text, 'pgraft_node_info{node_id="1",name="alpha",cluster_id="prod",version="0.1.0"}'), 1);
});

test("a leader without a live quorum is not reported as leader", async (t) => {
  const metrics = new NodeMetrics({ status: () => leaderStatus({ quorumActive: false }), electionTimeoutTicks: 10 });
  const text = await metrics.metrics();
  t.is(sample(text, "pgraft_is_leader"), 0);
  t.is(sample(text, "pgraft_quorum_active"), 0);
  t.is(sample(text, 'pgraft_role{role="leader"}'), 1);
});

test("derived counters add the growth between scrapes and keep growing after the node restarts", async (t) => {
  let elections = 3;
  const metrics = new NodeMetrics({
    status: () => leaderStatus({ counters: { ...leaderStatus().counters, electionsStarted: elections } }),
    electionTimeoutTicks: 10,
  });
  t.is(sample(await metrics.metrics(), "pgraft_elections_total"), 3);
  elections = 5;
  t.is(sample(await metrics.metrics(), "pgraft_elections_total"), 5);
  elections = 1;
  t.is(sample(await metrics.metrics(), "pgraft_elections_total"), 6, "a restarted node's count is added, never subtracted");
});

test("a stopped node reports running 0 and not leader, and keeps its counters", async (t) => {
  let status: RaftStatus | undefined = leaderStatus();
  const metrics = new NodeMetrics({ status: () => status, electionTimeoutTicks: 10 });
  await metrics.metrics();
  status = undefined;
  const text = await metrics.metrics();
  t.is(sample(text, "pgraft_node_running"), 0);
  t.is(sample(text, "pgraft_is_leader"), 0);
  t.is(sample(text, 'pgraft_peer_reachable{peer="2"}'), undefined);
  t.is(sample(text, "pgraft_elections_total"), 2);
});

test("on a follower, peer reachability comes from the transport, and transport counters are exported", async (t) => {
  const transport: TransportView = {
    counters: {
      bytesSent: 1000,
      bytesReceived: 2000,
      messagesSent: 10,
      messagesReceived: 20,
      messagesDropped: 1,
      connectionAttempts: 3,
      connectionsOutbound: 2,
      connectionsInbound: 1,
      refusalsSent: 0,
      refusalsReceived: 2,
      decodeErrors: 0,
      tlsErrors: 0,
    },
    peers: [
      { nodeId: 1, name: "alpha", address: "127.0.0.1:7001", up: true, queuedMessages: 0 },
      { nodeId: 3, name: "gamma", address: "127.0.0.1:7003", up: false, queuedMessages: 7 },
    ],
  };
  const metrics = new NodeMetrics({
    status: () => fakeStatus({ id: 2, role: "follower", leaderId: 1, term: 5 }),
    transport: () => transport,
    electionTimeoutTicks: 10,
  });
  const text = await metrics.metrics();
  t.is(sample(text, 'pgraft_peer_reachable{peer="1"}'), 1);
  t.is(sample(text, 'pgraft_peer_reachable{peer="3"}'), 0);
  t.is(sample(text, 'pgraft_replication_lag_entries{peer="3"}'), undefined, "only a leader knows replication lag");
  t.is(sample(text, "pgraft_transport_bytes_sent_total"), 1000);
  t.is(sample(text, 'pgraft_transport_refusals_total{by="remote"}'), 2);
  t.is(sample(text, 'pgraft_peer_connected{peer="3"}'), 0);
  t.is(sample(text, 'pgraft_transport_queued_messages{peer="3"}'), 7);
});

test("explicit observations land in the latency histograms and the snapshot and request counters", async (t) => {
  const metrics = new NodeMetrics({ status: () => leaderStatus(), electionTimeoutTicks: 10 });
  metrics.observeCommitLatency(0.003);
  metrics.observeCommitLatency(0.2);
  metrics.observeFsync(0.0015);
  metrics.recordSnapshot("taken");
  metrics.observeRequest("put", "ok", 0.004);
  metrics.observeRequest("put", "unknown", 6);
  const text = await metrics.metrics();
  t.is(sample(text, "pgraft_commit_latency_seconds_count"), 2);
  t.is(sample(text, 'pgraft_commit_latency_seconds_bucket{le="0.005"}'), 1);
  t.is(sample(text, 'pgraft_fsync_duration_seconds_bucket{le="0.002"}'), 1);
  t.is(sample(text, 'pgraft_fsync_duration_seconds_bucket{le="0.001"}'), 0);
  t.is(sample(text, 'pgraft_snapshots_total{kind="taken"}'), 1);
  t.is(sample(text, 'pgraft_snapshots_total{kind="installed"}'), 0);
  t.is(sample(text, 'pgraft_client_requests_total{operation="put",outcome="unknown"}'), 1);
  t.is(sample(text, 'pgraft_client_request_duration_seconds_count{operation="put"}'), 2);
});

test("metric names follow Prometheus conventions: counters end in _total, histograms in _seconds", async (t) => {
  const metrics = new NodeMetrics({ status: () => leaderStatus(), transport: () => undefined, electionTimeoutTicks: 10 });
  await metrics.metrics();
  const all = await metrics.registry.getMetricsAsJSON();
  t.true(all.length >= REQUIRED.length);
  for (const metric of all) {
    t.regex(metric.name, /^pgraft_[a-z_]+$/);
    if (String(metric.type) === "counter") t.regex(metric.name, /_total$/, metric.name);
    if (String(metric.type) === "histogram") t.regex(metric.name, /_seconds$/, metric.name);
    if (String(metric.type) !== "counter") t.notRegex(metric.name, /_total$/, metric.name);
  }
});

test("/metrics serves the exposition in Prometheus text format and refuses POST", async (t) => {
  const metrics = new NodeMetrics({ status: () => leaderStatus(), electionTimeoutTicks: 10 });
  const server = await startHttpServer({ routes: [createMetricsRoute(metrics)] });
  try {
    const answer = await call(server.url, "GET", "/metrics");
    t.is(answer.status, 200);
    t.regex(String(answer.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
    for (const name of REQUIRED) t.true(answer.text.includes(`# HELP ${name} `), name);
    t.is(sample(answer.text, "pgraft_term"), 5);
    const head = await call(server.url, "HEAD", "/metrics");
    t.is(head.status, 200);
    t.is(head.text, "");
    const post = await call(server.url, "POST", "/metrics");
    t.is(post.status, 405);
    t.is((await call(server.url, "GET", "/other")).status, 404);
  } finally {
    await server.close();
  }
});

test("processMetrics adds prom-client's process series to the same registry", async (t) => {
  const metrics = new NodeMetrics({ status: () => leaderStatus(), electionTimeoutTicks: 10, processMetrics: true });
  const text = await metrics.metrics();
  t.true(text.includes("process_cpu_seconds_total"));
  t.true(text.includes("pgraft_term"));
});
