/**
 * Fuzzing the receive path: well over 100,000 malformed or mutated inputs (random bytes, bit flips,
 * truncations, lying length fields, valid frames whose JSON fields were mutated, handshake frames
 * mutated at each handshake step) go through the frame decoder, the message codec and the handshake
 * state machines, in randomly split chunks. The only exceptions allowed are FrameError and
 * MessageDecodeError (the handshake turns bad input into refusals and must not throw at all), and any
 * message the codec accepts must be wholly valid: it re-encodes (encodeMessage asserts every rule)
 * and round-trips. Every input is drawn from one seeded generator, so a failure names its seed and
 * case number; rerun with FUZZ_SEED=<seed> to reproduce it.
 */
import test from "ava";
import seedrandom from "seedrandom";
import type { Message } from "../../src/core/types.ts";
import { encodeFrame, FrameDecoder, FrameError, type Frame } from "../../src/transport/frame.ts";
import { AcceptorHandshake, DialerHandshake, type HandshakeSettings } from "../../src/transport/handshake.ts";
import { decodeMessage, encodeMessage, MessageDecodeError } from "../../src/transport/message-codec.ts";
import { handshakeSettings, SAMPLE_LIST } from "./fixtures.ts";

const SEED = process.env["FUZZ_SEED"] ?? "pgraft-transport-fuzz-1";
const CASES = 120_000;
// A hang guard, far above the usual 7 to 10 s, so a slow shared machine does not fail the run.
const WALL_MS_MAX = 60_000;

type Random = () => number;

function int(random: Random, below: number): number {
  return Math.floor(random() * below);
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[int(random, items.length)]!;
}

function randomBytes(random: Random, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = int(random, 256);
  return bytes;
}

function settings(random: Random, nodeId: number): HandshakeSettings {
  return handshakeSettings(nodeId, { randomBytes: (size) => randomBytes(random, size) });
}

// ---------------------------------------------------------------------------------------------------
// JSON mutation

const WEIRD_VALUES: readonly unknown[] = [
  null, true, false, 0, -1, 1, 2, 1.5, -0.5, 2 ** 53, 2 ** 31, 1e308, -1e308, "", "x", "1", "MsgApp", "noop",
  "shared_secret", "prod", [], [1, 2], [null], {}, { a: 1 }, { index: 1, term: 1, kind: "noop", data: "" }, "ab".repeat(32),
];

/** Returns a deep copy of `value` with one random change somewhere in its tree. */
function mutateJson(random: Random, value: unknown, depth = 0): unknown {
  const container = typeof value === "object" && value !== null;
  if (!container || (depth > 0 && random() < 0.25)) return mutateLeaf(random, value);
  if (Array.isArray(value)) {
    const copy = [...value];
    const roll = random();
    if (copy.length === 0 || roll < 0.15) copy.splice(int(random, copy.length + 1), 0, pick(random, WEIRD_VALUES));
    else if (roll < 0.3) copy.splice(int(random, copy.length), 1);
    else if (roll < 0.4) copy.reverse();
    else {
      const i = int(random, copy.length);
      copy[i] = mutateJson(random, copy[i], depth + 1);
    }
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const roll = random();
  if (keys.length === 0 || roll < 0.1) copy[pick(random, ["extra", "type", "__proto__", "term", "index", "proof"])] = pick(random, WEIRD_VALUES);
  else if (roll < 0.2) delete copy[pick(random, keys)];
  else {
    const key = pick(random, keys);
    copy[key] = mutateJson(random, copy[key], depth + 1);
  }
  return copy;
}

function mutateLeaf(random: Random, value: unknown): unknown {
  const roll = random();
  if (typeof value === "number" && roll < 0.5) return pick(random, [value + 1, value - 1, -value, value * 2 ** 40, value + 0.5, String(value)]);
  if (typeof value === "string" && roll < 0.5) return pick(random, [value + "x", value.slice(1), value.toUpperCase(), "", value.repeat(2)]);
  if (typeof value === "boolean" && roll < 0.5) return pick(random, [!value, value ? 1 : 0, String(value)]);
  return pick(random, WEIRD_VALUES);
}

function mutatedJsonPayload(random: Random, payload: Uint8Array): Uint8Array {
  let value: unknown = JSON.parse(Buffer.from(payload).toString("utf8"));
  const mutations = 1 + int(random, 3);
  for (let i = 0; i < mutations; i++) value = mutateJson(random, value);
  let text = JSON.stringify(value) ?? "null";
  if (random() < 0.1) {
    // Text-level damage too: a replaced or inserted character.
    const at = int(random, text.length + 1);
    text = text.slice(0, at) + pick(random, ['"', "}", "]", ",", ":", "\\", "\u0000", "é", "9"]) + text.slice(at + (random() < 0.5 ? 1 : 0));
  }
  return Buffer.from(text, "utf8");
}

// ---------------------------------------------------------------------------------------------------
// Inputs

interface Scene {
  readonly dialer: DialerHandshake;
  readonly acceptor: AcceptorHandshake;
  readonly hello: Frame;
  readonly challenge: Frame;
  readonly proof: Frame;
}

/** A real handshake up to the proof, so mutations can target each step. */
function scene(random: Random): Scene {
  const dialer = new DialerHandshake(settings(random, 1), 2);
  const acceptor = new AcceptorHandshake(settings(random, 2));
  const hello = dialer.start().outgoing[0]!;
  const challenge = acceptor.receive(hello).outgoing[0]!;
  const proof = dialer.receive(challenge).outgoing[0]!;
  return { dialer, acceptor, hello, challenge, proof };
}

function validStream(random: Random, setting: Scene): Buffer {
  const frames: Frame[] = [setting.hello, setting.challenge, setting.proof, { type: "accept", payload: new Uint8Array(0) }];
  const messages = 1 + int(random, 3);
  for (let i = 0; i < messages; i++) frames.push({ type: "message", payload: encodeMessage(pick(random, SAMPLE_LIST)) });
  frames.push({ type: "ping", payload: new Uint8Array(0) }, { type: "pong", payload: new Uint8Array(0) });
  if (random() < 0.3) frames.push({ type: "refuse", payload: Buffer.from(JSON.stringify({ code: "timeout", reason: "slow" })) });
  return Buffer.concat(frames.map((frame) => encodeFrame(frame.type, frame.payload)));
}

function flipBits(random: Random, bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const flips = 1 + int(random, 8);
  for (let i = 0; i < flips; i++) copy[int(random, copy.length)]! ^= 1 << int(random, 8);
  return copy;
}

function lieAboutLength(random: Random, frame: Buffer): Buffer {
  const copy = Buffer.from(frame);
  const real = copy.readUInt32BE(2);
  copy.writeUInt32BE(pick(random, [0, 1, real - 1, real + 1, real + 100, 4096, 4097, 0x7fffffff, 0xffffffff, int(random, 2 ** 32)]) >>> 0, 2);
  return random() < 0.5 ? copy : Buffer.concat([copy, Buffer.from(randomBytes(random, int(random, 64)))]);
}

const KINDS = ["random", "bitflip", "truncate", "length", "message-json", "hello-json", "challenge-json", "proof-json", "refuse-json"] as const;
type Kind = (typeof KINDS)[number];

interface Input {
  readonly bytes: Uint8Array;
  /** Which handshake state the frames are fed to. */
  readonly target: "fresh" | "acceptor-awaiting-proof" | "dialer-awaiting-challenge";
}

function makeInput(random: Random, kind: Kind, setting: Scene): Input {
  const fresh = "fresh" as const;
  switch (kind) {
    case "random": {
      const bytes = randomBytes(random, int(random, 200));
      if (random() < 0.5 && bytes.length > 1) bytes[0] = 1; // Get past the version byte now and then.
      if (random() < 0.3 && bytes.length > 2) bytes[1] = 1 + int(random, 8);
      return { bytes, target: fresh };
    }
    case "bitflip":
      return { bytes: flipBits(random, validStream(random, setting)), target: fresh };
    case "truncate": {
      const stream = validStream(random, setting);
      const cut = stream.subarray(0, int(random, stream.length));
      return { bytes: random() < 0.3 ? Buffer.concat([cut, Buffer.from(randomBytes(random, 20))]) : cut, target: fresh };
    }
    case "length":
      return { bytes: lieAboutLength(random, encodeFrame("message", encodeMessage(pick(random, SAMPLE_LIST)))), target: fresh };
    case "message-json":
      return { bytes: encodeFrame("message", mutatedJsonPayload(random, encodeMessage(pick(random, SAMPLE_LIST)))), target: fresh };
    case "hello-json":
      return { bytes: encodeFrame("hello", mutatedJsonPayload(random, setting.hello.payload)), target: fresh };
    case "challenge-json":
      return { bytes: encodeFrame("challenge", mutatedJsonPayload(random, setting.challenge.payload)), target: "dialer-awaiting-challenge" };
    case "proof-json":
      return { bytes: encodeFrame("proof", mutatedJsonPayload(random, setting.proof.payload)), target: "acceptor-awaiting-proof" };
    case "refuse-json": {
      const refuse = Buffer.from(JSON.stringify({ code: "proof", reason: "no" }));
      return { bytes: encodeFrame("refuse", mutatedJsonPayload(random, refuse)), target: "dialer-awaiting-challenge" };
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The receive path under test

interface Tally {
  frames: number;
  frameErrors: number;
  messagesAccepted: number;
  messagesRejected: number;
  refusals: number;
  established: number;
}

function checkAcceptedMessage(message: Message): void {
  const again = decodeMessage(encodeMessage(message)); // encodeMessage asserts every rule.
  if (JSON.stringify(again) !== JSON.stringify(message)) throw new Error(`accepted message does not round-trip: ${JSON.stringify(message)}`);
}

function receive(random: Random, input: Input, setting: Scene, tally: Tally): void {
  const decoder = new FrameDecoder({ payloadBytesMax: 1 << 16 });
  const machines =
    input.target === "acceptor-awaiting-proof" ? [setting.acceptor] : input.target === "dialer-awaiting-challenge" ? [setting.dialer] : freshMachines(random);
  let offset = 0;
  // Bounded: each chunk is at least one byte of a finite input.
  while (offset < input.bytes.length) {
    const size = 1 + int(random, Math.min(64, input.bytes.length - offset));
    decoder.push(input.bytes.subarray(offset, offset + size));
    offset += size;
    for (;;) {
      let frame: Frame | undefined;
      try {
        frame = decoder.next();
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        tally.frameErrors++;
        return;
      }
      if (frame === undefined) break;
      tally.frames++;
      route(frame, machines, tally);
    }
  }
}

function freshMachines(random: Random): Array<DialerHandshake | AcceptorHandshake> {
  const dialer = new DialerHandshake(settings(random, 1), 2);
  dialer.start();
  return [new AcceptorHandshake(settings(random, 2)), dialer];
}

function route(frame: Frame, machines: ReadonlyArray<DialerHandshake | AcceptorHandshake>, tally: Tally): void {
  if (frame.type === "message") {
    try {
      checkAcceptedMessage(decodeMessage(frame.payload));
      tally.messagesAccepted++;
    } catch (error) {
      if (!(error instanceof MessageDecodeError)) throw error;
      tally.messagesRejected++;
    }
    return;
  }
  for (const machine of machines) {
    if (machine.finished) continue;
    const step = machine.receive(frame); // Must never throw.
    for (const out of step.outgoing) encodeFrame(out.type, out.payload);
    if (step.outcome.state === "refused") tally.refusals++;
    if (step.outcome.state === "established") tally.established++;
  }
}

test(`the receive path survives ${CASES} malformed and mutated inputs with only typed errors (seed ${SEED})`, (t) => {
  t.timeout(WALL_MS_MAX + 30_000);
  const random = seedrandom(SEED);
  const tally: Tally = { frames: 0, frameErrors: 0, messagesAccepted: 0, messagesRejected: 0, refusals: 0, established: 0 };
  const byKind = new Map<Kind, number>();
  const startedMs = Date.now();
  for (let i = 0; i < CASES; i++) {
    const kind = KINDS[i % KINDS.length]!;
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    try {
      const setting = scene(random);
      receive(random, makeInput(random, kind, setting), setting, tally);
    } catch (error) {
      t.fail(`case ${i} (${kind}) with FUZZ_SEED=${SEED} threw ${(error as Error).name}: ${(error as Error).stack}`);
      return;
    }
    if (Date.now() - startedMs > WALL_MS_MAX) {
      t.fail(`the fuzz run passed its ${WALL_MS_MAX} ms budget at case ${i}`);
      return;
    }
  }
  t.log(`seed ${SEED}: ${CASES} inputs in ${Date.now() - startedMs} ms; ${JSON.stringify(tally)}`);
  // The run must have reached every layer, or it proves little.
  t.true(tally.frameErrors > 10_000, "frame errors");
  t.true(tally.messagesRejected > 10_000, "messages rejected");
  t.true(tally.messagesAccepted > 1_000, "messages accepted");
  t.true(tally.refusals > 10_000, "handshake refusals");
  // Mutations that cancel out (a key added, then deleted) leave valid handshakes, which must still work.
  t.true(tally.established > 0, "handshakes established");
  t.is(byKind.size, KINDS.length);
});

test("the fuzz generator is deterministic for a seed", (t) => {
  const draw = (): string => {
    const random = seedrandom("determinism");
    const setting = scene(random);
    return Buffer.from(makeInput(random, "message-json", setting).bytes).toString("hex");
  };
  t.is(draw(), draw());
});
