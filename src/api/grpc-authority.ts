/**
 * Go's etcd client (clientv3 3.4, so etcdctl) dials single endpoints, for Maintenance.Status among
 * others, as "passthrough:///http://127.0.0.1:2379", and grpc-go then sends the whole endpoint as the
 * request's :authority. Go's HTTP/2 server takes it; Node's (nghttp2) refuses an authority holding "/"
 * and resets the stream with PROTOCOL_ERROR, so `etcdctl endpoint status` would fail.
 *
 * AuthorityFixer sits between a gRPC connection's socket and Node's HTTP/2 server and rewrites the
 * client's header blocks: it decodes each (HPACK, RFC 7541, keeping the client's dynamic table), turns
 * an authority such as "http://host:port" into "host:port", and re-encodes every field as a literal
 * that is never indexed, so the server's table stays empty and the two sides cannot drift. Every other
 * frame, and everything the server sends, passes through unchanged.
 */
import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { HUFFMAN_CODE_BITS, HUFFMAN_CODES, STATIC_TABLE } from "./grpc-hpack-tables.ts";

const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const FRAME_HEADERS = 0x1;
const FRAME_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** SETTINGS_MAX_FRAME_SIZE's default: what Node's server accepts unless it says otherwise. */
const FRAME_PAYLOAD_BYTES_MAX = 16_384;
/** One header block (all its frames) may be at most this large; Node's own limit is lower. */
const HEADER_BLOCK_BYTES_MAX = 256 * 1024;
/** SETTINGS_HEADER_TABLE_SIZE's default, which Node's server keeps. */
const DYNAMIC_TABLE_BYTES_MAX = 4096;

export class HpackError extends Error {
  override name = "HpackError";
}

interface HeaderField {
  readonly name: string;
  readonly value: string;
  readonly neverIndexed: boolean;
}

interface HuffmanNode {
  symbol?: number;
  children: (HuffmanNode | undefined)[];
}

let huffmanRoot: HuffmanNode | undefined;

function huffmanTree(): HuffmanNode {
  if (huffmanRoot !== undefined) return huffmanRoot;
  const root: HuffmanNode = { children: [] };
  for (let symbol = 0; symbol < HUFFMAN_CODES.length; symbol++) {
    const code = HUFFMAN_CODES[symbol]!;
    const bits = HUFFMAN_CODE_BITS[symbol]!;
    let node = root;
    for (let bit = bits - 1; bit >= 0; bit--) {
      const branch = Math.floor(code / 2 ** bit) % 2;
      node = node.children[branch] ??= { children: [] };
    }
    node.symbol = symbol;
  }
  huffmanRoot = root;
  return root;
}

export function huffmanDecode(bytes: Buffer): Buffer {
  const root = huffmanTree();
  const out: number[] = [];
  let node = root;
  let depth = 0;
  let allOnes = true;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const branch = (byte >> bit) & 1;
      const next = node.children[branch];
      if (next === undefined) throw new HpackError("invalid Huffman code");
      depth++;
      allOnes &&= branch === 1;
      if (next.symbol !== undefined) {
        if (next.symbol === 256) throw new HpackError("EOS inside a Huffman string");
        out.push(next.symbol);
        node = root;
        depth = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  // Padding: fewer than 8 bits, all ones (the start of EOS).
  if (depth > 7 || !allOnes) throw new HpackError("invalid Huffman padding");
  return Buffer.from(out);
}

/** HPACK's decoder for one connection (RFC 7541, section 3): keeps the peer's dynamic table. */
export class HpackDecoder {
  #table: [string, string][] = [];
  #tableBytes = 0;
  #tableBytesMax = DYNAMIC_TABLE_BYTES_MAX;

  decode(block: Buffer): HeaderField[] {
    const fields: HeaderField[] = [];
    let offset = 0;
    const integer = (prefixBits: number): number => {
      if (offset >= block.length) throw new HpackError("truncated integer");
      const mask = (1 << prefixBits) - 1;
      let value = block[offset++]! & mask;
      if (value < mask) return value;
      for (let shift = 0; ; shift += 7) {
        if (offset >= block.length || shift > 28) throw new HpackError("bad integer");
        const byte = block[offset++]!;
        value += (byte & 0x7f) * 2 ** shift;
        if ((byte & 0x80) === 0) return value;
      }
    };
    const string = (): string => {
      if (offset >= block.length) throw new HpackError("truncated string");
      const huffman = (block[offset]! & 0x80) !== 0;
      const length = integer(7);
      if (offset + length > block.length) throw new HpackError("truncated string");
      const raw = block.subarray(offset, offset + length);
      offset += length;
      return (huffman ? huffmanDecode(raw) : raw).toString("latin1");
    };
    const entry = (index: number): readonly [string, string] => {
      if (index >= 1 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
      const dynamic = this.#table[index - STATIC_TABLE.length - 1];
      if (dynamic === undefined) throw new HpackError(`index ${index} is in neither table`);
      return dynamic;
    };
    while (offset < block.length) {
      const first = block[offset]!;
      if (first & 0x80) {
        const [name, value] = entry(integer(7));
        fields.push({ name, value, neverIndexed: false });
      } else if (first & 0x40) {
        const nameIndex = integer(6);
        const name = nameIndex === 0 ? string() : entry(nameIndex)[0];
        const value = string();
        this.#insert(name, value);
        fields.push({ name, value, neverIndexed: false });
      } else if (first & 0x20) {
        const size = integer(5);
        if (size > DYNAMIC_TABLE_BYTES_MAX) throw new HpackError(`table size ${size} above ${DYNAMIC_TABLE_BYTES_MAX}`);
        this.#tableBytesMax = size;
        this.#evict();
      } else {
        const neverIndexed = (first & 0x10) !== 0;
        const nameIndex = integer(4);
        const name = nameIndex === 0 ? string() : entry(nameIndex)[0];
        fields.push({ name, value: string(), neverIndexed });
      }
    }
    return fields;
  }

  #insert(name: string, value: string): void {
    this.#table.unshift([name, value]);
    this.#tableBytes += name.length + value.length + 32;
    this.#evict();
  }

  #evict(): void {
    while (this.#tableBytes > this.#tableBytesMax) {
      const [name, value] = this.#table.pop()!;
      this.#tableBytes -= name.length + value.length + 32;
    }
  }
}

function encodeInteger(out: number[], first: number, prefixBits: number, value: number): void {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    out.push(first | value);
    return;
  }
  out.push(first | mask);
  let rest = value - mask;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

/** Every field as a literal that is not indexed (never-indexed kept), with a literal name, no Huffman. */
export function encodeHeaderBlock(fields: readonly HeaderField[]): Buffer {
  const out: number[] = [];
  for (const field of fields) {
    out.push(field.neverIndexed ? 0x10 : 0x00);
    for (const text of [field.name, field.value]) {
      encodeInteger(out, 0, 7, text.length);
      for (let i = 0; i < text.length; i++) out.push(text.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** "http://host:port/..." as "host:port"; a valid authority as it is. */
export function fixAuthority(value: string): string {
  const withoutScheme = value.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, "");
  const slash = withoutScheme.indexOf("/");
  return slash < 0 ? withoutScheme : withoutScheme.slice(0, slash);
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** Rewrites the client-to-server bytes of one HTTP/2 connection (see the top of the file). */
export class ClientFrameRewriter {
  readonly #decoder = new HpackDecoder();
  #buffer: Buffer = Buffer.alloc(0);
  #prefaceLeft = PREFACE_BYTES;
  #open: { streamId: number; flags: number; priority: Buffer; fragments: Buffer[]; bytes: number } | undefined;

  /** The bytes to hand on for `chunk` (HpackError on a malformed stream). */
  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    if (this.#prefaceLeft > 0) {
      const preface = chunk.subarray(0, this.#prefaceLeft);
      this.#prefaceLeft -= preface.length;
      out.push(preface);
      chunk = chunk.subarray(preface.length);
    }
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= FRAME_HEADER_BYTES) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (length > HEADER_BLOCK_BYTES_MAX) throw new HpackError(`a frame of ${length} bytes`);
      if (this.#buffer.length < FRAME_HEADER_BYTES + length) break;
      const whole = this.#buffer.subarray(0, FRAME_HEADER_BYTES + length);
      this.#buffer = this.#buffer.subarray(FRAME_HEADER_BYTES + length);
      out.push(...this.#frame(whole));
    }
    return Buffer.concat(out);
  }

  #frame(whole: Buffer): Buffer[] {
    const type = whole[3]!;
    const flags = whole[4]!;
    const streamId = whole.readUInt32BE(5) & 0x7fffffff;
    let payload = whole.subarray(FRAME_HEADER_BYTES);
    if (this.#open !== undefined && (type !== FRAME_CONTINUATION || streamId !== this.#open.streamId)) {
      throw new HpackError("a header block was interrupted by another frame");
    }
    if (type === FRAME_HEADERS) {
      if (flags & FLAG_PADDED) {
        const padding = payload[0] ?? 0;
        if (padding + 1 > payload.length) throw new HpackError("padding longer than the frame");
        payload = payload.subarray(1, payload.length - padding);
      }
      let priority = Buffer.alloc(0);
      if (flags & FLAG_PRIORITY) {
        priority = Buffer.from(payload.subarray(0, 5));
        payload = payload.subarray(5);
      }
      this.#open = { streamId, flags, priority, fragments: [Buffer.from(payload)], bytes: payload.length };
    } else if (type === FRAME_CONTINUATION) {
      if (this.#open === undefined) throw new HpackError("CONTINUATION without HEADERS");
      this.#open.fragments.push(Buffer.from(payload));
      this.#open.bytes += payload.length;
      if (this.#open.bytes > HEADER_BLOCK_BYTES_MAX) throw new HpackError("header block too large");
    } else {
      return [Buffer.from(whole)];
    }
    if ((flags & FLAG_END_HEADERS) === 0) return [];
    const open = this.#open!;
    this.#open = undefined;
    const fields = this.#decoder.decode(Buffer.concat(open.fragments)).map((field) => (field.name === ":authority" ? { ...field, value: fixAuthority(field.value) } : field));
    const block = Buffer.concat([open.priority, encodeHeaderBlock(fields)]);
    const frames: Buffer[] = [];
    for (let offset = 0; offset === 0 || offset < block.length; offset += FRAME_PAYLOAD_BYTES_MAX) {
      const last = offset + FRAME_PAYLOAD_BYTES_MAX >= block.length;
      const part = block.subarray(offset, offset + FRAME_PAYLOAD_BYTES_MAX);
      if (offset === 0) frames.push(frame(FRAME_HEADERS, (open.flags & (FLAG_END_STREAM | FLAG_PRIORITY)) | (last ? FLAG_END_HEADERS : 0), open.streamId, part));
      else frames.push(frame(FRAME_CONTINUATION, last ? FLAG_END_HEADERS : 0, open.streamId, part));
    }
    return frames;
  }
}

/** `socket` with its incoming bytes through a ClientFrameRewriter: hand this to the HTTP/2 server. */
export class AuthorityFixer extends Duplex {
  readonly #socket: Socket;
  readonly #rewriter = new ClientFrameRewriter();

  constructor(socket: Socket) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      let out: Buffer;
      try {
        out = this.#rewriter.push(chunk);
      } catch (error) {
        this.destroy(error as Error);
        return;
      }
      if (out.length > 0 && !this.push(out)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (error) => this.destroy(error));
    socket.on("close", () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.#socket.remoteFamily;
  }

  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }

  get localPort(): number | undefined {
    return this.#socket.localPort;
  }

  setNoDelay(noDelay?: boolean): this {
    this.#socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelayMs?: number): this {
    this.#socket.setKeepAlive(enable, initialDelayMs);
    return this;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#socket.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(error);
  }
}
