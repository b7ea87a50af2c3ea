/**
 * Simulated time: one global clock and an event queue ordered by (time, insertion order), so events at
 * the same millisecond run in the order they were scheduled and a seed replays exactly. Each node sees
 * the global clock through its own drift factor (a bounded timer drift), via `NodeTimers`.
 */
import { assert } from "../src/assert.ts";
import type { TimerHandle, Timers } from "../src/node/environment.ts";

interface ScheduledEvent {
  timeMs: number;
  sequence: number;
  run: () => void;
  cancelled: boolean;
}

export class SimClock {
  #nowMs = 0;
  #sequence = 0;
  #heap: ScheduledEvent[] = [];
  eventsRun = 0;

  get nowMs(): number {
    return this.#nowMs;
  }

  get pending(): number {
    return this.#heap.length;
  }

  schedule(delayMs: number, run: () => void): TimerHandle {
    assert(delayMs >= 0 && Number.isFinite(delayMs), `schedule(): bad delay ${delayMs}`);
    const event: ScheduledEvent = { timeMs: this.#nowMs + delayMs, sequence: this.#sequence++, run, cancelled: false };
    this.#push(event);
    return {
      cancel: () => {
        event.cancelled = true;
      },
    };
  }

  /** Runs events up to and including `untilMs`, then sets the clock to `untilMs`. */
  runUntil(untilMs: number, stop?: () => boolean): void {
    while (this.#heap.length > 0 && this.#heap[0]!.timeMs <= untilMs) {
      const event = this.#pop();
      if (event.cancelled) continue;
      assert(event.timeMs >= this.#nowMs, "time went backwards");
      this.#nowMs = event.timeMs;
      this.eventsRun++;
      event.run();
      if (stop?.()) return;
    }
    this.#nowMs = Math.max(this.#nowMs, untilMs);
  }

  #less(a: ScheduledEvent, b: ScheduledEvent): boolean {
    return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.sequence < b.sequence);
  }

  #push(event: ScheduledEvent): void {
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): ScheduledEvent {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && this.#less(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && this.#less(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}

/**
 * A node's view of time. `rate` is how fast its clock runs relative to real (simulated) time: 1.01
 * means 1% fast, so its timers fire 1% early. Timers of a crashed incarnation are cancelled through
 * `cancelAll()`; a paused node's timers are held by the cluster, not here.
 */
export class NodeTimers implements Timers {
  #handles = new Set<TimerHandle>();
  #rate: number;
  /** Local time at the last rate change, and the global time it happened at. */
  #localBaseMs = 0;
  #globalBaseMs = 0;

  constructor(
    readonly clock: SimClock,
    rate: number,
    readonly wrap: (run: () => void) => () => void = (run) => run,
  ) {
    assert(rate > 0.5 && rate < 1.5, `NodeTimers rate ${rate} outside (0.5, 1.5)`);
    this.#rate = rate;
    this.#globalBaseMs = clock.nowMs;
    this.#localBaseMs = clock.nowMs * rate;
  }

  get rate(): number {
    return this.#rate;
  }

  /** From now on the node's clock runs at `rate`; its local time stays continuous. */
  setRate(rate: number): void {
    assert(rate > 0.5 && rate < 1.5, `NodeTimers rate ${rate} outside (0.5, 1.5)`);
    this.#localBaseMs = this.nowMs();
    this.#globalBaseMs = this.clock.nowMs;
    this.#rate = rate;
  }

  nowMs(): number {
    return this.#localBaseMs + (this.clock.nowMs - this.#globalBaseMs) * this.#rate;
  }

  after(delayMs: number, callback: () => void): TimerHandle {
    const wrapped = this.wrap(callback);
    const handle = this.clock.schedule(delayMs / this.#rate, () => {
      this.#handles.delete(handle);
      wrapped();
    });
    this.#handles.add(handle);
    return {
      cancel: () => {
        handle.cancel();
        this.#handles.delete(handle);
      },
    };
  }

  soon(callback: () => void): TimerHandle {
    return this.after(0, callback);
  }

  cancelAll(): void {
    for (const handle of this.#handles) handle.cancel();
    this.#handles.clear();
  }
}
