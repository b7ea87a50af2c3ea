/**
 * Installs or upgrades pgraft's SQL interface (src/postgres/schema.ts) in one transaction, under an
 * advisory lock so two nodes (or a node and an operator) never install at once. Idempotent: run at
 * every connection. A newer node upgrades an older schema in place; an older node refuses a newer one.
 */
import type pg from "pg";
import { functionsSql, grantsSql, MIGRATIONS, SCHEMA_VERSION } from "./schema.ts";

/** What went wrong setting up PostgreSQL for pgraft: the message says what to do. */
export class PostgresSetupError extends Error {
  override name = "PostgresSetupError";
}

/** Any number, from any string, as the advisory lock key: "pgraft schema". */
const INSTALL_LOCK_KEY = 7_263_542_013;

export interface InstallResult {
  /** The version found (0: none installed). */
  readonly from: number;
  readonly to: number;
  readonly database: string;
}

export interface InstallOptions {
  readonly packageVersion: string;
  /** For tests of the upgrade path: install only up to this version. */
  readonly targetVersion?: number;
}

export async function installSqlInterface(client: pg.ClientBase, options: InstallOptions): Promise<InstallResult> {
  const target = options.targetVersion ?? SCHEMA_VERSION;
  const who = await client.query<{ database: string; user: string; superuser: boolean }>(
    "SELECT current_database() AS database, current_user AS user, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user",
  );
  const { database, user, superuser } = who.rows[0]!;
  if (!superuser) {
    throw new PostgresSetupError(
      `Cannot install pgraft's SQL interface into database "${database}": user "${user}" is not a superuser; connect the node as a superuser (for example postgres)`,
    );
  }
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [INSTALL_LOCK_KEY]);
    const from = await installedVersion(client);
    if (from > target) {
      throw new PostgresSetupError(
        `Cannot use pgraft's SQL interface in database "${database}": it is schema version ${from}, newer than this node's version ${target} (pgraft ${options.packageVersion}); ` +
          `run the newer pgraft that installed it, or drop the schema (DROP SCHEMA pgraft CASCADE: pgraft.kv is rebuilt from the Raft log) to install this version`,
      );
    }
    for (let version = from; version < target; version++) await client.query(MIGRATIONS[version]!);
    await client.query("SET LOCAL client_min_messages = warning");
    await client.query(await dblinkInstallSql(client, database));
    const dblinkSchema = await client.query<{ schema: string }>(
      "SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink'",
    );
    await client.query(functionsSql(dblinkSchema.rows[0]!.schema));
    if (target >= 2) await client.query(grantsSql());
    await client.query(
      "INSERT INTO pgraft.meta VALUES ('schema_version', $1), ('package_version', $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
      [String(target), options.packageVersion],
    );
    await client.query("COMMIT");
    return { from, to: target, database };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/** The schema version installed in the connected database, 0 when none is. */
export async function installedVersion(client: pg.ClientBase): Promise<number> {
  const exists = await client.query<{ meta: string | null }>("SELECT to_regclass('pgraft.meta')::text AS meta");
  if (exists.rows[0]!.meta === null) return 0;
  const row = await client.query<{ value: string }>("SELECT value FROM pgraft.meta WHERE key = 'schema_version'");
  const version = Number(row.rows[0]?.value ?? 0);
  return Number.isInteger(version) && version >= 0 ? version : 0;
}

async function dblinkInstallSql(client: pg.ClientBase, database: string): Promise<string> {
  const available = await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'dblink'");
  if (available.rowCount === 0) {
    throw new PostgresSetupError(
      `Cannot install pgraft's SQL interface into database "${database}": PostgreSQL's contrib module dblink is not installed on the server ` +
        `(the SQL functions call the node through it); install the server's contrib package (Debian: postgresql-15 ships it; elsewhere postgresql-contrib)`,
    );
  }
  return "CREATE EXTENSION IF NOT EXISTS dblink SCHEMA pgraft";
}
