/**
 * The toxics' behaviour, one stage class per type, following the real server's toxics/*.go chunk by chunk:
 *
 * - latency: each chunk leaves at arrival + latency ± jitter (uniform, whole ms, drawn when the chunk
 *   reaches the head of the queue), in order; delays count from arrival so they do not add up along a
 *   stream, and a chunk leaves stamped with its due time so two latency toxics in a chain do add up.
 * - bandwidth: `rate` KB/s (1 KB = 1000 bytes, as in the real server), in pieces of at most 100 ms of
 *   traffic; no credit builds up while idle. A rate of 0 holds the data until the toxic changes.
 * - slow_close: data passes; the close waits `delay` ms.
 * - timeout: data is dropped; the connection closes after `timeout` ms (never with 0). Removing an
 *   active timeout toxic closes the connection, as the real one's Cleanup does.
 * - reset_peer: the first chunk (or the close) starts a `timeout` ms wait, then the connection is reset
 *   (TCP RST); data that arrives meanwhile is held and then dropped.
 * - slicer: each chunk is cut as the real slicer cuts it (halves, ± size_variation, down to at most
 *   average_size + size_variation bytes), with `delay` µs between pieces.
 * - limit_data: `bytes` bytes pass, then the connection closes; the count survives an update.
 * - noop, and any toxic whose toxicity draw said no for this connection: everything passes.
 */
import { assert, unreachable } from "../../src/assert.ts";
import type { ToxicRandom } from "./random.ts";
import {
  type Chunk,
  type ChunkQueue,
  type CloseMode,
  type Drained,
  HOLD,
  type HeadStep,
  NEXT,
  QueuedStage,
  type StageEnvironment,
  type StageOutput,
  StageTimer,
  type ToxicStage,
  waitMs,
} from "./stage.ts";
import { attributeOf, type ToxicSpec } from "./toxic-spec.ts";

const NOTHING_HELD: Drained = { chunks: [], end: undefined, passedBytes: 0 };

/** Builds the stage for one toxic on one link; `active` is that connection's toxicity decision. */
export function createStage(spec: ToxicSpec, active: boolean, output: StageOutput, environment: StageEnvironment, passedBytes = 0): ToxicStage {
  if (!active) return new NoopStage(output);
  switch (spec.type) {
    case "latency":
      return new LatencyStage(output, environment, attributeOf(spec, "latency"), attributeOf(spec, "jitter"));
    case "bandwidth":
      return new BandwidthStage(output, environment, attributeOf(spec, "rate"));
    case "slow_close":
      return new SlowCloseStage(output, environment, attributeOf(spec, "delay"));
    case "timeout":
      return new TimeoutStage(output, attributeOf(spec, "timeout"));
    case "reset_peer":
      return new ResetPeerStage(output, environment, attributeOf(spec, "timeout"));
    case "slicer":
      return new SlicerStage(output, environment, {
        averageSizeBytes: attributeOf(spec, "average_size"),
        sizeVariationBytes: attributeOf(spec, "size_variation"),
        delayUs: attributeOf(spec, "delay"),
      });
    case "limit_data":
      return new LimitDataStage(output, attributeOf(spec, "bytes"), passedBytes);
    case "noop":
      return new NoopStage(output);
    default:
      return unreachable(spec.type, "toxic type");
  }
}

class NoopStage implements ToxicStage {
  readonly closesOnRemoval = false;
  #stopped = false;
  constructor(private readonly output: StageOutput) {}

  push(chunk: Chunk): void {
    if (this.#stopped) this.output.discard(chunk.data.length);
    else this.output.emit(chunk);
  }

  end(mode: CloseMode): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.output.close(mode);
  }

  drain(): Drained {
    this.#stopped = true;
    return NOTHING_HELD;
  }

  dispose(): void {
    this.#stopped = true;
  }
}

class LatencyStage extends QueuedStage {
  #headDueMs: number | undefined;

  constructor(
    output: StageOutput,
    environment: StageEnvironment,
    private readonly latencyMs: number,
    private readonly jitterMs: number,
  ) {
    super(output, environment);
  }

  protected step(head: Chunk, nowMs: number): HeadStep {
    this.#headDueMs ??= head.arrivalMs + latencyDrawMs(this.latencyMs, this.jitterMs, this.environment.random);
    const dueMs = this.#headDueMs;
    if (nowMs < dueMs) return waitMs(dueMs - nowMs);
    this.queue.shift();
    this.#headDueMs = undefined;
    this.output.emit({ data: head.data, arrivalMs: Math.max(dueMs, head.arrivalMs) });
    return NEXT;
  }
}

/** latency ± jitter as the real toxic draws it: latency + rand.Int63n(2 * jitter) - jitter. */
export function latencyDrawMs(latencyMs: number, jitterMs: number, random: ToxicRandom): number {
  if (jitterMs <= 0) return latencyMs;
  return latencyMs + random.below(2 * jitterMs) - jitterMs;
}

class BandwidthStage extends QueuedStage {
  /** When the link is free again: the due time of the last piece sent. */
  #freeAtMs = Number.NEGATIVE_INFINITY;
  #pieceDueMs: number | undefined;

  constructor(
    output: StageOutput,
    environment: StageEnvironment,
    private readonly rateKbPerS: number,
  ) {
    super(output, environment);
  }

  protected step(head: Chunk, nowMs: number): HeadStep {
    if (this.rateKbPerS === 0) return HOLD;
    // rate KB/s is rate bytes per ms; the real toxic sends at most 100 ms worth at a time.
    const pieceBytes = Math.min(head.data.length, this.rateKbPerS * 100);
    this.#pieceDueMs ??= Math.max(nowMs, this.#freeAtMs) + pieceBytes / this.rateKbPerS;
    const dueMs = this.#pieceDueMs;
    if (nowMs < dueMs) return waitMs(dueMs - nowMs);
    this.#pieceDueMs = undefined;
    this.#freeAtMs = dueMs;
    emitHeadPiece(this.queue, pieceBytes, this.output);
    return NEXT;
  }
}

/** Emits the first `bytes` of the queue's head and leaves the rest of it at the head. */
function emitHeadPiece(queue: ChunkQueue, bytes: number, output: StageOutput): void {
  const head = queue.first();
  assert(head !== undefined && bytes > 0 && bytes <= head.data.length, `emitHeadPiece(): cannot take ${bytes} bytes from the head`);
  if (bytes === head.data.length) queue.shift();
  else queue.replaceFirst({ data: head.data.subarray(bytes), arrivalMs: head.arrivalMs });
  output.emit({ data: head.data.subarray(0, bytes), arrivalMs: head.arrivalMs });
}

class SlowCloseStage extends QueuedStage {
  constructor(
    output: StageOutput,
    environment: StageEnvironment,
    private readonly delayMs: number,
  ) {
    super(output, environment);
  }

  protected step(head: Chunk): HeadStep {
    this.queue.shift();
    this.output.emit(head);
    return NEXT;
  }

  protected override onEnd(mode: CloseMode): void {
    this.timer.set(this.delayMs, () => this.closeOutput(mode));
  }
}

class TimeoutStage implements ToxicStage {
  readonly closesOnRemoval = true;
  readonly #timer = new StageTimer();
  #stopped = false;

  constructor(
    private readonly output: StageOutput,
    timeoutMs: number,
  ) {
    if (timeoutMs > 0) this.#timer.set(timeoutMs, () => this.#close("graceful"));
  }

  push(chunk: Chunk): void {
    this.output.discard(chunk.data.length);
  }

  end(mode: CloseMode): void {
    this.#close(mode);
  }

  drain(): Drained {
    this.dispose();
    return NOTHING_HELD;
  }

  dispose(): void {
    this.#stopped = true;
    this.#timer.clear();
  }

  #close(mode: CloseMode): void {
    if (this.#stopped) return;
    this.dispose();
    this.output.close(mode);
  }
}

class ResetPeerStage extends QueuedStage {
  #triggered = false;

  constructor(
    output: StageOutput,
    environment: StageEnvironment,
    private readonly timeoutMs: number,
  ) {
    super(output, environment);
  }

  protected step(head: Chunk): HeadStep {
    if (this.#triggered) return HOLD;
    this.queue.shift();
    this.output.discard(head.data.length);
    this.#trigger();
    return HOLD;
  }

  protected override onEnd(): void {
    if (!this.#triggered) this.#trigger();
  }

  #trigger(): void {
    this.#triggered = true;
    this.timer.set(this.timeoutMs, () => this.closeOutput("reset"));
  }
}

export interface SlicerSettings {
  readonly averageSizeBytes: number;
  readonly sizeVariationBytes: number;
  readonly delayUs: number;
}

class SlicerStage extends QueuedStage {
  /** Sizes of the pieces of the head, and how many of them were sent. */
  #pieceSizes: number[] | undefined;
  #piecesSent = 0;
  #nextPieceMs = Number.NEGATIVE_INFINITY;

  constructor(
    output: StageOutput,
    environment: StageEnvironment,
    private readonly settings: SlicerSettings,
  ) {
    super(output, environment);
  }

  protected step(head: Chunk, nowMs: number): HeadStep {
    const { averageSizeBytes, sizeVariationBytes, delayUs } = this.settings;
    if (this.#pieceSizes === undefined) {
      this.#pieceSizes = sliceSizes(head.data.length, averageSizeBytes, sizeVariationBytes, this.environment.random);
      this.#piecesSent = 0;
    }
    if (nowMs < this.#nextPieceMs) return waitMs(this.#nextPieceMs - nowMs);
    const size = this.#pieceSizes[this.#piecesSent];
    assert(size !== undefined, "SlicerStage.step(): no piece left for the head");
    this.#piecesSent += 1;
    if (this.#piecesSent === this.#pieceSizes.length) this.#pieceSizes = undefined;
    emitHeadPiece(this.queue, size, this.output);
    // Keep a virtual schedule, so delays under the 1 ms timer resolution still average out; restart it
    // from now after an idle spell so no burst builds up.
    const startMs = nowMs - this.#nextPieceMs >= 1 ? nowMs : this.#nextPieceMs;
    this.#nextPieceMs = startMs + delayUs / 1000;
    return NEXT;
  }
}

/**
 * The real slicer's cut points: a span longer than average + variation is cut near its middle (moved by
 * a uniform draw in [-variation, variation)), and each half is cut again, left first.
 */
export function sliceSizes(lengthBytes: number, averageSizeBytes: number, sizeVariationBytes: number, random: ToxicRandom): number[] {
  assert(averageSizeBytes >= 1 && sizeVariationBytes >= 0 && sizeVariationBytes < averageSizeBytes, "sliceSizes(): need 0 <= variation < average");
  const sizes: number[] = [];
  const cut = (start: number, end: number): void => {
    if (end - start - averageSizeBytes <= sizeVariationBytes) {
      sizes.push(end - start);
      return;
    }
    const offset = sizeVariationBytes > 0 ? random.below(sizeVariationBytes * 2) - sizeVariationBytes : 0;
    const middle = start + Math.floor((end - start) / 2) + offset;
    assert(middle > start && middle < end, `sliceSizes(): cut ${middle} outside (${start}, ${end})`);
    cut(start, middle);
    cut(middle, end);
  };
  cut(0, lengthBytes);
  return sizes;
}

class LimitDataStage implements ToxicStage {
  readonly closesOnRemoval = false;
  #stopped = false;

  constructor(
    private readonly output: StageOutput,
    private readonly limitBytes: number,
    private passedBytes: number,
  ) {}

  push(chunk: Chunk): void {
    if (this.#stopped) {
      this.output.discard(chunk.data.length);
      return;
    }
    const remainingBytes = Math.max(0, this.limitBytes - this.passedBytes);
    const data = remainingBytes < chunk.data.length ? chunk.data.subarray(0, remainingBytes) : chunk.data;
    if (data.length < chunk.data.length) this.output.discard(chunk.data.length - data.length);
    if (data.length > 0) {
      this.output.emit({ data, arrivalMs: chunk.arrivalMs });
      this.passedBytes += data.length;
    }
    if (this.passedBytes >= this.limitBytes) this.end("graceful");
  }

  end(mode: CloseMode): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.output.close(mode);
  }

  drain(): Drained {
    this.#stopped = true;
    return { chunks: [], end: undefined, passedBytes: this.passedBytes };
  }

  dispose(): void {
    this.#stopped = true;
  }
}
