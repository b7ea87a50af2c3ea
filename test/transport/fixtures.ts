/**
 * Shared test data for the transport tests: one valid message of every type, cluster members, and
 * handshake settings, so every test file speaks about the same small cluster.
 */
import type { ClusterMember, PeerAuthentication } from "../../src/config/index.ts";
import type { Message, MessageType } from "../../src/core/types.ts";
import { encodeFrame, FrameDecoder, type Frame } from "../../src/transport/frame.ts";
import type { HandshakeSettings } from "../../src/transport/handshake.ts";

export const SECRET = "correct-horse-battery-staple-0123456789";
export const SHARED_SECRET: PeerAuthentication = { mode: "shared_secret", secret: SECRET, secretFile: undefined };
export const AUTH_OFF: PeerAuthentication = { mode: "off" };

export function members(count: number, ports: readonly number[] = []): ClusterMember[] {
  return Array.from({ length: count }, (_, i) => ({ name: `n${i + 1}`, nodeId: i + 1, host: "127.0.0.1", port: ports[i] ?? 0 }));
}

export function handshakeSettings(nodeId: number, overrides: Partial<HandshakeSettings> = {}): HandshakeSettings {
  return { clusterId: "prod", nodeId, memberIds: [1, 2, 3], listenAddress: `127.0.0.1:${7000 + nodeId}`, authentication: SHARED_SECRET, ...overrides };
}

/** One valid message of each type, from node 1 to node 2, keyed by type. */
export const SAMPLE_MESSAGES: Readonly<Record<MessageType, Message>> = {
  MsgPreVote: { type: "MsgPreVote", from: 1, to: 2, term: 5, lastLogIndex: 10, lastLogTerm: 4 },
  MsgPreVoteResp: { type: "MsgPreVoteResp", from: 1, to: 2, term: 5, reject: true },
  MsgVote: { type: "MsgVote", from: 1, to: 2, term: 5, lastLogIndex: 10, lastLogTerm: 4, transfer: false },
  MsgVoteResp: { type: "MsgVoteResp", from: 1, to: 2, term: 5, reject: false },
  MsgApp: {
    type: "MsgApp",
    from: 1,
    to: 2,
    term: 5,
    prevLogIndex: 7,
    prevLogTerm: 3,
    entries: [
      { index: 8, term: 3, kind: "command", data: '{"op":"put","key":"k","value":"v\\u0000\\n\\"é😀"}' },
      { index: 9, term: 5, kind: "noop", data: "" },
      { index: 10, term: 5, kind: "config", data: "{}" },
    ],
    commit: 7,
  },
  MsgAppResp: { type: "MsgAppResp", from: 1, to: 2, term: 5, reject: true, index: 7, hintIndex: 6, hintTerm: 2 },
  MsgHeartbeat: { type: "MsgHeartbeat", from: 1, to: 2, term: 5, commit: 9, context: 3 },
  MsgHeartbeatResp: { type: "MsgHeartbeatResp", from: 1, to: 2, term: 5, context: 3 },
  MsgSnap: {
    type: "MsgSnap",
    from: 1,
    to: 2,
    term: 5,
    snapshot: { metadata: { index: 40, term: 4, membership: { voters: [1, 2, 3], learners: [4] } }, data: "snapshot-bytes" },
  },
  MsgTimeoutNow: { type: "MsgTimeoutNow", from: 1, to: 2, term: 5 },
};

export const SAMPLE_LIST: readonly Message[] = Object.values(SAMPLE_MESSAGES);

/** A heartbeat numbered by `context`, for ordering tests. */
export function heartbeat(from: number, to: number, context: number): Message {
  return { type: "MsgHeartbeat", from, to, term: 1, commit: 0, context };
}

/** Resolves when `condition()` holds, polling every 5 ms; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Sends frames through a real encoder and decoder, as the socket would. */
export function wire(frames: readonly Frame[]): Frame[] {
  const decoder = new FrameDecoder();
  for (const frame of frames) decoder.push(encodeFrame(frame.type, frame.payload));
  const out: Frame[] = [];
  for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) out.push(frame);
  return out;
}
