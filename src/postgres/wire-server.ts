/**
 * The node's command endpoint for PostgreSQL: a loopback server that speaks just enough of PostgreSQL's
 * frontend/backend protocol (3.0, simple queries only) for libpq (dblink, psql) and node-postgres.
 *
 * Why it exists: pgraft's SQL functions (pgraft_kv_put, pgraft_add_node, ...) run inside the operator's
 * PostgreSQL and must reach the pgraft node using only what ships with PostgreSQL. contrib's dblink
 * speaks libpq, so a function calls `dblink('host=127.0.0.1 port=... password=...', '<command>')` and this
 * server answers: it checks a cleartext password, hands the query text to `onQuery`, and sends back
 * rows, or an error whose SQLSTATE, message, detail and hint dblink raises again inside PostgreSQL as if
 * the function itself had raised it.
 *
 * What it speaks: SSL and GSS encryption requests are declined ('N', the client goes on in clear); a
 * cancel request closes its connection; the startup packet (3.0; a newer 3.x is told we speak 3.0);
 * cleartext password authentication; simple Query; Sync; Terminate. An extended-protocol batch (Parse,
 * Bind, Describe, Execute, Close, Flush) gets one error and is skipped up to its Sync. Anything else, and
 * every malformed frame, is a FATAL protocol violation (08P01) that closes the connection.
 *
 * Limits: connections (connectionsMax), one message's size (messageBytesMax), idle time (idleTimeoutMs).
 * A connection reads nothing while it handles a message or while its answer waits to be sent, so it
 * holds at most one message and one answer.
 */
import { createHash, randomInt, timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { assert } from "../assert.ts";
import {
  authenticationCleartextPassword,
  authenticationOk,
  backendKeyData,
  commandComplete,
  dataRow,
  emptyQueryResponse,
  errorResponse,
  negotiateProtocolVersion,
  parameterStatus,
  readyForQuery,
  rowDescription,
} from "./wire/backend-messages.ts";
import { decodeUtf8, describeType, parseStartupPacket, readMessageFrame, readSingleCString, readStartupFrame, type Frame } from "./wire/frontend-messages.ts";

export interface WireColumn {
  readonly name: string;
  /** The PostgreSQL type OID: 25 text, 16 bool, 20 int8, 23 int4, 17 bytea, ... Values are sent as text. */
  readonly typeOid: number;
}

export interface WireQueryResult {
  readonly columns: readonly WireColumn[];
  readonly rows: readonly (readonly (string | null)[])[];
  /** The command tag, e.g. "SELECT 1". */
  readonly command: string;
}

export interface WireSession {
  readonly user: string;
  readonly database: string;
  readonly applicationName: string | undefined;
}

/** An SQL error for the client: dblink raises it again in PostgreSQL with the same fields. */
export class WireError extends Error {
  override name = "WireError";
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly detail?: string,
    readonly hint?: string,
  ) {
    super(message);
    assert(/^[0-9A-Z]{5}$/.test(sqlstate), `A SQLSTATE is five digits or capital letters: got ${JSON.stringify(sqlstate)}`);
  }
}

export interface WireServerOptions {
  /** Loopback in practice: the password travels in clear. */
  readonly host: string;
  /** 0 asks the OS for a free port. */
  readonly port: number;
  /** Every client authenticates with it (AuthenticationCleartextPassword); compared in constant time. */
  readonly password: string;
  /** Throw a WireError for an SQL error; any other throw is logged and answered with XX000. */
  readonly onQuery: (sql: string, session: WireSession) => Promise<WireQueryResult>;
  readonly logger?: { warn(line: string): void };
  /** Default 64; beyond it a new connection gets FATAL 53300 after its startup packet. */
  readonly connectionsMax?: number;
  /** Default 1 MiB + 64 KiB; a larger message is a protocol violation (08P01) that closes the connection. */
  readonly messageBytesMax?: number;
  /** Default 60 s: a connection that sends nothing for this long is closed (FATAL 57P05). */
  readonly idleTimeoutMs?: number;
}

export interface RunningWireServer {
  readonly host: string;
  readonly port: number;
  /** Stops listening and ends every connection (FATAL 57P01); queries still running are not answered. */
  close(): Promise<void>;
}

const CONNECTIONS_MAX_DEFAULT = 64;
const MESSAGE_BYTES_MAX_DEFAULT = 1024 * 1024 + 64 * 1024;
const IDLE_TIMEOUT_MS_DEFAULT = 60_000;
/** Connections past connectionsMax that wait for their startup packet to be refused politely; more are dropped. */
const REFUSALS_MAX = 16;
/** A client may ask for GSS and then SSL encryption before its startup packet, each declined once. */
const ENCRYPTION_REQUESTS_MAX = 2;
/** Bytes a client may still send after its connection was closed by a FATAL error before it is dropped. */
const DISCARDED_BYTES_MAX = 64 * 1024;
/** After a FATAL error, how long the client has to read it and close before the connection is dropped. */
const CLOSE_GRACE_MS = 1_000;
/** PostgreSQL's limit on the columns of a row (MaxTupleAttributeNumber). */
const COLUMNS_MAX = 1664;

const SERVER_PARAMETERS: readonly (readonly [string, string])[] = [
  ["server_version", "15.0 (pgraft)"],
  ["server_encoding", "UTF8"],
  ["client_encoding", "UTF8"],
  ["DateStyle", "ISO, MDY"],
  ["integer_datetimes", "on"],
  ["standard_conforming_strings", "on"],
  ["TimeZone", "UTC"],
];

const EXTENDED_PROTOCOL_TYPES = new Set(["P", "B", "D", "E", "C", "H"]);

interface ServerContext {
  readonly options: WireServerOptions;
  readonly messageBytesMax: number;
  readonly passwordDigest: Buffer;
  nextProcessId: number;
}

type ConnectionState = "startup" | "authentication" | "ready" | "skip_until_sync" | "closed";

export async function startWireServer(options: WireServerOptions): Promise<RunningWireServer> {
  const connectionsMax = options.connectionsMax ?? CONNECTIONS_MAX_DEFAULT;
  const messageBytesMax = options.messageBytesMax ?? MESSAGE_BYTES_MAX_DEFAULT;
  const idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS_DEFAULT;
  checkOptions(options, { connectionsMax, messageBytesMax, idleTimeoutMs });
  const context: ServerContext = { options, messageBytesMax, passwordDigest: digest(Buffer.from(options.password, "utf8")), nextProcessId: 1 };
  const accepted = new Set<WireConnection>();
  const refused = new Set<WireConnection>();

  // Half-open: a client may send its last queries and close its side at once; it still gets every answer.
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    const refusing = accepted.size >= connectionsMax;
    if (refusing && refused.size >= REFUSALS_MAX) {
      socket.destroy();
      return;
    }
    const connection = new WireConnection(socket, context, refusing);
    const set = refusing ? refused : accepted;
    set.add(connection);
    socket.once("close", () => set.delete(connection));
    socket.setTimeout(idleTimeoutMs);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // After listening, a server error (rare: the OS refusing accept) is logged, never thrown.
  server.on("error", (error) => options.logger?.warn(`PostgreSQL command endpoint: server error: ${String(error)}`));
  const address = server.address();
  assert(address !== null && typeof address === "object", "A listening TCP server has an address");

  let closed: Promise<void> | undefined;
  return {
    host: address.address,
    port: address.port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const connection of [...accepted, ...refused]) connection.terminate();
      });
      return closed;
    },
  };
}

function checkOptions(options: WireServerOptions, limits: { connectionsMax: number; messageBytesMax: number; idleTimeoutMs: number }): void {
  const fail = (problem: string) => {
    throw new RangeError(`Cannot start the PostgreSQL command endpoint: ${problem}`);
  };
  if (typeof options.password !== "string" || options.password === "") fail("the password is empty; set a password clients must give");
  if (options.password.includes("\0")) fail("the password contains a zero byte, which no PostgreSQL client can send; choose another password");
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) fail(`"port" must be an integer from 0 to 65535, received ${options.port}`);
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) fail(`"${name}" must be a positive integer, received ${value}`);
  }
  if (limits.messageBytesMax < 1024) fail(`"messageBytesMax" must be at least 1024 bytes, received ${limits.messageBytesMax}`);
}

function digest(bytes: Buffer): Buffer {
  return createHash("sha256").update(bytes).digest();
}

/** One client connection: a state machine fed by frames, one at a time, in order. */
class WireConnection {
  #state: ConnectionState = "startup";
  #chunks: Buffer[] = [];
  #chunkBytes = 0;
  #bytesNeeded = 0;
  #draining = false;
  #encryptionRequests = 0;
  #discardedBytes = 0;
  #peerEnded = false;
  #session: WireSession | undefined;

  constructor(
    readonly socket: Socket,
    readonly context: ServerContext,
    readonly refusing: boolean,
  ) {
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("timeout", () => this.#onTimeout());
    // A client that resets its connection is routine: the close event that follows cleans up.
    socket.on("error", () => {});
    socket.once("end", () => {
      this.#peerEnded = true;
      if (!this.#draining) this.#finish();
    });
    socket.once("close", () => {
      this.#state = "closed";
    });
  }

  /** The server is closing: tell the client why, then drop the connection. */
  terminate(): void {
    if (this.#state === "closed") this.socket.destroy();
    else this.#fatal("57P01", "terminating connection due to administrator command");
  }

  /** The client closed its side and everything it sent is handled: close ours (a message cut short is dropped). */
  #finish(): void {
    if (this.#state !== "closed") {
      this.#state = "closed";
      this.socket.end();
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#state === "closed") {
      // The client may not have read our FATAL error yet: let it, unless it goes on talking regardless.
      this.#discardedBytes += chunk.length;
      if (this.#discardedBytes > DISCARDED_BYTES_MAX) this.socket.destroy();
      return;
    }
    this.#chunks.push(chunk);
    this.#chunkBytes += chunk.length;
    if (this.#draining || this.#chunkBytes < this.#bytesNeeded) return;
    void this.#drain();
  }

  #onTimeout(): void {
    // A client that does not read its answer is idle; one whose query still runs is not.
    if (this.#state === "closed" || this.socket.writableNeedDrain) this.socket.destroy();
    else if (!this.#draining) this.#fatal("57P05", "terminating connection due to idle-session timeout");
  }

  /** Handles every whole frame received, in order; the socket stays paused while one is handled. */
  async #drain(): Promise<void> {
    this.#draining = true;
    this.socket.pause();
    try {
      // Bounded: each turn consumes one frame of the bytes received, which the paused socket bounds.
      for (;;) {
        if (this.#state === "closed") return;
        const buffer = this.#buffered();
        const frame: Frame = this.#state === "startup" ? readStartupFrame(buffer) : readMessageFrame(buffer, this.context.messageBytesMax);
        if (frame.kind === "incomplete") {
          this.#bytesNeeded = frame.bytesNeeded;
          if (this.#peerEnded) this.#finish();
          return;
        }
        if (frame.kind === "invalid") {
          this.#fatal("08P01", frame.reason);
          return;
        }
        this.#chunks = [buffer.subarray(frame.size)];
        this.#chunkBytes -= frame.size;
        await this.#handle(frame.type, frame.body);
        await this.#writableDrained();
      }
    } catch (error) {
      this.context.options.logger?.warn(`PostgreSQL command endpoint: closing a connection after an unexpected error: ${errorText(error)}`);
      this.#state = "closed";
      this.socket.destroy();
    } finally {
      this.#draining = false;
      if (this.#state !== "closed") this.socket.resume();
    }
  }

  #buffered(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks)];
    const buffer = this.#chunks[0]!;
    assert(buffer.length === this.#chunkBytes, "The bytes buffered are the bytes counted");
    return buffer;
  }

  async #writableDrained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  async #handle(type: string, body: Buffer): Promise<void> {
    switch (this.#state) {
      case "startup":
        return this.#handleStartup(body);
      case "authentication":
        return this.#handlePassword(type, body);
      case "ready":
      case "skip_until_sync":
        return this.#handleMessage(type, body);
      case "closed":
        return;
    }
  }

  #handleStartup(body: Buffer): void {
    const packet = parseStartupPacket(body);
    switch (packet.kind) {
      case "ssl_request":
      case "gssenc_request":
        this.#encryptionRequests += 1;
        if (this.#encryptionRequests > ENCRYPTION_REQUESTS_MAX) return this.#fatal("08P01", "too many encryption requests before the startup packet");
        this.socket.write("N");
        return;
      case "cancel_request":
        // Queries here are short and cannot be cancelled: close, as PostgreSQL does after a cancel request.
        this.#state = "closed";
        this.socket.destroy();
        return;
      case "unsupported_protocol":
        return this.#fatal("0A000", `unsupported frontend protocol ${packet.major}.${packet.minor}: server supports 3.0 to 3.0`);
      case "invalid":
        return this.#fatal("08P01", packet.reason);
      case "startup":
        break;
    }
    if (this.refusing) return this.#fatal("53300", "sorry, too many clients already");
    const user = packet.parameters.get("user");
    if (user === undefined || user === "") return this.#fatal("28000", "no PostgreSQL user name specified in startup packet");
    const database = packet.parameters.get("database") || user;
    this.#session = { user, database, applicationName: packet.parameters.get("application_name") };
    if (packet.protocolMinor > 0 || packet.protocolOptions.length > 0) this.socket.write(negotiateProtocolVersion(0, packet.protocolOptions));
    this.socket.write(authenticationCleartextPassword());
    this.#state = "authentication";
  }

  #handlePassword(type: string, body: Buffer): void {
    const session = this.#session;
    assert(session !== undefined, "A connection authenticating has a session");
    if (type !== "p") return this.#fatal("08P01", `expected password response, got message type ${describeType(type)}`);
    const password = readSingleCString(body);
    if (password === undefined) return this.#fatal("08P01", "invalid password packet: expected one string ending with a zero byte");
    if (!timingSafeEqual(digest(password), this.context.passwordDigest)) {
      return this.#fatal("28P01", `password authentication failed for user "${session.user}"`);
    }
    const processId = this.context.nextProcessId;
    this.context.nextProcessId = (processId % 0x7fff_ffff) + 1;
    this.socket.write(
      Buffer.concat([
        authenticationOk(),
        ...SERVER_PARAMETERS.map(([name, value]) => parameterStatus(name, value)),
        backendKeyData(processId, randomInt(0x7fff_ffff)),
        readyForQuery(),
      ]),
    );
    this.#state = "ready";
  }

  async #handleMessage(type: string, body: Buffer): Promise<void> {
    const skipping = this.#state === "skip_until_sync";
    if (type === "X") {
      this.#state = "closed";
      this.socket.end();
    } else if (type === "S") {
      this.#state = "ready";
      this.socket.write(readyForQuery());
    } else if (EXTENDED_PROTOCOL_TYPES.has(type)) {
      if (skipping) return;
      this.#state = "skip_until_sync";
      this.socket.write(errorResponse({ severity: "ERROR", sqlstate: "0A000", message: "pgraft's command endpoint takes simple queries only", hint: "Send the command as one query string without parameters." }));
    } else if (type === "Q") {
      if (!skipping) await this.#runQuery(body);
    } else {
      this.#fatal("08P01", `invalid frontend message type ${describeType(type)}`);
    }
  }

  async #runQuery(body: Buffer): Promise<void> {
    const bytes = readSingleCString(body);
    if (bytes === undefined) return this.#fatal("08P01", "invalid Query message: expected one string ending with a zero byte");
    const sql = decodeUtf8(bytes);
    if (sql === undefined) return this.#sendError(new WireError("22021", 'invalid byte sequence for encoding "UTF8"'));
    if (sql.trim() === "") {
      this.socket.write(Buffer.concat([emptyQueryResponse(), readyForQuery()]));
      return;
    }
    const session = this.#session;
    assert(session !== undefined, "A connection that is ready has a session");
    let answer: Buffer;
    try {
      answer = encodeResult(await this.context.options.onQuery(sql, session));
    } catch (error) {
      if (error instanceof WireError) return this.#sendError(error);
      this.context.options.logger?.warn(`PostgreSQL command endpoint: the command ${JSON.stringify(sql.slice(0, 200))} failed unexpectedly: ${errorText(error)}`);
      return this.#sendError(new WireError("XX000", "Cannot run the command: the pgraft node hit an internal error", undefined, "See the pgraft node's log for the cause."));
    }
    if (this.#state === "closed") return;
    this.socket.write(Buffer.concat([answer, readyForQuery()]));
  }

  #sendError(error: WireError): void {
    if (this.#state === "closed") return;
    const fields = { severity: "ERROR", sqlstate: error.sqlstate, message: error.message, detail: error.detail, hint: error.hint } as const;
    this.socket.write(Buffer.concat([errorResponse(fields), readyForQuery()]));
  }

  /** Sends a FATAL error and closes; bytes that arrive afterwards are ignored. */
  #fatal(sqlstate: string, message: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.socket.end(errorResponse({ severity: "FATAL", sqlstate, message }));
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.socket.once("close", () => clearTimeout(timer));
  }
}

/** RowDescription (when there are columns), a DataRow per row, CommandComplete; throws on a malformed result. */
function encodeResult(result: WireQueryResult): Buffer {
  const columns = result.columns;
  if (columns.length > COLUMNS_MAX) throw new Error(`Cannot send a result of ${columns.length} columns: the limit is ${COLUMNS_MAX}`);
  for (const column of columns) {
    if (!Number.isInteger(column.typeOid) || column.typeOid < 0 || column.typeOid > 0xffff_ffff) {
      throw new Error(`Cannot send column "${column.name}": its type OID ${column.typeOid} is not an unsigned 32-bit integer`);
    }
  }
  if (columns.length === 0 && result.rows.length > 0) throw new Error(`Cannot send ${result.rows.length} rows without columns`);
  if (typeof result.command !== "string" || result.command === "") throw new Error("Cannot send a result without a command tag");
  const parts: Buffer[] = columns.length > 0 ? [rowDescription(columns)] : [];
  for (const [index, row] of result.rows.entries()) {
    if (row.length !== columns.length) throw new Error(`Cannot send row ${index}: it has ${row.length} values for ${columns.length} columns`);
    parts.push(dataRow(row));
  }
  parts.push(commandComplete(result.command));
  return Buffer.concat(parts);
}

function errorText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
