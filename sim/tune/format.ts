/**
 * Text helpers shared by the terminal tables and the Markdown reports: durations for humans, aligned
 * plain-text tables, Markdown tables, and summaries as JSON with units in the field names.
 */
import type { Summary } from "./statistics.ts";

/** "287 ms", "1.57 s", "30 s"; "-" for no value. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(fraction > 0 && fraction < 0.01 ? 1 : 0)}%`;
}

/** Columns padded to their widest cell; numbers (and durations) right-aligned. */
export function textTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? "").length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((row) => /^[-\d.,<>%~+ ]*(ms|s|%|x|\/h)?$/.test(row[i] ?? "")));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(headers), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const escape = (cell: string): string => cell.replace(/\|/g, "\\|");
  return [
    `| ${headers.map(escape).join(" | ")} |`,
    `|${headers.map(() => "---").join("|")}|`,
    ...rows.map((row) => `| ${row.map(escape).join(" | ")} |`),
  ].join("\n");
}

/** A summary as JSON fields with the unit in each name (medianMs, p99Ms, ...). */
export function summaryJson(summary: Summary | undefined): Record<string, number> | null {
  if (summary === undefined) return null;
  const r = (value: number): number => Math.round(value * 100) / 100;
  return {
    count: summary.count,
    minMs: r(summary.min),
    medianMs: r(summary.median),
    meanMs: r(summary.mean),
    p90Ms: r(summary.p90),
    p99Ms: r(summary.p99),
    maxMs: r(summary.max),
  };
}
