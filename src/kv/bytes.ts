/**
 * Keys and values are byte strings everywhere (etcd's model): JS strings whose char codes are 0-255,
 * one char per byte (latin1). Any bytes are allowed, comparing two byte strings with < is comparing
 * their bytes (so sorted keys are in etcd's byte order), and ASCII text is its own byte string. The
 * client APIs turn bytes into byte strings when they decode a request and back when they encode the
 * answer; nothing in between ever re-encodes them.
 */

const NOT_A_BYTE = /[^\x00-\xff]/;

export function toByteString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

export function fromByteString(text: string): Buffer {
  return Buffer.from(text, "latin1");
}

/** True when every char is one byte (code 0-255). */
export function isByteString(text: string): boolean {
  return !NOT_A_BYTE.test(text);
}
