/**
 * Simulated time: one global clock and an event queue ordered by (time, insertion order), so events at
 * the same millisecond run in the order they were scheduled and a seed replays exactly. Each node sees
 * the global clock through its own drift factor (a bounded timer drift), via `NodeTimers`.
 *
 * The clock also bounds the run it drives, so that a broken seed fails in seconds instead of running
 * until an event cap (a planted persistence-order bug once made seeds spin at one simulated instant for
 * 750 s and 2.6 GB): too many events at one instant (time stopped: a zero-delay livelock), too much wall
 * time, or too much heap. Each throws a SimulationBoundError that names the bound and, for a stall, the
 * events that loop; the runners report it as a liveness failure.
 */
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { assert } from "../src/assert.ts";
import type { TimerHandle, Timers } from "../src/node/environment.ts";

/** What an event is, for the report of a stalled run: text, or a function making it (called only then). */
export type EventLabel = string | (() => string);

export interface ClockBounds {
  /** Events run at one simulated instant before the run counts as stalled (time stopped advancing). */
  readonly eventsAtInstantMax: number;
  /** Wall-clock time the run may take, counted from the clock's creation. */
  readonly wallMsMax: number;
  /** JavaScript heap (MB, used) the process may reach while the run goes on. */
  readonly heapMbMax: number;
}

/**
 * Healthy 60 s swarm seeds (1..2000 and 20001..31961 measured) run at most 1,954 events at one instant
 * and stay near 100 MB of heap; they take seconds of wall time, up to 76 s on a two-core machine at a
 * load of 17. The bounds leave a wide margin and still stop a livelocked seed within seconds (it runs
 * some 20,000 to 60,000 events a second at one instant while every node traces and answers what it
 * gets); the wall-time bound is the backstop for a run that is slow without being stuck.
 */
export const CLOCK_BOUNDS_DEFAULT: ClockBounds = { eventsAtInstantMax: 100_000, wallMsMax: 300_000, heapMbMax: 1_536 };

export type ClockBound = "stalled" | "wall-time" | "memory" | "events";

/** A run passed one of its ClockBounds; `message` says which, with what was seen and what loops. */
export class SimulationBoundError extends Error {
  override name = "SimulationBoundError";
  constructor(
    readonly bound: ClockBound,
    message: string,
  ) {
    super(message);
  }
}

/** Labels of the last events run, kept for the stall report (a power of two). */
const RECENT_LABELS = 1_024;
/** Wall time is read once per this many events, heap use once per HEAP_CHECK_EVENTS (both powers of two). */
const WALL_CHECK_EVENTS = 1_024;
const HEAP_CHECK_EVENTS = 65_536;
/** Kinds of event the stall report lists. */
const STALL_GROUPS_MAX = 6;

/**
 * One scheduled event, which is also its own TimerHandle (no handle object or closure per event: the
 * clock runs millions of them). Its place in the queue is kept in the clock's typed arrays.
 */
class ScheduledEvent implements TimerHandle {
  cancelled = false;
  constructor(
    readonly run: () => void,
    readonly label: EventLabel | undefined,
  ) {}

  cancel(): void {
    this.cancelled = true;
  }
}

/** Initial capacity of the event queue (it doubles as needed). */
const QUEUE_CAPACITY_INITIAL = 1_024;

export class SimClock {
  #nowMs = 0;
  #sequence = 0;
  /**
   * The event queue: a binary min-heap ordered by (time, sequence), stored as parallel arrays so a
   * comparison reads two typed arrays instead of two objects (the queue holds tens of thousands of
   * events in a slow-disk seed). Every (time, sequence) pair is distinct, so the order is total and
   * exactly the order a sorted list would give.
   */
  #times = new Float64Array(QUEUE_CAPACITY_INITIAL);
  #sequences = new Float64Array(QUEUE_CAPACITY_INITIAL);
  #events: (ScheduledEvent | undefined)[] = new Array<ScheduledEvent | undefined>(QUEUE_CAPACITY_INITIAL).fill(undefined);
  #size = 0;
  /** The event running now (undefined between events). */
  #current: ScheduledEvent | undefined;
  eventsRun = 0;
  readonly bounds: ClockBounds;
  #wallStartMs = performance.now();
  /** The instant the latest event ran at, and how many events ran at it. */
  #instantMs = -1;
  #eventsAtInstant = 0;
  /** The most events that ran at one instant so far (how close the run came to the stall bound). */
  eventsAtInstantPeak = 0;
  #recentLabels: (EventLabel | undefined)[] = new Array<EventLabel | undefined>(RECENT_LABELS);

  constructor(bounds: Partial<ClockBounds> = {}) {
    this.bounds = { ...CLOCK_BOUNDS_DEFAULT, ...bounds };
    assert(this.bounds.eventsAtInstantMax >= 1, `SimClock: eventsAtInstantMax must be at least 1, got ${this.bounds.eventsAtInstantMax}`);
    assert(this.bounds.wallMsMax > 0, `SimClock: wallMsMax must be positive, got ${this.bounds.wallMsMax}`);
    assert(this.bounds.heapMbMax > 0, `SimClock: heapMbMax must be positive, got ${this.bounds.heapMbMax}`);
  }

  get nowMs(): number {
    return this.#nowMs;
  }

  get pending(): number {
    return this.#size;
  }

  /** Runs `run` after `delayMs`; `label` says what it is if the run stalls there. */
  schedule(delayMs: number, run: () => void, label?: EventLabel): TimerHandle {
    if (!(delayMs >= 0 && delayMs < Infinity)) assert(false, `schedule(): bad delay ${delayMs}`);
    const event = new ScheduledEvent(run, label);
    this.#push(this.#nowMs + delayMs, this.#sequence++, event);
    return event;
  }

  /**
   * Schedules the event that is running now to run again after `delayMs`, with the same function and
   * label: exactly what `schedule(delayMs, run, label)` from inside it would do (the same place in the
   * order), without a new event. The work waiting for a slow disk is requeued this way, again and again.
   */
  repeatCurrent(delayMs: number): void {
    const event = this.#current;
    assert(event !== undefined, "repeatCurrent(): no event is running");
    if (!(delayMs >= 0 && delayMs < Infinity)) assert(false, `repeatCurrent(): bad delay ${delayMs}`);
    this.#current = undefined;
    this.#push(this.#nowMs + delayMs, this.#sequence++, event);
  }

  /**
   * Runs events up to and including `untilMs`, then sets the clock to `untilMs`. Throws a
   * SimulationBoundError when the run passes one of its bounds.
   */
  runUntil(untilMs: number, stop?: () => boolean): void {
    while (this.#size > 0 && this.#times[0]! <= untilMs) {
      const timeMs = this.#times[0]!;
      const event = this.#pop();
      if (event.cancelled) continue;
      if (!(timeMs >= this.#nowMs)) assert(false, "time went backwards");
      if (timeMs !== this.#instantMs) {
        this.#instantMs = timeMs;
        this.#eventsAtInstant = 0;
      }
      this.#nowMs = timeMs;
      this.#recentLabels[this.eventsRun & (RECENT_LABELS - 1)] = event.label;
      this.eventsRun++;
      if (++this.#eventsAtInstant > this.eventsAtInstantPeak) {
        this.eventsAtInstantPeak = this.#eventsAtInstant;
        if (this.#eventsAtInstant > this.bounds.eventsAtInstantMax) this.#failStalled();
      }
      if ((this.eventsRun & (WALL_CHECK_EVENTS - 1)) === 0) this.#checkBudget();
      this.#current = event;
      event.run();
      this.#current = undefined;
      if (stop?.()) return;
    }
    this.#nowMs = Math.max(this.#nowMs, untilMs);
  }

  /** The bounds, in words, for violation texts. */
  describeBounds(): string {
    const b = this.bounds;
    return `bounds per seed: ${b.eventsAtInstantMax} events at one simulated instant, ${b.wallMsMax / 1000} s of wall time, ${b.heapMbMax} MB of heap`;
  }

  #checkBudget(): void {
    const wallMs = performance.now() - this.#wallStartMs;
    if (wallMs > this.bounds.wallMsMax) {
      throw new SimulationBoundError(
        "wall-time",
        `the run took more than ${this.bounds.wallMsMax / 1000} s of wall time (${(wallMs / 1000).toFixed(1)} s) and was stopped at ` +
          `${this.#nowMs.toFixed(3)} ms simulated, after ${this.eventsRun} events; wall time depends on the machine, so replay ` +
          `the seed to see whether it is slow or stuck (${this.describeBounds()})`,
      );
    }
    if ((this.eventsRun & (HEAP_CHECK_EVENTS - 1)) !== 0) return;
    let heapMb = process.memoryUsage().heapUsed / 2 ** 20;
    // heapUsed counts garbage not yet collected: a worker that ran a heavy seed before may carry a
    // gigabyte of it into the next (a sweep once failed 66 seeds in a row at their first check this
    // way). Only what survives a full collection counts against the bound.
    if (heapMb > this.bounds.heapMbMax) {
      collectGarbage();
      heapMb = process.memoryUsage().heapUsed / 2 ** 20;
    }
    if (heapMb > this.bounds.heapMbMax) {
      throw new SimulationBoundError(
        "memory",
        `the run used ${heapMb.toFixed(0)} MB of heap, more than ${this.bounds.heapMbMax} MB, and was stopped at ${this.#nowMs.toFixed(3)} ms ` +
          `simulated, after ${this.eventsRun} events, with ${this.#size} events pending (${this.describeBounds()})`,
      );
    }
  }

  /**
   * The error for a run that used up its cap on events (a run's caller sets the cap and checks it): time
   * still moves, but something multiplies work faster than the run can finish it, a message storm.
   */
  eventCapError(eventsMax: number): SimulationBoundError {
    return new SimulationBoundError(
      "events",
      `the run reached its cap of ${eventsMax} events at ${this.#nowMs.toFixed(3)} ms simulated, with ${this.#size} events pending ` +
        `and up to ${this.eventsAtInstantPeak} at one instant: time still moves, but work multiplies faster than it is done ` +
        `(a message storm); replay the seed with --trace and look for the messages that repeat (${this.describeBounds()})`,
    );
  }

  /** Time stopped: say which events kept it there (by kind, from the last RECENT_LABELS run), and stop. */
  #failStalled(): never {
    const counts = new Map<string, { count: number; example: string }>();
    const described = Math.min(this.eventsRun, RECENT_LABELS);
    for (let sequence = this.eventsRun - described; sequence < this.eventsRun; sequence++) {
      const label = this.#recentLabels[sequence & (RECENT_LABELS - 1)];
      const text = label === undefined ? "unlabelled event" : typeof label === "string" ? label : label();
      // "deliver 1->2 MsgApp t3 prev 4/2 ..." groups as "deliver 1->2 MsgApp"; "n2 timer" as itself.
      const kind = /^.*?\bMsg[A-Za-z]+/.exec(text)?.[0] ?? text;
      const group = counts.get(kind);
      if (group) {
        group.count++;
        group.example = text;
      } else counts.set(kind, { count: 1, example: text });
    }
    const groups = [...counts.entries()].sort((a, b) => b[1].count - a[1].count);
    const listed = groups
      .slice(0, STALL_GROUPS_MAX)
      .map(([kind, group]) => `${group.count} x ${kind}${group.example !== kind ? ` (last: ${group.example})` : ""}`);
    if (groups.length > STALL_GROUPS_MAX) listed.push(`${groups.length - STALL_GROUPS_MAX} other kinds`);
    const nodes = new Set<string>();
    for (const [kind] of groups) {
      for (const match of kind.matchAll(/\bn(\d+)\b|\b(\d+)->(\d+)\b/g)) {
        for (const id of match.slice(1)) if (id !== undefined) nodes.add(`n${id}`);
      }
    }
    const involved = nodes.size > 0 ? `; nodes involved: ${[...nodes].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))).join(", ")}` : "";
    throw new SimulationBoundError(
      "stalled",
      `simulated time stopped at ${this.#nowMs.toFixed(3)} ms: ${this.bounds.eventsAtInstantMax} events ran at that instant ` +
        `(${this.eventsRun} in all, ${this.#size} pending), a livelock. The last ${described} events: ${listed.join(", ")}${involved} ` +
        `(${this.describeBounds()})`,
    );
  }

  #push(timeMs: number, sequence: number, event: ScheduledEvent): void {
    if (this.#size === this.#times.length) this.#grow();
    const times = this.#times;
    const sequences = this.#sequences;
    const events = this.#events;
    // Sift up with a hole: move parents down until the new event's place is found.
    let i = this.#size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const parentTime = times[parent]!;
      if (parentTime < timeMs || (parentTime === timeMs && sequences[parent]! < sequence)) break;
      times[i] = parentTime;
      sequences[i] = sequences[parent]!;
      events[i] = events[parent];
      i = parent;
    }
    times[i] = timeMs;
    sequences[i] = sequence;
    events[i] = event;
  }

  /** Removes and returns the earliest event (the queue must not be empty). */
  #pop(): ScheduledEvent {
    const times = this.#times;
    const sequences = this.#sequences;
    const events = this.#events;
    const top = events[0]!;
    const size = --this.#size;
    const lastTime = times[size]!;
    const lastSequence = sequences[size]!;
    const last = events[size];
    events[size] = undefined;
    if (size > 0) {
      // Sift the last event down from the root with a hole.
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= size) break;
        let childTime = times[child]!;
        let childSequence = sequences[child]!;
        const right = child + 1;
        if (right < size) {
          const rightTime = times[right]!;
          const rightSequence = sequences[right]!;
          if (rightTime < childTime || (rightTime === childTime && rightSequence < childSequence)) {
            child = right;
            childTime = rightTime;
            childSequence = rightSequence;
          }
        }
        if (lastTime < childTime || (lastTime === childTime && lastSequence < childSequence)) break;
        times[i] = childTime;
        sequences[i] = childSequence;
        events[i] = events[child];
        i = child;
      }
      times[i] = lastTime;
      sequences[i] = lastSequence;
      events[i] = last;
    }
    return top;
  }

  #grow(): void {
    const capacity = this.#times.length * 2;
    const times = new Float64Array(capacity);
    times.set(this.#times);
    const sequences = new Float64Array(capacity);
    sequences.set(this.#sequences);
    this.#times = times;
    this.#sequences = sequences;
    const events = this.#events;
    for (let i = events.length; i < capacity; i++) events.push(undefined);
  }
}

/**
 * A node's view of time. `rate` is how fast its clock runs relative to real (simulated) time: 1.01
 * means 1% fast, so its timers fire 1% early. Timers of a crashed incarnation are cancelled through
 * `cancelAll()`; a paused node's timers are held by the cluster, not here.
 */
export class NodeTimers implements Timers {
  #handles = new Set<NodeTimer>();
  #rate: number;
  /** Local time at the last rate change, and the global time it happened at. */
  #localBaseMs = 0;
  #globalBaseMs = 0;

  constructor(
    readonly clock: SimClock,
    rate: number,
    readonly wrap: (run: () => void) => () => void = (run) => run,
    /** Labels this node's timer events in a stall report ("n2 timer"). */
    readonly label: string = "timer",
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
    const handles = this.#handles;
    const timer = new NodeTimer(handles);
    timer.event = this.clock.schedule(
      delayMs / this.#rate,
      () => {
        handles.delete(timer);
        wrapped();
      },
      this.label,
    );
    handles.add(timer);
    return timer;
  }

  soon(callback: () => void): TimerHandle {
    return this.after(0, callback);
  }

  cancelAll(): void {
    for (const timer of this.#handles) timer.event?.cancel();
    this.#handles.clear();
  }
}

/** A node's timer: cancelling it cancels its clock event and forgets it. */
class NodeTimer implements TimerHandle {
  event: TimerHandle | undefined;
  constructor(readonly handles: Set<NodeTimer>) {}

  cancel(): void {
    this.event?.cancel();
    this.handles.delete(this);
  }
}

let gcFunction: (() => void) | undefined;

/**
 * A full garbage collection, also when node was started without --expose-gc: the flag is switched on
 * and a fresh context hands out its `gc` (the flag only reaches contexts created after it is set).
 */
export function collectGarbage(): void {
  if (gcFunction === undefined) {
    setFlagsFromString("--expose-gc");
    gcFunction = runInNewContext("gc") as () => void;
  }
  gcFunction();
}
