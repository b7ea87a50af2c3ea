/**
 * A stage is one toxic at work on one direction of one connection (the real server's ToxicStub): data
 * arrives in chunks, each stamped with its arrival time, and the stage passes chunks on, holds them, cuts
 * them, drops them, or closes the stream, each toxic in its own way (toxics.ts). A link chains stages in
 * the order the toxics were added (link.ts).
 *
 * Toxics change while connections are open, so every stage can be drained: it stops its timers and hands
 * back what it still holds, oldest first, and whether the close that follows them has arrived. The link
 * passes that on to the next stage when a toxic is removed, or to a fresh stage when it is updated, so no
 * byte is lost or reordered by a change of configuration.
 */
import { assert } from "../../src/assert.ts";
import type { ToxicRandom } from "./random.ts";

export interface Chunk {
  readonly data: Buffer;
  /** When the chunk reached the stage that emitted it (performance.now() ms); latency counts from here. */
  readonly arrivalMs: number;
}

/** A close is passed on as a FIN, or as a TCP RST when a reset_peer toxic caused it. */
export type CloseMode = "graceful" | "reset";

export interface StageOutput {
  /** Passes a chunk to the next stage (or the destination socket). */
  emit(chunk: Chunk): void;
  /** Closes the stream after what was emitted; the stage emits nothing afterwards. */
  close(mode: CloseMode): void;
  /** Reports bytes the stage dropped, so the link's count of held bytes stays true. */
  discard(bytes: number): void;
}

export interface StageEnvironment {
  readonly random: ToxicRandom;
  /** Monotonic milliseconds (performance.now()). */
  now(): number;
}

export interface Drained {
  readonly chunks: readonly Chunk[];
  /** The close that arrived after `chunks`, if it did. */
  readonly end: CloseMode | undefined;
  /** Bytes a limit_data stage already let through, carried into its replacement. */
  readonly passedBytes: number;
}

export interface ToxicStage {
  /** Data that reached this stage. */
  push(chunk: Chunk): void;
  /** The stream before this stage closed; the stage passes the close on when its behaviour allows. */
  end(mode: CloseMode): void;
  /** Stops the stage (no timer stays) and returns what it holds, for whatever takes its place. */
  drain(): Drained;
  /** Stops the stage for good; what it holds is dropped. */
  dispose(): void;
  /** True if removing the toxic closes the connection (the real timeout toxic's Cleanup does). */
  readonly closesOnRemoval: boolean;
}

/**
 * Steps one pump takes before it yields to the event loop (a slicer cutting 16 MiB into 1-byte pieces
 * without delay must not starve every other connection); the rest follows on the next timer turn.
 */
export const PUMP_STEPS_PER_TURN = 10_000;

/** The one timer a stage may have running; cleared by drain() and dispose(). */
export class StageTimer {
  #handle: NodeJS.Timeout | undefined;

  get active(): boolean {
    return this.#handle !== undefined;
  }

  set(delayMs: number, callback: () => void): void {
    assert(this.#handle === undefined, "StageTimer.set(): a timer is already running");
    assert(delayMs >= 0 && Number.isFinite(delayMs), `StageTimer.set(): delay must be finite and >= 0, got ${delayMs}`);
    this.#handle = setTimeout(() => {
      this.#handle = undefined;
      callback();
    }, delayMs);
  }

  clear(): void {
    if (this.#handle !== undefined) clearTimeout(this.#handle);
    this.#handle = undefined;
  }
}

/**
 * A FIFO of chunks with O(1) take from the front (an array's shift() is O(n), and a stage may hold
 * hundreds of thousands of small chunks within the link's byte bound).
 */
export class ChunkQueue {
  #items: Chunk[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  first(): Chunk | undefined {
    return this.#items[this.#head];
  }

  push(chunk: Chunk): void {
    this.#items.push(chunk);
  }

  shift(): Chunk | undefined {
    const chunk = this.#items[this.#head];
    if (chunk === undefined) return undefined;
    this.#head += 1;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return chunk;
  }

  /** Replaces the first chunk (with what is left of it after a piece was sent). */
  replaceFirst(chunk: Chunk): void {
    assert(this.size > 0, "ChunkQueue.replaceFirst(): the queue is empty");
    this.#items[this.#head] = chunk;
  }

  toArray(): Chunk[] {
    return this.#items.slice(this.#head);
  }

  bytes(): number {
    let total = 0;
    for (let index = this.#head; index < this.#items.length; index++) total += this.#items[index]!.data.length;
    return total;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/** What a queued stage does with the chunk at the head of its queue. */
export type HeadStep =
  /** The head was handled (emitted, cut, dropped): look at the next one. */
  | { readonly kind: "next" }
  /** Look again after this many milliseconds. */
  | { readonly kind: "wait"; readonly delayMs: number }
  /** Hold everything until the toxic is updated or removed (a bandwidth of 0). */
  | { readonly kind: "hold" };

export const NEXT: HeadStep = { kind: "next" };
export const HOLD: HeadStep = { kind: "hold" };
export function waitMs(delayMs: number): HeadStep {
  return { kind: "wait", delayMs };
}

/**
 * A stage that handles its chunks one at a time, in order, like the real toxics' Pipe loops: the head
 * of the queue goes first, and a close waits behind every chunk that arrived before it.
 */
export abstract class QueuedStage implements ToxicStage {
  protected readonly queue = new ChunkQueue();
  protected readonly timer = new StageTimer();
  #end: CloseMode | undefined;
  /** Set once the stage closed its output, was drained or was disposed: it does nothing more. */
  #stopped = false;
  readonly closesOnRemoval: boolean = false;

  constructor(
    protected readonly output: StageOutput,
    protected readonly environment: StageEnvironment,
  ) {}

  push(chunk: Chunk): void {
    if (this.#stopped) {
      this.output.discard(chunk.data.length);
      return;
    }
    assert(this.#end === undefined, "QueuedStage.push(): data arrived after the close");
    this.queue.push(chunk);
    this.pump();
  }

  end(mode: CloseMode): void {
    if (this.#stopped || this.#end !== undefined) return;
    this.#end = mode;
    this.pump();
  }

  drain(): Drained {
    const drained: Drained = this.#stopped ? { chunks: [], end: undefined, passedBytes: 0 } : { chunks: this.queue.toArray(), end: this.#end, passedBytes: 0 };
    this.stop();
    return drained;
  }

  dispose(): void {
    this.stop();
  }

  /** Handles the head of the queue (`queue.first()`, which is defined). */
  protected abstract step(head: Chunk, nowMs: number): HeadStep;

  /** Called once the queue is empty and the close has arrived; by default passes the close on. */
  protected onEnd(mode: CloseMode): void {
    this.closeOutput(mode);
  }

  protected closeOutput(mode: CloseMode): void {
    if (this.#stopped) return;
    const dropped = this.queue.bytes();
    if (dropped > 0) this.output.discard(dropped);
    this.queue.clear();
    this.stop();
    this.output.close(mode);
  }

  /** Runs the queue until it must wait, holds, or is empty; yields after PUMP_STEPS_PER_TURN steps. */
  protected pump(): void {
    for (let steps = 0; !this.#stopped && !this.timer.active; steps++) {
      if (steps === PUMP_STEPS_PER_TURN) {
        this.timer.set(0, () => this.pump());
        return;
      }
      const head = this.queue.first();
      if (head === undefined) {
        if (this.#end !== undefined) this.onEnd(this.#end);
        return;
      }
      const result = this.step(head, this.environment.now());
      if (result.kind === "hold") return;
      if (result.kind === "wait") this.timer.set(result.delayMs, () => this.pump());
    }
  }

  private stop(): void {
    this.#stopped = true;
    this.timer.clear();
  }
}
