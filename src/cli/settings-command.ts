/**
 * `pgraft settings`: every pgraft setting with its type, default, allowed values or range, and
 * description, straight from the definitions (src/config/setting-definitions.ts), so the list cannot
 * drift from what the validator accepts.
 *
 *   pgraft settings            a table; long cells wrap to fit the terminal
 *   pgraft settings --json     a JSON array, one object per setting (SettingSummary), on one line
 *
 * Exit codes: 0 listed, 2 bad arguments.
 */
import { SETTINGS, type SettingDefinition } from "../config/setting-definitions.ts";
import { settingSummary, typeText, type SettingSummary } from "../config/settings-reference.ts";

export const SETTINGS_USAGE = "pgraft settings [--json]";

/** The table is laid out for at least this many columns, and at most this many. */
const WIDTH_MIN = 80;
/** Without a terminal (output piped), lay the table out for this many columns. */
const WIDTH_UNKNOWN = 120;
const WIDTH_MAX = 200;
/** Narrowest a wrapped column may get. */
const COLUMN_WIDTH_MIN = 12;

export function settingsJson(definitions: readonly SettingDefinition[] = SETTINGS): SettingSummary[] {
  return definitions.map(settingSummary);
}

/** Splits `text` into lines of at most `width` characters, at spaces where it can. */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    let rest = word;
    while (rest.length > width) {
      if (line.length > 0) {
        lines.push(line);
        line = "";
      }
      // Break a long word after its last separator that fits, else at the width.
      const separator = Math.max(...[",", "/", "_", "."].map((mark) => rest.lastIndexOf(mark, width - 1)));
      const cut = separator > 0 ? separator + 1 : width;
      lines.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
    if (line.length === 0) line = rest;
    else if (line.length + 1 + rest.length <= width) line += ` ${rest}`;
    else {
      lines.push(line);
      line = rest;
    }
  }
  if (line.length > 0 || lines.length === 0) lines.push(line);
  return lines;
}

/**
 * Every setting as a boxed table no wider than `width` columns (clamped to 80-200): the name and type
 * columns keep their width, and the default, allowed and description columns share the rest, wrapping.
 */
export function formatSettingsTable(definitions: readonly SettingDefinition[] = SETTINGS, width = WIDTH_MIN): string {
  const totalWidth = Math.min(WIDTH_MAX, Math.max(WIDTH_MIN, width));
  const header = ["Setting", "Type", "Default", "Allowed", "Description"];
  const rows = definitions.map((definition) => {
    const summary = settingSummary(definition);
    return [summary.name, typeText(definition), summary.defaultDescription, summary.allowed, summary.description];
  });
  const natural = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  // Borders and padding: "| " + " | " between the five columns + " |".
  const chrome = 4 + 3 * (header.length - 1);
  const fixed = natural[0]! + natural[1]!;
  const free = Math.max(3 * COLUMN_WIDTH_MIN, totalWidth - chrome - fixed);
  // Default and allowed get up to 30% and 20% of the free width; the description takes the rest.
  const defaultWidth = Math.max(COLUMN_WIDTH_MIN, Math.min(natural[2]!, Math.floor(free * 0.3)));
  const allowedWidth = Math.max(COLUMN_WIDTH_MIN, Math.min(natural[3]!, Math.floor(free * 0.2)));
  const descriptionWidth = Math.max(COLUMN_WIDTH_MIN, Math.min(natural[4]!, free - defaultWidth - allowedWidth));
  const widths = [natural[0]!, natural[1]!, defaultWidth, allowedWidth, descriptionWidth];
  const rule = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+`;
  const render = (cells: readonly string[]): string[] => {
    const wrapped = cells.map((cell, column) => wrapText(cell, widths[column]!));
    const height = Math.max(...wrapped.map((lines) => lines.length));
    return Array.from({ length: height }, (_, i) => `| ${wrapped.map((lines, column) => (lines[i] ?? "").padEnd(widths[column]!)).join(" | ")} |`);
  };
  const lines = [rule, ...render(header), rule];
  for (const row of rows) lines.push(...render(row), rule);
  return lines.join("\n");
}

/** Runs `pgraft settings ARGS`; returns the exit code. */
export function settingsCommand(argv: readonly string[], output: { write: (text: string) => void; columns?: number } = process.stdout, errors: { write: (text: string) => void } = process.stderr): number {
  let json = false;
  for (const arg of argv) {
    if (arg === "--json") json = true;
    else {
      errors.write(`pgraft: Cannot list the settings: unknown argument "${arg}"; use ${SETTINGS_USAGE}\n`);
      return 2;
    }
  }
  if (json) output.write(`${JSON.stringify(settingsJson())}\n`);
  else output.write(`${formatSettingsTable(SETTINGS, output.columns ?? WIDTH_UNKNOWN)}\n`);
  return 0;
}
