/**
 * `pgraft settings` lists every setting from the definitions: the table on a terminal holds each
 * one's name, type, default, allowed values and description; `--json` parses to one object per
 * definition with the same facts; a bad argument exits 2 naming it.
 */
import test from "ava";
import { spawnSync } from "node:child_process";
import { formatSettingsTable, settingsCommand, wrapText } from "../../src/cli/settings-command.ts";
import { SETTINGS } from "../../src/config/setting-definitions.ts";
import { allowedText, typeText } from "../../src/config/settings-reference.ts";

function pgraft(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const result = spawnSync(process.execPath, ["bin/pgraft.js", ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: result.status, stderr: result.stderr, stdout: result.stdout };
}

/** The table's rows as cells (wrapped lines of a cell joined), using the rule line's column edges. */
function parseTable(text: string): string[][] {
  const lines = text.trimEnd().split("\n");
  const rule = lines[0]!;
  const edges = [...rule].flatMap((char, index) => (char === "+" ? [index] : []));
  const rows: string[][] = [];
  let current: string[][] | undefined;
  for (const line of lines) {
    if (line === rule) {
      if (current !== undefined) rows.push(current.map((parts) => parts.join(" ")));
      current = edges.slice(1).map(() => []);
      continue;
    }
    edges.slice(1).forEach((edge, column) => {
      const cell = line.slice(edges[column]! + 1, edge).trim();
      if (cell.length > 0) current![column]!.push(cell);
    });
  }
  return rows;
}

/** Text with its whitespace removed: wrapping may cut inside a word. */
const squeeze = (text: string): string => text.replace(/\s+/g, "");

test("pgraft settings prints every definition in a table: name, type, default, allowed values, description", (t) => {
  const result = pgraft(["settings"]);
  t.is(result.status, 0, result.stderr);
  const rows = parseTable(result.stdout);
  t.deepEqual(rows[0], ["Setting", "Type", "Default", "Allowed", "Description"]);
  t.is(rows.length, SETTINGS.length + 1);
  for (const [index, definition] of SETTINGS.entries()) {
    const row = rows[index + 1]!;
    t.is(row[0], definition.name);
    t.is(squeeze(row[1]!), squeeze(typeText(definition)), definition.name);
    t.is(squeeze(row[2]!), squeeze(definition.defaultDescription), definition.name);
    t.is(squeeze(row[3]!), squeeze(allowedText(definition)), definition.name);
    t.is(squeeze(row[4]!), squeeze(definition.description), definition.name);
  }
  const widths = new Set(result.stdout.trimEnd().split("\n").map((line) => line.length));
  t.is(widths.size, 1, "every line of the table has the same width");
});

test("pgraft settings --json prints one object per definition with its type, default and range", (t) => {
  const result = pgraft(["settings", "--json"]);
  t.is(result.status, 0, result.stderr);
  const parsed = JSON.parse(result.stdout) as Record<string, unknown>[];
  t.true(Array.isArray(parsed));
  t.is(parsed.length, SETTINGS.length);
  for (const [index, definition] of SETTINGS.entries()) {
    t.like(parsed[index], {
      name: definition.name,
      type: definition.type,
      unit: definition.unit ?? null,
      default: definition.defaultValue ?? null,
      defaultDescription: definition.defaultDescription,
      required: definition.required,
      minimum: definition.minimum ?? null,
      maximum: definition.maximum ?? null,
      description: definition.description,
    });
    t.deepEqual(parsed[index]!.allowedValues, definition.allowedValues === undefined ? null : [...definition.allowedValues]);
  }
});

test("pgraft settings refuses an unknown argument with exit 2 and names it", (t) => {
  const result = pgraft(["settings", "--yaml"]);
  t.is(result.status, 2);
  t.regex(result.stderr, /Cannot list the settings: unknown argument "--yaml"; use pgraft settings \[--json\]/);
  t.is(result.stdout, "");
});

test("the table fits the terminal's width where it can and never drops text", (t) => {
  for (const columns of [80, 120, 200]) {
    const table = formatSettingsTable(SETTINGS, columns);
    const width = table.split("\n")[0]!.length;
    t.true(columns === 80 || width <= columns, `${width} columns for a ${columns}-column terminal`);
    t.is(parseTable(table).length, SETTINGS.length + 1);
  }
  const written: string[] = [];
  t.is(settingsCommand([], { write: (text) => written.push(text), columns: 150 }), 0);
  t.true(written.join("").split("\n")[0]!.length <= 150);
});

test("wrapText() keeps every character and breaks long words at separators", (t) => {
  t.deepEqual(wrapText("one two three", 7), ["one two", "three"]);
  t.deepEqual(wrapText("pgraft.initial_cluster", 10), ["pgraft.", "initial_", "cluster"]);
  t.deepEqual(wrapText("", 5), [""]);
  for (const line of wrapText("abcdefghijklmnopqrstuvwxyz", 5)) t.true(line.length <= 5);
});
