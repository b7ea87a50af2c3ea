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
        return this.inflights.length >= this.inflightAppendsMax;
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
        assert(this.inflights.length <= this.inflightAppendsMax, "inflight appends above their bound");
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
    return updated;
  }

  /**
   * An append with prevLogIndex `rejected` failed; `hintIndex` is the follower's best guess of a
   * matching index (already refined by the leader's own log). Returns false for a stale rejection.
   */
  maybeDecreaseTo(rejected: number, hintIndex: number): boolean {
    if (this.state === "replicate") {
      // A rejection at or below match is an old, reordered message.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the latest probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hintIndex + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** A heartbeat answer shows the follower is alive: let a stalled pipeline or probe try again. */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    // Appends may have been lost; free one slot so the next append can reveal a gap (then we probe).
    if (this.state === "replicate" && this.inflights.length >= this.inflightAppendsMax) this.inflights.shift();
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshotIndex = 0;
    this.inflights.length = 0;
  }
}
