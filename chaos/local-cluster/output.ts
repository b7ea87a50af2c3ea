/**
 * What `npm run cluster` prints once the cluster is ready: for people, how to reach each node and the
 * quick health check as psql shows it; with --detach --json, one JSON object and nothing else.
 */
import { QUICK_HEALTH_CHECK, type HealthRow } from "./health.ts";
import type { ClusterState } from "./state.ts";

export interface ReadyReport {
  readonly state: ClusterState;
  readonly leaderName: string;
  readonly term: number;
  readonly readyMs: number;
  /** Per node, in state.nodes order: psql's aligned output of the quick health check (text mode). */
  readonly psqlOutputs?: readonly string[];
  /** Per node, in state.nodes order: the quick health check's row (JSON mode). */
  readonly rows?: readonly HealthRow[];
}

export function stopCommand(name: string): string {
  return `npm run cluster -- --stop${name === "default" ? "" : ` --name ${name}`}`;
}

/** The one JSON object of --detach --json. */
export function readyJson(report: ReadyReport): Record<string, unknown> {
  const { state } = report;
  return {
    name: state.name,
    mode: state.mode,
    leader: report.leaderName,
    term: report.term,
    readyMs: report.readyMs,
    nodes: state.nodes.map((node, index) => ({
      name: node.name,
      id: node.id,
      psql: node.psql,
      psqlCommand: node.psqlCommand,
      clientUrl: node.clientUrl,
      metricsUrl: node.metricsUrl,
      healthUrl: `${node.clientUrl}/health`,
      pid: node.process?.pid ?? null,
      postmasterPid: node.postmasterPid ?? null,
      pgdata: node.pgdata,
      logFile: node.logFile,
      ports: { postgres: node.pgPort, peer: node.peerPort, client: node.clientPort, metrics: node.metricsPort },
      health: report.rows?.[index] ?? null,
    })),
    directory: state.directory,
    stateFile: state.stateFile,
    secretFile: state.secretFile,
    stopCommand: stopCommand(state.name),
  };
}

/** The text printed once the cluster is ready (foreground, or --detach without --json). */
export function readyText(report: ReadyReport): string {
  const { state } = report;
  const lines: string[] = [];
  lines.push(`pgraft local cluster "${state.name}": ${state.nodes.length} PostgreSQL servers with a pgraft node each, ready in ${(report.readyMs / 1000).toFixed(1)} s; leader ${report.leaderName} (term ${report.term})`);
  lines.push("");
  for (const node of state.nodes) {
    lines.push(`${node.name}`);
    lines.push(`  psql:     ${node.psqlCommand}`);
    lines.push(`  client:   ${node.clientUrl}   (etcd API; ${node.clientUrl}/health, /leader, /cluster)`);
    lines.push(`  metrics:  ${node.metricsUrl}`);
    lines.push(`  log:      ${node.logFile}`);
  }
  lines.push("");
  lines.push("The operations guide's quick health check, run with psql on every node:");
  lines.push("");
  lines.push(QUICK_HEALTH_CHECK);
  state.nodes.forEach((node, index) => {
    lines.push("");
    lines.push(`-- ${node.name}`);
    lines.push((report.psqlOutputs?.[index] ?? "").trimEnd());
  });
  lines.push("");
  const first = state.nodes[0]!;
  const leader = state.nodes.find((node) => node.name === report.leaderName) ?? first;
  lines.push("Try:");
  lines.push(`  ${first.psqlCommand} -c 'SELECT * FROM pgraft_get_nodes()'`);
  lines.push(`  ${leader.psqlCommand} -c "SELECT pgraft_kv_put('greeting', 'hello')"   # on the leader, ${leader.name}`);
  lines.push(`  curl -s ${first.clientUrl}/cluster`);
  lines.push(`  npx pgraft status --endpoints ${state.nodes.map((node) => node.clientUrl).join(",")}`);
  lines.push("");
  return lines.join("\n");
}
