/**
 * What a leader knows about each follower's log (etcd's tracker.Progress), as a small state machine:
 *
 * - `probe`: the leader does not know where the follower's log ends; it sends one append at a time and
 *   waits for the answer (or a heartbeat answer) before sending the next.
 * - `replicate`: the follower is in step; appends are pipelined optimistically, bounded by
 *   `inflightAppendsMax` messages in flight.
 * - `snapshot`: the follower needs entries the leader has compacted; appends wait for the snapshot.
 */
import { assert } from "../assert.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  /** Highest index known to be in the follower's log. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an append is out and unanswered. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshotIndex = 0;
  /** Last index of each append in flight (replicate state), oldest first. */
  readonly inflights: number[] = [];
  /**
   * Last indexes of appends sent in an earlier replicate run and not answered yet, ascending, at most
   * inflightAppendsMax of them. Leaving replicate state does not take messages back from the network:
   * they still count against inflightAppendsMax in replicate state, so that the appends out at once
   * stay bounded. (etcd forgets them, which is harmless over one ordered TCP stream; over a network
   * that reorders, each stale rejection dropped the follower to probe and the next replicate run sent
   * a full window while the previous ones were still out, and swarm seeds 3114 and 9125 grew millions
   * of appends catching up a new member one entry per append.)
   *
   * An entry is freed when its message can no longer be out, or can no longer do harm:
   * - an acknowledgement at or past it: the follower holds those entries, so a late copy is accepted
   *   and answered with an acknowledgement, never with a rejection that would start a new run;
   * - a rejection of it: a rejection with prevLogIndex `r` answers an append ending past `r`, most
   *   likely the smallest entry past `r`, as each replicate run sends its appends in order. Without this
   *   rule rejected appends (the usual fate of appends overtaken on a reordering network) held their
   *   slots until match passed them: catching up a follower took about 1.6 times the round trips in
   *   test/core/progress-earlier-inflights.test.ts;
   * - a heartbeat answer while replication is paused: the appends may have been lost.
   * A rejection or heartbeat answer frees at most one entry and a freed entry lets at most one append
   * go, so a mistaken guess (a duplicated answer, the answer to an older, uncounted probe) keeps the
   * count of appends out the same rather than multiplying it. The count is a flow-control bound, not an
   * exact one (the test measures at most 1.7 windows out at once, against 16 to 23 windows when the
   * earlier appends were forgotten); it decides nothing else: `match`, and so commitment, moves only on
   * acknowledgements, and a rejection's hint never moves it.
   */
  readonly earlier: number[] = [];
  /** In snapshot state: the leader's tick count when the snapshot went out. */
  snapshotSentTick = 0;
  /** The leader's tick count when this follower last answered. */
  lastResponseTick: number;

  constructor(next: number, readonly inflightAppendsMax: number, nowTick: number) {
    assert(next >= 1, "Progress needs next >= 1");
    assert(inflightAppendsMax >= 1, "Progress needs inflightAppendsMax >= 1");
    this.next = next;
    this.lastResponseTick = nowTick;
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot's index.
    const next = this.state === "snapshot" ? Math.max(this.match + 1, this.pendingSnapshotIndex + 1) : this.match + 1;
    this.reset("probe");
    this.next = next;
  }

  becomeReplicate(): void {
    this.reset("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.reset("snapshot");
    this.pendingSnapshotIndex = snapshotIndex;
  }

  /** True when no append may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.length + this.earlier.length >= this.inflightAppendsMax;
      case "snapshot":
        return true;
    }
  }

  /** Records that an append ending at `lastIndex` (or an empty probe) was sent. */
  sentAppend(entryCount: number, lastIndex: number): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        if (!(lastIndex >= this.next)) assert(false, `sentAppend() out of order: last ${lastIndex}, next ${this.next}`);
        this.next = lastIndex + 1;
        this.inflights.push(lastIndex);
        assert(this.inflights.length + this.earlier.length <= this.inflightAppendsMax, "inflight appends above their bound");
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    } else {
      assert(false, "sentAppend() in snapshot state");
    }
  }

  /** An append up to `index` succeeded. Returns whether it taught us anything new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    while (this.inflights.length > 0 && this.inflights[0]! <= index) this.inflights.shift();
    while (this.earlier.length > 0 && this.earlier[0]! <= index) this.earlier.shift();
    return updated;
  }

  /**
   * An append with prevLogIndex `rejected` failed; `hintIndex` is the follower's best guess of a
   * matching index (already refined by the leader's own log). Returns false for a stale rejection. In
   * replicate state a fresh rejection drops the follower to probe. The rejected append frees its slot
   * (see `earlier`), except the answer to the probe, which was never counted.
   */
  maybeDecreaseTo(rejected: number, hintIndex: number): boolean {
    if (this.state === "replicate") {
      // A rejection at or below match is an old, reordered message.
      if (rejected <= this.match) {
        this.#freeRejected(rejected);
        return false;
      }
      // `next` goes back to match + 1, not to the hint: the probe at match is accepted in one round
      // trip. The hint never moves `match` either: a rejection promises nothing durable, and match
      // decides commitment; only acknowledgements move it.
      this.becomeProbe();
      this.#freeRejected(rejected);
      return true;
    }
    // In probe state only the answer to the latest probe counts; the others answer earlier appends.
    if (this.next - 1 !== rejected) {
      this.#freeRejected(rejected);
      return false;
    }
    this.next = Math.max(Math.min(rejected, hintIndex + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** A rejection of an append with prevLogIndex `rejected` arrived: that append is out no longer. */
  #freeRejected(rejected: number): void {
    const at = this.earlier.findIndex((lastIndex) => lastIndex > rejected);
    if (at >= 0) this.earlier.splice(at, 1);
  }

  /** A heartbeat answer shows the follower is alive: let a stalled pipeline or probe try again. */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    // Appends may have been lost; free one slot so the next append can reveal a gap (then we probe).
    if (this.state === "replicate" && this.isPaused()) {
      if (this.earlier.length > 0) this.earlier.shift();
      else this.inflights.shift();
    }
  }

  private reset(state: ProgressState): void {
    if (this.state === "replicate" && this.inflights.length > 0) {
      this.earlier.push(...this.inflights);
      this.earlier.sort((a, b) => a - b);
      // Never more than the bound: the oldest are the likeliest to be answered or lost already.
      if (this.earlier.length > this.inflightAppendsMax) this.earlier.splice(0, this.earlier.length - this.inflightAppendsMax);
    }
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshotIndex = 0;
    this.inflights.length = 0;
  }
}
