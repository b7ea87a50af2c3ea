/**
 * One direction of one proxied connection (the real server's ToxicLink): what the source socket sends goes
 * through one stage per toxic of this direction, in the order the toxics were added, and out to the
 * destination socket. A close travels the same path behind the data, so a stage can delay it (latency,
 * slow_close), cause it (timeout, limit_data, reset_peer) or pass it on.
 *
 * Toxics change while the link runs, as in the real server: a new toxic joins the end of the chain, an
 * updated one gets a fresh stage fed with what the old one held, and a removed one hands what it held to
 * the stage after it. Each stage draws its toxicity decision once, when it is created.
 *
 * The link never touches sockets itself: it writes, closes, and pauses its source through `LinkEnds`. The
 * bytes its stages hold are bounded: past `LINK_HELD_BYTES_MAX` (with the destination's unflushed bytes)
 * the source is paused, so a slow toxic pushes back on the sender through TCP instead of growing memory.
 */
import { assert } from "../../src/assert.ts";
import type { Chunk, CloseMode, StageEnvironment, StageOutput, ToxicStage } from "./stage.ts";
import type { Stream, ToxicSpec } from "./toxic-spec.ts";
import { createStage } from "./toxics.ts";

/** Held bytes past which the source is paused; it resumes below half of it. */
export const LINK_HELD_BYTES_MAX = 16 * 1024 * 1024;

export interface LinkEnds {
  /** Writes to the destination socket (dropping the data if it is closed). */
  write(data: Buffer): void;
  /** The stream reached its end: close the destination, with a FIN or an RST. */
  close(mode: CloseMode): void;
  /** Bytes the destination socket accepted but has not flushed yet. */
  pendingWriteBytes(): number;
  setSourcePaused(paused: boolean): void;
}

export interface LinkOptions {
  readonly stream: Stream;
  /** The toxics of this direction, in chain order. */
  readonly toxics: readonly ToxicSpec[];
  readonly environment: StageEnvironment;
  readonly ends: LinkEnds;
}

interface Slot {
  spec: ToxicSpec;
  stage: ToxicStage;
  /** The close reached this stage's input: anything more is dropped. */
  inputEnded: boolean;
  /** The stage closed its output: the close went on to the next slot. */
  outputClosed: boolean;
}

export class Link {
  readonly stream: Stream;
  readonly #environment: StageEnvironment;
  readonly #ends: LinkEnds;
  readonly #slots: Slot[] = [];
  #heldBytes = 0;
  #sourcePaused = false;
  #sourceEnded = false;
  /** The close reached the destination. */
  #closed = false;
  #disposed = false;

  constructor(options: LinkOptions) {
    this.stream = options.stream;
    this.#environment = options.environment;
    this.#ends = options.ends;
    for (const spec of options.toxics) {
      assert(spec.stream === this.stream, `Link: a ${spec.stream} toxic cannot join a ${this.stream} link`);
      this.#slots.push(this.#createSlot(spec));
    }
  }

  /** Bytes inside the stages: read from the source, neither written nor dropped yet. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Data read from the source socket. */
  receive(data: Buffer): void {
    if (this.#disposed || this.#sourceEnded || data.length === 0) return;
    this.#heldBytes += data.length;
    this.#deliver(0, { data, arrivalMs: this.#environment.now() });
    this.checkPressure();
  }

  /** The source socket ended, failed or closed: the close follows the data through the chain. */
  sourceEnded(): void {
    if (this.#disposed || this.#sourceEnded) return;
    this.#sourceEnded = true;
    this.#deliverEnd(0, "graceful");
  }

  addToxic(spec: ToxicSpec): void {
    assert(spec.stream === this.stream, `Link.addToxic(): a ${spec.stream} toxic cannot join a ${this.stream} link`);
    if (this.#disposed || this.#closed) return;
    assert(this.#slots.every((slot) => slot.spec.name !== spec.name), `Link.addToxic(): toxic ${spec.name} is already in the chain`);
    this.#slots.push(this.#createSlot(spec));
  }

  updateToxic(spec: ToxicSpec): void {
    const slot = this.#slots.find((candidate) => candidate.spec.name === spec.name);
    if (slot === undefined || this.#disposed) return;
    slot.spec = spec;
    if (slot.outputClosed || this.#closed) return;
    const drained = slot.stage.drain();
    slot.stage = createStage(spec, this.#environment.random.decide(spec.toxicity), this.#outputOf(slot), this.#environment, drained.passedBytes);
    for (const chunk of drained.chunks) slot.stage.push(chunk);
    if (drained.end !== undefined) slot.stage.end(drained.end);
  }

  removeToxic(name: string): void {
    const index = this.#slots.findIndex((candidate) => candidate.spec.name === name);
    if (index < 0 || this.#disposed) return;
    const slot = this.#slots[index]!;
    const drained = slot.outputClosed ? undefined : slot.stage.drain();
    slot.stage.dispose();
    this.#slots.splice(index, 1);
    if (drained === undefined) return;
    if (slot.stage.closesOnRemoval) {
      let dropped = 0;
      for (const chunk of drained.chunks) dropped += chunk.data.length;
      this.#release(dropped);
      this.#deliverEnd(index, "graceful");
      return;
    }
    for (const chunk of drained.chunks) this.#deliver(index, chunk);
    if (drained.end !== undefined) this.#deliverEnd(index, drained.end);
  }

  /** Stops every stage (timers included); nothing flows afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const slot of this.#slots) slot.stage.dispose();
    this.#slots.length = 0;
  }

  /** Pauses the source while too much is held, resumes it below half; call on the destination's 'drain'. */
  checkPressure(): void {
    if (this.#disposed) return;
    const pendingBytes = this.#heldBytes + this.#ends.pendingWriteBytes();
    if (!this.#sourcePaused && pendingBytes > LINK_HELD_BYTES_MAX) {
      this.#sourcePaused = true;
      this.#ends.setSourcePaused(true);
    } else if (this.#sourcePaused && pendingBytes <= LINK_HELD_BYTES_MAX / 2) {
      this.#sourcePaused = false;
      this.#ends.setSourcePaused(false);
    }
  }

  #createSlot(spec: ToxicSpec): Slot {
    const slot: Slot = { spec, stage: undefined as unknown as ToxicStage, inputEnded: false, outputClosed: false };
    slot.stage = createStage(spec, this.#environment.random.decide(spec.toxicity), this.#outputOf(slot), this.#environment);
    return slot;
  }

  #outputOf(slot: Slot): StageOutput {
    return {
      emit: (chunk) => {
        assert(!slot.outputClosed, `Link: toxic ${slot.spec.name} emitted data after closing its output`);
        this.#deliver(this.#indexAfter(slot), chunk);
      },
      close: (mode) => {
        assert(!slot.outputClosed, `Link: toxic ${slot.spec.name} closed its output twice`);
        slot.outputClosed = true;
        this.#deliverEnd(this.#indexAfter(slot), mode);
      },
      discard: (bytes) => this.#release(bytes),
    };
  }

  #indexAfter(slot: Slot): number {
    const index = this.#slots.indexOf(slot);
    assert(index >= 0, `Link: toxic ${slot.spec.name} is active but no longer in the chain`);
    return index + 1;
  }

  /** Hands a chunk to slot `index`, or to the destination past the last slot. */
  #deliver(index: number, chunk: Chunk): void {
    if (this.#disposed) return;
    assert(index >= 0 && index <= this.#slots.length, `Link: no slot ${index} in a chain of ${this.#slots.length}`);
    if (index === this.#slots.length) {
      this.#release(chunk.data.length);
      if (!this.#closed) this.#ends.write(chunk.data);
      return;
    }
    const slot = this.#slots[index]!;
    if (slot.inputEnded) this.#release(chunk.data.length);
    else slot.stage.push(chunk);
  }

  #deliverEnd(index: number, mode: CloseMode): void {
    if (this.#disposed) return;
    if (index === this.#slots.length) {
      if (this.#closed) return;
      this.#closed = true;
      this.#ends.close(mode);
      return;
    }
    const slot = this.#slots[index]!;
    if (slot.inputEnded) return;
    slot.inputEnded = true;
    slot.stage.end(mode);
  }

  #release(bytes: number): void {
    this.#heldBytes -= bytes;
    assert(this.#heldBytes >= 0, `Link: held bytes fell to ${this.#heldBytes}`);
    if (this.#sourcePaused) this.checkPressure();
  }
}
