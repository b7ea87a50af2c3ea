/**
 * Frames: encode/decode round trips, delivery of the same byte stream split at every possible point
 * (and merged into one chunk), and the typed FrameError for each kind of bad header, raised before the
 * payload is buffered.
 */
import test from "ava";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_BYTES_MAX_DEFAULT,
  FRAME_TYPES,
  FrameDecoder,
  FrameError,
  HANDSHAKE_PAYLOAD_BYTES_MAX,
  type Frame,
} from "../../src/transport/frame.ts";

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function decodeAll(decoder: FrameDecoder, chunks: readonly Uint8Array[]): Frame[] {
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) frames.push(frame);
  }
  return frames;
}

function simplify(frames: readonly Frame[]): Array<[string, string]> {
  return frames.map((frame) => [frame.type, Buffer.from(frame.payload).toString("hex")]);
}

const STREAM_FRAMES: readonly Frame[] = [
  { type: "hello", payload: bytes('{"hello":1}') },
  { type: "ping", payload: new Uint8Array(0) },
  { type: "message", payload: bytes("x".repeat(300)) },
  { type: "accept", payload: new Uint8Array(0) },
  { type: "message", payload: bytes('{"type":"MsgTimeoutNow"}') },
];

function stream(): Buffer {
  return Buffer.concat(STREAM_FRAMES.map((frame) => encodeFrame(frame.type, frame.payload)));
}

test("encodeFrame() writes version 1, the type code and a big-endian u32 length", (t) => {
  const frame = encodeFrame("message", bytes("abc"));
  t.deepEqual([...frame], [1, 6, 0, 0, 0, 3, 97, 98, 99]);
  t.is(encodeFrame("ping").length, FRAME_HEADER_BYTES);
});

test("FrameDecoder round-trips every frame type", (t) => {
  for (const type of FRAME_TYPES) {
    const payload = type === "ping" || type === "pong" || type === "accept" ? new Uint8Array(0) : bytes(`payload of ${type}`);
    const frames = decodeAll(new FrameDecoder(), [encodeFrame(type, payload)]);
    t.deepEqual(simplify(frames), simplify([{ type, payload }]), type);
  }
});

test("FrameDecoder yields the same frames whatever the split point of the stream", (t) => {
  const whole = stream();
  const expected = simplify(STREAM_FRAMES);
  t.deepEqual(simplify(decodeAll(new FrameDecoder(), [whole])), expected, "one merged chunk");
  for (let split = 0; split <= whole.length; split++) {
    const frames = decodeAll(new FrameDecoder(), [whole.subarray(0, split), whole.subarray(split)]);
    t.deepEqual(simplify(frames), expected, `split at ${split}`);
  }
  for (let first = 1; first < whole.length; first += 7) {
    for (let second = first + 1; second < whole.length; second += 11) {
      const chunks = [whole.subarray(0, first), whole.subarray(first, second), whole.subarray(second)];
      t.deepEqual(simplify(decodeAll(new FrameDecoder(), chunks)), expected, `splits at ${first} and ${second}`);
    }
  }
  t.deepEqual(simplify(decodeAll(new FrameDecoder(), [...whole].map((byte) => Uint8Array.of(byte)))), expected, "byte by byte");
});

test("FrameDecoder buffers no more than one incomplete frame", (t) => {
  const decoder = new FrameDecoder();
  const frame = encodeFrame("message", bytes("y".repeat(1000)));
  decoder.push(frame.subarray(0, 500));
  t.is(decoder.next(), undefined);
  t.is(decoder.bufferedBytes, 500);
  decoder.push(frame.subarray(500));
  t.is(decoder.next()?.payload.length, 1000);
  t.is(decoder.bufferedBytes, 0);
  t.is(decoder.next(), undefined);
});

test("FrameDecoder refuses a length above the limit as soon as the header is complete", (t) => {
  const decoder = new FrameDecoder({ source: "127.0.0.1:7002" });
  decoder.push(Uint8Array.of(1, 6, 0xff, 0xff, 0xff, 0xff));
  const error = t.throws(() => decoder.next(), { instanceOf: FrameError });
  t.is(
    error?.message,
    `Cannot decode frame from peer 127.0.0.1:7002: payload length 4294967295 exceeds the ${FRAME_PAYLOAD_BYTES_MAX_DEFAULT}-byte limit; closing the connection`,
  );
  t.is(error?.source, "127.0.0.1:7002");
  // Poisoned: the same error again, and no buffered bytes kept.
  t.throws(() => decoder.push(Uint8Array.of(1)), { is: error });
  t.throws(() => decoder.next(), { is: error });
  t.is(decoder.bufferedBytes, 0);
});

test("FrameDecoder enforces the per-type bounds and a configurable message bound", (t) => {
  const small = new FrameDecoder({ payloadBytesMax: 10 });
  small.push(encodeFrame("message", bytes("x".repeat(11))));
  t.throws(() => small.next(), { instanceOf: FrameError, message: /payload length 11 exceeds the 10-byte limit/ });

  const hello = new FrameDecoder();
  hello.push(Uint8Array.of(1, 1, 0, 0, 0x10, 0x01)); // 4097 bytes announced for a hello
  t.throws(() => hello.next(), { message: new RegExp(`exceeds the ${HANDSHAKE_PAYLOAD_BYTES_MAX}-byte limit for a hello frame`) });

  const ping = new FrameDecoder();
  ping.push(Uint8Array.of(1, 7, 0, 0, 0, 1, 0));
  t.throws(() => ping.next(), { message: /payload length 1 exceeds the 0-byte limit for a ping frame/ });

  const raised = new FrameDecoder({ payloadBytesMax: 4 });
  raised.push(encodeFrame("message", bytes("12345")));
  raised.payloadBytesMax = 5; // Raised before next(): the frame is judged by the new bound.
  t.is(raised.next()?.payload.length, 5);
  t.throws(() => new FrameDecoder({ payloadBytesMax: -1 }), { instanceOf: RangeError });
});

test("FrameDecoder rejects an unknown version or type from its first bytes", (t) => {
  const version = new FrameDecoder();
  version.push(Uint8Array.of(2));
  t.throws(() => version.next(), { instanceOf: FrameError, message: /unknown frame version 2 \(this node speaks version 1\)/ });

  const type = new FrameDecoder();
  type.push(Uint8Array.of(1, 0));
  t.throws(() => type.next(), { instanceOf: FrameError, message: /unknown frame type 0/ });

  const http = new FrameDecoder({ source: "10.0.0.9:4000" });
  http.push(bytes("GET / HTTP/1.1\r\n\r\n"));
  t.throws(() => http.next(), { message: /^Cannot decode frame from peer 10\.0\.0\.9:4000: unknown frame version 71/ });
});

test("FrameDecoder returns the frames before a bad one, then fails", (t) => {
  const decoder = new FrameDecoder();
  decoder.push(Buffer.concat([encodeFrame("ping"), encodeFrame("pong"), Buffer.from([9, 9, 9])]));
  t.is(decoder.next()?.type, "ping");
  t.is(decoder.next()?.type, "pong");
  t.throws(() => decoder.next(), { instanceOf: FrameError });
});
