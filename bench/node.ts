/**
 * `npm run bench:node`: pgraft against etcd on this machine, in one run, on equal terms.
 *
 * Starts 3 pgraft nodes (`pgraft start`, every Raft batch fsynced) and a 3-member etcd (Debian's
 * etcd-server package), both on 127.0.0.1 with heartbeat 100 ms and election timeout 1000 ms, and
 * drives both with one closed-loop load generator over the same JSON API (POST /v3/kv/put, etcd v3's
 * gateway): 16-byte keys, 256-byte values, every write sent to the leader, concurrency 1, 16, 64 and
 * 256, levels interleaved (round 1: pgraft c=1, etcd c=1, pgraft c=16, ...; round 2 the same). Then it
 * kills the leader (SIGKILL) 20 times in each cluster, interleaved, then stops it (SIGSTOP: silent,
 * its connections stay open, as in a partition) 20 times, and measures the time until a write through
 * a survivor succeeds. Prints ops/s, p50 and p99 latency per level and failover time (median, p90,
 * p99, max) for each kind of failure, side by side with the ratio pgraft/etcd.
 *
 *   npm run bench:node -- [--duration 5s] [--warmup 1s] [--rounds 2] [--kills 20] [--failures kill,stop]
 *                         [--concurrency 1,16,64,256] [--systems pgraft,etcd] [--json]
 *                         [--etcd-bin etcd] [--etcd-pre-vote on|off] [--pgraft-set pgraft.NAME=VALUE]
 *                         [--key-space 100000] [--keep]
 *
 * With --json, stdout carries one JSON object per line and nothing else:
 *   {"system", "concurrency", "round", "opsPerSec", "p50Ms", "p99Ms"} per load level, then
 *   {"system", "failure": "kill"|"stop", "failoverMs": [...]} per system and kind of failure (a failure
 *   with no successful write within 30 s is null).
 * Progress goes to stderr. Every server process is killed on exit, errors and signals included.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchCluster, SystemName } from "./node/cluster.ts";
import { checkEtcdInstalled, EtcdCluster } from "./node/etcd-cluster.ts";
import { killLeaderOnce, type FailoverOptions, type FailoverResult, type FailureKind } from "./node/failover.ts";
import { fixed, median, percentileOf, ratio, table } from "./node/format.ts";
import { KEY_BYTES, runLoad, summarizeLatencies, VALUE_BYTES, Workload, type LoadResult } from "./node/load.ts";
import { PgraftCluster } from "./node/pgraft-cluster.ts";
import { cleanupOnSignal, freePorts, installCleanupHandlers } from "./node/processes.ts";

const USAGE = `Usage: npm run bench:node -- [--duration 5s] [--warmup 1s] [--rounds 2] [--kills 20] [--failures kill,stop]
         [--concurrency 1,16,64,256] [--systems pgraft,etcd] [--json] [--etcd-bin etcd]
         [--etcd-pre-vote on|off] [--pgraft-set pgraft.NAME=VALUE ...] [--key-space 100000] [--keep]`;

const HEARTBEAT_MS = 100;
const ELECTION_TIMEOUT_MS = 1000;
const SYSTEMS: readonly SystemName[] = ["pgraft", "etcd"];

interface Arguments {
  durationMs: number;
  warmupMs: number;
  rounds: number;
  kills: number;
  /** Which failures the failover phase measures, each `kills` times. */
  failures: FailureKind[];
  concurrency: number[];
  systems: SystemName[];
  json: boolean;
  etcdBinary: string;
  etcdPreVote: boolean;
  pgraftSettings: string[];
  keySpace: number;
  keep: boolean;
}

class UsageError extends Error {}

export function parseDurationMs(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new UsageError(`Invalid value for ${flag}: "${text}" is not a duration such as 5s, 500ms or 1m`);
  const value = Number(match[1]);
  const unit = match[2] ?? "s";
  const ms = unit === "ms" ? value : unit === "s" ? value * 1000 : value * 60_000;
  if (ms > 3_600_000) throw new UsageError(`Invalid value for ${flag}: "${text}" is longer than an hour`);
  return ms;
}

function parseInteger(text: string | undefined, flag: string, minimum: number, maximum: number): number {
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value < minimum || value > maximum) {
    throw new UsageError(`Invalid value for ${flag}: "${text ?? ""}" must be an integer from ${minimum} to ${maximum}`);
  }
  return value;
}

export function parseArguments(argv: readonly string[]): Arguments {
  const parsed: Arguments = {
    durationMs: 5000,
    warmupMs: 1000,
    rounds: 2,
    kills: 20,
    failures: ["kill", "stop"],
    concurrency: [1, 16, 64, 256],
    systems: [...SYSTEMS],
    json: false,
    etcdBinary: "etcd",
    etcdPreVote: true,
    pgraftSettings: [],
    keySpace: 100_000,
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`Missing value for ${flag}\n${USAGE}`);
      return next;
    };
    switch (flag) {
      case "--duration":
        parsed.durationMs = parseDurationMs(value(), flag);
        if (parsed.durationMs < 100) throw new UsageError(`Invalid value for --duration: at least 100ms`);
        break;
      case "--warmup":
        parsed.warmupMs = parseDurationMs(value(), flag);
        break;
      case "--rounds":
        parsed.rounds = parseInteger(value(), flag, 1, 100);
        break;
      case "--kills":
        parsed.kills = parseInteger(value(), flag, 0, 1000);
        break;
      case "--failures": {
        const names = value().split(",").map((part) => part.trim()).filter((part) => part.length > 0);
        for (const name of names) {
          if (name !== "kill" && name !== "stop") throw new UsageError(`Invalid value for --failures: "${name}" is not kill (SIGKILL) or stop (SIGSTOP)`);
        }
        if (names.length === 0) throw new UsageError(`Invalid value for --failures: name kill, stop or both`);
        parsed.failures = (["kill", "stop"] as const).filter((kind) => names.includes(kind));
        break;
      }
      case "--concurrency": {
        const text = value();
        parsed.concurrency = text.split(",").map((part) => parseInteger(part.trim(), flag, 1, 4096));
        break;
      }
      case "--systems": {
        const names = value().split(",").map((part) => part.trim()).filter((part) => part.length > 0);
        for (const name of names) {
          if (!SYSTEMS.includes(name as SystemName)) throw new UsageError(`Invalid value for --systems: "${name}" is not one of ${SYSTEMS.join(", ")}`);
        }
        if (names.length === 0) throw new UsageError(`Invalid value for --systems: name pgraft, etcd or both`);
        parsed.systems = SYSTEMS.filter((system) => names.includes(system));
        break;
      }
      case "--json":
        parsed.json = true;
        break;
      case "--etcd-bin":
        parsed.etcdBinary = value();
        break;
      case "--etcd-pre-vote": {
        const text = value();
        if (text !== "on" && text !== "off") throw new UsageError(`Invalid value for --etcd-pre-vote: "${text}" must be on or off`);
        parsed.etcdPreVote = text === "on";
        break;
      }
      case "--pgraft-set": {
        const text = value();
        if (!/^pgraft\.[a-z_]+=.+$/.test(text)) throw new UsageError(`Invalid value for --pgraft-set: "${text}" must look like pgraft.max_batch_delay=0`);
        parsed.pgraftSettings.push(text);
        break;
      }
      case "--key-space":
        parsed.keySpace = parseInteger(value(), flag, 1, 1_000_000);
        break;
      case "--keep":
        parsed.keep = true;
        break;
      case "--help":
      case "-h":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      default:
        throw new UsageError(`Unknown flag "${flag}"\n${USAGE}`);
    }
  }
  return parsed;
}

function progress(line: string): void {
  process.stderr.write(`bench:node: ${line}\n`);
}

interface LoadRow {
  readonly system: SystemName;
  readonly round: number;
  readonly result: LoadResult;
  /** Cores the three servers used together during the level. */
  readonly serverCores: number;
  readonly generatorCores: number;
  /** The machine's 1-minute load average at the end of the level (other work on the machine shows here). */
  readonly loadAverage: number;
}

async function main(argv: readonly string[]): Promise<number> {
  let args: Arguments;
  try {
    args = parseArguments(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bench:node: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  installCleanupHandlers();
  if (args.systems.includes("etcd")) {
    try {
      progress(`using ${checkEtcdInstalled(args.etcdBinary)}`);
    } catch (error) {
      process.stderr.write(`bench:node: ${(error as Error).message}\n`);
      return 1;
    }
  }
  const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "pgraft-bench-node-"));
  if (!args.keep) cleanupOnSignal(() => fs.rmSync(directory, { recursive: true, force: true }));
  const ports = await freePorts(6 * args.systems.length);
  const clusters: BenchCluster[] = args.systems.map((system, i) => {
    const systemPorts = ports.slice(6 * i, 6 * i + 6);
    return system === "pgraft"
      ? new PgraftCluster({
          repositoryRoot,
          directory: path.join(directory, "pgraft"),
          ports: systemPorts,
          heartbeatMs: HEARTBEAT_MS,
          electionTimeoutMs: ELECTION_TIMEOUT_MS,
          extraSettings: args.pgraftSettings,
        })
      : new EtcdCluster({
          binary: args.etcdBinary,
          directory: path.join(directory, "etcd"),
          ports: systemPorts,
          heartbeatMs: HEARTBEAT_MS,
          electionTimeoutMs: ELECTION_TIMEOUT_MS,
          preVote: args.etcdPreVote,
        });
  });
  progress(
    `${os.cpus().length} CPU cores shared by ${3 * clusters.length} server processes and this generator; ` +
      `data and logs in ${directory}${args.keep ? "" : " (removed at the end; --keep keeps them)"}`,
  );
  let failed = true;
  try {
    for (const cluster of clusters) {
      const startedAt = performance.now();
      await cluster.start();
      progress(`${cluster.system}: 3 members up and healthy in ${Math.round(performance.now() - startedAt)} ms (${cluster.members.map((m) => m.clientUrl).join(", ")})`);
    }
    const workload = new Workload(args.keySpace);
    const rows = await runLoadPhase(args, clusters, workload);
    const failovers = await runFailoverPhase(args, clusters, workload);
    if (args.json) {
      for (const kind of args.kills > 0 ? args.failures : []) {
        for (const cluster of clusters) {
          const times = (failovers.get(cluster.system) ?? []).filter((result) => result.kind === kind);
          process.stdout.write(`${JSON.stringify({ system: cluster.system, failure: kind, failoverMs: times.map((result) => (result.failoverMs === undefined ? null : round2(result.failoverMs))) })}\n`);
        }
      }
    } else {
      process.stdout.write(report(args, rows, failovers, clusters.map((cluster) => cluster.system)));
    }
    failed = false;
  } finally {
    progress("stopping every server");
    await Promise.allSettled(clusters.map((cluster) => cluster.stop()));
    if (args.keep || failed) progress(`kept ${directory} (server logs: */*.log)`);
    else fs.rmSync(directory, { recursive: true, force: true });
  }
  return 0;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

async function runLoadPhase(args: Arguments, clusters: readonly BenchCluster[], workload: Workload): Promise<LoadRow[]> {
  const rows: LoadRow[] = [];
  const levels = args.rounds * args.concurrency.length * clusters.length;
  let level = 0;
  for (let round = 1; round <= args.rounds; round++) {
    for (const concurrency of args.concurrency) {
      for (const cluster of clusters) {
        level++;
        const leader = await cluster.waitHealthy(30_000);
        const cpuBefore = cluster.cpuSeconds();
        const result = await runLoad({
          url: leader.clientUrl,
          concurrency,
          warmupMs: args.warmupMs,
          durationMs: args.durationMs,
          requestTimeoutMs: 10_000,
          // Far above what 2 cores can serve in the window: the time bound ends the run.
          requestsMax: Math.ceil((args.warmupMs + args.durationMs) / 1000) * 200_000,
          workload,
        });
        const serverCores = (cluster.cpuSeconds() - cpuBefore) / (result.elapsedMs / 1000);
        const generatorCores = result.generatorCpuSeconds / (result.elapsedMs / 1000);
        const loadAverage = os.loadavg()[0]!;
        const row: LoadRow = { system: cluster.system, round, result, serverCores, generatorCores, loadAverage };
        rows.push(row);
        progress(
          `[${level}/${levels}] round ${round} ${cluster.system.padEnd(6)} c=${String(concurrency).padEnd(3)} ` +
            `${fixed(result.opsPerSec, 0).padStart(6)} ops/s  p50 ${fixed(result.p50Ms, 2)} ms  p99 ${fixed(result.p99Ms, 2)} ms  ` +
            `errors ${result.errors}  cpu: servers ${serverCores.toFixed(2)} cores, generator ${generatorCores.toFixed(2)} cores, load average ${loadAverage.toFixed(1)} (leader ${leader.name})` +
            (result.firstError ? `  first error: ${result.firstError}` : ""),
        );
        if (args.json) {
          process.stdout.write(
            `${JSON.stringify({ system: cluster.system, concurrency, round, opsPerSec: round2(result.opsPerSec), p50Ms: round2(result.p50Ms), p99Ms: round2(result.p99Ms) })}\n`,
          );
        }
      }
    }
  }
  return rows;
}

async function runFailoverPhase(args: Arguments, clusters: readonly BenchCluster[], workload: Workload): Promise<Map<SystemName, FailoverResult[]>> {
  const results = new Map<SystemName, FailoverResult[]>(clusters.map((cluster) => [cluster.system, []]));
  const options: FailoverOptions = {
    heartbeatMs: HEARTBEAT_MS,
    probeIntervalMs: 5,
    probeTimeoutMs: 1000,
    failoverTimeoutMs: 30_000,
    healthyTimeoutMs: 60_000,
    settleMs: 500,
  };
  for (const kind of args.failures) {
    for (let kill = 1; kill <= args.kills; kill++) {
      for (const cluster of clusters) {
        const result = await killLeaderOnce(cluster, workload, options, kill, kind);
        results.get(cluster.system)!.push(result);
        progress(
          `${kind} ${kill}/${args.kills} ${cluster.system.padEnd(6)} leader ${result.killed} ${kind === "kill" ? "killed (SIGKILL)" : "stopped (SIGSTOP)"}: ` +
            (result.failoverMs === undefined
              ? `NO write succeeded within ${options.failoverTimeoutMs} ms (last error: ${result.lastError ?? "none"})`
              : `first write ok after ${result.failoverMs.toFixed(1)} ms via ${result.answeredBy} (${result.probes} probes)`),
        );
      }
    }
  }
  return results;
}

function mergeSorted(results: readonly LoadResult[]): Float64Array {
  const total = results.reduce((sum, result) => sum + result.latenciesMs.length, 0);
  const merged = new Float64Array(total);
  let offset = 0;
  for (const result of results) {
    merged.set(result.latenciesMs, offset);
    offset += result.latenciesMs.length;
  }
  return merged.sort();
}

function report(args: Arguments, rows: readonly LoadRow[], failovers: Map<SystemName, FailoverResult[]>, systems: readonly SystemName[]): string {
  const out: string[] = [];
  const both = systems.length === 2;
  out.push(
    `Closed-loop puts to the leader, 3 members each on 127.0.0.1 (fsync on), heartbeat ${HEARTBEAT_MS} ms, election timeout ${ELECTION_TIMEOUT_MS} ms; ` +
      `${KEY_BYTES}-byte keys, ${VALUE_BYTES}-byte values; ${args.durationMs / 1000} s per level after ${args.warmupMs / 1000} s warm-up; ` +
      `${os.cpus().length} CPU cores shared by all servers and the generator.`,
    "",
  );
  const find = (system: SystemName, concurrency: number, round: number): LoadRow | undefined =>
    rows.find((row) => row.system === system && row.result.concurrency === concurrency && row.round === round);
  const detail: string[][] = [];
  for (const concurrency of args.concurrency) {
    for (let round = 1; round <= args.rounds; round++) {
      for (const system of systems) {
        const row = find(system, concurrency, round);
        if (!row) continue;
        const other = both && system === "pgraft" ? find("etcd", concurrency, round) : undefined;
        detail.push([
          system,
          String(concurrency),
          String(round),
          fixed(row.result.opsPerSec, 0),
          fixed(row.result.p50Ms, 2),
          fixed(row.result.p99Ms, 2),
          String(row.result.errors),
          row.serverCores.toFixed(2),
          row.generatorCores.toFixed(2),
          row.loadAverage.toFixed(1),
          other ? ratio(row.result.opsPerSec, other.result.opsPerSec) : "",
        ]);
      }
    }
  }
  out.push(table(["system", "concurrency", "round", "ops/s", "p50 ms", "p99 ms", "errors", "server cores", "gen cores", "load avg", "ops/s pgraft/etcd"], detail), "");
  if (both) {
    const summary: string[][] = [];
    for (const concurrency of args.concurrency) {
      const of = (system: SystemName) => {
        const results = rows.filter((row) => row.system === system && row.result.concurrency === concurrency).map((row) => row.result);
        const opsPerSec = results.reduce((sum, result) => sum + result.opsPerSec, 0) / Math.max(1, results.length);
        return { opsPerSec, ...summarizeLatencies(mergeSorted(results)) };
      };
      const p = of("pgraft");
      const e = of("etcd");
      summary.push([
        String(concurrency),
        fixed(p.opsPerSec, 0),
        fixed(e.opsPerSec, 0),
        ratio(p.opsPerSec, e.opsPerSec),
        fixed(p.p50Ms, 2),
        fixed(e.p50Ms, 2),
        ratio(p.p50Ms, e.p50Ms),
        fixed(p.p99Ms, 2),
        fixed(e.p99Ms, 2),
        ratio(p.p99Ms, e.p99Ms),
      ]);
    }
    out.push(
      `Side by side over ${args.rounds} round(s) (ops/s: mean of rounds; latency percentiles over all rounds' writes; ratio = pgraft/etcd: above 1 is better for ops/s, below 1 for latency):`,
      table(["concurrency", "pgraft ops/s", "etcd ops/s", "ratio", "pgraft p50", "etcd p50", "ratio", "pgraft p99", "etcd p99", "ratio"], summary),
      "",
    );
  }
  for (const kind of args.kills > 0 ? args.failures : []) {
    const stats = systems.map((system) => {
      const results = (failovers.get(system) ?? []).filter((result) => result.kind === kind);
      const times = results.flatMap((result) => (result.failoverMs === undefined ? [] : [result.failoverMs]));
      return {
        system,
        kills: results.length,
        failed: results.length - times.length,
        median: median(times),
        p90: percentileOf(times, 0.9),
        p99: percentileOf(times, 0.99),
        max: times.length > 0 ? Math.max(...times) : Number.NaN,
      };
    });
    const failoverRows = stats.map((s) => [s.system, String(s.kills), String(s.failed), fixed(s.median, 0), fixed(s.p90, 0), fixed(s.p99, 0), fixed(s.max, 0)]);
    if (both) {
      const [p, e] = [stats[0]!, stats[1]!];
      failoverRows.push(["pgraft/etcd", "", "", ratio(p.median, e.median), ratio(p.p90, e.p90), ratio(p.p99, e.p99), ratio(p.max, e.max)]);
    }
    out.push(
      kind === "kill"
        ? `Failover after SIGKILL of the leader (from the kill to the first write a survivor answers 200; below 1 is better):`
        : `Failover after SIGSTOP of the leader (silent: its connections stay open, as in a partition; from the signal to the first write a survivor answers 200):`,
      table(["system", kind === "kill" ? "kills" : "stops", "no write in 30 s", "median ms", "p90 ms", "p99 ms", "max ms"], failoverRows),
      "",
    );
  }
  return out.join("\n");
}

process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench:node: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return 1;
});
