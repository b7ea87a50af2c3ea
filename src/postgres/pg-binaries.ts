/**
 * Finds the PostgreSQL server binaries (initdb, postgres, pg_isready, psql) the supervisor runs: an
 * explicit directory, or else the newest Debian-style /usr/lib/postgresql/<major>/bin that holds a
 * `postgres` executable. The version text (`postgres --version`) keys the initdb template cache.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { PostgresSupervisorError } from "./supervisor-error.ts";

const execFileAsync = promisify(execFile);

/** Where Debian and Ubuntu install one directory per PostgreSQL major version. */
export const DEBIAN_POSTGRESQL_ROOT = "/usr/lib/postgresql";

export interface PostgresBinaries {
  readonly binDirectory: string;
  readonly postgres: string;
  readonly initdb: string;
  readonly pgIsReady: string;
  readonly psql: string;
  /** The major version, from `postgres --version` (15 for 15.18). */
  readonly majorVersion: number;
  /** The whole first line of `postgres --version`, e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)". */
  readonly versionText: string;
}

const cache = new Map<string, Promise<PostgresBinaries>>();

/** The binaries in `binDirectory`, or in the newest /usr/lib/postgresql/<N>/bin; memoized per directory. */
export function findPostgresBinaries(binDirectory?: string): Promise<PostgresBinaries> {
  const directory = binDirectory ?? newestDebianBinDirectory();
  let found = cache.get(directory);
  if (found === undefined) {
    found = inspectBinDirectory(directory, binDirectory !== undefined);
    cache.set(directory, found);
    found.catch(() => cache.delete(directory));
  }
  return found;
}

function newestDebianBinDirectory(): string {
  let majors: number[] = [];
  try {
    majors = fs
      .readdirSync(DEBIAN_POSTGRESQL_ROOT)
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .filter((major) => isExecutable(path.join(DEBIAN_POSTGRESQL_ROOT, String(major), "bin", "postgres")))
      .sort((a, b) => b - a);
  } catch {
    // No such root: reported below.
  }
  if (majors.length === 0) {
    throw new PostgresSupervisorError(
      "binaries_missing",
      `Cannot find the PostgreSQL server binaries: no ${DEBIAN_POSTGRESQL_ROOT}/<version>/bin/postgres exists; ` +
        "install them with `apt-get install postgresql-15`, or pass the directory that holds postgres and initdb",
    );
  }
  return path.join(DEBIAN_POSTGRESQL_ROOT, String(majors[0]), "bin");
}

async function inspectBinDirectory(binDirectory: string, explicit: boolean): Promise<PostgresBinaries> {
  const where = explicit ? `the given bin directory ${JSON.stringify(binDirectory)}` : binDirectory;
  for (const program of ["postgres", "initdb"]) {
    if (!isExecutable(path.join(binDirectory, program))) {
      throw new PostgresSupervisorError(
        "binaries_missing",
        `Cannot use the PostgreSQL binaries in ${where}: it has no executable ${program}; ` +
          "pass the directory that holds postgres and initdb (such as /usr/lib/postgresql/15/bin), or install them with `apt-get install postgresql-15`",
      );
    }
  }
  const postgres = path.join(binDirectory, "postgres");
  const { stdout } = await execFileAsync(postgres, ["--version"], { timeout: 10_000 });
  const versionText = stdout.split("\n")[0]!.trim();
  const match = /\(PostgreSQL\) (\d+)/.exec(versionText);
  if (match === null) {
    throw new PostgresSupervisorError(
      "binaries_missing",
      `Cannot use the PostgreSQL binaries in ${where}: \`postgres --version\` printed ${JSON.stringify(versionText)}, not a PostgreSQL version; pass the directory of a PostgreSQL installation`,
    );
  }
  const psqlBeside = path.join(binDirectory, "psql");
  return {
    binDirectory,
    postgres,
    initdb: path.join(binDirectory, "initdb"),
    pgIsReady: path.join(binDirectory, "pg_isready"),
    psql: isExecutable("/usr/bin/psql") ? "/usr/bin/psql" : psqlBeside,
    majorVersion: Number(match[1]),
    versionText,
  };
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
