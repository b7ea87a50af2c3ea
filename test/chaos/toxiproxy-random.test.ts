/**
 * Randomness in the Toxiproxy-compatible server comes from one seeded generator, so a seed replays the
 * toxicity decisions, jitter and slicer cuts (the real server's -seed does not). Unit checks of the draws
 * the toxics make, then the property end to end: two servers with the same seed, driven through the same
 * connections in the same order, apply a toxic of toxicity 0.5 to the same connections.
 */
import test from "ava";
import { ToxicRandom } from "../../chaos/toxiproxy/random.ts";
import { latencyDrawMs, sliceSizes } from "../../chaos/toxiproxy/toxics.ts";
import { createProxy, portOf, startEcho, startToxiproxy, TestClient, toxic, waitFor, WAIT_MS } from "./toxiproxy-harness.ts";

test("ToxicRandom with one seed draws one sequence; another seed draws another", (t) => {
  const draw = (seed: number): number[] => {
    const random = new ToxicRandom(seed);
    return Array.from({ length: 50 }, () => random.next());
  };
  t.deepEqual(draw(42), draw(42));
  t.notDeepEqual(draw(42), draw(43));
  const random = new ToxicRandom(7);
  t.false(random.decide(0));
  t.true(random.decide(1));
  t.is(random.draws, 2, "a decision draws even when the toxicity settles it");
  t.throws(() => new ToxicRandom(-1), { message: /seed must be an integer/ });
});

test("sliceSizes() cuts as the real slicer does: pieces add up, none empty, none longer than average + variation", (t) => {
  const random = new ToxicRandom(5);
  for (let trial = 0; trial < 300; trial++) {
    const lengthBytes = 1 + random.below(20_000);
    const averageSizeBytes = 1 + random.below(300);
    const sizeVariationBytes = random.below(averageSizeBytes);
    const sizes = sliceSizes(lengthBytes, averageSizeBytes, sizeVariationBytes, random);
    t.is(
      sizes.reduce((sum, size) => sum + size, 0),
      lengthBytes,
    );
    for (const size of sizes) {
      t.true(size >= 1, `an empty piece cutting ${lengthBytes} bytes by ${averageSizeBytes} ± ${sizeVariationBytes}`);
      t.true(size <= averageSizeBytes + sizeVariationBytes, `a piece of ${size} bytes cutting by ${averageSizeBytes} ± ${sizeVariationBytes}`);
    }
  }
  t.deepEqual(sliceSizes(100, 100, 0, random), [100]);
  t.deepEqual(sliceSizes(400, 100, 0, random), [100, 100, 100, 100]);
  t.deepEqual(sliceSizes(400, 100, 20, new ToxicRandom(9)), sliceSizes(400, 100, 20, new ToxicRandom(9)));
});

test("latencyDrawMs() draws latency - jitter up to, not including, latency + jitter, and exactly latency without jitter", (t) => {
  const random = new ToxicRandom(3);
  const draws = Array.from({ length: 2000 }, () => latencyDrawMs(100, 10, random));
  t.true(draws.every((delayMs) => Number.isInteger(delayMs) && delayMs >= 90 && delayMs < 110));
  t.true(draws.includes(90) && draws.includes(109), "both ends of the range are drawn");
  t.is(latencyDrawMs(100, 0, random), 100);
});

/** Opens `count` connections one after the other and says which of them the toxic was applied to. */
async function toxicityDecisions(t: Parameters<typeof startEcho>[0], seed: number, count: number): Promise<{ decisions: string; draws: number }> {
  const toxiproxy = await startToxiproxy(t, seed);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  // limit_data of 0 bytes closes a connection on its first data without passing any: easy to tell apart.
  await proxy.addToxic(toxic("limit_data", { bytes: 0 }, { stream: "upstream", toxicity: 0.5 }));
  let decisions = "";
  for (let i = 0; i < count; i++) {
    const client = await TestClient.connect(t, portOf(proxy));
    client.socket.write("ping");
    await waitFor(() => client.received.length >= 4 || client.closeRecord !== undefined, WAIT_MS, "an echo or a close");
    decisions += client.received.length >= 4 ? "-" : "X";
    client.socket.destroy();
    await client.waitForClose();
  }
  return { decisions, draws: toxiproxy.server.random.draws };
}

test("two servers with the same seed apply a toxic of toxicity 0.5 to the same connections; another seed to others", async (t) => {
  const first = await toxicityDecisions(t, 1234, 16);
  const second = await toxicityDecisions(t, 1234, 16);
  const other = await toxicityDecisions(t, 4321, 16);
  t.is(first.decisions, second.decisions);
  t.is(first.draws, second.draws);
  t.regex(first.decisions, /X/, "some connections got the toxic");
  t.regex(first.decisions, /-/, "some connections did not");
  t.not(other.decisions, first.decisions);
});
