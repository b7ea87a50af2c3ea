/**
 * `npm run bench:sim`: how fast the simulator runs and how fast the linearizability checker decides.
 *
 * Prints, side by side in one run: simulated seconds per wall second and events per second for 3- and
 * 5-node clusters with client load, quiet and under swarm faults; then the checker's time on generated
 * 10k- and 100k-operation histories. Figures only: nothing here asserts a speed (the machine is shared).
 *
 * Wall time on a shared machine counts the time other processes held the core, so each row also gives
 * the process's CPU time (user + system) and the figures per CPU second: what one core does.
 *
 *   npm run bench:sim -- [--seeds N] [--duration 60s] [--nodes 3|5] [--faults none|swarm] [--skip-checker-bench] [--json]
 */
import { performance } from "node:perf_hooks";
import { parseDuration } from "../sim/arguments.ts";
import { generateHistory } from "../sim/checkers/history-generator.ts";
import { checkLinearizable } from "../sim/checkers/linearizability.ts";
import { runSeed } from "../sim/run.ts";

interface Row {
  readonly case: string;
  readonly nodes: number;
  readonly faults: "none" | "swarm";
  readonly seeds: number;
  readonly simulatedSeconds: number;
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  readonly speedup: number;
  readonly eventsPerSecond: number;
  /** Simulated seconds per CPU second, and events per CPU second: one core's throughput. */
  readonly speedupPerCpu: number;
  readonly eventsPerCpuSecond: number;
  readonly events: number;
  readonly operationsPerSeed: number;
}

interface Arguments {
  seeds: number;
  durationMs: number;
  json: boolean;
  nodes: number[];
  faults: ("none" | "swarm")[];
  checker: boolean;
}

const USAGE = "usage: npm run bench:sim -- [--seeds N] [--duration 60s] [--nodes 3|5] [--faults none|swarm] [--skip-checker-bench] [--json]";

function parseArguments(argv: string[]): Arguments {
  let seeds = 8;
  let durationMs = 60_000;
  let json = false;
  let nodes = [3, 5];
  let faults: ("none" | "swarm")[] = ["none", "swarm"];
  let checker = true;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--seeds") {
      seeds = Number(argv[++i]);
      if (!Number.isInteger(seeds) || seeds < 1 || seeds > 10_000) {
        throw new Error(`Invalid value for --seeds: "${argv[i]}" must be an integer from 1 to 10000`);
      }
    } else if (flag === "--duration") durationMs = parseDuration(argv[++i] ?? "", "--duration");
    else if (flag === "--json") json = true;
    else if (flag === "--nodes") {
      const value = argv[++i];
      if (value !== "3" && value !== "5") throw new Error(`Invalid value for --nodes: "${value}" must be 3 or 5`);
      nodes = [Number(value)];
    } else if (flag === "--faults") {
      const value = argv[++i];
      if (value !== "none" && value !== "swarm") throw new Error(`Invalid value for --faults: "${value}" must be none or swarm`);
      faults = [value];
    } else if (flag === "--skip-checker-bench") checker = false;
    else throw new Error(`Unknown flag "${flag}": ${USAGE}`);
  }
  return { seeds, durationMs, json, nodes, faults, checker };
}

function measure(nodes: number, faults: "none" | "swarm", seeds: number, durationMs: number): Row {
  let simulatedMs = 0;
  let wallMs = 0;
  let cpuMicros = 0;
  let events = 0;
  let operations = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    const result = runSeed({ seed, nodeCount: nodes, durationMs, faults });
    const cpu = process.cpuUsage(cpuStart);
    cpuMicros += cpu.user + cpu.system;
    wallMs += performance.now() - start;
    if (!result.ok) process.stderr.write(`warning: seed ${seed} failed: ${result.violations.join("; ")}\n`);
    simulatedMs += result.simulatedMs;
    events += result.events;
    operations += result.operations;
  }
  return {
    case: `${nodes} nodes, ${faults === "swarm" ? "swarm faults" : "no faults"}, client load`,
    nodes,
    faults,
    seeds,
    simulatedSeconds: simulatedMs / 1000,
    wallSeconds: wallMs / 1000,
    cpuSeconds: cpuMicros / 1e6,
    speedup: simulatedMs / wallMs,
    eventsPerSecond: events / (wallMs / 1000),
    speedupPerCpu: simulatedMs / (cpuMicros / 1000),
    eventsPerCpuSecond: events / (cpuMicros / 1e6),
    events,
    operationsPerSeed: operations / seeds,
  };
}

function main(): void {
  const { seeds, durationMs, json, nodes: nodeCounts, faults: faultModes, checker } = parseArguments(process.argv.slice(2));
  const rows: Row[] = [];
  for (const nodes of nodeCounts) {
    for (const faults of faultModes) {
      process.stderr.write(`simulating ${nodes} nodes, faults ${faults}, ${seeds} seeds of ${durationMs / 1000} s...\n`);
      rows.push(measure(nodes, faults, seeds, durationMs));
    }
  }
  const checks: { operations: number; keys: number; clients: number; wallMs: number; result: string }[] = [];
  for (const operations of checker ? [10_000, 100_000] : []) {
    process.stderr.write(`checking a ${operations}-operation history...\n`);
    const history = generateHistory({ seed: 1, operations, clients: 10, keys: 20 });
    const start = performance.now();
    const result = checkLinearizable(history, { timeBudgetMs: 120_000 });
    checks.push({ operations, keys: 20, clients: 10, wallMs: performance.now() - start, result: String(result.ok) });
  }
  if (json) {
    for (const row of rows) process.stdout.write(JSON.stringify({ kind: "simulation", ...row }) + "\n");
    for (const check of checks) process.stdout.write(JSON.stringify({ kind: "linearizability", ...check }) + "\n");
    return;
  }
  console.log("\nSimulator speed (one process, one core)");
  console.log("(wall: elapsed time, shared with other processes; cpu: this process's user + system time)");
  console.log(
    "case                                        seeds  simulated s   events  wall s   cpu s  x real (wall)  x real (cpu)  events/s (wall)  events/s (cpu)  ops/seed",
  );
  for (const r of rows) {
    console.log(
      `${r.case.padEnd(44)}${String(r.seeds).padStart(5)}${r.simulatedSeconds.toFixed(0).padStart(13)}${String(r.events).padStart(9)}` +
        `${r.wallSeconds.toFixed(1).padStart(8)}${r.cpuSeconds.toFixed(1).padStart(8)}${r.speedup.toFixed(0).padStart(15)}${r.speedupPerCpu.toFixed(0).padStart(14)}` +
        `${Math.round(r.eventsPerSecond).toString().padStart(17)}${Math.round(r.eventsPerCpuSecond).toString().padStart(16)}${Math.round(r.operationsPerSeed).toString().padStart(10)}`,
    );
  }
  if (checks.length === 0) return;
  console.log("\nLinearizability checker (generated histories, 10 clients, 20 keys)");
  console.log("operations  wall ms  linearizable");
  for (const c of checks) console.log(`${String(c.operations).padStart(10)}${c.wallMs.toFixed(0).padStart(9)}  ${c.result}`);
}

main();
