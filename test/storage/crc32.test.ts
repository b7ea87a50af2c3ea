// CRC-32 (IEEE): the published check value, agreement of the fast (slicing-by-8) and the byte-wise
// loops on every length and offset around the 8-byte stride, and prefix search.
import test from "ava";
import { crc32, crc32Bytewise, crc32Continue, crc32PrefixLength } from "../../src/storage/crc32.ts";

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

test("crc32Continue() over parts gives the CRC of the whole, wherever the parts are cut", (t) => {
  const bytes = new Uint8Array(1000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) & 0xff;
  const whole = crc32(bytes);
  for (const cuts of [[0], [1], [7, 8, 9], [333, 334, 999], [500], [1000]]) {
    let crc = 0;
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      crc = crc32Continue(crc, bytes, from, cut);
      from = cut;
    }
    t.is(crc, whole, `cut at ${cuts.join(",")}`);
  }
  t.is(crc32Continue(crc32(ascii("12345")), ascii("6789")), 0xcbf43926);
  t.not(crc32Continue(crc32(ascii("1234")), ascii("6789")), 0xcbf43926, "a missing byte changes it");
});
