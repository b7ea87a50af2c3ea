/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib, PNG and Ethernet), table-driven, over Uint8Array.
 *
 * Every record the storage layer writes carries one, so that a byte flipped on disk is noticed when the
 * record is read back instead of being replayed into the Raft log. The same code runs in the simulator and
 * in production, so it must not depend on node:zlib.
 */

import { assert } from "../assert.ts";

const POLYNOMIAL_REFLECTED = 0xedb88320;

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let value = byte;
    for (let bit = 0; bit < 8; bit++) {
      value = value & 1 ? (value >>> 1) ^ POLYNOMIAL_REFLECTED : value >>> 1;
    }
    table[byte] = value >>> 0;
  }
  return table;
})();

/** The CRC-32 of `bytes[start, end)`, as an unsigned 32-bit integer. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  checkRange(bytes, start, end);
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) {
    crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * The smallest length `n >= 1` such that `crc32(bytes, start, start + n) === expected`, with `start + n <= end`,
 * or -1 when no prefix of `bytes[start, end)` has that checksum. One pass, whatever the answer.
 *
 * The storage layer uses it to tell a torn write from a damaged length field: when a record's length
 * points past the end of the file, but some prefix of the bytes that follow carries the record's own
 * checksum, the payload was written whole and it is the length that was damaged afterwards.
 */
export function crc32PrefixLength(bytes: Uint8Array, start: number, end: number, expected: number): number {
  checkRange(bytes, start, end);
  const target = expected >>> 0;
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) {
    crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
    if ((crc ^ 0xffffffff) >>> 0 === target) return i + 1 - start;
  }
  return -1;
}

function checkRange(bytes: Uint8Array, start: number, end: number): void {
  assert(Number.isInteger(start) && Number.isInteger(end), `crc32: range [${start}, ${end}) is not integral`);
  assert(0 <= start && start <= end && end <= bytes.length, `crc32: range [${start}, ${end}) is outside ${bytes.length} bytes`);
}
