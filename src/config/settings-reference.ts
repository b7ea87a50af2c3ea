/**
 * The settings reference, generated from SETTINGS (setting-definitions.ts) and nothing else: one row
 * per setting with its type, default, allowed values or range, and description. It is rendered three
 * ways: as the Markdown table that src/config/README.md holds between REFERENCE_BEGIN and
 * REFERENCE_END (test/config/settings-reference.test.ts keeps the two equal), as the plain objects
 * `pgraft settings --json` prints, and (src/cli/settings-command.ts) as a table on a terminal.
 *
 * Regenerate the README's table after changing a definition:
 *
 *   npx tsx src/config/settings-reference.ts --write
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SETTINGS, type SettingDefinition, type SettingType } from "./setting-definitions.ts";

export const REFERENCE_BEGIN = "<!-- BEGIN settings reference: generated from setting-definitions.ts; regenerate with `npx tsx src/config/settings-reference.ts --write` -->";
export const REFERENCE_END = "<!-- END settings reference -->";
export const REGENERATE_COMMAND = "npx tsx src/config/settings-reference.ts --write";

/** The README that holds the reference, from the repository root. */
export const SETTINGS_README_PATH = "src/config/README.md";

/** One setting as `pgraft settings --json` prints it: every field present, null when it does not apply. */
export interface SettingSummary {
  readonly name: string;
  readonly type: SettingType;
  /** "ms" for durations (a bare number means milliseconds), else null. */
  readonly unit: string | null;
  /** The default as written in postgresql.conf, or null when required, derived or unset. */
  readonly default: string | null;
  /** The default in words: "1000 ms", "required", "$PGDATA/pgraft". */
  readonly defaultDescription: string;
  readonly required: boolean;
  readonly minimum: number | null;
  readonly maximum: number | null;
  readonly allowedValues: readonly string[] | null;
  /** Allowed values, range or format in words, as the tables show them. */
  readonly allowed: string;
  readonly description: string;
}

/** What a value of each type looks like, for types without a range or a list of values. */
function formatOf(type: SettingType): string {
  switch (type) {
    case "boolean":
      return "on, off";
    case "name":
      return "1-63 letters, digits, _ . -";
    case "address":
      return "host:port ([v6]:port)";
    case "member_list":
      return "name=host:port,...";
    case "path":
      return "path (relative: from $PGDATA)";
    case "secret":
      return "16 or more characters";
    default:
      return "-";
  }
}

/** "duration (ms)" for durations, else the type's name. */
export function typeText(definition: SettingDefinition): string {
  return definition.unit === undefined ? definition.type : `${definition.type} (${definition.unit})`;
}

/** The allowed values ("new, existing"), the range ("10-60000 ms") or the format of a value. */
export function allowedText(definition: SettingDefinition): string {
  if (definition.allowedValues !== undefined) return definition.allowedValues.join(", ");
  if (definition.minimum !== undefined || definition.maximum !== undefined) {
    const unit = definition.unit === undefined ? "" : ` ${definition.unit}`;
    if (definition.maximum === undefined) return `${definition.minimum} or more${unit}`;
    if (definition.minimum === undefined) return `at most ${definition.maximum}${unit}`;
    return `${definition.minimum}-${definition.maximum}${unit}`;
  }
  return formatOf(definition.type);
}

export function settingSummary(definition: SettingDefinition): SettingSummary {
  return {
    name: definition.name,
    type: definition.type,
    unit: definition.unit ?? null,
    default: definition.defaultValue ?? null,
    defaultDescription: definition.defaultDescription,
    required: definition.required,
    minimum: definition.minimum ?? null,
    maximum: definition.maximum ?? null,
    allowedValues: definition.allowedValues === undefined ? null : [...definition.allowedValues],
    allowed: allowedText(definition),
    description: definition.description,
  };
}

function markdownCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** The Markdown table of every setting, in definition order (no markers). */
export function renderSettingsReference(definitions: readonly SettingDefinition[] = SETTINGS): string {
  const rows = definitions.map((definition) => {
    const summary = settingSummary(definition);
    return [`\`${summary.name}\``, typeText(definition), summary.defaultDescription, summary.allowed, summary.description];
  });
  const lines = ["| setting | type | default | allowed | description |", "|---|---|---|---|---|", ...rows.map((row) => `| ${row.map(markdownCell).join(" | ")} |`)];
  return `${lines.join("\n")}\n`;
}

/** The reference as the README holds it, markers included. */
export function settingsReferenceBlock(definitions: readonly SettingDefinition[] = SETTINGS): string {
  return `${REFERENCE_BEGIN}\n\n${renderSettingsReference(definitions)}\n${REFERENCE_END}`;
}

/** `text` with the block between the markers replaced by a fresh one; throws when the markers are missing. */
export function replaceSettingsReference(text: string, definitions: readonly SettingDefinition[] = SETTINGS): string {
  const begin = text.indexOf(REFERENCE_BEGIN);
  const end = text.indexOf(REFERENCE_END);
  if (begin < 0 || end < begin) {
    throw new Error(`Cannot update the settings reference: ${SETTINGS_README_PATH} lacks the markers; put the lines\n${REFERENCE_BEGIN}\n${REFERENCE_END}\nwhere the table belongs`);
  }
  return text.slice(0, begin) + settingsReferenceBlock(definitions) + text.slice(end + REFERENCE_END.length);
}

function runAsScript(argv: readonly string[]): number {
  const path = fileURLToPath(new URL("./README.md", import.meta.url));
  if (argv.length !== 1 || (argv[0] !== "--write" && argv[0] !== "--check")) {
    process.stderr.write(`Usage: ${REGENERATE_COMMAND}  (or --check: exit 1 if ${SETTINGS_README_PATH} is out of date)\n`);
    return 2;
  }
  const current = readFileSync(path, "utf8");
  const updated = replaceSettingsReference(current);
  if (argv[0] === "--check") {
    if (updated === current) return 0;
    process.stderr.write(`${SETTINGS_README_PATH} is out of date with setting-definitions.ts: run ${REGENERATE_COMMAND}\n`);
    return 1;
  }
  if (updated !== current) writeFileSync(path, updated);
  process.stdout.write(`${updated === current ? "Unchanged" : "Updated"}: ${SETTINGS_README_PATH} (${SETTINGS.length} settings)\n`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  try {
    process.exitCode = runAsScript(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
