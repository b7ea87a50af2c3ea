/**
 * A link without sockets (chaos/toxiproxy/link.ts): chunks go in, pass a chain of toxic stages and come
 * out through recording ends, so the chain's rules can be checked exactly: order, no byte lost when
 * toxics are removed or updated mid-stream, the close travelling behind the data, bytes held counted
 * back to zero, and the source paused past the bound and resumed below half of it.
 */
import test from "ava";
import { performance } from "node:perf_hooks";
import { Link, LINK_HELD_BYTES_MAX, type LinkEnds } from "../../chaos/toxiproxy/link.ts";
import { ToxicRandom } from "../../chaos/toxiproxy/random.ts";
import type { CloseMode } from "../../chaos/toxiproxy/stage.ts";
import type { ToxicSpec, ToxicType } from "../../chaos/toxiproxy/toxic-spec.ts";
import { sleep, waitFor, WAIT_MS } from "./toxiproxy-harness.ts";

interface RecordingEnds extends LinkEnds {
  readonly written: Buffer[];
  readonly closes: CloseMode[];
  readonly pauses: boolean[];
  text(): string;
}

function recordingEnds(): RecordingEnds {
  const written: Buffer[] = [];
  const closes: CloseMode[] = [];
  const pauses: boolean[] = [];
  return {
    written,
    closes,
    pauses,
    text: () => Buffer.concat(written).toString(),
    write: (data) => written.push(data),
    close: (mode) => closes.push(mode),
    pendingWriteBytes: () => 0,
    setSourcePaused: (paused) => pauses.push(paused),
  };
}

function spec(type: ToxicType, attributes: Record<string, number>, name: string = type): ToxicSpec {
  return { name, type, stream: "downstream", toxicity: 1, attributes };
}

function link(toxics: readonly ToxicSpec[], ends: LinkEnds, seed = 1): Link {
  const created = new Link({ stream: "downstream", toxics, environment: { random: new ToxicRandom(seed), now: () => performance.now() }, ends });
  return created;
}

test("a chain passes data in order and the close after it; data after the close is dropped", async (t) => {
  const ends = recordingEnds();
  const chain = link([spec("latency", { latency: 30, jitter: 20 }), spec("slicer", { average_size: 3, size_variation: 1, delay: 0 })], ends);
  t.teardown(() => chain.dispose());
  for (let i = 0; i < 10; i++) chain.receive(Buffer.from(`<${i}>`));
  chain.sourceEnded();
  chain.receive(Buffer.from("late"));
  await waitFor(() => ends.closes.length > 0, WAIT_MS, "the close");
  t.is(ends.text(), Array.from({ length: 10 }, (_, i) => `<${i}>`).join(""));
  t.true(ends.written.every((piece) => piece.length <= 4));
  t.deepEqual(ends.closes, ["graceful"]);
  t.is(chain.heldBytes, 0);
});

test("removing or updating a toxic mid-stream loses and reorders nothing", async (t) => {
  const ends = recordingEnds();
  const chain = link([spec("latency", { latency: 60_000, jitter: 0 }, "slow"), spec("latency", { latency: 10, jitter: 0 }, "fast")], ends);
  t.teardown(() => chain.dispose());
  chain.receive(Buffer.from("a"));
  chain.receive(Buffer.from("b"));
  await sleep(30);
  t.is(ends.text(), "");
  chain.updateToxic(spec("latency", { latency: 0, jitter: 0 }, "slow"));
  chain.receive(Buffer.from("c"));
  chain.removeToxic("fast");
  chain.receive(Buffer.from("d"));
  await waitFor(() => ends.text().length === 4, WAIT_MS, "four bytes");
  t.is(ends.text(), "abcd");
  t.is(chain.heldBytes, 0);
});

test("a held close goes on when its toxic is removed; removing an active timeout closes the stream", async (t) => {
  const slowClose = recordingEnds();
  const closing = link([spec("slow_close", { delay: 60_000 })], slowClose);
  t.teardown(() => closing.dispose());
  closing.receive(Buffer.from("data"));
  closing.sourceEnded();
  await sleep(20);
  t.deepEqual(slowClose.closes, []);
  closing.removeToxic("slow_close");
  t.deepEqual(slowClose.closes, ["graceful"]);
  t.is(slowClose.text(), "data");

  const timeoutEnds = recordingEnds();
  const timeout = link([spec("timeout", { timeout: 0 })], timeoutEnds);
  t.teardown(() => timeout.dispose());
  timeout.receive(Buffer.from("dropped"));
  t.is(timeout.heldBytes, 0);
  timeout.removeToxic("timeout");
  t.deepEqual(timeoutEnds.closes, ["graceful"]);
  t.is(timeoutEnds.text(), "");
});

test("reset_peer closes with a reset; limit_data cuts at its byte count and closes", async (t) => {
  const resetEnds = recordingEnds();
  const reset = link([spec("reset_peer", { timeout: 10 })], resetEnds);
  t.teardown(() => reset.dispose());
  reset.receive(Buffer.from("first"));
  reset.receive(Buffer.from("held"));
  await waitFor(() => resetEnds.closes.length > 0, WAIT_MS, "the reset");
  t.deepEqual(resetEnds.closes, ["reset"]);
  t.is(resetEnds.text(), "");
  t.is(reset.heldBytes, 0);

  const limitEnds = recordingEnds();
  const limit = link([spec("limit_data", { bytes: 5 })], limitEnds);
  t.teardown(() => limit.dispose());
  limit.receive(Buffer.from("abc"));
  limit.receive(Buffer.from("defgh"));
  t.is(limitEnds.text(), "abcde");
  t.deepEqual(limitEnds.closes, ["graceful"]);
  t.is(limit.heldBytes, 0);
});

test("the source is paused past LINK_HELD_BYTES_MAX held bytes and resumed below half of it", async (t) => {
  const ends = recordingEnds();
  const chain = link([spec("bandwidth", { rate: 0 })], ends);
  t.teardown(() => chain.dispose());
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i <= LINK_HELD_BYTES_MAX / block.length; i++) chain.receive(block);
  t.deepEqual(ends.pauses, [true]);
  chain.updateToxic(spec("bandwidth", { rate: 10_000_000 }));
  await waitFor(() => chain.heldBytes === 0, WAIT_MS, "the held bytes to drain");
  t.deepEqual(ends.pauses, [true, false]);
});

test("a slicer cutting 200 KB into 1-byte pieces without delay passes it all, in order, yielding to the event loop", async (t) => {
  const ends = recordingEnds();
  const chain = link([spec("slicer", { average_size: 1, size_variation: 0, delay: 0 })], ends);
  t.teardown(() => chain.dispose());
  const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 256));
  chain.receive(payload);
  t.true(ends.written.length < payload.length, "the first turn stops after a bounded number of pieces");
  await waitFor(() => ends.written.length === payload.length, WAIT_MS, "every piece");
  t.true(Buffer.concat(ends.written).equals(payload));
});
