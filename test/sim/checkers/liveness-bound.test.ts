// The liveness bound: 12 election timeouts on a network that loses nothing, and more where the world
// loses messages, by the inverse of the chance that a whole election round gets through.
import test from "ava";
import { LIVENESS_ELECTION_TIMEOUTS_MAX, livenessBoundMs } from "../../../sim/checkers/liveness.ts";

test("without loss the bound is 12 election timeouts, whatever the cluster size", (t) => {
  for (const voters of [1, 3, 5, 7]) t.is(livenessBoundMs(1_000, 0, voters), LIVENESS_ELECTION_TIMEOUTS_MAX * 1_000);
});

test("loss stretches the bound by the inverse of an election round's chance to get through", (t) => {
  // 3 voters: a round needs 4 messages to and from the one other quorum member.
  t.is(livenessBoundMs(1_000, 0.1, 3), Math.ceil(12_000 / 0.9 ** 4));
  // 5 voters: 8 messages (two others).
  t.is(livenessBoundMs(1_000, 0.1, 5), Math.ceil(12_000 / 0.9 ** 8));
  t.true(livenessBoundMs(1_000, 0.05, 5) < livenessBoundMs(1_000, 0.1, 5));
  t.true(livenessBoundMs(1_000, 0.1, 3) < livenessBoundMs(1_000, 0.1, 5));
  t.is(livenessBoundMs(500, 0.1, 5), Math.ceil(6_000 / 0.9 ** 8));
});
