/**
 * Plants a mutation into a throwaway copy of the project: the code `npm run sim` runs (src, sim,
 * scenarios, package.json, tsconfig.json) with node_modules linked, one file edited. The real tree is
 * never touched.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What `npm run sim` needs to run from a copy. */
const COPIED = ["src", "sim", "scenarios", "package.json", "tsconfig.json"];

export interface Plantable {
  /** Names the mutation in errors. */
  readonly id: string;
  readonly file: string;
  readonly edits: readonly (readonly [string, string])[];
}

export class MutationError extends Error {
  override name = "MutationError";
}

/** The text of `mutation.file` under `root` with every edit applied; throws when an original is not there exactly once. */
export function mutatedText(root: string, mutation: Plantable): string {
  let text = readFileSync(join(root, mutation.file), "utf8");
  for (const [original, mutated] of mutation.edits) {
    const occurrences = text.split(original).length - 1;
    if (occurrences !== 1) {
      throw new MutationError(
        `Cannot plant mutation "${mutation.id}": expected the text ${JSON.stringify(original.slice(0, 120))} once in ${mutation.file}, found it ${occurrences} times; update the mutation to the current code`,
      );
    }
    if (original === mutated) throw new MutationError(`Cannot plant mutation "${mutation.id}": an edit changes nothing`);
    text = text.replace(original, () => mutated);
  }
  return text;
}

/** A copy of the project under a new temporary directory, with the mutation planted. The caller removes it. */
export function plantMutation(root: string, mutation: Plantable): string {
  const text = mutatedText(root, mutation);
  const copy = mkdtempSync(join(tmpdir(), "pgraft-mutation-"));
  try {
    for (const entry of COPIED) cpSync(join(root, entry), join(copy, entry), { recursive: true });
    symlinkSync(join(root, "node_modules"), join(copy, "node_modules"), "dir");
    writeFileSync(join(copy, mutation.file), text);
  } catch (error) {
    rmSync(copy, { recursive: true, force: true });
    throw error;
  }
  return copy;
}
