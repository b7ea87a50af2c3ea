/**
 * Creates a PostgreSQL data directory: `initdb -A <auth> -E UTF8 --locale=C` run as the unprivileged OS
 * user, then the caller's settings appended to postgresql.conf. Tests start many throwaway servers, so a
 * template cache can stand in for initdb: initdb runs once per (PostgreSQL version, OS user, auth) into
 * the cache directory, and each new data directory is a `cp -a` of that template (ownership kept).
 * Servers copied from one template share its database system identifier; use plain initdb where that
 * matters. Building the template is race-free across processes: it is built under a private name and
 * renamed into place, and a loser of the race deletes its copy.
 */
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { foreignDirectoryError, inspectDataDirectory, prepareDataDirectory } from "./data-directory.ts";
import { childEnvironment, resolveOsUser, spawnIdentity, type OsUser } from "./os-user.ts";
import { findPostgresBinaries, type PostgresBinaries } from "./pg-binaries.ts";
import { PostgresSupervisorError } from "./supervisor-error.ts";

const execFileAsync = promisify(execFile);

export type InitdbAuth = "trust" | "scram-sha-256";

export interface SupervisorLogger {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

export interface InitdbOptions {
  /** Default: the newest /usr/lib/postgresql/<N>/bin. */
  readonly binDirectory?: string;
  /** Default: "postgres" when root, else the current user. It becomes the superuser's name too. */
  readonly osUser?: string;
  /**
   * Authentication for local sockets and loopback TCP, the only lines initdb's pg_hba.conf has. Default
   * "trust": any local user may connect as any role, which suits tests and a socket directory only the
   * OS user can enter; use "scram-sha-256" with `password` where other local users exist.
   */
  readonly auth?: InitdbAuth;
  /** The superuser's password; required with auth "scram-sha-256". */
  readonly password?: string;
  /** initdb --no-sync: faster, and a crash soon after may corrupt the new directory. For tests. */
  readonly noSync?: boolean;
  /** Lines `name = 'value'` appended to postgresql.conf (pgraft.* settings, shared_buffers, ...). */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Copy a cached template from this directory instead of running initdb each time (tests). Pair it
   * with `noSync: true`: otherwise the copy is made durable with `initdb --sync-only`, which costs about
   * as much as initdb itself.
   */
  readonly templateCacheDirectory?: string;
  readonly logger?: SupervisorLogger;
}

/** Small-server settings for tests and local clusters; production keeps PostgreSQL's defaults. */
export const SMALL_SERVER_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: "16MB",
  max_connections: "50",
};

/** Settings that trade durability for speed, for tests that never survive a machine crash. */
export const NO_DURABILITY_SETTINGS: Readonly<Record<string, string>> = {
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
};

const INITDB_TIMEOUT_MS = 120_000;
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/** Initializes `pgdata`, which must be missing or empty. */
export async function initdb(pgdata: string, options: InitdbOptions = {}): Promise<void> {
  if (!path.isAbsolute(pgdata)) {
    throw new PostgresSupervisorError("invalid_option", `Cannot initialize ${JSON.stringify(pgdata)}: the data directory must be an absolute path; pass path.resolve(dir)`);
  }
  const settingsText = renderSettings(options.settings ?? {});
  const auth = options.auth ?? "trust";
  if (auth === "scram-sha-256" && (options.password === undefined || options.password === "")) {
    throw new PostgresSupervisorError("invalid_option", `Cannot initialize ${pgdata} with auth "scram-sha-256": no password was given; pass a password, or use auth "trust"`);
  }
  const binaries = await findPostgresBinaries(options.binDirectory);
  const user = resolveOsUser(options.osUser);
  const state = inspectDataDirectory(pgdata);
  if (state.kind === "initialized") {
    throw new PostgresSupervisorError("not_a_data_directory", `Cannot initialize ${pgdata}: it is already a PostgreSQL ${state.majorVersion} data directory; start it instead, or pass an empty directory`);
  }
  if (state.kind === "foreign") throw foreignDirectoryError(pgdata, state.entries);
  prepareDataDirectory(pgdata, user);
  const started = performance.now();
  if (options.templateCacheDirectory !== undefined) {
    const template = await ensureTemplate(options.templateCacheDirectory, binaries, user, auth, options);
    await execFileAsync("cp", ["-a", "--", `${template}/.`, `${pgdata}/`], { timeout: INITDB_TIMEOUT_MS });
    if (options.noSync !== true) {
      // The template was built without syncing; make the copy as durable as initdb would have.
      const { code, output } = await runCaptured(binaries.initdb, ["--sync-only", "-D", pgdata], user);
      if (code !== 0) throw new PostgresSupervisorError("initdb_failed", `Cannot sync ${pgdata} after copying the template: initdb --sync-only exited with ${code}: ${output.trim()}`);
    }
    options.logger?.info(`initialized ${pgdata} from template ${template} in ${Math.round(performance.now() - started)} ms`);
  } else {
    await runInitdb(pgdata, binaries, user, auth, options);
    options.logger?.info(`initialized ${pgdata} with initdb (PostgreSQL ${binaries.majorVersion}) in ${Math.round(performance.now() - started)} ms`);
  }
  if (settingsText !== "") {
    fs.appendFileSync(path.join(pgdata, "postgresql.conf"), `\n# Added by pgraft when the data directory was created\n${settingsText}`);
  }
}

/** `name = 'value'` lines, values quoted as postgresql.conf strings; bad names and values refused. */
export function renderSettings(settings: Readonly<Record<string, string>>): string {
  let text = "";
  for (const [name, value] of Object.entries(settings)) {
    if (!SETTING_NAME.test(name)) {
      throw new PostgresSupervisorError("invalid_option", `Cannot write setting ${JSON.stringify(name)} to postgresql.conf: it is not a setting name; use letters, digits and underscores, with one dot for custom settings such as pgraft.name`);
    }
    if (typeof value !== "string" || /[\n\r\0]/.test(value)) {
      throw new PostgresSupervisorError("invalid_option", `Cannot write setting ${name} to postgresql.conf: its value ${JSON.stringify(value)} is not a one-line string; pass a string without line breaks`);
    }
    text += `${name} = '${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'\n`;
  }
  return text;
}

async function runInitdb(pgdata: string, binaries: PostgresBinaries, user: OsUser, auth: InitdbAuth, options: InitdbOptions): Promise<void> {
  const args = ["-D", pgdata, "-U", user.name, "-A", auth, "-E", "UTF8", "--locale=C"];
  if (options.noSync === true) args.push("--no-sync");
  let passwordDirectory: string | undefined;
  if (auth === "scram-sha-256") {
    passwordDirectory = fs.mkdtempSync(path.join(os.tmpdir(), "pgraft-pwfile-"));
    const passwordFile = path.join(passwordDirectory, "password");
    fs.writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o600 });
    if (user.switchUser) {
      fs.chownSync(passwordDirectory, user.uid, user.gid);
      fs.chownSync(passwordFile, user.uid, user.gid);
    }
    args.push(`--pwfile=${passwordFile}`);
  }
  try {
    const { code, output } = await runCaptured(binaries.initdb, args, user);
    if (code !== 0) {
      throw new PostgresSupervisorError("initdb_failed", `Cannot initialize ${pgdata}: initdb exited with ${code}: ${output.trim().split("\n").slice(-5).join(" | ")}; fix the cause and retry with an empty directory`);
    }
  } finally {
    if (passwordDirectory !== undefined) fs.rmSync(passwordDirectory, { recursive: true, force: true });
  }
}

/** Runs a program as `user`, collecting up to 64 KiB of its output. */
function runCaptured(program: string, args: string[], user: OsUser): Promise<{ code: number | string; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      ...spawnIdentity(user),
      env: childEnvironment(user),
      cwd: "/",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: INITDB_TIMEOUT_MS,
    });
    let output = "";
    const collect = (chunk: Buffer): void => {
      if (output.length < 65_536) output += chunk.toString("utf8");
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code: code ?? signal ?? "unknown", output }));
  });
}

async function ensureTemplate(cacheDirectory: string, binaries: PostgresBinaries, user: OsUser, auth: InitdbAuth, options: InitdbOptions): Promise<string> {
  const key = createHash("sha256")
    .update(JSON.stringify([binaries.versionText, binaries.binDirectory, user.name, user.uid, user.gid, auth, options.password ?? ""]))
    .digest("hex")
    .slice(0, 16);
  const template = path.join(path.resolve(cacheDirectory), `pg${binaries.majorVersion}-${key}`);
  if (fs.existsSync(path.join(template, "PG_VERSION"))) return template;
  fs.mkdirSync(path.dirname(template), { recursive: true, mode: 0o755 });
  const building = `${template}.building-${process.pid}-${randomBytes(4).toString("hex")}`;
  prepareDataDirectory(building, user);
  try {
    await runInitdb(building, binaries, user, auth, { ...options, noSync: true });
    try {
      fs.renameSync(building, template);
      options.logger?.info(`built initdb template ${template}`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EEXIST" && code !== "ENOTEMPTY") throw error;
      // Another process built it first: use theirs.
    }
  } finally {
    fs.rmSync(building, { recursive: true, force: true });
  }
  return template;
}
