/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`): self time per function, highest first, and self time
 * grouped by source file. Used for docs/sim-profile.md.
 *
 *   npx tsx bench/profile-summary.ts /tmp/prof/CPU.*.cpuprofile [--top 30]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

function main(): void {
  const args = process.argv.slice(2);
  let top = 30;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--top") top = Number(args[++i]);
    else files.push(args[i]!);
  }
  if (files.length === 0) throw new Error("Cannot summarize: no profile given; pass a .cpuprofile file written by node --cpu-prof");
  for (const file of files) summarize(file, top);
}

function summarize(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  // Self time per node from samples and time deltas (more exact than hitCount x interval).
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const next = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + next);
  }
  let totalUs = 0;
  for (const us of selfUs.values()) totalUs += us;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const url = frame.url.replace(/^file:\/\/\/work\/main\//, "").replace(/^file:\/\/\/tmp\/sim-before\//, "").replace(/^.*node_modules\//, "node_modules/");
    const name = `${frame.functionName || "(anonymous)"} ${url ? `${url}:${frame.lineNumber + 1}` : ""}`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const fileKey = url || `(${frame.functionName})`;
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
  }
  const percent = (us: number): string => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled`);
  console.log("\nself time by function");
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${percent(us)} ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`);
  console.log("\nself time by file");
  for (const [name, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${percent(us)} ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`);
}

main();
