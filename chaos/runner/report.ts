/** The terminal table and JSON lines of a chaos invocation. */
import type { ChaosRunResult } from "./result.ts";

function cell(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

export function describeFailovers(result: ChaosRunResult): string {
  return result.failoverMs.length === 0 ? "-" : result.failoverMs.map((ms) => `${(ms / 1000).toFixed(2)}s`).join(" ");
}

export function formatTable(results: readonly ChaosRunResult[]): string {
  const header = ["scenario", "seed", "result", "failover", "elections", "writes ok", "lost", "reason"];
  const widths = [28, 6, 14, 16, 9, 9, 4, 60];
  const lines = [header.map((text, i) => cell(text, widths[i]!)).join(" | ")];
  lines.push(widths.map((width) => "-".repeat(width)).join("-+-"));
  for (const result of results) {
    const availability = result.writeAvailability === null ? "-" : `${(result.writeAvailability * 100).toFixed(1)}%`;
    lines.push(
      [
        result.scenario,
        String(result.seed),
        result.status,
        describeFailovers(result),
        String(result.elections),
        availability,
        String(result.acknowledgedLost),
        result.reasons[0] ?? "",
      ]
        .map((text, i) => cell(text, widths[i]!))
        .join(" | "),
    );
  }
  return lines.join("\n");
}

/** Every reason of every run that did not pass, in full. */
export function formatReasons(results: readonly ChaosRunResult[]): string {
  const lines: string[] = [];
  for (const result of results) {
    if (result.status === "passed") continue;
    lines.push(`${result.scenario} seed ${result.seed}: ${result.status}`);
    for (const reason of result.reasons) lines.push(`  ${reason}`);
    if (result.timelineFile !== undefined && result.status !== "simulator-only") {
      lines.push(`  timeline: ${result.timelineFile}; replay: npm run sim -- --replay ${result.timelineFile}`);
    }
  }
  return lines.join("\n");
}
