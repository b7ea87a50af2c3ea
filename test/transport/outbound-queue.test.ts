/**
 * The per-peer outbound queue (bounded, drops the oldest) and the reconnect backoff (exponential,
 * capped, jittered between half the ceiling and the ceiling).
 */
import test from "ava";
import seedrandom from "seedrandom";
import { AssertionError } from "../../src/assert.ts";
import { reconnectDelayMs } from "../../src/transport/backoff.ts";
import { OutboundQueue } from "../../src/transport/outbound-queue.ts";

function frame(tag: number, size = 1): Uint8Array {
  return new Uint8Array(size).fill(tag);
}

test("OutboundQueue keeps order and drops the oldest frames beyond messagesMax", (t) => {
  const queue = new OutboundQueue({ messagesMax: 3, bytesMax: 100 });
  t.is(queue.push(frame(1)), 0);
  t.is(queue.push(frame(2)), 0);
  t.is(queue.push(frame(3)), 0);
  t.is(queue.push(frame(4)), 1);
  t.deepEqual([queue.shift()?.[0], queue.shift()?.[0], queue.shift()?.[0], queue.shift()], [2, 3, 4, undefined]);
  t.is(queue.bytes, 0);
});

test("OutboundQueue drops as many old frames as it takes to fit bytesMax", (t) => {
  const queue = new OutboundQueue({ messagesMax: 100, bytesMax: 10 });
  queue.push(frame(1, 4));
  queue.push(frame(2, 4));
  t.is(queue.push(frame(3, 9)), 2);
  t.is(queue.length, 1);
  t.is(queue.bytes, 9);
  t.throws(() => queue.push(frame(4, 11)), { instanceOf: AssertionError });
});

test("OutboundQueue stays correct across many pushes and shifts (compaction)", (t) => {
  const queue = new OutboundQueue({ messagesMax: 5000, bytesMax: 1_000_000 });
  let next = 0;
  let expected = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 300; i++) queue.push(frame(next++ % 256));
    for (let i = 0; i < 250; i++) t.is(queue.shift()?.[0], expected++ % 256);
  }
  t.is(queue.length, 50 * 50);
  t.is(queue.clear(), 2500);
  t.is(queue.length, 0);
});

test("OutboundQueue.shiftFresh() drops the frames older than the age limit and takes the next one", (t) => {
  const queue = new OutboundQueue({ messagesMax: 100, bytesMax: 100 });
  queue.push(frame(1), 0);
  queue.push(frame(2), 10);
  queue.push(frame(3), 500);
  queue.push(frame(4), 1200);
  const first = queue.shiftFresh(1200, 1000); // 1 and 2 are over 1000 ms old; 3 is exactly 700.
  t.deepEqual([first.frame?.[0], first.dropped], [3, 2]);
  t.deepEqual(queue.shiftFresh(5000, 1000), { frame: undefined, dropped: 1 });
  t.is(queue.length, 0);
  t.is(queue.bytes, 0);
  queue.push(frame(5), 7000);
  t.deepEqual(queue.shiftFresh(8000, 1000).frame?.[0], 5, "a frame exactly at the limit is still sent");
});

test("reconnectDelayMs() doubles from the minimum, caps at the maximum and jitters within [ceiling/2, ceiling]", (t) => {
  const limits = { backoffMsMin: 50, backoffMsMax: 2000 };
  t.is(reconnectDelayMs(0, limits, () => 0), 25);
  t.is(reconnectDelayMs(0, limits, () => 0.999999), 50);
  t.is(reconnectDelayMs(3, limits, () => 0.999999), 400);
  t.is(reconnectDelayMs(10, limits, () => 0.999999), 2000);
  t.is(reconnectDelayMs(1_000_000, limits, () => 0), 1000);
  const random = seedrandom("backoff");
  for (let attempt = 0; attempt < 40; attempt++) {
    const ceiling = Math.min(2000, 50 * 2 ** attempt);
    const delay = reconnectDelayMs(attempt, limits, random);
    t.true(delay >= ceiling / 2 && delay <= ceiling, `attempt ${attempt}: ${delay}`);
  }
  t.throws(() => reconnectDelayMs(0, limits, () => 1), { instanceOf: AssertionError });
});
