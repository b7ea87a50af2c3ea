// The simulated network's fault verbs and latency distributions behave as documented: partitions
// drop, held messages arrive at release, one-way cuts cut one way, loss and duplication happen at
// their rates, and each latency distribution stays within its bounds with the expected shape.
import test from "ava";
import { SimClock } from "../../sim/clock.ts";
import { SimNetwork, type LinkConditions } from "../../sim/network.ts";
import { Random } from "../../sim/random.ts";
import type { Message } from "../../src/core/types.ts";

function heartbeat(from: number, to: number, context = 0): Message {
  return { type: "MsgHeartbeat", from, to, term: 1, commit: 0, context };
}

function network(conditions: Partial<LinkConditions> = {}) {
  const clock = new SimClock();
  const delivered: { message: Message; atMs: number }[] = [];
  const net = new SimNetwork(
    clock,
    new Random(5),
    { latencyMs: 10, jitterMs: 0, lossRate: 0, duplicateRate: 0, ...conditions },
    (message) => delivered.push({ message, atMs: clock.nowMs }),
  );
  return { clock, net, delivered };
}

test("SimNetwork delivers after the link latency and drops across a partition until heal()", (t) => {
  const { clock, net, delivered } = network();
  net.send(heartbeat(1, 2));
  net.partition([1], [2, 3]);
  net.send(heartbeat(1, 2, 1));
  net.send(heartbeat(2, 1, 2));
  net.send(heartbeat(2, 3, 3));
  clock.runUntil(100);
  t.deepEqual(delivered.map((d) => [d.message.from, d.message.to, d.atMs]), [[1, 2, 10], [2, 3, 10]]);
  net.heal();
  net.send(heartbeat(1, 2, 4));
  clock.runUntil(200);
  t.is(delivered.length, 3);
  t.is(net.counters.dropped, 2);
});

test("SimNetwork.cutOneWay() drops one direction only", (t) => {
  const { clock, net, delivered } = network();
  net.cutOneWay([1], [2]);
  net.send(heartbeat(1, 2));
  net.send(heartbeat(2, 1));
  clock.runUntil(50);
  t.deepEqual(delivered.map((d) => d.message.from), [2]);
});

test("SimNetwork.hold() queues messages that all arrive after release(), unlike a partition", (t) => {
  const { clock, net, delivered } = network();
  net.hold(1, 2);
  for (let i = 0; i < 5; i++) net.send(heartbeat(1, 2, i));
  clock.runUntil(1_000);
  t.is(delivered.length, 0);
  t.is(net.heldCount(), 5);
  net.release(1, 2);
  clock.runUntil(2_000);
  t.is(delivered.length, 5);
  t.true(delivered.every((d) => d.atMs === 1_010));
});

test("SimNetwork loses and duplicates messages at about their configured rates", (t) => {
  const { clock, net, delivered } = network({ lossRate: 0.2, duplicateRate: 0.1 });
  for (let i = 0; i < 10_000; i++) net.send(heartbeat(1, 2, i));
  clock.runUntil(100);
  t.true(Math.abs(net.counters.dropped / 10_000 - 0.2) < 0.02, `dropped ${net.counters.dropped}`);
  t.true(Math.abs(net.counters.duplicated / 8_000 - 0.1) < 0.02, `duplicated ${net.counters.duplicated}`);
  t.is(delivered.length, 10_000 - net.counters.dropped + net.counters.duplicated);
});

for (const distribution of ["uniform", "normal", "long-tail"] as const) {
  test(`SimNetwork draws ${distribution} latency within its bounds and reorders messages`, (t) => {
    const { clock, net, delivered } = network({ latencyMs: 50, jitterMs: 20, distribution });
    for (let i = 0; i < 5_000; i++) net.send(heartbeat(1, 2, i));
    clock.runUntil(100_000);
    const latencies = delivered.map((d) => d.atMs);
    const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
    const min = Math.min(...latencies);
    const max = Math.max(...latencies);
    t.true(min >= 30, `min ${min}`);
    if (distribution === "long-tail") {
      t.true(Math.abs(mean - 70) < 3, `mean ${mean}`);
      t.true(max > 120, `max ${max}: the tail should reach far`);
    } else {
      t.true(max <= 70, `max ${max}`);
      t.true(Math.abs(mean - 50) < 2, `mean ${mean}`);
    }
    const contexts = delivered.map((d) => (d.message as { context: number }).context);
    t.notDeepEqual(contexts, [...contexts].sort((a, b) => a - b), "jitter must reorder some messages");
  });
}
