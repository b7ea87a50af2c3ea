// CRC-32 (IEEE): the published check value, agreement of the fast (slicing-by-8) and the byte-wise
// loops on every length and offset around the 8-byte stride, and prefix search.
import test from "ava";
import { crc32, crc32Bytewise, crc32PrefixLength } from "../../src/storage/crc32.ts";

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

test("crc32() gives the standard check value and zlib's values", (t) => {
  t.is(crc32(ascii("123456789")), 0xcbf43926);
  t.is(crc32(new Uint8Array(0)), 0);
  t.is(crc32(ascii("The quick brown fox jumps over the lazy dog")), 0x414fa339);
});

test("the slicing-by-8 loop agrees with the byte-wise loop on every length, offset and byte value", (t) => {
  let state = 12345;
  const bytes = new Uint8Array(300);
  for (let i = 0; i < bytes.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  bytes.fill(0xff, 100, 140);
  let checked = 0;
  for (let start = 0; start < 20; start++) {
    for (let end = start; end <= bytes.length; end++) {
      if (crc32(bytes, start, end) !== crc32Bytewise(bytes, start, end)) {
        t.fail(`crc32 differs for [${start}, ${end})`);
        return;
      }
      checked++;
    }
  }
  t.true(checked > 5_000);
});

test("crc32PrefixLength() finds the shortest prefix with a given checksum", (t) => {
  const bytes = ascii("123456789 and more");
  t.is(crc32PrefixLength(bytes, 0, bytes.length, 0xcbf43926), 9);
  t.is(crc32PrefixLength(bytes, 0, 8, 0xcbf43926), -1);
});
