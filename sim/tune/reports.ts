/**
 * Where `npm run tune` puts its Markdown reports and SVG charts, and what each report says about the
 * run that made it. Reports are written only into the directory `--out` names; a run without `--out`
 * prints its tables and writes no file. The reports committed in docs/tune were made by
 * `npm run tune -- --out docs/tune` (and the same with `--figure16` or `--rtt 35ms --jitter 10ms`):
 * regenerating them is that command, never a side effect of trying the tool.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { formatMs } from "./format.ts";

/** The directory whose reports are committed, and that README.md embeds charts from. */
export const COMMITTED_REPORTS_DIRECTORY = "docs/tune";

/** How a report was made: the command, how long it took and on what. */
export interface RunRecord {
  /** As a user would type it: "npm run tune -- --figure16 --out docs/tune". */
  readonly command: string;
  readonly wallMs: number;
  readonly workers: number;
  /** The machine, from describeMachine(). */
  readonly machine: string;
}

/** The command line that ran, as `npm run tune -- ...`. */
export function tuneCommand(argv: readonly string[]): string {
  const quote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`);
  return argv.length === 0 ? "npm run tune" : `npm run tune -- ${argv.map(quote).join(" ")}`;
}

/** "2 cores (AMD EPYC 7B13), Linux x64, Node v20.19.0". */
export function describeMachine(): string {
  const model = cpus()[0]?.model.replace(/\s+/g, " ").trim();
  const cores = availableParallelism();
  return `${cores} ${cores === 1 ? "core" : "cores"}${model ? ` (${model})` : ""}, ${process.platform} ${process.arch}, Node ${process.version}`;
}

/** "59.8 s of wall time with 2 workers on 2 cores (...), linux x64, Node v20.19.0". */
export function runDetails(run: RunRecord): string {
  return `${formatMs(run.wallMs)} of wall time with ${run.workers} ${run.workers === 1 ? "worker" : "workers"} on ${run.machine}`;
}

/**
 * Writes `files` (name to content) into `outDirectory` and returns the paths written, or writes nothing
 * and returns an empty list when no directory was asked for.
 */
export function writeReports(outDirectory: string | undefined, files: ReadonlyMap<string, string>): string[] {
  if (outDirectory === undefined) return [];
  mkdirSync(outDirectory, { recursive: true });
  const written: string[] = [];
  for (const [name, content] of files) {
    const path = join(outDirectory, name);
    writeFileSync(path, content);
    written.push(path);
  }
  return written;
}

/** The note a run without --out leaves on stderr: what it did not write and how to write it. */
export function notWrittenNote(files: ReadonlyMap<string, string>): string {
  return (
    `No report written (${[...files.keys()].join(", ")}): add --out DIR to write the Markdown report and charts there. ` +
    `The committed reports in ${COMMITTED_REPORTS_DIRECTORY} come from the same command with --out ${COMMITTED_REPORTS_DIRECTORY} and the full (not --quick) settings.`
  );
}
