/**
 * How chaos runs launch `pgraft start` quickly: the project's TypeScript compiled ahead of time into one
 * ES module by esbuild (the compiler tsx itself uses, with the same settings), instead of `bin/pgraft.js`
 * compiling and resolving a hundred source files through tsx's loader at every start. The code run is
 * the same; only the loading differs. On a loaded 2-core machine a node start (`pgraft --version`)
 * falls from about 1 s of CPU and 3.5-4 s of wall time to 0.3 s and about 1 s, which is most of what a
 * restarted node needs before it can vote.
 *
 * The bundle lives in `<project>/node_modules/.pgraft-chaos/`, two levels below the project root like
 * `src/server/version.ts`, so the source's file-relative URLs still resolve: `../../package.json`, and
 * `./proto` and `./README.md` through symbolic links to `src/api/proto` and `src/config/README.md`.
 * npm packages stay external and load from node_modules as usual. The file is named by a hash of its
 * contents (written under a temporary name, then renamed), so runs side by side share it and a changed
 * source gets a new file. It is entered through a small wrapper so that no bundled module mistakes itself
 * for the script node was asked to run (settings-reference.ts runs a command when it is the main script).
 *
 * When esbuild cannot be loaded or the build fails, or PGRAFT_CHAOS_LAUNCH=tsx is set, nodes start
 * through `bin/pgraft.js` as an operator's would; the reason is returned for the run's notes.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const BUNDLE_DIRECTORY_NAME = join("node_modules", ".pgraft-chaos");

export interface NodeLauncher {
  /** The script node runs; `pgraft` arguments follow it. */
  readonly script: string;
  /** "esbuild bundle <file>" or "bin/pgraft.js through tsx (<why>)". */
  readonly description: string;
}

const launchers = new Map<string, Promise<NodeLauncher>>();

/** The launcher for `projectRoot`, built once per process. */
export function nodeLauncher(projectRoot: string): Promise<NodeLauncher> {
  let launcher = launchers.get(projectRoot);
  if (launcher === undefined) {
    launcher = buildLauncher(projectRoot);
    launchers.set(projectRoot, launcher);
  }
  return launcher;
}

async function buildLauncher(projectRoot: string): Promise<NodeLauncher> {
  const fallback = (why: string): NodeLauncher => ({ script: join(projectRoot, "bin", "pgraft.js"), description: `bin/pgraft.js through tsx (${why})` });
  if (process.env.PGRAFT_CHAOS_LAUNCH === "tsx") return fallback("PGRAFT_CHAOS_LAUNCH=tsx");
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch (error) {
    return fallback(`esbuild cannot be loaded: ${(error as Error).message}`);
  }
  try {
    const result = await esbuild.build({
      entryPoints: [join(projectRoot, "src", "cli", "main.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      write: false,
      logLevel: "silent",
      absWorkingDir: projectRoot,
    });
    const text = result.outputFiles[0]!.text;
    const hash = createHash("sha256").update(text).digest("hex").slice(0, 16);
    const directory = join(projectRoot, BUNDLE_DIRECTORY_NAME);
    mkdirSync(directory, { recursive: true });
    ensureLink(join(directory, "proto"), join("..", "..", "src", "api", "proto"));
    ensureLink(join(directory, "README.md"), join("..", "..", "src", "config", "README.md"));
    const bundle = join(directory, `pgraft-${hash}.mjs`);
    writeOnce(bundle, text);
    const wrapper = join(directory, `start-${hash}.mjs`);
    writeOnce(wrapper, `// Enters the bundle without making it the main script (see chaos/runner/node-bundle.ts).\nawait import("./pgraft-${hash}.mjs");\n`);
    return { script: wrapper, description: `esbuild bundle ${bundle}` };
  } catch (error) {
    return fallback(`the esbuild bundle failed: ${(error as Error).message.split("\n")[0]}`);
  }
}

function writeOnce(file: string, text: string): void {
  if (existsSync(file)) return;
  const temporary = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, file);
}

function ensureLink(path: string, target: string): void {
  try {
    if (readlinkSync(path) === target) return;
    rmSync(path, { force: true });
  } catch {
    // missing (or not a link): made below
  }
  try {
    symlinkSync(target, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}
