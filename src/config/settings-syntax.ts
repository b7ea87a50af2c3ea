/**
 * postgresql.conf syntax: turns settings text into `name = value` assignments that remember their
 * file:line, and command-line overrides into the same assignments with the source "command line".
 *
 * The lexer follows PostgreSQL's guc-file.l token for token (longest match, ties to the earlier rule),
 * so a file pgraft accepts is one PostgreSQL accepts too: `name = value` or `name value`, `#` comments
 * anywhere outside quotes, single-quoted strings with '' and backslash escapes, and unquoted values only
 * when they are a word, a number with optional unit letters, or a word followed by letters, digits and
 * "-._:/". Hence '127.0.0.1:7001', '/var/lib/x' and 'n1=h:1,n2=h:2' must be quoted, as PostgreSQL requires.
 *
 * `include`, `include_if_exists` and `include_dir` are supported as in PostgreSQL (relative paths from
 * the including file's directory, `include_dir` reads its *.conf files in name order, nesting at most 10
 * deep), through an explicit SettingsFileSystem.
 *
 * Two modes: "postgresql" reads a real postgresql.conf, where non-pgraft settings are legal and ignored;
 * "standalone" reads a pgraft-only file, where any non-pgraft name is an error. Unknown `pgraft.*` names
 * are reported later, by the validator, so a command-line typo gets the same treatment.
 */
import { dirname, isAbsolute, join } from "node:path";
import type { ConfigIssue, ConfigWarning } from "./config-error.ts";
import { SETTING_PREFIX, suggestSettingName } from "./setting-definitions.ts";
import { editDistance, quoteValue } from "./setting-values.ts";
import { nodeFileSystem, type SettingsFileSystem } from "./settings-file-system.ts";

export type SettingsFileMode = "postgresql" | "standalone";

/** One `name = value` as read, before validation. */
export interface SettingAssignment {
  /** Lower-cased, as PostgreSQL compares setting names: "pgraft.election_timeout". */
  readonly name: string;
  /** The value with quotes and escapes removed. */
  readonly value: string;
  /** Where it was written: "postgresql.conf:12" or "command line". */
  readonly source: string;
}

export interface SettingsParseResult {
  readonly assignments: SettingAssignment[];
  readonly issues: ConfigIssue[];
  readonly warnings: ConfigWarning[];
}

export interface ParseSettingsOptions {
  /** The file's path, used in sources ("postgresql.conf:12") and to resolve relative includes. */
  readonly fileName: string;
  readonly mode: SettingsFileMode;
  /** Needed only to follow include directives. */
  readonly fileSystem?: SettingsFileSystem;
}

export const COMMAND_LINE_SOURCE = "command line";

/** PostgreSQL's CONF_FILE_MAX_DEPTH: include directives nest at most this deep. */
export const INCLUDE_DEPTH_MAX = 10;

const QUOTING_HINT = "values other than a plain word or number must be quoted";

type TokenKind = "identifier" | "qualified_identifier" | "string" | "unquoted_string" | "integer" | "real" | "equals" | "error";

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

const LETTER = "[A-Za-z_\\u0080-\\uFFFF]";
const LETTER_OR_DIGIT = "[A-Za-z0-9_\\u0080-\\uFFFF]";

/** guc-file.l's rules in its order; on equal lengths the earlier rule wins, as in flex. */
const TOKEN_RULES: readonly { readonly kind: TokenKind; readonly pattern: RegExp }[] = [
  { kind: "identifier", pattern: new RegExp(`${LETTER}${LETTER_OR_DIGIT}*`, "y") },
  { kind: "qualified_identifier", pattern: new RegExp(`${LETTER}${LETTER_OR_DIGIT}*\\.${LETTER}${LETTER_OR_DIGIT}*`, "y") },
  { kind: "string", pattern: /'(?:[^'\\\n]|\\.|'')*'/y },
  { kind: "unquoted_string", pattern: new RegExp(`${LETTER}(?:${LETTER_OR_DIGIT}|[-._:/])*`, "y") },
  { kind: "integer", pattern: /[-+]?(?:0x[0-9A-Fa-f]+|\d+)[A-Za-z]*/y },
  { kind: "real", pattern: /[-+]?\d*\.\d*(?:[Ee][-+]?\d+)?/y },
  { kind: "equals", pattern: /=/y },
];

const VALUE_TOKEN_KINDS: ReadonlySet<TokenKind> = new Set(["identifier", "string", "unquoted_string", "integer", "real"]);

function nextToken(line: string, position: number): Token | undefined {
  let start = position;
  while (start < line.length && (line[start] === " " || line[start] === "\t" || line[start] === "\r")) start++;
  if (start >= line.length || line[start] === "#") return undefined;
  let best: Token | undefined;
  for (const rule of TOKEN_RULES) {
    rule.pattern.lastIndex = start;
    const match = rule.pattern.exec(line);
    if (match === null || match[0].length === 0) continue;
    if (best === undefined || match[0].length > best.text.length) {
      best = { kind: rule.kind, text: match[0], start, end: start + match[0].length };
    }
  }
  return best ?? { kind: "error", text: line[start]!, start, end: start + 1 };
}

function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let token = nextToken(line, 0);
  while (token !== undefined) {
    tokens.push(token);
    token = nextToken(line, token.end);
  }
  return tokens;
}

/** PostgreSQL's DeescapeQuotedString: strips the quotes, reads '' and \b \f \n \r \t \ooo escapes. */
function unquote(quoted: string): string {
  const escapes: Readonly<Record<string, string>> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
  let result = "";
  for (let index = 1; index < quoted.length - 1; index++) {
    const character = quoted[index]!;
    if (character === "\\") {
      index++;
      const escaped = quoted[index]!;
      const octal = /^[0-7]{1,3}/.exec(quoted.slice(index, quoted.length - 1));
      if (octal !== null) {
        result += String.fromCharCode(parseInt(octal[0], 8));
        index += octal[0].length - 1;
      } else {
        result += escapes[escaped] ?? escaped;
      }
    } else if (character === "'" && quoted[index + 1] === "'") {
      result += "'";
      index++;
    } else {
      result += character;
    }
  }
  return result;
}

/** Writes `value` as a single-quoted postgresql.conf string, doubling quotes and backslashes. */
export function quoteSettingValue(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

type LineParse =
  | { readonly kind: "blank" }
  | { readonly kind: "assignment"; readonly name: string; readonly value: string }
  | { readonly kind: "error"; readonly name: string | undefined; readonly message: string };

/** Parses one line as ParseConfigFp does: name, optional "=", one value token, end of line. */
function parseLine(line: string, source: string): LineParse {
  const tokens = tokenize(line);
  if (tokens.length === 0) return { kind: "blank" };
  const nameToken = tokens[0]!;
  if (nameToken.kind !== "identifier" && nameToken.kind !== "qualified_identifier") {
    return {
      kind: "error",
      name: undefined,
      message: `Cannot parse ${source}: expected a setting name, found ${quoteValue(nameToken.text)}; write lines as pgraft.NAME = value`,
    };
  }
  const name = nameToken.text.toLowerCase();
  const valueIndex = tokens[1]?.kind === "equals" ? 2 : 1;
  const valueToken = tokens[valueIndex];
  if (valueToken === undefined) {
    return { kind: "error", name, message: `Cannot parse ${source}: ${quoteValue(name)} has no value; write ${name} = value` };
  }
  const extraToken = tokens[valueIndex + 1];
  if (VALUE_TOKEN_KINDS.has(valueToken.kind) && extraToken === undefined) {
    const value = valueToken.kind === "string" ? unquote(valueToken.text) : valueToken.text;
    return { kind: "assignment", name, value };
  }
  const nearToken = VALUE_TOKEN_KINDS.has(valueToken.kind) ? extraToken! : valueToken;
  if (nearToken.text === "'") {
    return { kind: "error", name, message: `Cannot parse ${source}: the quoted value of ${quoteValue(name)} is not closed; end it with '` };
  }
  const written = line.slice(valueToken.start, tokens[tokens.length - 1]!.end);
  return {
    kind: "error",
    name,
    message:
      `Cannot parse ${source}: syntax error near ${quoteValue(nearToken.text)} in the value of ${quoteValue(name)}; ` +
      `${QUOTING_HINT}; write ${name} = ${quoteSettingValue(written)}`,
  };
}

interface ParseState {
  readonly mode: SettingsFileMode;
  readonly fileSystem: SettingsFileSystem | undefined;
  readonly result: SettingsParseResult;
}

const INCLUDE_DIRECTIVES: ReadonlySet<string> = new Set(["include", "include_if_exists", "include_dir"]);

/**
 * Parses settings text in postgresql.conf syntax. Every malformed line, unreadable include and (in
 * standalone mode) non-pgraft name is reported in `issues`; parsing continues with the next line.
 */
export function parseSettingsText(text: string, options: ParseSettingsOptions): SettingsParseResult {
  const state: ParseState = {
    mode: options.mode,
    fileSystem: options.fileSystem,
    result: { assignments: [], issues: [], warnings: [] },
  };
  parseFileText(text, options.fileName, state, 0);
  return state.result;
}

/** Reads and parses one settings file (and whatever it includes). */
export function readSettingsFile(
  path: string,
  options: { readonly mode: SettingsFileMode; readonly fileSystem?: SettingsFileSystem },
): SettingsParseResult {
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  const state: ParseState = { mode: options.mode, fileSystem, result: { assignments: [], issues: [], warnings: [] } };
  const text = readFileText(path, undefined, "settings file", state);
  if (text !== undefined) parseFileText(text, path, state, 0);
  return state.result;
}

function parseFileText(text: string, fileName: string, state: ParseState, depth: number): void {
  const lines = text.split("\n");
  lines.forEach((line, index) => {
    const source = `${fileName}:${index + 1}`;
    const parsed = parseLine(line, source);
    if (parsed.kind === "blank") return;
    if (parsed.kind === "error") {
      state.result.issues.push({ code: "syntax_error", setting: parsed.name, value: undefined, source, message: parsed.message });
      return;
    }
    if (INCLUDE_DIRECTIVES.has(parsed.name)) {
      followInclude(parsed.name, parsed.value, { fileName, source, depth }, state);
      return;
    }
    if (parsed.name.startsWith(SETTING_PREFIX)) {
      state.result.assignments.push({ name: parsed.name, value: parsed.value, source });
      return;
    }
    noteForeignName(parsed.name, parsed.value, source, state);
  });
}

/** A non-pgraft name: an error in a standalone file; in postgresql.conf ignored, or a warning if it looks misspelt. */
function noteForeignName(name: string, value: string, source: string, state: ParseState): void {
  const suggestion = suggestSettingName(name);
  if (state.mode === "standalone") {
    const advice =
      suggestion === undefined
        ? "remove it, or move it to postgresql.conf if it is a PostgreSQL setting"
        : `did you mean ${quoteValue(suggestion)}?`;
    state.result.issues.push({
      code: "foreign_setting",
      setting: name,
      value,
      source,
      message: `Unknown setting ${quoteValue(name)} (${source}): a standalone pgraft settings file holds only pgraft.* settings; ${advice}`,
    });
    return;
  }
  const dot = name.indexOf(".");
  const prefixLooksMisspelt = dot > 0 && editDistance(name.slice(0, dot), "pgraft") <= 2;
  if (suggestion === undefined || !prefixLooksMisspelt) return;
  state.result.warnings.push({
    code: "possible_typo",
    setting: name,
    value,
    source,
    message: `Setting ${quoteValue(name)} (${source}) is not a pgraft setting and pgraft ignores it; did you mean ${quoteValue(suggestion)}?`,
  });
}

interface IncludeSite {
  readonly fileName: string;
  readonly source: string;
  readonly depth: number;
}

function followInclude(directive: string, target: string, site: IncludeSite, state: ParseState): void {
  const problem = (message: string): void => {
    state.result.issues.push({ code: "unreadable_file", setting: directive, value: target, source: site.source, message });
  };
  const written = `${directive} ${quoteSettingValue(target)}`;
  if (target === "") return problem(`Cannot follow ${quoteValue(written)} (${site.source}): the file name is empty; name a file`);
  if (state.fileSystem === undefined) {
    return problem(`Cannot follow ${quoteValue(written)} (${site.source}): settings given as text cannot include files; read them from a file instead`);
  }
  if (site.depth + 1 > INCLUDE_DEPTH_MAX) {
    return problem(
      `Cannot follow ${quoteValue(written)} (${site.source}): includes are nested more than ${INCLUDE_DEPTH_MAX} deep; check for a file that includes itself`,
    );
  }
  const path = isAbsolute(target) ? target : join(dirname(site.fileName), target);
  if (directive === "include_dir") return includeDirectory(path, written, site, state);
  const text = readFileText(path, site.source, directive === "include_if_exists" ? "optional" : "included file", state);
  if (text !== undefined) parseFileText(text, path, state, site.depth + 1);
}

function includeDirectory(path: string, written: string, site: IncludeSite, state: ParseState): void {
  let names: string[] | undefined;
  try {
    names = state.fileSystem!.listDirectory(path);
  } catch (error) {
    state.result.issues.push({
      code: "unreadable_file",
      setting: "include_dir",
      value: path,
      source: site.source,
      message: `Cannot follow ${quoteValue(written)} (${site.source}): ${(error as Error).message}`,
    });
    return;
  }
  if (names === undefined) {
    state.result.issues.push({
      code: "unreadable_file",
      setting: "include_dir",
      value: path,
      source: site.source,
      message: `Cannot follow ${quoteValue(written)} (${site.source}): the directory ${quoteValue(path)} does not exist; create it or remove the line`,
    });
    return;
  }
  const files = names.filter((name) => name.endsWith(".conf") && !name.startsWith(".")).sort();
  for (const name of files) {
    const filePath = join(path, name);
    const text = readFileText(filePath, site.source, "included file", state);
    if (text !== undefined) parseFileText(text, filePath, state, site.depth + 1);
  }
}

type ReadPurpose = "settings file" | "included file" | "optional";

/** Reads a file, recording a missing or unreadable one as an issue (except a missing optional one). */
function readFileText(path: string, includedAt: string | undefined, purpose: ReadPurpose, state: ParseState): string | undefined {
  const where = includedAt === undefined ? "" : ` (included at ${includedAt})`;
  const record = (message: string): void => {
    state.result.issues.push({ code: "unreadable_file", setting: undefined, value: path, source: includedAt, message });
  };
  try {
    const text = state.fileSystem!.readText(path);
    if (text === undefined && purpose !== "optional") {
      const noun = purpose === "settings file" ? "settings file" : "file";
      record(`Cannot read ${noun} ${quoteValue(path)}${where}: it does not exist; check the path`);
    }
    return text;
  } catch (error) {
    record(`Cannot read ${quoteValue(path)}${where}: ${(error as Error).message}`);
    return undefined;
  }
}

/**
 * Command-line overrides: each argument is `pgraft.NAME=value` or `--pgraft.NAME=value`. The value is
 * taken verbatim (no quotes needed, as with `postgres -c`). Non-pgraft names are errors here.
 */
export function parseCommandLineSettings(args: readonly string[]): SettingsParseResult {
  const result: SettingsParseResult = { assignments: [], issues: [], warnings: [] };
  for (const argument of args) {
    const body = argument.startsWith("--") ? argument.slice(2) : argument;
    const equals = body.indexOf("=");
    const name = body.slice(0, equals).trim().toLowerCase();
    if (equals <= 0 || name === "") {
      result.issues.push({
        code: "syntax_error",
        setting: undefined,
        value: argument,
        source: COMMAND_LINE_SOURCE,
        message: `Cannot parse command-line setting ${quoteValue(argument)}: expected pgraft.NAME=value, for example --pgraft.election_timeout=2s`,
      });
      continue;
    }
    const value = body.slice(equals + 1);
    if (name.startsWith(SETTING_PREFIX)) {
      result.assignments.push({ name, value, source: COMMAND_LINE_SOURCE });
      continue;
    }
    const suggestion = suggestSettingName(name);
    const advice = suggestion === undefined ? "only pgraft.* settings can be given here" : `did you mean ${quoteValue(suggestion)}?`;
    result.issues.push({
      code: "foreign_setting",
      setting: name,
      value,
      source: COMMAND_LINE_SOURCE,
      message: `Unknown setting ${quoteValue(name)} (${COMMAND_LINE_SOURCE}): ${advice}`,
    });
  }
  return result;
}
