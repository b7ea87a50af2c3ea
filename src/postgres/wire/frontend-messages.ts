/**
 * What a PostgreSQL client sends (frontend/backend protocol 3.0), read from a byte buffer: the untyped
 * startup packet that opens a connection, then typed messages (one type byte, a length, a body). Pure
 * functions: they say whether a whole frame is there yet, and refuse a declared length that is too small
 * or too large as soon as its header arrives, so a connection never buffers beyond one message's limit.
 */

export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
/** PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const STARTUP_PACKET_BYTES_MAX = 10_000;

export type Frame =
  | { readonly kind: "incomplete"; readonly bytesNeeded: number }
  | { readonly kind: "complete"; readonly type: string; readonly body: Buffer; readonly size: number }
  | { readonly kind: "invalid"; readonly reason: string };

/** The startup packet has no type byte: a length (counting itself), then the body. Its `type` is "". */
export function readStartupFrame(buffer: Buffer): Frame {
  if (buffer.length < 4) return { kind: "incomplete", bytesNeeded: 4 };
  const length = buffer.readInt32BE(0);
  if (length < 8 || length > STARTUP_PACKET_BYTES_MAX) {
    return { kind: "invalid", reason: `invalid length of startup packet: ${length} bytes, expected 8 to ${STARTUP_PACKET_BYTES_MAX}` };
  }
  if (buffer.length < length) return { kind: "incomplete", bytesNeeded: length };
  return { kind: "complete", type: "", body: buffer.subarray(4, length), size: length };
}

/** A typed message: one type byte, a length that counts itself but not the type byte, then the body. */
export function readMessageFrame(buffer: Buffer, messageBytesMax: number): Frame {
  if (buffer.length < 5) return { kind: "incomplete", bytesNeeded: 5 };
  const type = String.fromCharCode(buffer[0]!);
  const length = buffer.readInt32BE(1);
  if (length < 4) return { kind: "invalid", reason: `invalid message length ${length} for message type ${describeType(type)}` };
  if (length > messageBytesMax) {
    return { kind: "invalid", reason: `message of type ${describeType(type)} is ${length} bytes long, more than the limit of ${messageBytesMax}` };
  }
  if (buffer.length < 1 + length) return { kind: "incomplete", bytesNeeded: 1 + length };
  return { kind: "complete", type, body: buffer.subarray(5, 1 + length), size: 1 + length };
}

/** A message type for an error message: the letter when printable, else its code. */
export function describeType(type: string): string {
  const code = type.charCodeAt(0);
  return code >= 0x21 && code <= 0x7e ? `"${type}"` : `0x${code.toString(16).padStart(2, "0")}`;
}

export type StartupPacket =
  | { readonly kind: "ssl_request" }
  | { readonly kind: "gssenc_request" }
  | { readonly kind: "cancel_request" }
  | { readonly kind: "startup"; readonly protocolMinor: number; readonly parameters: ReadonlyMap<string, string>; readonly protocolOptions: readonly string[] }
  | { readonly kind: "unsupported_protocol"; readonly major: number; readonly minor: number }
  | { readonly kind: "invalid"; readonly reason: string };

/** Parses a startup packet's body (after its length): a 32-bit code, then for 3.x name/value C strings. */
export function parseStartupPacket(body: Buffer): StartupPacket {
  const code = body.readInt32BE(0);
  if (code === SSL_REQUEST_CODE) return body.length === 4 ? { kind: "ssl_request" } : { kind: "invalid", reason: "invalid SSLRequest packet length" };
  if (code === GSSENC_REQUEST_CODE) return body.length === 4 ? { kind: "gssenc_request" } : { kind: "invalid", reason: "invalid GSSENCRequest packet length" };
  if (code === CANCEL_REQUEST_CODE) return { kind: "cancel_request" };
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) return { kind: "unsupported_protocol", major, minor };
  const strings = splitCStrings(body.subarray(4));
  if (strings === undefined) return { kind: "invalid", reason: "invalid startup packet layout: expected a terminator as last byte and UTF-8 text" };
  // Name/value pairs, then one empty name as the terminator.
  if (strings.length % 2 !== 1 || strings[strings.length - 1] !== "") {
    return { kind: "invalid", reason: "invalid startup packet layout: expected name/value pairs ending with an empty name" };
  }
  const parameters = new Map<string, string>();
  const protocolOptions: string[] = [];
  for (let index = 0; index + 1 < strings.length; index += 2) {
    const name = strings[index]!;
    if (name === "") return { kind: "invalid", reason: "invalid startup packet layout: a parameter name is empty" };
    // "_pq_." names are protocol extensions: none is supported, and the client is told so.
    if (name.startsWith("_pq_.")) protocolOptions.push(name);
    else parameters.set(name, strings[index + 1]!);
  }
  return { kind: "startup", protocolMinor: minor, parameters, protocolOptions };
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes UTF-8, or undefined when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Splits bytes that end with a zero byte into the C strings they hold; undefined when malformed. */
function splitCStrings(bytes: Buffer): string[] | undefined {
  if (bytes.length === 0 || bytes[bytes.length - 1] !== 0) return undefined;
  const strings: string[] = [];
  let start = 0;
  while (start < bytes.length) {
    const end = bytes.indexOf(0, start);
    const text = decodeUtf8(bytes.subarray(start, end));
    if (text === undefined) return undefined;
    strings.push(text);
    start = end + 1;
  }
  return strings;
}

/**
 * The bytes of a body that must be exactly one C string (Query, PasswordMessage): everything before its
 * only zero byte, which must be the last one; undefined otherwise.
 */
export function readSingleCString(body: Buffer): Buffer | undefined {
  if (body.length === 0 || body.indexOf(0) !== body.length - 1) return undefined;
  return body.subarray(0, body.length - 1);
}
