/**
 * Hunts one mutation: runs the swarm over a range of seeds in a copy of the code where it is planted,
 * one seed after another, and stops at the first seed that fails. Also runs the unpatched code over a
 * range (the baseline, which must stay clean).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { plantMutation, type Plantable } from "./plant.ts";

export interface SeedRange {
  readonly first: number;
  readonly last: number;
}

export interface HuntResult {
  readonly id: string;
  /** The first seed that failed, or undefined when every seed of the range passed. */
  readonly caughtAtSeed: number | undefined;
  /** The kind of the first violation ("Safety", "Linearizability", "Liveness", "Assertion", ...). */
  readonly property: string | undefined;
  /** The first violation, whole. */
  readonly violation: string | undefined;
  readonly seedsRun: number;
  readonly wallMs: number;
}

interface SeedLine {
  readonly seed?: number;
  readonly ok?: boolean;
  readonly violations?: readonly string[];
  readonly summary?: unknown;
}

/** Children alive now, so an interrupted run can stop them. */
const running = new Set<ChildProcess>();

export function stopAllHunts(): void {
  for (const child of running) child.kill("SIGKILL");
}

/**
 * Runs `npm run sim -- --seeds A..B --faults swarm --json --workers 1` in `cwd` and resolves at the
 * first failing seed (stopping the run there) or when every seed passed.
 */
export function huntSeeds(cwd: string, id: string, range: SeedRange, onSeed?: (seed: number, ok: boolean) => void): Promise<HuntResult> {
  const startMs = performance.now();
  const child = spawn(process.execPath, ["--import", "tsx", "sim/cli.ts", "--seeds", `${range.first}..${range.last}`, "--faults", "swarm", "--json", "--workers", "1"], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let stderrTail = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString("utf8")).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let seedsRun = 0;
    let settled = false;
    const finish = (result: Omit<HuntResult, "id" | "seedsRun" | "wallMs">): void => {
      if (settled) return;
      settled = true;
      resolve({ id, ...result, seedsRun, wallMs: performance.now() - startMs });
    };
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (text) => {
      let line: SeedLine;
      try {
        line = JSON.parse(text) as SeedLine;
      } catch {
        return; // Not a result line.
      }
      if (line.seed === undefined || line.ok === undefined) return;
      seedsRun++;
      onSeed?.(line.seed, line.ok);
      if (!line.ok) {
        const violation = line.violations?.[0] ?? "failed without a named violation";
        finish({ caughtAtSeed: line.seed, property: /^([A-Za-z -]+):/.exec(violation)?.[1] ?? "Other", violation });
        child.kill("SIGKILL");
      }
    });
    child.on("error", (error) => {
      running.delete(child);
      if (!settled) reject(error);
    });
    child.on("close", (code, signal) => {
      running.delete(child);
      if (settled) return;
      if (code === 0) finish({ caughtAtSeed: undefined, property: undefined, violation: undefined });
      else if (signal !== null) reject(new Error(`the simulator of "${id}" was stopped by ${signal}`));
      // Exit 2 or 5 without a failing seed line: the planted code does not even run. That is caught too,
      // but by the type checker or at start, not by the swarm: say so.
      else finish({ caughtAtSeed: range.first, property: "Crash", violation: `the simulator exited with code ${code} before reporting a seed: ${stderrTail.trim().split("\n").slice(-3).join(" | ")}` });
    });
  });
}

/** Plants `mutation` in a copy, hunts it, removes the copy. */
export async function huntMutation(root: string, mutation: Plantable, range: SeedRange, onSeed?: (seed: number, ok: boolean) => void): Promise<HuntResult> {
  const copy = plantMutation(root, mutation);
  try {
    return await huntSeeds(copy, mutation.id, range, onSeed);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
