/**
 * Builds the image a chaos container runs, locally and offline from any registry: PostgreSQL 15 from
 * Debian's packages, Node and the project.
 *
 * Two parts, each cached by a hash of its inputs:
 * - the base root: a minimal Debian root made by debootstrap (this machine's release, from the mirror
 *   in this machine's apt sources) with postgresql-15, plus this machine's node binary (Debian's own
 *   nodejs in bookworm is 18, and the project needs 20). Its inputs are the release, the mirror, the
 *   package list, the node binary and the recipe version. The root is kept as a tarball in the state
 *   directory; debootstrap runs (minutes) only when an input changes.
 * - the image, `pgraft-chaos:<hash>`: a copy of the base tarball with what `pgraft start` needs at run
 *   time appended under /opt/pgraft (src, bin, package.json and the runtime node_modules: the
 *   dependencies plus tsx, which bin/pgraft.js loads; and chaos/runner/dial-redirect.mjs, which a
 *   chaos node preloads to redirect its dials), then `docker import`. Its hash covers the base's
 *   and those files, so a code change redoes only this step (seconds).
 *
 * Why one import and not `docker build FROM base` with a COPY of the project: under the vfs storage
 * driver every build step copies the whole root, so the build took 55-75 s on a loaded machine where
 * copy, append and import take about 10 s; and vfs stores every layer as a full copy anyway, so a
 * separate base layer would save no disk.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { findDebianMirror, readAptSources, readReleaseCodename } from "./apt-sources.ts";
import { defaultStateDirectory, findExecutable, run, type Progress } from "./engine.ts";

/** Bump when the way the base root is made changes, so old cached bases are not reused. */
const BASE_RECIPE_VERSION = 1;
/** Bump when the project part's layout changes. */
const PROJECT_RECIPE_VERSION = 1;
/** Debian packages in the base beside debootstrap's minbase: PostgreSQL 15 and ps (for debugging). */
export const BASE_PACKAGES: readonly string[] = ["postgresql-15", "procps"];
export const IMAGE_REPOSITORY = "pgraft-chaos";
/** Where the project lives inside the image. */
export const PROJECT_DIRECTORY_IN_IMAGE = "/opt/pgraft";
/**
 * The module a chaos node preloads (NODE_OPTIONS --import) to send its dials where
 * NodeSpec.dialRedirects says, relative to the project root; the image holds it at the same place
 * under PROJECT_DIRECTORY_IN_IMAGE, and it is one of the image's hashed inputs.
 */
export const DIAL_REDIRECT_MODULE_PATH = "chaos/runner/dial-redirect.mjs";
/** The node binary inside the image. */
export const NODE_IN_IMAGE = "/usr/local/bin/node";
/** Packages copied into the image besides the project's own dependencies: bin/pgraft.js loads tsx. */
const RUNTIME_EXTRA_PACKAGES: readonly string[] = ["tsx"];
const DEBOOTSTRAP_TIMEOUT_MS = 30 * 60_000;

export class ImageBuildError extends Error {
  override name = "ImageBuildError";
}

export interface ImageOptions {
  readonly progress?: Progress;
  readonly stateDirectory?: string;
  /** The repository root (default: the checkout this file is in). */
  readonly projectRoot?: string;
}

export interface ChaosImage {
  /** The image to run, "pgraft-chaos:<hash>". */
  readonly name: string;
  /** The cached base root tarball. */
  readonly baseTarball: string;
  /** "cached": the image was in the engine; "imported": made from the cached base tarball; "built": debootstrap ran. */
  readonly how: "cached" | "imported" | "built";
  readonly elapsedMs: number;
}

export function defaultProjectRoot(): string {
  return fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
}

function sha256(...parts: (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(typeof part === "string" ? Buffer.from(part, "utf8") : part);
    hash.update("\0");
  }
  return hash.digest("hex");
}

interface BaseInputs {
  readonly recipe: number;
  readonly codename: string;
  readonly mirror: string;
  readonly variant: "minbase";
  readonly packages: readonly string[];
  readonly nodeVersion: string;
  readonly nodeSha256: string;
}

/** The base layer's inputs, read from this machine; their hash names the cached base. */
export function baseInputs(): BaseInputs {
  const codename = readReleaseCodename();
  const mirror = findDebianMirror(readAptSources(), codename);
  return {
    recipe: BASE_RECIPE_VERSION,
    codename,
    mirror,
    variant: "minbase",
    packages: [...BASE_PACKAGES].sort(),
    nodeVersion: process.version,
    nodeSha256: sha256(readFileSync(process.execPath)),
  };
}

export function baseKey(inputs: BaseInputs): string {
  return sha256(JSON.stringify(inputs)).slice(0, 16);
}

async function imageExists(name: string): Promise<boolean> {
  try {
    await run("docker", ["image", "inspect", "--format", "{{.Id}}", name], { timeoutMs: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** Elapsed-time prefix for progress lines. */
function stopwatch(progress: Progress): (line: string) => void {
  const startMs = Date.now();
  return (line) => progress(`[${((Date.now() - startMs) / 1000).toFixed(1).padStart(6)} s] ${line}`);
}

/**
 * Runs a long command, passing its output lines to `onLine`; rejects with the last lines of output when
 * it fails or outlives `timeoutMs`.
 */
function runStreaming(command: string, args: readonly string[], options: { timeoutMs: number; onLine: (line: string) => void; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env, cwd: options.cwd });
    const tail: string[] = [];
    let pending = "";
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString("utf8");
      const lines = pending.split(/\r?\n|\r/);
      pending = lines.pop() ?? "";
      for (const line of lines) {
        if (line.trim() === "") continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        options.onLine(line);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new ImageBuildError(`Cannot run ${command}: ${error.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new ImageBuildError(`${command} ${args.join(" ")} failed (${signal ?? `exit code ${code}`}); its last output:\n${tail.join("\n")}`));
    });
  });
}

/**
 * The image settings `docker import` applies to the root. They are set here, not in the project's
 * build: under the vfs storage driver every build step copies the whole root (half a minute each).
 */
const IMPORT_CHANGES: readonly string[] = [
  "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin",
  "ENV LANG=C.UTF-8",
  `WORKDIR ${PROJECT_DIRECTORY_IN_IMAGE}`,
  'CMD ["/bin/bash"]',
  "LABEL pgraft-chaos=image",
];

/** `docker import` of the root tarball, with the settings a `docker run` needs. */
async function importRoot(tarFile: string, name: string): Promise<void> {
  await run("docker", ["import", ...IMPORT_CHANGES.flatMap((change) => ["--change", change]), tarFile, name], { timeoutMs: 10 * 60_000 });
}

/** debootstrap into `root`, then add node and trim what a container never reads. */
async function makeBaseRoot(inputs: BaseInputs, root: string, cacheDirectory: string, say: (line: string) => void): Promise<void> {
  if (findExecutable("debootstrap") === undefined) throw new ImageBuildError("Cannot build the chaos image: debootstrap is missing; install it with `apt-get install -y debootstrap` and retry");
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  mkdirSync(cacheDirectory, { recursive: true });
  say(`base: debootstrap --variant=${inputs.variant} ${inputs.codename} from ${inputs.mirror} with ${inputs.packages.join(", ")} (takes minutes)`);
  // debootstrap prints one line per package; report each phase once and the count every 10 s.
  const phasesSeen = new Set<string>();
  let count = 0;
  let reportedMs = Date.now();
  await runStreaming("debootstrap", [`--variant=${inputs.variant}`, `--include=${inputs.packages.join(",")}`, `--cache-dir=${cacheDirectory}`, inputs.codename, root, inputs.mirror], {
    timeoutMs: DEBOOTSTRAP_TIMEOUT_MS,
    onLine: (line) => {
      const match = /^([IWE]): (\S+)/.exec(line);
      if (!match) return;
      count++;
      if (match[1] !== "I" || !phasesSeen.has(match[2]!) || Date.now() - reportedMs >= 10_000) {
        phasesSeen.add(match[2]!);
        reportedMs = Date.now();
        say(`base: debootstrap: ${line.slice(3)} (${count} steps so far)`);
      }
    },
  });
  say("base: adding node and trimming the root");
  cpSync(process.execPath, join(root, NODE_IN_IMAGE.slice(1)));
  await checkNodeInRoot(root);
  // The package's own cluster (postgresql-common makes 15/main): chaos nodes init their own.
  for (const path of ["var/lib/postgresql/15", "etc/postgresql/15", "var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"]) {
    rmSync(join(root, path), { recursive: true, force: true });
  }
  mkdirSync(join(root, "var/cache/apt/archives/partial"), { recursive: true });
  mkdirSync(join(root, "var/lib/apt/lists/partial"), { recursive: true });
}

/** Checks that node runs inside the root (its shared libraries are there) and has our version. */
async function checkNodeInRoot(root: string): Promise<void> {
  const libraries = await run("chroot", [root, "/usr/bin/ldd", NODE_IN_IMAGE], { timeoutMs: 60_000 });
  const missing = libraries.split("\n").filter((line) => line.includes("not found"));
  if (missing.length > 0) throw new ImageBuildError(`Cannot add node to the chaos image: the root lacks its shared libraries (${missing.map((line) => line.trim()).join("; ")}); add the Debian packages holding them to BASE_PACKAGES in chaos/containers/image.ts`);
  const version = (await run("chroot", [root, NODE_IN_IMAGE, "--version"], { timeoutMs: 60_000 })).trim();
  if (version !== process.version) throw new ImageBuildError(`Cannot add node to the chaos image: node in the root says ${version}, expected ${process.version}`);
}

/** The cached base root tarball for `inputs`, made (debootstrap, minutes) when missing. */
async function ensureBaseTarball(inputs: BaseInputs, stateDirectory: string, say: (line: string) => void): Promise<string> {
  const rootKey = baseKey(inputs);
  const imagesDirectory = join(stateDirectory, "images");
  mkdirSync(imagesDirectory, { recursive: true });
  const tarFile = join(imagesDirectory, `base-${rootKey}.tar`);
  if (existsSync(tarFile)) {
    say(`base: ${tarFile} (cache hit)`);
    return tarFile;
  }
  const root = join(stateDirectory, "build", `base-${rootKey}.root`);
  await makeBaseRoot(inputs, root, join(stateDirectory, "debs"), say);
  say(`base: packing the root into ${tarFile}`);
  writeFileSync(join(imagesDirectory, `base-${rootKey}.json`), `${JSON.stringify(inputs, null, 2)}\n`);
  await run("tar", ["--numeric-owner", "-C", root, "-cf", `${tarFile}.partial`, "."], { timeoutMs: 10 * 60_000 });
  renameSync(`${tarFile}.partial`, tarFile);
  rmSync(root, { recursive: true, force: true });
  removeOtherBaseTarballs(imagesDirectory, rootKey);
  return tarFile;
}

function removeOtherBaseTarballs(imagesDirectory: string, key: string): void {
  for (const file of readdirSync(imagesDirectory)) {
    if (file.startsWith("base-") && !file.startsWith(`base-${key}.`)) rmSync(join(imagesDirectory, file), { force: true });
  }
}

/** The files under `directory` (recursively), sorted, as paths relative to `root`. */
function listFiles(root: string, directory: string, into: string[] = []): string[] {
  for (const entry of readdirSync(join(root, directory), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) listFiles(root, path, into);
    else if (entry.isFile()) into.push(path);
  }
  return into;
}

/**
 * The node_modules directories `pgraft start` needs: the closure of the package's dependencies and
 * tsx, resolved the way Node resolves them (nearest node_modules upwards). Each package directory is
 * copied whole, nested node_modules included.
 */
export function runtimePackageDirectories(projectRoot: string): string[] {
  const manifest = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  const found = new Set<string>();
  const queue: { name: string; from: string }[] = [...Object.keys(manifest.dependencies ?? {}), ...RUNTIME_EXTRA_PACKAGES].map((name) => ({ name, from: projectRoot }));
  while (queue.length > 0) {
    const { name, from } = queue.shift()!;
    const directory = resolvePackage(projectRoot, from, name);
    if (directory === undefined) continue; // An optional dependency for another platform.
    if (found.has(directory)) continue;
    found.add(directory);
    const packageJson = JSON.parse(readFileSync(join(directory, "package.json"), "utf8")) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const dependency of [...Object.keys(packageJson.dependencies ?? {}), ...Object.keys(packageJson.optionalDependencies ?? {})]) queue.push({ name: dependency, from: directory });
  }
  // Keep only top-level directories: a nested one is copied with its parent.
  const sorted = [...found].map((directory) => relative(projectRoot, directory)).sort();
  return sorted.filter((directory) => !sorted.some((other) => other !== directory && directory.startsWith(`${other}/`)));
}

function resolvePackage(projectRoot: string, from: string, name: string): string | undefined {
  let directory = from;
  for (;;) {
    const candidate = join(directory, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (directory === projectRoot || directory === dirname(directory)) return undefined;
    directory = dirname(directory);
  }
}

/**
 * The project paths the image holds under /opt/pgraft (directories whole), besides the runtime
 * node_modules: what `pgraft start` runs, and the module a chaos node preloads to redirect its dials
 * (NodeSpec.dialRedirects). A copy of the project made for building the image needs these (and
 * package-lock.json, which names the image too).
 */
export const PROJECT_PATHS_IN_IMAGE: readonly string[] = ["package.json", "bin", "src", DIAL_REDIRECT_MODULE_PATH];

/** The project files the image holds, relative to the root (PROJECT_PATHS_IN_IMAGE), and the runtime modules. */
export function projectFiles(projectRoot: string): { files: string[]; packages: string[] } {
  const packages = runtimePackageDirectories(projectRoot);
  const files: string[] = [];
  for (const path of PROJECT_PATHS_IN_IMAGE) {
    const stat = statSync(join(projectRoot, path), { throwIfNoEntry: false });
    if (stat === undefined) throw new ImageBuildError(`Cannot build the chaos image: ${join(projectRoot, path)} is missing; the image holds ${PROJECT_PATHS_IN_IMAGE.join(", ")} of the project root`);
    if (stat.isDirectory()) listFiles(projectRoot, path, files);
    else files.push(path);
  }
  return { files, packages };
}

/** The image's hash: the base root, the import settings, the recipe, the project files, the lock file. */
function imageKey(projectRoot: string, rootKey: string, files: readonly string[], packages: readonly string[]): string {
  const hash = createHash("sha256");
  hash.update(`${PROJECT_RECIPE_VERSION}\0${rootKey}\0${IMPORT_CHANGES.join("\0")}\0`);
  for (const file of files) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(projectRoot, file)));
  }
  // node_modules' content follows from the lock file; hashing 100 MB on every run would be slow.
  const lockFile = join(projectRoot, "package-lock.json");
  if (existsSync(lockFile)) hash.update(readFileSync(lockFile));
  hash.update(packages.join("\n"));
  return hash.digest("hex").slice(0, 16);
}

/**
 * The image name for the project at `projectRoot` on the base root `rootKey` (baseKey(baseInputs())):
 * "pgraft-chaos:<hash of the recipe, the base, the project files, the lock file>". No engine needed.
 */
export function chaosImageName(projectRoot: string, rootKey: string): string {
  const { files, packages } = projectFiles(projectRoot);
  return `${IMAGE_REPOSITORY}:${imageKey(projectRoot, rootKey, files, packages)}`;
}

/** Copies the base tarball, appends the project under /opt/pgraft, and imports the result as `name`. */
async function importProjectImage(projectRoot: string, baseTarball: string, name: string, files: readonly string[], packages: readonly string[], workDirectory: string, say: (line: string) => void): Promise<void> {
  rmSync(workDirectory, { recursive: true, force: true });
  const app = join(workDirectory, "root", PROJECT_DIRECTORY_IN_IMAGE.slice(1));
  for (const file of files) cpSync(join(projectRoot, file), join(app, file));
  for (const directory of packages) cpSync(join(projectRoot, directory), join(app, directory), { recursive: true });
  say(`project: adding ${files.length} project files and ${packages.length} runtime packages to a copy of the base`);
  const tarFile = join(workDirectory, "image.tar");
  cpSync(baseTarball, tarFile);
  await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", join(workDirectory, "root"), "-rf", tarFile, `.${PROJECT_DIRECTORY_IN_IMAGE}`], { timeoutMs: 10 * 60_000 });
  say(`project: docker import as ${name}`);
  await importRoot(tarFile, name);
  rmSync(workDirectory, { recursive: true, force: true });
}

/** Removes older images of `repository` (each is a full copy of the root under vfs); in-use ones stay. */
async function removeOtherImages(repository: string, name: string): Promise<void> {
  const listed = await run("docker", ["image", "ls", repository, "--format", "{{.Repository}}:{{.Tag}}"], { timeoutMs: 30_000 });
  for (const other of listed.split("\n").map((line) => line.trim()).filter((line) => line !== "" && line !== name)) {
    await run("docker", ["image", "rm", other], { timeoutMs: 60_000 }).catch(() => undefined);
  }
  // An import under a name that existed (two setups at once) leaves the older image untagged.
  await run("docker", ["image", "prune", "--force", "--filter", "label=pgraft-chaos=image"], { timeoutMs: 120_000 }).catch(() => undefined);
}

/**
 * Makes sure the chaos image for this checkout is in the engine, making what is missing. A second
 * call with nothing changed is a cache hit: hashing the inputs and one `docker image inspect`.
 */
export async function ensureChaosImage(options: ImageOptions = {}): Promise<ChaosImage> {
  const startMs = Date.now();
  const say = stopwatch(options.progress ?? (() => {}));
  const stateDirectory = options.stateDirectory ?? defaultStateDirectory();
  const projectRoot = options.projectRoot ?? defaultProjectRoot();
  if (!statSync(join(projectRoot, "bin", "pgraft.js"), { throwIfNoEntry: false })?.isFile()) {
    throw new ImageBuildError(`Cannot build the chaos image: ${projectRoot} has no bin/pgraft.js; pass the repository root as projectRoot`);
  }
  const inputs = baseInputs();
  const rootKey = baseKey(inputs);
  const baseTarball = join(stateDirectory, "images", `base-${rootKey}.tar`);
  const { files, packages } = projectFiles(projectRoot);
  const name = `${IMAGE_REPOSITORY}:${imageKey(projectRoot, rootKey, files, packages)}`;
  if (await imageExists(name)) {
    say(`image: ${name} is in the engine (cache hit)`);
    return { name, baseTarball, how: "cached", elapsedMs: Date.now() - startMs };
  }
  const built = !existsSync(baseTarball);
  await ensureBaseTarball(inputs, stateDirectory, say);
  await importProjectImage(projectRoot, baseTarball, name, files, packages, join(stateDirectory, "build", `image-${process.pid}`), say);
  say(`image: ${name} imported; removing older ${IMAGE_REPOSITORY} images`);
  await removeOtherImages(IMAGE_REPOSITORY, name);
  say(`image: ${name} ready`);
  return { name, baseTarball, how: built ? "built" : "imported", elapsedMs: Date.now() - startMs };
}
