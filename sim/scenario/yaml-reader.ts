/**
 * Typed reading of a YAML document with positions: every value is read through a `YamlReader`, which
 * records an issue (file, line, column, path, what it received, what it expected, and "did you mean"
 * for near misses) instead of throwing, and returns undefined for a value it could not read. The
 * scenario parser is built from these pieces.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";
import { parseBoolean, parseDurationMs } from "../../src/config/index.ts";
import { editDistance } from "../../src/config/index.ts";
import { formatPath, type ScenarioIssue, type ScenarioIssueCode } from "./scenario-issue.ts";

export type Path = readonly (string | number)[];

/** A value in the document: its node (null for `key:` with nothing after it) and where it sits. */
export interface Located {
  readonly node: YamlNode | null;
  /** The key node of the pair holding it, for positions when the value is empty. */
  readonly key: YamlNode | null;
  readonly path: Path;
}

export class YamlReader {
  readonly issues: ScenarioIssue[] = [];
  readonly root: Located;
  readonly #lines: LineCounter;

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.#lines = new LineCounter();
    const document = parseDocument(text, { lineCounter: this.#lines, uniqueKeys: true, prettyErrors: true });
    for (const error of document.errors) {
      const position = error.linePos?.[0] ?? { line: 1, col: 1 };
      const first = error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
      const hint = /Nested mappings|Implicit map keys/.test(first) ? '; put a value that contains ": " in quotes' : "";
      this.#push("syntax_error", [], position.line, position.col, `the file is not valid YAML: ${first}${hint}`);
    }
    this.root = { node: (document.contents as YamlNode | null) ?? null, key: null, path: [] };
  }

  // -----------------------------------------------------------------------------------------------
  // Issues

  report(code: ScenarioIssueCode, at: Located, problem: string): void {
    const { line, column } = this.position(at);
    this.#push(code, at.path, line, column, `${formatPath(at.path)}: ${problem}`);
  }

  /** "received "abc"; expected a duration": the common shape of a bad value. */
  reject(code: ScenarioIssueCode, at: Located, expected: string, suggestion?: string): void {
    const hint = suggestion !== undefined ? `; did you mean ${JSON.stringify(suggestion)}?` : "";
    this.report(code, at, `received ${describeNode(at.node)}; expected ${expected}${hint}`);
  }

  position(at: Located): { line: number; column: number } {
    const node = at.node ?? at.key;
    const offset = node?.range?.[0];
    if (offset === undefined) return { line: 1, column: 1 };
    const { line, col } = this.#lines.linePos(offset);
    return { line, column: col };
  }

  line(at: Located): number {
    return this.position(at).line;
  }

  #push(code: ScenarioIssueCode, path: Path, line: number, column: number, text: string): void {
    this.issues.push({ code, path, line, column, message: `${this.file}:${line}:${column}: ${text}` });
  }

  // -----------------------------------------------------------------------------------------------
  // Structure

  /**
   * The entries of a mapping, by key. Unknown keys are reported with the nearest allowed one; missing
   * required keys are reported at the mapping. Returns undefined when `at` is not a mapping.
   */
  mapping(
    at: Located,
    options: {
      allowed: readonly string[];
      required?: readonly string[];
      what: string;
      /** More words a misspelt key may be near, beyond `allowed`. */
      suggestFrom?: readonly string[];
      unknownCode?: ScenarioIssueCode;
      /** What a key may be, when "one of <allowed>" is too long to be useful. */
      expected?: string;
    },
  ): Map<string, Located> | undefined {
    if (!isMap(at.node)) {
      this.reject("invalid_type", at, `${options.what} (a mapping of "key: value" lines)`);
      return undefined;
    }
    for (const pair of at.node.items) {
      const keyNode = pair.key as YamlNode | null;
      if (!isScalar(keyNode) || (typeof keyNode.value !== "string" && typeof keyNode.value !== "number")) {
        this.reject("invalid_type", { node: keyNode, key: keyNode, path: at.path }, 'a plain key such as "name"');
      }
    }
    const entries = this.entries(at);
    for (const [key, value] of entries) {
      if (options.allowed.includes(key)) continue;
      const suggestion = nearest(key, [...options.allowed, ...(options.suggestFrom ?? [])]);
      this.report(
        options.unknownCode ?? "unknown_field",
        { node: value.key, key: value.key, path: value.path },
        `unknown key ${JSON.stringify(key)} in ${options.what}: expected ${options.expected ?? `one of ${options.allowed.join(", ")}`}` +
          (suggestion !== undefined ? `; did you mean ${JSON.stringify(suggestion)}?` : ""),
      );
    }
    for (const key of options.required ?? []) {
      if (!entries.has(key)) this.report("missing_field", at, `missing key ${JSON.stringify(key)} in ${options.what}`);
    }
    return entries;
  }

  /** Every key: value of a mapping (empty for anything else), without checking the keys. */
  entries(at: Located): Map<string, Located> {
    const entries = new Map<string, Located>();
    if (!isMap(at.node)) return entries;
    for (const pair of at.node.items) {
      const keyNode = pair.key as YamlNode | null;
      const valueNode = (pair.value as YamlNode | null) ?? null;
      if (!isScalar(keyNode) || (typeof keyNode.value !== "string" && typeof keyNode.value !== "number")) continue;
      const key = String(keyNode.value);
      entries.set(key, { node: valueNode, key: keyNode, path: [...at.path, key] });
    }
    return entries;
  }

  /** The items of a list; a single value where a list belongs is refused. */
  list(at: Located, what: string): Located[] | undefined {
    if (!isSeq(at.node)) {
      this.reject("invalid_type", at, `${what} (a list of "- item" lines)`);
      return undefined;
    }
    return at.node.items.map((item, index) => ({ node: (item as YamlNode | null) ?? null, key: at.node, path: [...at.path, index] }));
  }

  isList(at: Located): boolean {
    return isSeq(at.node);
  }

  isMapping(at: Located): boolean {
    return isMap(at.node);
  }

  /** A scalar's value (string, number, boolean or null), or undefined for lists, mappings, aliases. */
  scalar(at: Located): string | number | boolean | null | undefined {
    if (at.node === null) return null;
    if (isAlias(at.node)) return undefined;
    if (!isScalar(at.node)) return undefined;
    const value = at.node.value;
    if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
    return String(value);
  }

  // -----------------------------------------------------------------------------------------------
  // Values

  string(at: Located, expected = "a text"): string | undefined {
    const value = this.scalar(at);
    if (typeof value === "string" && value.trim() !== "") return value;
    this.reject("invalid_type", at, expected);
    return undefined;
  }

  integer(at: Located, minimum: number, maximum: number, what: string): number | undefined {
    const value = this.scalar(at);
    if (typeof value !== "number" || !Number.isInteger(value)) {
      this.reject("invalid_type", at, `${what}: a whole number from ${minimum} to ${maximum}`);
      return undefined;
    }
    if (value < minimum || value > maximum) {
      this.reject("out_of_range", at, `${what}: a whole number from ${minimum} to ${maximum}`);
      return undefined;
    }
    return value;
  }

  /** A plain number within [minimum, maximum] (ratios, rates). */
  number(at: Located, minimum: number, maximum: number, what: string, options: { exclusive?: boolean } = {}): number | undefined {
    const value = this.scalar(at);
    const range = options.exclusive ? `greater than ${minimum} and less than ${maximum}` : `from ${minimum} to ${maximum}`;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      this.reject("invalid_type", at, `${what}: a number ${range}`);
      return undefined;
    }
    const inside = options.exclusive ? value > minimum && value < maximum : value >= minimum && value <= maximum;
    if (!inside) {
      this.reject("out_of_range", at, `${what}: a number ${range}`);
      return undefined;
    }
    return value;
  }

  /**
   * A duration with its unit ("10s", "250ms", "1.5s", "2min"; PostgreSQL's units, as pgraft settings
   * take them). A bare number other than 0 is refused: in a timeline "10" is too easily meant as seconds.
   */
  duration(
    at: Located,
    options: { minimumMs?: number; maximumMs: number; what: string; endMs?: number; bareUnit?: "s" | "ms" },
  ): number | undefined {
    const value = this.scalar(at);
    const expected = `${options.what}: a duration with its unit, like "10s" or "250ms"${options.endMs !== undefined ? ', or "end"' : ""}`;
    let ms: number | undefined;
    if (value === 0) ms = 0;
    else if (typeof value === "string") {
      if (options.endMs !== undefined && value.trim() === "end") ms = options.endMs;
      else if (/[A-Za-z]\s*$/.test(value)) {
        const parsed = parseDurationMs(value);
        if (!parsed.ok) {
          this.report("invalid_value", at, `${parsed.problem.replace(/; use a number of milliseconds or/, "; use")}: expected ${options.what}`);
          return undefined;
        }
        // Milliseconds keep their fraction (to the microsecond), so a recorded swarm schedule replays exactly.
        const fraction = /^\s*(\d+\.\d{1,3})\s*ms\s*$/.exec(value);
        ms = fraction !== null ? Number(fraction[1]) : parsed.value;
      }
    }
    if (ms === undefined) {
      this.reject(typeof value === "number" ? "invalid_value" : "invalid_type", at, expected, typeof value === "number" ? `${value}${options.bareUnit ?? "s"}` : undefined);
      return undefined;
    }
    const minimumMs = options.minimumMs ?? 0;
    if (ms < minimumMs || ms > options.maximumMs) {
      this.reject("out_of_range", at, `${options.what}: from ${formatMs(minimumMs)} to ${formatMs(options.maximumMs)}`);
      return undefined;
    }
    return ms;
  }

  /** on/off, true/false, yes/no (pgraft's booleans). */
  boolean(at: Located, what: string): boolean | undefined {
    const value = this.scalar(at);
    if (typeof value === "boolean") return value;
    if (typeof value === "string" || typeof value === "number") {
      const parsed = parseBoolean(String(value));
      if (parsed.ok) return parsed.value;
    }
    this.reject("invalid_value", at, `${what}: on or off (also true/false, yes/no)`);
    return undefined;
  }

  /** One of `allowed`, with "did you mean" for a near miss. */
  word<T extends string>(at: Located, allowed: readonly T[], what: string): T | undefined {
    const value = this.scalar(at);
    if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
    const suggestion = typeof value === "string" ? nearest(value, allowed) : undefined;
    this.reject(typeof value === "string" ? "invalid_value" : "invalid_type", at, `${what}: one of ${allowed.join(", ")}`, suggestion);
    return undefined;
  }
}

/** How a received value is shown in a message. */
export function describeNode(node: YamlNode | null): string {
  if (node === null) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isAlias(node)) return "an alias (aliases are not supported)";
  if (isScalar(node)) {
    const value = node.value;
    if (value === null) return "nothing";
    if (typeof value === "string") return JSON.stringify(value);
    return String(value);
  }
  return "an unexpected value";
}

/** The allowed word nearest to `word`, if close enough to be a typo. */
export function nearest(word: string, allowed: readonly string[]): string | undefined {
  const lowered = word.toLowerCase();
  let best: { word: string; distance: number } | undefined;
  const distanceMax = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  for (const candidate of allowed) {
    const distance = Math.min(editDistance(lowered, candidate), editDistance(lowered.replace(/-/g, "_"), candidate));
    if (distance > distanceMax) continue;
    if (best === undefined || distance < best.distance) best = { word: candidate, distance };
  }
  return best?.word;
}

function formatMs(ms: number): string {
  if (ms !== 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
