/**
 * What a node needs from the world it runs in. The simulator implements these over its event queue
 * and seeded random source; production implements them over node's timers and crypto. The Raft node
 * itself never knows which one it has.
 */
import type { Message } from "../core/types.ts";

export interface TimerHandle {
  cancel(): void;
}

export interface Timers {
  /** Milliseconds on this node's clock (monotonic; the simulator's may drift). */
  nowMs(): number;
  /** Calls `callback` once after `delayMs` on this node's clock. */
  after(delayMs: number, callback: () => void): TimerHandle;
  /**
   * Calls `callback` once the work already queued for this instant is done (production: at the end of
   * this event-loop turn; simulator: after the events of this millisecond). Absent: after(0, ...).
   */
  soon?(callback: () => void): TimerHandle;
}

export interface Transport {
  /** Sends a message; delivery is best effort (the Raft protocol retries). */
  send(message: Message): void;
}
