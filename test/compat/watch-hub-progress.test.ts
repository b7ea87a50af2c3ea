// WatchHub's progress notifications and cancel, on a manual clock: the rules etcd 3.4's v3rpc watch
// server follows (its sendLoop's progress ticker), which watch-progress-cancel.test.ts compares with a
// real etcd but cannot pin down tick by tick:
// - at each tick, a progress_notify watch that was sent no events since the previous tick, and has
//   caught up with the store, gets {header at the current revision, its watch_id}; one that had events
//   is skipped once;
// - watches without progress_notify get none; a canceled watch gets none;
// - watch_id 0 is left out of answers (proto3's default), as etcd's gRPC and gateway answers do.
import test from "ava";
import { WatchHub, type WatchSource } from "../../src/api/watch.ts";
import { KvStore } from "../../src/kv/kv-store.ts";
import type { TimerHandle, Timers } from "../../src/node/environment.ts";

const INTERVAL_MS = 1000;

class ManualTimers implements Timers {
  #nowMs = 0;
  #pending: Array<{ atMs: number; callback: () => void; canceled: boolean }> = [];

  nowMs(): number {
    return this.#nowMs;
  }

  after(delayMs: number, callback: () => void): TimerHandle {
    const timer = { atMs: this.#nowMs + delayMs, callback, canceled: false };
    this.#pending.push(timer);
    return { cancel: () => (timer.canceled = true) };
  }

  /** Moves the clock forward by `ms`, firing what falls due, in order. */
  advance(ms: number): void {
    const targetMs = this.#nowMs + ms;
    for (;;) {
      const due = this.#pending.filter((timer) => !timer.canceled && timer.atMs <= targetMs).sort((a, b) => a.atMs - b.atMs)[0];
      if (due === undefined) break;
      this.#pending = this.#pending.filter((timer) => timer !== due);
      this.#nowMs = due.atMs;
      due.callback();
    }
    this.#nowMs = targetMs;
  }
}

function setup() {
  const store = new KvStore();
  const listeners = new Set<() => void>();
  const source: WatchSource = {
    store: () => store,
    header: (revision) => ({ clusterId: "1", memberId: "1", revision, raftTerm: 1 }),
    onApplied: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  let index = 0;
  const put = (key: string): number => {
    store.apply(++index, { op: "put", key, value: "v" });
    for (const listener of listeners) listener();
    return index;
  };
  const timers = new ManualTimers();
  const hub = new WatchHub(source, { timers, progressIntervalMs: INTERVAL_MS });
  const sent: Array<Record<string, any>> = [];
  const stream = hub.open((message) => sent.push(message));
  const b64 = (text: string): string => Buffer.from(text, "latin1").toString("base64");
  return { put, timers, hub, sent, stream, b64 };
}

const progressOf = (sent: ReadonlyArray<Record<string, any>>) =>
  sent.filter((message) => message.events === undefined && !message.created && !message.canceled).map((message) => [message.watch_id ?? "(0)", message.header.revision]);

test("a progress_notify watch gets the current revision at each idle tick, skips one tick after events, and a plain watch gets none", (t) => {
  const { put, timers, hub, sent, stream, b64 } = setup();
  t.teardown(() => hub.close());
  put("other");
  stream.request({ create_request: { key: b64("a"), progress_notify: true } });
  stream.request({ create_request: { key: b64("b") } });
  t.deepEqual(
    sent.map((message) => [message.watch_id ?? "(0)", message.created]),
    [["(0)", true], ["1", true]],
    "the first watch's id 0 is left out, as etcd leaves it out",
  );
  sent.length = 0;
  timers.advance(INTERVAL_MS);
  t.deepEqual(progressOf(sent), [["(0)", "1"]], "first tick: the current revision, for the progress_notify watch only");
  sent.length = 0;
  put("a");
  timers.advance(INTERVAL_MS);
  t.deepEqual(progressOf(sent), [], "a tick after an event sends no progress (etcd's per-watch flag)");
  timers.advance(INTERVAL_MS);
  t.deepEqual(progressOf(sent), [["(0)", "2"]], "the next idle tick does, at the revision the event brought");
  put("other");
  timers.advance(INTERVAL_MS);
  t.deepEqual(progressOf(sent), [["(0)", "2"], ["(0)", "3"]], "a write the watch does not match leaves it idle: it gets the new revision");
});

test("a canceled watch gets no progress and no events; the others go on; an unknown id gets no answer", (t) => {
  const { put, timers, hub, sent, stream, b64 } = setup();
  t.teardown(() => hub.close());
  stream.request({ create_request: { key: b64("a"), progress_notify: true } });
  stream.request({ create_request: { key: b64("b"), progress_notify: true } });
  sent.length = 0;
  stream.request({ cancel_request: { watch_id: "0" } });
  stream.request({ cancel_request: { watch_id: "42" } });
  t.deepEqual(sent.map((message) => [message.watch_id ?? "(0)", message.canceled]), [["(0)", true]], "one answer, for the known watch");
  sent.length = 0;
  put("a");
  put("b");
  timers.advance(INTERVAL_MS);
  timers.advance(INTERVAL_MS);
  t.deepEqual(
    sent.map((message) => [message.watch_id ?? "(0)", message.events?.length ?? 0]),
    [["1", 1], ["1", 0]],
    "only watch 1 hears its event, then one progress notification (none for the canceled watch)",
  );
  stream.request({ progress_request: {} });
  t.deepEqual(sent.at(-1), { header: sent.at(-1)!.header, watch_id: "-1" }, "a progress_request is answered with watch_id -1");
  t.is(sent.at(-1)!.header.revision, "2");
});
