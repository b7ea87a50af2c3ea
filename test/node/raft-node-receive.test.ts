/**
 * RaftNode.receive() groups writes: the messages a follower receives in one event-loop turn are stepped
 * at once and their Ready is handled once, so a burst of appends costs one save (one fsync) and the
 * acknowledgements leave only after it. Without `timers.soon` (a world that cannot defer), every
 * message is handled at once, as before. Swarm seed 1465 livelocked without the grouping: a follower
 * with a 50 ms disk handled one message per fsync while the leader kept 256 appends in flight.
 */
import test from "ava";
import type { Entry, Message, MsgApp } from "../../src/core/types.ts";
import { HARD_STATE_EMPTY } from "../../src/core/types.ts";
import type { TimerHandle, Timers } from "../../src/node/environment.ts";
import { RaftNode } from "../../src/node/raft-node.ts";

/** Timers whose `soon` callbacks run only when the test says (the end of an event-loop turn). */
class TurnTimers implements Timers {
  readonly queued: (() => void)[] = [];
  nowMs(): number {
    return 0;
  }
  after(): TimerHandle {
    return { cancel() {} };
  }
  soon(callback: () => void): TimerHandle {
    let cancelled = false;
    this.queued.push(() => {
      if (!cancelled) callback();
    });
    return { cancel: () => void (cancelled = true) };
  }
  endTurn(): void {
    for (const callback of this.queued.splice(0)) callback();
  }
}

interface Follower {
  readonly node: RaftNode;
  /** What happened, in order: "save(n entries)" and "send MsgType". */
  readonly events: string[];
}

function follower(timers: Timers): Follower {
  const events: string[] = [];
  const node = new RaftNode({
    id: 2,
    membership: { voters: [1, 2, 3], learners: [] },
    tickMs: 10,
    electionTimeoutMs: 100,
    heartbeatIntervalMs: 10,
    preVote: true,
    checkQuorum: true,
    entriesPerAppendMax: 100,
    maxBatchDelayMs: 0,
    requestTimeoutMs: 2000,
    restored: { hardState: HARD_STATE_EMPTY, entries: [] },
    persistence: {
      save: (write) => void events.push(`save(${write.entries.length} entries)`),
      compact() {},
    },
    transport: { send: (message: Message) => void events.push(`send ${message.type}`) },
    timers,
    random: () => 0.5,
  });
  return { node, events };
}

/** The leader's (node 1, term 1) append of entry `index`, right after entry index - 1. */
function append(index: number): MsgApp {
  const entry: Entry = { index, term: 1, kind: "command", data: `v${index}` };
  return { type: "MsgApp", from: 1, to: 2, term: 1, prevLogIndex: index - 1, prevLogTerm: index === 1 ? 0 : 1, entries: [entry], commit: 0 };
}

test("a burst of appends received in one turn is written once, and acknowledged only after the write", (t) => {
  const timers = new TurnTimers();
  const { node, events } = follower(timers);
  for (let index = 1; index <= 5; index++) node.receive(append(index));
  t.deepEqual(events, [], "nothing is written or sent before the turn ends");
  t.is(timers.queued.length, 1, "one Ready pass is scheduled for the whole burst");
  timers.endTurn();
  const saves = events.filter((event) => event.startsWith("save"));
  t.deepEqual(saves, ["save(5 entries)"], "one save holds all five entries");
  const firstSend = events.findIndex((event) => event.startsWith("send"));
  t.true(firstSend > events.indexOf("save(5 entries)"), `acknowledgements follow the write: ${events.join(", ")}`);
  t.true(events.includes("send MsgAppResp"));
  t.is(node.status().lastIndex, 5);
});

test("without timers.soon every message is handled at once: one save per append", (t) => {
  const timers = new TurnTimers();
  const immediate: Timers = { nowMs: () => timers.nowMs(), after: () => timers.after() };
  const { node, events } = follower(immediate);
  for (let index = 1; index <= 3; index++) node.receive(append(index));
  t.deepEqual(
    events.filter((event) => event.startsWith("save")),
    ["save(1 entries)", "save(1 entries)", "save(1 entries)"],
  );
});

test("stop() cancels a scheduled Ready pass: a stopped node writes and sends nothing more", (t) => {
  const timers = new TurnTimers();
  const { node, events } = follower(timers);
  node.receive(append(1));
  node.stop();
  timers.endTurn();
  t.deepEqual(events, []);
});
