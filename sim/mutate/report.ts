/** The mutation report: a terminal table and the Markdown published in docs/mutations.md. */
import type { HuntResult } from "./hunt.ts";
import type { Mutation } from "./mutations.ts";

export interface ReportContext {
  readonly seeds: string;
  readonly baseline: HuntResult | undefined;
  readonly wallMs: number;
}

function seedsPerMinute(result: HuntResult): string {
  return result.wallMs > 0 ? ((result.seedsRun * 60_000) / result.wallMs).toFixed(0) : "-";
}

export function formatMutationReport(mutations: readonly Mutation[], results: readonly HuntResult[], context: ReportContext): { table: string; markdown: string } {
  const rows = mutations.map((mutation, i) => {
    const result = results[i]!;
    return {
      id: mutation.id,
      rule: mutation.rule,
      seed: result.caughtAtSeed === undefined ? `not caught (${result.seedsRun} seeds)` : String(result.caughtAtSeed),
      property: result.property ?? "-",
      rate: seedsPerMinute(result),
      violation: (result.violation ?? "").replace(/\s+/g, " ").slice(0, 160),
    };
  });
  const width = (key: "id" | "seed" | "property" | "rate"): number => Math.max(key.length, ...rows.map((row) => row[key].length));
  const widths = { id: width("id"), seed: width("seed"), property: width("property"), rate: width("rate") };
  const line = (cells: readonly string[]): string => cells.map((cell, i) => cell.padEnd([widths.id, widths.seed, widths.property, widths.rate][i]!)).join(" | ");
  const table = [
    line(["id", "seed", "property", "rate"]),
    line(["-".repeat(widths.id), "-".repeat(widths.seed), "-".repeat(widths.property), "-".repeat(widths.rate)]),
    ...rows.map((row) => line([row.id, row.seed, row.property, row.rate])),
    "(seed: the first swarm seed that fails; rate: seeds per minute of that mutation's run)",
  ].join("\n");
  const caught = results.filter((result) => result.caughtAtSeed !== undefined).length;
  const escape = (text: string): string => text.replace(/\|/g, "\\|");
  const markdown = [
    "| mutation | rule | first failing seed | property | seeds/min | first violation |",
    "|---|---|---|---|---|---|",
    ...rows.map((row) => `| \`${row.id}\` | ${escape(row.rule)} | ${row.seed} | ${row.property} | ${row.rate} | ${escape(row.violation)} |`),
    "",
    `${caught} of ${results.length} mutations caught within swarm seeds ${context.seeds}` +
      (context.baseline !== undefined ? `; the unpatched code passed all ${context.baseline.seedsRun} of them` : "") +
      `; whole run ${(context.wallMs / 60_000).toFixed(1)} min.`,
    "",
  ].join("\n");
  return { table, markdown };
}
