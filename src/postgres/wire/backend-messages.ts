/**
 * What the server sends (PostgreSQL frontend/backend protocol 3.0): each function encodes one backend
 * message, type byte and length included. Text is UTF-8; a zero byte inside a C string would end it early
 * and shift every field after it, so C strings drop them.
 */

export interface ColumnDescription {
  readonly name: string;
  readonly typeOid: number;
}

export interface ErrorFields {
  readonly severity: "ERROR" | "FATAL";
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string | undefined;
  readonly hint?: string | undefined;
}

/** Fixed sizes of the types clients meet here (pg_type.typlen); -1 means variable length. */
const TYPE_LENGTHS: ReadonlyMap<number, number> = new Map([
  [16, 1], // bool
  [20, 8], // int8
  [21, 2], // int2
  [23, 4], // int4
  [26, 4], // oid
  [700, 4], // float4
  [701, 8], // float8
]);

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, "latin1");
  header.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}

function int32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32BE(value);
  return bytes;
}

function cString(text: string): Buffer {
  return Buffer.from(`${text.replaceAll("\0", "")}\0`, "utf8");
}

export function authenticationOk(): Buffer {
  return message("R", int32(0));
}

export function authenticationCleartextPassword(): Buffer {
  return message("R", int32(3));
}

/** Tells a client that asked for protocol 3.x (x > 0) or "_pq_." options that we speak 3.0 without them. */
export function negotiateProtocolVersion(minorSupported: number, optionsUnrecognized: readonly string[]): Buffer {
  return message("v", Buffer.concat([int32(minorSupported), int32(optionsUnrecognized.length), ...optionsUnrecognized.map(cString)]));
}

export function parameterStatus(name: string, value: string): Buffer {
  return message("S", Buffer.concat([cString(name), cString(value)]));
}

export function backendKeyData(processId: number, secretKey: number): Buffer {
  return message("K", Buffer.concat([int32(processId), int32(secretKey)]));
}

/** Status "I": idle, not in a transaction block (this server has none). */
export function readyForQuery(): Buffer {
  return message("Z", Buffer.from("I", "latin1"));
}

export function emptyQueryResponse(): Buffer {
  return message("I", Buffer.alloc(0));
}

/** Every column in text format, belonging to no table, without a type modifier. */
export function rowDescription(columns: readonly ColumnDescription[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeInt16BE(columns.length);
  for (const column of columns) {
    const field = Buffer.alloc(18);
    field.writeInt32BE(0, 0); // table OID
    field.writeInt16BE(0, 4); // column number
    field.writeUInt32BE(column.typeOid, 6);
    field.writeInt16BE(TYPE_LENGTHS.get(column.typeOid) ?? -1, 10);
    field.writeInt32BE(-1, 12); // type modifier
    field.writeInt16BE(0, 16); // format: text
    parts.push(cString(column.name), field);
  }
  return message("T", Buffer.concat(parts));
}

/** One row in text format; null is a length of -1 without bytes. */
export function dataRow(values: readonly (string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeInt16BE(values.length);
  for (const value of values) {
    if (value === null) {
      parts.push(int32(-1));
    } else {
      const bytes = Buffer.from(value, "utf8");
      parts.push(int32(bytes.length), bytes);
    }
  }
  return message("D", Buffer.concat(parts));
}

export function commandComplete(tag: string): Buffer {
  return message("C", cString(tag));
}

/** S (localized severity) and V (the same, never localized), C (SQLSTATE), M, and D and H when given. */
export function errorResponse(fields: ErrorFields): Buffer {
  const parts: Buffer[] = [];
  const field = (code: string, value: string | undefined) => {
    if (value !== undefined) parts.push(Buffer.from(code, "latin1"), cString(value));
  };
  field("S", fields.severity);
  field("V", fields.severity);
  field("C", fields.sqlstate);
  field("M", fields.message);
  field("D", fields.detail);
  field("H", fields.hint);
  parts.push(Buffer.alloc(1));
  return message("E", Buffer.concat(parts));
}
