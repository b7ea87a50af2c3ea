/**
 * The bounded queue of encoded frames waiting for one peer's connection.
 *
 * Each frame keeps the time it was queued, so that the transport can drop frames that waited too long
 * (see `shiftFresh`): a Raft message that waited longer than an election timeout for a peer that was
 * down speaks for a past that is over. Delivered late, a stale heartbeat makes a restarted follower
 * believe in a leader that stepped down seconds ago, and it then refuses the pre-votes of the election
 * that would replace it (thesis section 4.2.3 makes a node ignore vote requests while it hears from a
 * current leader). Dropping is always safe: Raft tolerates lost messages.
 *
 * When it is full, the OLDEST frames are dropped to make room. Raft tolerates loss and retries on its
 * own (heartbeats repeat, a leader re-sends appends from the follower's progress, a candidate's next
 * election re-sends its votes), and the newest messages are the ones that matter: they carry the
 * current term and the latest commit index. Dropping the newest instead would, after a long outage,
 * deliver a burst of stale heartbeats while throwing away the vote request of the current election.
 */
import { assert } from "../assert.ts";

export interface OutboundQueueLimits {
  readonly messagesMax: number;
  /** Must admit the largest frame, so a single frame is never dropped for its size alone. */
  readonly bytesMax: number;
}

export class OutboundQueue {
  readonly limits: OutboundQueueLimits;
  #frames: Uint8Array[] = [];
  /** When each frame of #frames was queued (ms, caller's clock); same indexes. */
  #queuedAtMs: number[] = [];
  #head = 0;
  #bytes = 0;

  constructor(limits: OutboundQueueLimits) {
    assert(Number.isSafeInteger(limits.messagesMax) && limits.messagesMax >= 1, "OutboundQueue: messagesMax must be a positive integer");
    assert(Number.isSafeInteger(limits.bytesMax) && limits.bytesMax >= 1, "OutboundQueue: bytesMax must be a positive integer");
    this.limits = limits;
  }

  get length(): number {
    return this.#frames.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Appends a frame queued at `nowMs`; returns how many older frames were dropped to make room for it. */
  push(frame: Uint8Array, nowMs = 0): number {
    assert(frame.length <= this.limits.bytesMax, `OutboundQueue: a ${frame.length}-byte frame exceeds bytesMax ${this.limits.bytesMax}`);
    let dropped = 0;
    while (this.length >= this.limits.messagesMax || this.#bytes + frame.length > this.limits.bytesMax) {
      this.shift();
      dropped++;
    }
    this.#frames.push(frame);
    this.#queuedAtMs.push(nowMs);
    this.#bytes += frame.length;
    assert(this.length <= this.limits.messagesMax && this.#bytes <= this.limits.bytesMax, "OutboundQueue over its bounds");
    return dropped;
  }

  peek(): Uint8Array | undefined {
    return this.#frames[this.#head];
  }

  /**
   * Drops the frames at the head queued more than `ageMsMax` before `nowMs` (frames are queued in time
   * order, so the rest are younger), then takes the next frame. Returns the frame, or undefined when
   * none is left, and how many were dropped.
   */
  shiftFresh(nowMs: number, ageMsMax: number): { readonly frame: Uint8Array | undefined; readonly dropped: number } {
    let dropped = 0;
    while (this.length > 0 && nowMs - this.#queuedAtMs[this.#head]! > ageMsMax) {
      this.shift();
      dropped++;
    }
    return { frame: this.shift(), dropped };
  }

  shift(): Uint8Array | undefined {
    if (this.length === 0) return undefined;
    const frame = this.#frames[this.#head]!;
    this.#frames[this.#head] = EMPTY;
    this.#head++;
    this.#bytes -= frame.length;
    // Compact now and then so the array does not grow with the total ever queued.
    if (this.#head >= 1024 && this.#head * 2 >= this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#queuedAtMs = this.#queuedAtMs.slice(this.#head);
      this.#head = 0;
    }
    if (this.length === 0) assert(this.#bytes === 0, "OutboundQueue: bytes left in an empty queue");
    return frame;
  }

  /** Drops everything; returns how many frames that was. */
  clear(): number {
    const count = this.length;
    this.#frames = [];
    this.#queuedAtMs = [];
    this.#head = 0;
    this.#bytes = 0;
    return count;
  }
}

const EMPTY = new Uint8Array(0);
