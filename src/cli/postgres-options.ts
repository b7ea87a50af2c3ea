/**
 * How `pgraft start` finds its PostgreSQL server:
 *
 *   --pgdata DIR [--pg-port N]   start and supervise the server of DIR (initdb when empty), as Patroni
 *   [--pg-bin DIR]               does; pgraft.* settings are read from DIR/postgresql.conf; --pg-bin
 *                                names the directory of postgres and initdb (default: the newest
 *                                /usr/lib/postgresql/N/bin)
 *   --postgres CONNINFO          attach to a running server: a postgresql:// URL or libpq's
 *                                "host=... port=... user=... dbname=..." form; an empty string means
 *                                the PG* environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE,
 *                                PGPASSWORD). pgraft.* settings are read from the server's
 *                                postgresql.conf (SHOW config_file) unless --postgresql-conf names it.
 *
 * Neither: the node runs standalone, with the etcd API only.
 */
import { existsSync, readFileSync } from "node:fs";
import pg from "pg";

export class PostgresOptionError extends Error {
  override name = "PostgresOptionError";
}

const CONNINFO_KEYS: Readonly<Record<string, keyof pg.ClientConfig>> = {
  host: "host",
  hostaddr: "host",
  port: "port",
  user: "user",
  dbname: "database",
  password: "password",
  application_name: "application_name",
  connect_timeout: "connectionTimeoutMillis",
};
/** libpq keys that change nothing for a loopback server, accepted and ignored. */
const CONNINFO_IGNORED = new Set(["sslmode", "gssencmode", "target_session_attrs", "client_encoding"]);

/** A libpq connection string (URL or key=value pairs) as node-postgres settings. */
export function parseConninfo(conninfo: string): pg.ClientConfig {
  const text = conninfo.trim();
  if (text === "") return {};
  if (/^postgres(ql)?:\/\//.test(text)) return { connectionString: text };
  const config: Record<string, unknown> = {};
  const pattern = /\s*([A-Za-z_]+)\s*=\s*('((?:[^'\\]|\\.)*)'|[^\s']+)/y;
  let position = 0;
  while (position < text.length) {
    pattern.lastIndex = position;
    const match = pattern.exec(text);
    if (match === null) {
      throw new PostgresOptionError(
        `Cannot read the connection string "${conninfo}" at character ${position + 1}: write key=value pairs ("host=/var/run/postgresql port=5432 user=postgres dbname=postgres") or a postgresql:// URL`,
      );
    }
    const key = match[1]!.toLowerCase();
    const value = match[3] !== undefined ? match[3].replace(/\\(.)/g, "$1") : match[2]!;
    position = pattern.lastIndex;
    if (CONNINFO_IGNORED.has(key)) continue;
    const field = CONNINFO_KEYS[key];
    if (field === undefined) {
      throw new PostgresOptionError(`Cannot use "${key}" in the connection string: pgraft understands ${[...Object.keys(CONNINFO_KEYS), ...CONNINFO_IGNORED].join(", ")}`);
    }
    if (field === "port") {
      const port = Number(value);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PostgresOptionError(`Cannot use port "${value}" in the connection string: use a port from 1 to 65535`);
      config.port = port;
    } else if (field === "connectionTimeoutMillis") {
      config.connectionTimeoutMillis = Number(value) * 1000;
    } else {
      config[field] = value;
    }
  }
  return config as pg.ClientConfig;
}

/** The port a postgresql.conf sets (`port = N`), or undefined. */
export function portOfPostgresqlConf(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  let port: number | undefined;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^\s*port\s*=?\s*'?(\d+)'?\s*(#.*)?$/.exec(line);
    if (match) port = Number(match[1]);
  }
  return port;
}

/** Asks a running server where its postgresql.conf is; undefined (with the reason) when unreadable. */
export async function serverConfigFile(connection: pg.ClientConfig): Promise<{ path: string } | { problem: string }> {
  const client = new pg.Client({ ...connection, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const result = await client.query<{ config_file: string }>("SHOW config_file");
    const path = result.rows[0]!.config_file;
    try {
      readFileSync(path);
      return { path };
    } catch (error) {
      return { problem: `the server's configuration file ${path} is not readable by this process (${(error as Error).message}); pass --postgresql-conf FILE or run pgraft as a user who can read it` };
    }
  } catch (error) {
    return { problem: `cannot connect to PostgreSQL to find its postgresql.conf (${(error as Error).message})` };
  } finally {
    await client.end().catch(() => undefined);
  }
}
