/**
 * The problems a scenario file can have, shaped like Zod issues (a code, a path, a message) plus the
 * line and column they were found at, and the one `ScenarioError` that carries all of them. The parser
 * never stops at the first problem: a person fixes the file in one pass.
 */

export type ScenarioIssueCode =
  /** The text is not valid YAML. */
  | "syntax_error"
  /** A key the format does not have (with the nearest valid key when one is close). */
  | "unknown_field"
  /** A required key is missing. */
  | "missing_field"
  /** A value of the wrong kind: a list where a mapping belongs, a number where a duration belongs. */
  | "invalid_type"
  /** A value of the right kind that does not parse or is not one of the allowed words. */
  | "invalid_value"
  /** A number or duration outside its allowed range. */
  | "out_of_range"
  /** A timeline step whose verb the format does not have. */
  | "unknown_verb"
  /** A node name the cluster does not have, or a `$name` no earlier step bound. */
  | "unknown_node"
  /** A pgraft setting that does not exist or that a scenario may not set. */
  | "invalid_setting"
  /** Values that are valid alone but not together (a window that ends before it starts). */
  | "inconsistent";

export interface ScenarioIssue {
  readonly code: ScenarioIssueCode;
  /** Where in the document: ["timeline", 2, "crash"]. */
  readonly path: readonly (string | number)[];
  readonly line: number;
  readonly column: number;
  /** "scenarios/x.yaml:12:5: timeline[2].crash: ...: received ...; expected ...". */
  readonly message: string;
}

export type ScenarioParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly issues: readonly ScenarioIssue[] };

/** Thrown by the loaders when a scenario file cannot be used; `issues` lists every problem. */
export class ScenarioError extends Error {
  override name = "ScenarioError";
  readonly issues: readonly ScenarioIssue[];

  constructor(file: string, issues: readonly ScenarioIssue[]) {
    super(formatScenarioIssues(file, issues));
    this.issues = issues;
  }
}

export function formatScenarioIssues(file: string, issues: readonly ScenarioIssue[]): string {
  if (issues.length === 1) return `Cannot load scenario ${file}: ${issues[0]!.message}`;
  return `Cannot load scenario ${file}: ${issues.length} problems found:\n${issues.map((issue, i) => `  ${i + 1}. ${issue.message}`).join("\n")}`;
}

/** "timeline[2].crash" for ["timeline", 2, "crash"]. */
export function formatPath(path: readonly (string | number)[]): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(part)) text += text === "" ? part : `.${part}`;
    else text += `${text === "" ? "" : "."}${JSON.stringify(part)}`;
  }
  return text === "" ? "(top level)" : text;
}
