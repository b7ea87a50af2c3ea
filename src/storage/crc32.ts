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

/**
 * Slicing-by-8 tables (Intel's method): SLICES[k][b] is the CRC of byte b followed by k zero bytes, so
 * eight input bytes fold into the CRC with eight lookups and no per-byte shift chain. Two to three times
 * the speed of the one-table loop, which matters for snapshots of tens of megabytes (every byte of
 * every record is checksummed on write and on read).
 */
const SLICES: readonly Uint32Array[] = (() => {
  const slices = [TABLE];
  for (let k = 1; k < 8; k++) {
    const previous = slices[k - 1]!;
    const table = new Uint32Array(256);
    for (let byte = 0; byte < 256; byte++) table[byte] = (TABLE[previous[byte]! & 0xff]! ^ (previous[byte]! >>> 8)) >>> 0;
    slices.push(table);
  }
  return slices;
})();

/** The CRC-32 of `bytes[start, end)`, as an unsigned 32-bit integer. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return crc32Continue(0, bytes, start, end);
}

/**
 * The CRC-32 of what `previous` was the CRC of, followed by `bytes[start, end)`: a payload written in
 * parts (a snapshot saved off the event loop) is checksummed part by part, with the result of one pass.
 * `previous` is 0 for the first part.
 */
export function crc32Continue(previous: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  checkRange(bytes, start, end);
  const [t0, t1, t2, t3, t4, t5, t6, t7] = SLICES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let crc = (previous ^ 0xffffffff) >>> 0;
  let i = start;
  for (const last8 = end - 8; i <= last8; i += 8) {
    const low = (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    crc =
      t7[low & 0xff]! ^
      t6[(low >>> 8) & 0xff]! ^
      t5[(low >>> 16) & 0xff]! ^
      t4[low >>> 24]! ^
      t3[bytes[i + 4]!]! ^
      t2[bytes[i + 5]!]! ^
      t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!;
  }
  for (; i < end; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The one-table CRC, byte by byte: the reference the fast one is tested against. */
export function crc32Bytewise(bytes: Uint8Array, start = 0, end = bytes.length): number {
  checkRange(bytes, start, end);
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
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
