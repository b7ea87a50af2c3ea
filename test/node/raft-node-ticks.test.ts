/**
 * RaftNode's ticks keep to a grid of tickMs on the node's clock. Node's timers fire late by the event
 * loop's delay; a chain of after(tickMs) added that delay to every tick, so on a busy machine the
 * configured election timeout and CheckQuorum window stretched by a quarter or more. A tick that
 * comes very late is not made up for with a burst (that would start an election at once).
 */
import test from "ava";
import { HARD_STATE_EMPTY } from "../../src/core/types.ts";
import type { TimerHandle, Timers } from "../../src/node/environment.ts";
import { RaftNode } from "../../src/node/raft-node.ts";

/** A clock the test moves, whose one pending timer the test fires when it likes (late). */
class LateTimers implements Timers {
  now = 0;
  pending: { dueMs: number; callback: () => void } | undefined;
  nowMs(): number {
    return this.now;
  }
  after(delayMs: number, callback: () => void): TimerHandle {
    const timer = { dueMs: this.now + delayMs, callback };
    this.pending = timer;
    return { cancel: () => void (this.pending === timer && (this.pending = undefined)) };
  }
  /** Fires the pending timer `lateMs` after it was due. */
  fire(lateMs: number): void {
    const timer = this.pending!;
    this.pending = undefined;
    this.now = timer.dueMs + lateMs;
    timer.callback();
  }
}

function ticking(timers: LateTimers): { node: RaftNode; tickTimesMs: number[] } {
  const node = new RaftNode({
    id: 2,
    membership: { voters: [1, 2, 3], learners: [] },
    tickMs: 10,
    electionTimeoutMs: 200,
    heartbeatIntervalMs: 20,
    preVote: true,
    checkQuorum: true,
    entriesPerAppendMax: 100,
    maxBatchDelayMs: 0,
    requestTimeoutMs: 2000,
    restored: { hardState: HARD_STATE_EMPTY, entries: [] },
    persistence: { save() {}, compact() {} },
    transport: { send() {} },
    timers,
    random: () => 0.5,
  });
  const tickTimesMs: number[] = [];
  const tick = node.tick.bind(node);
  node.tick = () => {
    tickTimesMs.push(timers.now);
    tick();
  };
  return { node, tickTimesMs };
}

test("ticks that fire 3 ms late each stay on the 10 ms grid: 100 ticks take 1000 ms, not 1300", (t) => {
  const timers = new LateTimers();
  const { node, tickTimesMs } = ticking(timers);
  node.start();
  for (let i = 0; i < 100; i++) timers.fire(3);
  node.stop();
  t.is(tickTimesMs.length, 100);
  t.is(tickTimesMs[99], 1003, `the 100th tick ran at ${tickTimesMs[99]} ms`);
  t.deepEqual(tickTimesMs.slice(0, 3), [13, 23, 33]);
});

test("a tick 55 ms late is one tick, not a burst, and the next is due on the grid", (t) => {
  const timers = new LateTimers();
  const { node, tickTimesMs } = ticking(timers);
  node.start();
  timers.fire(0); // 10
  timers.fire(55); // due 20, runs at 75
  t.is(timers.pending!.dueMs, 80, "the next tick is due at the next grid point, 5 ms later");
  timers.fire(0);
  node.stop();
  t.deepEqual(tickTimesMs, [10, 75, 80]);
});

test("timers that fire on time give ticks every tickMs exactly, as a chain of timers did", (t) => {
  const timers = new LateTimers();
  const { node, tickTimesMs } = ticking(timers);
  node.start();
  for (let i = 0; i < 5; i++) timers.fire(0);
  node.stop();
  t.deepEqual(tickTimesMs, [10, 20, 30, 40, 50]);
  t.is(timers.pending, undefined, "stop() cancels the next tick");
});
