/**
 * `npm run bench:sim`: how fast the simulator runs and how fast the linearizability checker decides.
 *
 * Prints, side by side in one run: simulated seconds per wall second and events per second for 3- and
 * 5-node clusters with client load, quiet and under swarm faults; then the checker's time on generated
 * 10k- and 100k-operation histories. Figures only: nothing here asserts a speed (the machine is shared).
 *
 *   npm run bench:sim -- [--seeds N] [--duration 60s] [--json]
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
  readonly speedup: number;
  readonly eventsPerSecond: number;
  readonly operationsPerSeed: number;
}

function parseArguments(argv: string[]): { seeds: number; durationMs: number; json: boolean } {
  let seeds = 8;
  let durationMs = 60_000;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--seeds") {
      seeds = Number(argv[++i]);
      if (!Number.isInteger(seeds) || seeds < 1 || seeds > 10_000) {
        throw new Error(`Invalid value for --seeds: "${argv[i]}" must be an integer from 1 to 10000`);
      }
    } else if (flag === "--duration") durationMs = parseDuration(argv[++i] ?? "", "--duration");
    else if (flag === "--json") json = true;
    else throw new Error(`Unknown flag "${flag}": usage: npm run bench:sim -- [--seeds N] [--duration 60s] [--json]`);
  }
  return { seeds, durationMs, json };
}

function measure(nodes: number, faults: "none" | "swarm", seeds: number, durationMs: number): Row {
  let simulatedMs = 0;
  let wallMs = 0;
  let events = 0;
  let operations = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const start = performance.now();
    const result = runSeed({ seed, nodeCount: nodes, durationMs, faults });
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
    speedup: simulatedMs / wallMs,
    eventsPerSecond: events / (wallMs / 1000),
    operationsPerSeed: operations / seeds,
  };
}

function main(): void {
  const { seeds, durationMs, json } = parseArguments(process.argv.slice(2));
  const rows: Row[] = [];
  for (const nodes of [3, 5]) {
    for (const faults of ["none", "swarm"] as const) {
      process.stderr.write(`simulating ${nodes} nodes, faults ${faults}, ${seeds} seeds of ${durationMs / 1000} s...\n`);
      rows.push(measure(nodes, faults, seeds, durationMs));
    }
  }
  const checks: { operations: number; keys: number; clients: number; wallMs: number; result: string }[] = [];
  for (const operations of [10_000, 100_000]) {
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
  console.log("case                                        seeds  simulated s  wall s  x real time  events/s   ops/seed");
  for (const r of rows) {
    console.log(
      `${r.case.padEnd(44)}${String(r.seeds).padStart(5)}${r.simulatedSeconds.toFixed(0).padStart(13)}${r.wallSeconds.toFixed(1).padStart(8)}` +
        `${r.speedup.toFixed(0).padStart(13)}${Math.round(r.eventsPerSecond).toString().padStart(10)}${Math.round(r.operationsPerSeed).toString().padStart(11)}`,
    );
  }
  console.log("\nLinearizability checker (generated histories, 10 clients, 20 keys)");
  console.log("operations  wall ms  linearizable");
  for (const c of checks) console.log(`${String(c.operations).padStart(10)}${c.wallMs.toFixed(0).padStart(9)}  ${c.result}`);
}

main();
