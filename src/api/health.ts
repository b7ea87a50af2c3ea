/**
 * Health endpoints for load balancers, as Patroni offers them. Each answers GET (with a JSON body),
 * HEAD and OPTIONS (status only: HAProxy's `option httpchk OPTIONS /leader` works); other methods get
 * 405. The status code is the answer:
 *
 * | endpoint                          | 200 when                                                        | else |
 * |-----------------------------------|-----------------------------------------------------------------|------|
 * | /health, /liveness                | the node runs                                                   | 503  |
 * | /leader, /primary, /read-write    | this node is the leader and a quorum answered it within an      | 503  |
 * |                                   | election timeout (an isolated old leader answers 503)           |      |
 * | /replica                          | this node is a follower of a known leader                       | 503  |
 * | /read-only, /readiness            | /leader or /replica would answer 200                            | 503  |
 * | /cluster                          | the node runs; the body lists members, roles, terms, lag        | 503  |
 *
 * Every answer's body carries etcd's `"health": "true" | "false"` (true when a leader is known), so
 * etcd's health probes that read the body work; the status codes are the table's (see README.md).
 *
 * "The node runs" means `status()` returns a status; a node that stopped or has not started yet
 * returns undefined, and every endpoint answers 503 with {"state": "stopped"}. Query parameters
 * (Patroni's ?lag=) are not supported and are refused with 400 rather than ignored.
 *
 * /cluster reports this node's view: its own state in full; on a leader, each peer's match index, lag
 * (the leader's last index minus the peer's match) and reachability (answered within an election
 * timeout). With `peerHealthUrls`, it also asks every other member's /health (in parallel, each within
 * `peerTimeoutMs`) and reports their role, term, commit and applied indexes; a member that does not
 * answer is "unreachable". Values nobody knows are null.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { RaftStatus } from "../core/raft.ts";
import type { NodeId } from "../core/types.ts";
import type { HttpRoute } from "./http-server.ts";

export interface HealthOptions {
  /** The node's status now, or undefined when it is not running. */
  readonly status: () => RaftStatus | undefined;
  /** pgraft.cluster_id. */
  readonly clusterId: string;
  readonly memberName?: (nodeId: NodeId) => string | undefined;
  /** The election timeout in ticks: a peer that has not answered the leader within it is unreachable. */
  readonly electionTimeoutTicks: number;
  /** Base URL where a member's health endpoints answer, for /cluster to ask them. */
  readonly peerHealthUrls?: (nodeId: NodeId) => string | undefined;
  readonly peerTimeoutMs?: number;
  /** The node's PostgreSQL side, reported in /health's body (the status code does not depend on it). */
  readonly postgres?: () => PostgresReport;
}

export const PEER_TIMEOUT_MS_DEFAULT = 500;
const PEER_REPORT_BYTES_MAX = 64 * 1024;

/** What /health answers: this node's own state. */
export interface NodeReport {
  /**
   * etcd's /health field: "true" when the node knows a leader (etcd answers {"health": "true"}), else
   * "false". The status code stays this endpoint's own (200 while the node runs): see README.md.
   */
  readonly health: "true" | "false";
  readonly state: "running" | "stopped";
  readonly member_id?: NodeId;
  readonly name?: string | null;
  readonly cluster_id?: string;
  readonly role?: RaftStatus["role"];
  readonly term?: number;
  readonly leader_id?: NodeId;
  readonly quorum_active?: boolean;
  readonly commit?: number;
  readonly applied?: number;
  readonly last_index?: number;
  /** The node's PostgreSQL server, when it has one (see HealthOptions.postgres). */
  readonly postgres?: PostgresReport;
}

/** How the node's PostgreSQL side fares: connected, how far pgraft.kv has caught up, fenced or not. */
export interface PostgresReport {
  readonly state: string;
  readonly applied_index: number | null;
  readonly fenced: boolean | null;
  readonly last_error: string | null;
}

export interface MemberReport {
  readonly id: NodeId;
  readonly name: string | null;
  readonly role: string | null;
  readonly state: "running" | "stopped" | "unreachable" | "unknown";
  readonly term: number | null;
  readonly commit: number | null;
  readonly applied: number | null;
  readonly last_index: number | null;
  /** Leader's view only: the highest index known replicated on the member. */
  readonly match: number | null;
  /** Entries the member is behind the leader's last index. */
  readonly lag: number | null;
  readonly reachable: boolean | null;
}

export interface ClusterReport {
  readonly cluster_id: string;
  readonly member_id: NodeId;
  readonly term: number;
  readonly leader_id: NodeId;
  readonly members: readonly MemberReport[];
}

type Check = (status: RaftStatus) => boolean;

function isLeader(status: RaftStatus): boolean {
  return status.role === "leader" && status.quorumActive;
}

function isReplica(status: RaftStatus): boolean {
  return status.role === "follower" && status.leaderId !== 0;
}

const CHECKS: ReadonlyMap<string, Check> = new Map([
  ["/health", () => true],
  ["/liveness", () => true],
  ["/leader", isLeader],
  ["/primary", isLeader],
  ["/read-write", isLeader],
  ["/replica", isReplica],
  ["/read-only", (status) => isLeader(status) || isReplica(status)],
  ["/readiness", (status) => isLeader(status) || isReplica(status)],
]);

export function nodeReport(status: RaftStatus | undefined, options: Pick<HealthOptions, "clusterId" | "memberName" | "postgres">): NodeReport {
  if (status === undefined) return { health: "false", state: "stopped" };
  return {
    health: status.leaderId !== 0 ? "true" : "false",
    state: "running",
    member_id: status.id,
    name: options.memberName?.(status.id) ?? null,
    cluster_id: options.clusterId,
    role: status.role,
    term: status.term,
    leader_id: status.leaderId,
    quorum_active: status.quorumActive,
    commit: status.commit,
    applied: status.applied,
    last_index: status.lastIndex,
    ...(options.postgres === undefined ? {} : { postgres: options.postgres() }),
  };
}

/** The route for startHttpServer(): serves the endpoints in the table above. */
export function createHealthRoute(options: HealthOptions): HttpRoute {
  return (request, response, url) => {
    const check = CHECKS.get(url.pathname);
    if (check === undefined && url.pathname !== "/cluster") return false;
    if (request.method !== "GET" && request.method !== "HEAD" && request.method !== "OPTIONS") {
      send(request, response, 405, { error: `Cannot serve ${request.method} ${url.pathname}: use GET, HEAD or OPTIONS` }, { allow: "GET, HEAD, OPTIONS" });
      return true;
    }
    const parameters = [...url.searchParams.keys()];
    if (parameters.length > 0) {
      send(request, response, 400, {
        error: `Cannot serve ${url.pathname}: query parameter "${parameters[0]}" is not supported; pgraft's health endpoints take no parameters`,
      });
      return true;
    }
    const status = options.status();
    if (status === undefined) {
      send(request, response, 503, nodeReport(undefined, options));
      return true;
    }
    if (check !== undefined) {
      send(request, response, check(status) ? 200 : 503, nodeReport(status, options));
      return true;
    }
    if (request.method !== "GET") {
      send(request, response, 200, undefined);
      return true;
    }
    clusterReport(status, options).then(
      (report) => send(request, response, 200, report),
      (error: unknown) => send(request, response, 500, { error: `Cannot report the cluster: ${error instanceof Error ? error.message : String(error)}` }),
    );
    return true;
  };
}

/** This node's view of the cluster (see the header comment). */
export async function clusterReport(status: RaftStatus, options: HealthOptions): Promise<ClusterReport> {
  const ids = [...new Set([...status.membership.voters, ...status.membership.learners, status.id])].sort((a, b) => a - b);
  const learners = new Set(status.membership.learners);
  const others = ids.filter((id) => id !== status.id);
  const fetched = new Map<NodeId, NodeReport | undefined>();
  if (options.peerHealthUrls !== undefined) {
    const timeoutMs = options.peerTimeoutMs ?? PEER_TIMEOUT_MS_DEFAULT;
    const reports = await Promise.all(others.map((id) => fetchReport(options.peerHealthUrls!(id), timeoutMs)));
    others.forEach((id, i) => fetched.set(id, reports[i]));
  }
  const self = nodeReport(status, options);
  const leaderReport = status.leaderId === status.id ? self : fetched.get(status.leaderId);
  const leaderLastIndex = leaderReport?.state === "running" ? (leaderReport.last_index ?? null) : null;
  const progress = new Map(status.peers.map((peer) => [peer.id, peer]));
  const members = ids.map((id): MemberReport => {
    const name = options.memberName?.(id) ?? null;
    if (id === status.id) {
      return {
        id,
        name,
        role: status.role,
        state: "running",
        term: status.term,
        commit: status.commit,
        applied: status.applied,
        last_index: status.lastIndex,
        match: status.role === "leader" ? status.lastIndex : null,
        lag: leaderLastIndex === null ? null : Math.max(0, leaderLastIndex - status.lastIndex),
        reachable: true,
      };
    }
    const peer = status.role === "leader" ? progress.get(id) : undefined;
    const report = fetched.get(id);
    const running = report?.state === "running" ? report : undefined;
    const lag =
      peer !== undefined
        ? Math.max(0, status.lastIndex - peer.match)
        : leaderLastIndex !== null && running?.last_index !== undefined
          ? Math.max(0, leaderLastIndex - running.last_index)
          : null;
    return {
      id,
      name,
      role: running?.role ?? (id === status.leaderId ? "leader" : peer !== undefined ? (learners.has(id) ? "learner" : "follower") : null),
      state: report === undefined ? (fetched.has(id) ? "unreachable" : "unknown") : report.state,
      term: running?.term ?? null,
      commit: running?.commit ?? null,
      applied: running?.applied ?? null,
      last_index: running?.last_index ?? null,
      match: peer?.match ?? null,
      lag,
      reachable: peer !== undefined ? peer.ticksSinceResponse < options.electionTimeoutTicks : fetched.has(id) ? report !== undefined : null,
    };
  });
  return { cluster_id: options.clusterId, member_id: status.id, term: status.term, leader_id: status.leaderId, members };
}

function send(request: IncomingMessage, response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined || request.method === "OPTIONS" ? "" : JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store", ...headers });
  response.end(request.method === "HEAD" ? undefined : text);
}

/** A member's /health report, or undefined when it does not answer in time (or answers nonsense). */
function fetchReport(baseUrl: string | undefined, timeoutMs: number): Promise<NodeReport | undefined> {
  if (baseUrl === undefined) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (report: NodeReport | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(report);
    };
    let target: URL;
    try {
      target = new URL("/health", baseUrl);
    } catch {
      resolve(undefined);
      return;
    }
    const request = httpRequest(target, { method: "GET", headers: { accept: "application/json" } });
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    request.on("error", () => finish(undefined));
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > PEER_REPORT_BYTES_MAX) finish(undefined);
        else chunks.push(chunk);
      });
      response.on("error", () => finish(undefined));
      response.on("end", () => {
        try {
          const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as NodeReport;
          finish(parsed !== null && typeof parsed === "object" && (parsed.state === "running" || parsed.state === "stopped") ? parsed : undefined);
        } catch {
          finish(undefined);
        }
      });
    });
    request.end();
  });
}
