/**
 * The problems the settings layer reports, shaped like Zod issues (a code, the setting, the value, where
 * the value came from, a message), and the one `ConfigError` that carries all of them at once.
 *
 * Parsing and validation never stop at the first problem: they collect every issue, so an operator fixes
 * postgresql.conf in one pass. Warnings have the same shape but never stop a node.
 */

export type ConfigIssueCode =
  /** A line that is not `name = value` in postgresql.conf syntax, or a malformed command-line setting. */
  | "syntax_error"
  /** An include directive, or a settings file, that cannot be read. */
  | "unreadable_file"
  /** A `pgraft.*` name that pgraft does not have. */
  | "unknown_setting"
  /** A name outside `pgraft.*` where only pgraft settings may appear (standalone file, command line). */
  | "foreign_setting"
  /** A value that does not parse as the setting's type. */
  | "invalid_value"
  /** A value of the right type outside the allowed range. */
  | "out_of_range"
  /** A required setting that no source sets. */
  | "missing_required"
  /** Two members of pgraft.initial_cluster share a name or an address. */
  | "duplicate_member"
  /** pgraft.name is not among the members of pgraft.initial_cluster. */
  | "name_not_in_cluster"
  /** Settings that are valid alone but not together. */
  | "inconsistent";

export type ConfigWarningCode =
  /** pgraft.election_timeout is below the advised 10x pgraft.heartbeat_interval. */
  | "timing_ratio"
  /** An explicit timing setting overrides the value that pgraft.profile would set. */
  | "profile_overridden"
  /** A safety feature is turned off (pre_vote, check_quorum, auth). */
  | "unsafe_option"
  /** A setting that has no effect in this combination. */
  | "ignored_setting"
  /** A non-pgraft name in postgresql.conf that looks like a misspelt pgraft setting. */
  | "possible_typo";

/** One problem found in the settings. */
export interface ConfigProblem<Code extends string> {
  readonly code: Code;
  /** The setting concerned, as written in postgresql.conf ("pgraft.election_timeout"), if any. */
  readonly setting: string | undefined;
  /** The value as written (secrets are never shown), if any. */
  readonly value: string | undefined;
  /** Where the value came from: "postgresql.conf:12", "command line", "default"; undefined if unset. */
  readonly source: string | undefined;
  /** A complete sentence for the operator: what failed, the current and allowed value, what to do. */
  readonly message: string;
}

export type ConfigIssue = ConfigProblem<ConfigIssueCode>;
export type ConfigWarning = ConfigProblem<ConfigWarningCode>;

/** Thrown when settings cannot produce a valid configuration. `issues` lists every problem found. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly issues: readonly ConfigIssue[];
  readonly warnings: readonly ConfigWarning[];

  constructor(issues: readonly ConfigIssue[], warnings: readonly ConfigWarning[] = []) {
    super(formatConfigErrorMessage(issues));
    this.issues = issues;
    this.warnings = warnings;
  }
}

/** "Cannot load pgraft settings: 2 problems found:" followed by one numbered line per issue. */
export function formatConfigErrorMessage(issues: readonly ConfigIssue[]): string {
  if (issues.length === 1) return `Cannot load pgraft settings: ${issues[0]!.message}`;
  const lines = issues.map((issue, index) => `  ${index + 1}. ${issue.message}`);
  return `Cannot load pgraft settings: ${issues.length} problems found:\n${lines.join("\n")}`;
}
