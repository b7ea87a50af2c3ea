/**
 * Frames: the unit of everything that travels on a peer connection. A TCP stream has no message
 * boundaries, so every frame carries its own length, and a version byte lets a future pgraft change the
 * layout without being misread by this one.
 *
 * Layout (big-endian):
 *
 *     [u8 frame version = 1][u8 frame type][u32 payload length][payload: length bytes]
 *
 * The decoder trusts nothing it reads: an unknown version, an unknown type or a length above the bound
 * for that frame type is a FrameError, raised as soon as the 6-byte header is complete (before the
 * payload is buffered), so a hostile or confused peer can make us hold at most one bounded frame.
 */
import { assert } from "../assert.ts";

export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 6;

/** Wire codes of the frame types. Codes are never reused: a retired type keeps its number. */
export const FRAME_TYPE_CODES = {
  /** Handshake, dialer to acceptor: protocol version, cluster id, node ids, nonce. */
  hello: 1,
  /** Handshake, acceptor to dialer: its own hello fields plus its proof over both nonces. */
  challenge: 2,
  /** Handshake, dialer to acceptor: the dialer's proof over both nonces. */
  proof: 3,
  /** Handshake, acceptor to dialer: the dialer is authenticated; messages may flow. Empty payload. */
  accept: 4,
  /** Handshake, either way: the sender refuses the connection and says why, then closes it. */
  refuse: 5,
  /** One Raft message (src/transport/message-codec.ts), dialer to acceptor only. */
  message: 6,
  /** Liveness probe, dialer to acceptor. Empty payload. */
  ping: 7,
  /** Answer to a ping, acceptor to dialer. Empty payload. */
  pong: 8,
} as const;

export type FrameType = keyof typeof FRAME_TYPE_CODES;

export const FRAME_TYPES: readonly FrameType[] = Object.keys(FRAME_TYPE_CODES) as FrameType[];

const FRAME_TYPE_BY_CODE: ReadonlyMap<number, FrameType> = new Map(
  FRAME_TYPES.map((type) => [FRAME_TYPE_CODES[type], type] as const),
);

/** The default bound on a message frame's payload: room for a snapshot of a modest state machine. */
export const FRAME_PAYLOAD_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/** Handshake payloads are a few hundred bytes; this bound holds before a peer is authenticated. */
export const HANDSHAKE_PAYLOAD_BYTES_MAX = 4096;

/** The largest length the u32 field can express. */
export const FRAME_LENGTH_FIELD_MAX = 0xffff_ffff;

/** Per-type bounds; `message` is bounded by the decoder's configurable limit instead. */
const PAYLOAD_BYTES_MAX_BY_TYPE: Readonly<Record<FrameType, number>> = {
  hello: HANDSHAKE_PAYLOAD_BYTES_MAX,
  challenge: HANDSHAKE_PAYLOAD_BYTES_MAX,
  proof: HANDSHAKE_PAYLOAD_BYTES_MAX,
  accept: 0,
  refuse: HANDSHAKE_PAYLOAD_BYTES_MAX,
  message: FRAME_LENGTH_FIELD_MAX,
  ping: 0,
  pong: 0,
};

export interface Frame {
  readonly type: FrameType;
  readonly payload: Uint8Array;
}

/** Bad bytes from a peer: the connection that carried them must be closed. */
export class FrameError extends Error {
  override name = "FrameError";
  constructor(
    /** What was wrong, without the "Cannot decode frame" preamble. */
    readonly problem: string,
    /** The peer's address or name, when the decoder knows it. */
    readonly source: string | undefined,
  ) {
    super(`Cannot decode frame${source === undefined ? "" : ` from peer ${source}`}: ${problem}; closing the connection`);
  }
}

export function encodeFrame(type: FrameType, payload: Uint8Array = EMPTY): Buffer {
  assert(payload.length <= PAYLOAD_BYTES_MAX_BY_TYPE[type], `encodeFrame(): ${payload.length}-byte payload too large for a ${type} frame`);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt8(FRAME_VERSION, 0);
  frame.writeUInt8(FRAME_TYPE_CODES[type], 1);
  frame.writeUInt32BE(payload.length, 2);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

const EMPTY = new Uint8Array(0);

export interface FrameDecoderOptions {
  /** Bound on a message frame's payload; FRAME_PAYLOAD_BYTES_MAX_DEFAULT when omitted. */
  readonly payloadBytesMax?: number;
  /** Names the peer in error messages ("127.0.0.1:7002"). */
  readonly source?: string;
}

/**
 * Turns an arbitrarily split byte stream into frames. Feed chunks with `push()`, then call `next()`
 * until it returns undefined; frames come out in order, each exactly once. `next()` decodes lazily, so a
 * caller can raise the limit between frames (the connection does, once the peer is authenticated).
 *
 * After a FrameError the decoder is poisoned: every later call throws the same error.
 */
export class FrameDecoder {
  readonly source: string | undefined;
  #payloadBytesMax: number;
  /** Buffered chunks; the first `#headOffset` bytes of `#chunks[0]` are already consumed. */
  readonly #chunks: Uint8Array[] = [];
  #headOffset = 0;
  #bufferedBytes = 0;
  #error: FrameError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.#payloadBytesMax = options.payloadBytesMax ?? FRAME_PAYLOAD_BYTES_MAX_DEFAULT;
    this.source = options.source;
    checkPayloadBytesMax(this.#payloadBytesMax);
  }

  get payloadBytesMax(): number {
    return this.#payloadBytesMax;
  }

  /** Changes the bound on message payloads for frames not yet returned by `next()`. */
  set payloadBytesMax(value: number) {
    checkPayloadBytesMax(value);
    this.#payloadBytesMax = value;
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  push(chunk: Uint8Array): void {
    if (this.#error !== undefined) throw this.#error;
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#bufferedBytes += chunk.length;
  }

  /** The next complete frame, or undefined until more bytes arrive. Throws FrameError on bad bytes. */
  next(): Frame | undefined {
    if (this.#error !== undefined) throw this.#error;
    if (this.#bufferedBytes < FRAME_HEADER_BYTES) return this.#checkPartialHeader();
    const header = this.#peek(FRAME_HEADER_BYTES);
    const type = this.#checkHeader(header);
    const length = readUint32(header, 2);
    if (this.#bufferedBytes < FRAME_HEADER_BYTES + length) {
      // Bounded buffering: what stays buffered is less than one frame within its type's bound.
      assert(this.#bufferedBytes < FRAME_HEADER_BYTES + this.#limit(type), "FrameDecoder buffers beyond its bound");
      return undefined;
    }
    this.#skip(FRAME_HEADER_BYTES);
    const payload = this.#take(length);
    assert(payload.length === length, "FrameDecoder returned a payload of the wrong length");
    return { type, payload };
  }

  /** A version or type byte can be judged before the header is complete; fail as early as possible. */
  #checkPartialHeader(): undefined {
    if (this.#bufferedBytes === 0) return undefined;
    const prefix = this.#peek(Math.min(this.#bufferedBytes, 2));
    this.#checkVersion(prefix[0]!);
    if (prefix.length === 2) this.#checkType(prefix[1]!);
    return undefined;
  }

  #checkHeader(header: Uint8Array): FrameType {
    this.#checkVersion(header[0]!);
    const type = this.#checkType(header[1]!);
    const length = readUint32(header, 2);
    const limit = this.#limit(type);
    if (length > limit) {
      const where = type === "message" ? "" : ` for a ${type} frame`;
      this.#fail(`payload length ${length} exceeds the ${limit}-byte limit${where}`);
    }
    return type;
  }

  #checkVersion(version: number): void {
    if (version !== FRAME_VERSION) {
      this.#fail(`unknown frame version ${version} (this node speaks version ${FRAME_VERSION}); the peer runs an incompatible pgraft or is not pgraft`);
    }
  }

  #checkType(code: number): FrameType {
    const type = FRAME_TYPE_BY_CODE.get(code);
    if (type === undefined) this.#fail(`unknown frame type ${code}`);
    return type;
  }

  #limit(type: FrameType): number {
    return Math.min(PAYLOAD_BYTES_MAX_BY_TYPE[type], this.#payloadBytesMax);
  }

  #fail(problem: string): never {
    this.#error = new FrameError(problem, this.source);
    this.#chunks.length = 0;
    this.#headOffset = 0;
    this.#bufferedBytes = 0;
    throw this.#error;
  }

  /** Copies the first `count` buffered bytes without consuming them. */
  #peek(count: number): Uint8Array {
    assert(count <= this.#bufferedBytes, "peek() beyond the buffered bytes");
    const head = this.#chunks[0]!;
    if (head.length - this.#headOffset >= count) return head.subarray(this.#headOffset, this.#headOffset + count);
    const bytes = new Uint8Array(count);
    let filled = 0;
    for (let i = 0; filled < count; i++) {
      const chunk = this.#chunks[i]!;
      const start = i === 0 ? this.#headOffset : 0;
      const part = chunk.subarray(start, Math.min(chunk.length, start + count - filled));
      bytes.set(part, filled);
      filled += part.length;
    }
    return bytes;
  }

  #skip(count: number): void {
    this.#copyOut(count, undefined);
  }

  /** Consumes `count` bytes into a fresh array (never a view that would pin a large socket chunk). */
  #take(count: number): Uint8Array {
    const bytes = new Uint8Array(count);
    this.#copyOut(count, bytes);
    return bytes;
  }

  #copyOut(count: number, target: Uint8Array | undefined): void {
    assert(count <= this.#bufferedBytes, "consume() beyond the buffered bytes");
    let copied = 0;
    while (copied < count) {
      const head = this.#chunks[0]!;
      const available = head.length - this.#headOffset;
      const part = Math.min(available, count - copied);
      target?.set(head.subarray(this.#headOffset, this.#headOffset + part), copied);
      copied += part;
      this.#headOffset += part;
      if (this.#headOffset === head.length) {
        this.#chunks.shift();
        this.#headOffset = 0;
      }
    }
    this.#bufferedBytes -= count;
  }
}

function checkPayloadBytesMax(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > FRAME_LENGTH_FIELD_MAX) {
    throw new RangeError(`Cannot configure the frame decoder: "payloadBytesMax" must be an integer from 0 to ${FRAME_LENGTH_FIELD_MAX}, received ${value}`);
  }
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) >>> 0) + (bytes[offset + 1]! << 16) + (bytes[offset + 2]! << 8) + bytes[offset + 3]!;
}
