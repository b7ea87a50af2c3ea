/**
 * The one error the PostgreSQL supervisor throws for everything an operator can meet (missing binaries,
 * a directory that is not a data directory, a server that does not start). `code` says which, so callers
 * (the harness retrying on a taken port, `pgraft start` choosing an exit status) need not parse messages;
 * the message says what failed, why, and what to do.
 */
export type PostgresSupervisorErrorCode =
  /** An option with a value the supervisor cannot use (a relative path, a port out of range). */
  | "invalid_option"
  /** No PostgreSQL server binaries where they were looked for. */
  | "binaries_missing"
  /** The OS user to run PostgreSQL as does not exist, or cannot be switched to. */
  | "os_user"
  /** A directory the OS user cannot reach or write. */
  | "permission"
  /** The data directory is neither empty nor a PostgreSQL data directory, or has the wrong version. */
  | "not_a_data_directory"
  /** initdb failed. */
  | "initdb_failed"
  /** The server's TCP port is taken by another process. */
  | "port_in_use"
  /** The server exited, or did not become ready in time, while starting. */
  | "start_failed"
  /** A running postmaster of this data directory cannot be adopted (another port, say). */
  | "adopt_failed"
  /** The postmaster survived every stop signal, SIGKILL included. */
  | "stop_failed";

export class PostgresSupervisorError extends Error {
  override name = "PostgresSupervisorError";
  constructor(
    readonly code: PostgresSupervisorErrorCode,
    message: string,
    /** The PostgreSQL log file to read for details, when there is one. */
    readonly logFile?: string,
  ) {
    super(message);
  }
}
