/**
 * No file in the repository points into the team's shared folder next to the clone: a user's clone
 * does not have it, so what a user needs must be written in the project. Every file git knows (tracked,
 * and new files not ignored) is searched for the two spellings of such a pointer; the only exception is
 * .ci/run, the CI entry point of the team's machines. A failure lists each offending file and line.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const ALLOWED = new Set([".ci/run"]);
/** Built from parts so that this file does not match itself. */
const FOLDER = "shared";
const POINTERS = [`../${FOLDER}`, `/${FOLDER}/`];
/** Larger files are data, not documents (and git stores them as such). */
const FILE_BYTES_MAX = 5_000_000;

interface Offence {
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

/** Each line of `text` that holds a pointer into the shared folder. */
function findPointers(file: string, text: string): Offence[] {
  const offences: Offence[] = [];
  text.split("\n").forEach((line, index) => {
    if (POINTERS.some((pointer) => line.includes(pointer))) offences.push({ file, line: index + 1, text: line.trim().slice(0, 160) });
  });
  return offences;
}

function repositoryFiles(): string[] {
  const output = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  return [...new Set(output.split("\0").filter((file) => file.length > 0))].sort();
}

test("findPointers() catches both spellings and passes clean text", (t) => {
  const text = ["fine line", `see ../${FOLDER}/DESIGN.md`, `facts in /work/${FOLDER}/reference/x.md`, "a shared core"].join("\n");
  t.deepEqual(
    findPointers("x.md", text).map((offence) => offence.line),
    [2, 3],
  );
  t.deepEqual(findPointers("y.md", "shared state, shared-nothing, sharedBuffer"), []);
});

test("no file in the repository points into the shared folder beside it", (t) => {
  const files = repositoryFiles();
  t.true(files.includes("README.md") && files.includes("package.json"), "git ls-files lists the repository");
  const offences: Offence[] = [];
  for (const file of files) {
    if (ALLOWED.has(file)) continue;
    const path = join(ROOT, file);
    if (!existsSync(path)) continue; // deleted in the working tree, not yet in git
    const stat = statSync(path);
    if (!stat.isFile() || stat.size > FILE_BYTES_MAX) continue;
    const bytes = readFileSync(path);
    if (bytes.includes(0)) continue; // binary
    offences.push(...findPointers(file, bytes.toString("utf8")));
  }
  const report = offences.map((offence) => `  ${offence.file}:${offence.line}: ${offence.text}`).join("\n");
  t.deepEqual(offences, [], `${offences.length} line(s) point into ../${FOLDER}, which a user's clone does not have; write what the reader needs into the project (docs/design.md, the folder's README) and point there:\n${report}`);
});
