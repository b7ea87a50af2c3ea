/**
 * The handshake state machines, driven frame by frame without sockets: the right secret is accepted
 * on both sides; a wrong secret, another cluster id, a wrong target, a mismatched auth mode or protocol
 * version is refused with a reason that both sides see; a node id the acceptor does not know is accepted
 * when it proves itself and advertises a well-formed listen address (protocol version 2), and an older
 * version 1 dialer is answered in version 1; a proof recorded from
 * one connection is refused on the next (fresh nonces); and malformed frames become refusals, never
 * exceptions.
 */
import test from "ava";
import { createHmac } from "node:crypto";
import type { Frame } from "../../src/transport/frame.ts";
import {
  AcceptorHandshake,
  describeRefusal,
  DialerHandshake,
  type HandshakeOutcome,
  type HandshakeRefusal,
  type HandshakeSettings,
  type HandshakeStep,
  type RefusalCode,
} from "../../src/transport/handshake.ts";
import { AUTH_OFF, handshakeSettings, SECRET, wire } from "./fixtures.ts";

interface Conversation {
  readonly dialer: HandshakeOutcome;
  readonly acceptor: HandshakeOutcome;
  /** Every frame, in order, with its direction. */
  readonly transcript: Array<{ readonly direction: "d->a" | "a->d"; readonly frame: Frame }>;
}

/** Runs a whole handshake; stops when neither side has anything left to say (at most 10 rounds). */
function converse(dialer: DialerHandshake, acceptor: AcceptorHandshake): Conversation {
  const transcript: Conversation["transcript"] = [];
  let toAcceptor = wire(dialer.start().outgoing);
  let toDialer: Frame[] = [];
  for (let round = 0; round < 10 && (toAcceptor.length > 0 || toDialer.length > 0); round++) {
    const nextToDialer: Frame[] = [];
    for (const frame of toAcceptor) {
      transcript.push({ direction: "d->a", frame });
      if (!acceptor.finished) nextToDialer.push(...wire(acceptor.receive(frame).outgoing));
    }
    const nextToAcceptor: Frame[] = [];
    for (const frame of [...toDialer, ...nextToDialer]) {
      transcript.push({ direction: "a->d", frame });
      if (!dialer.finished) nextToAcceptor.push(...wire(dialer.receive(frame).outgoing));
    }
    toDialer = [];
    toAcceptor = nextToAcceptor;
  }
  return { dialer: dialer.outcome, acceptor: acceptor.outcome, transcript };
}

function pair(dialerSettings: HandshakeSettings, acceptorSettings: HandshakeSettings, target = acceptorSettings.nodeId): Conversation {
  return converse(new DialerHandshake(dialerSettings, target), new AcceptorHandshake(acceptorSettings));
}

function refusal(outcome: HandshakeOutcome): HandshakeRefusal {
  if (outcome.state !== "refused") throw new Error(`expected a refusal, got ${JSON.stringify(outcome)}`);
  return outcome.refusal;
}

test("a handshake with the right secret establishes both sides", (t) => {
  const result = pair(handshakeSettings(1), handshakeSettings(2));
  t.deepEqual(result.dialer, { state: "established", peerId: 2 });
  t.deepEqual(result.acceptor, { state: "established", peerId: 1 });
  t.deepEqual(result.transcript.map((step) => `${step.direction} ${step.frame.type}`), ["d->a hello", "a->d challenge", "d->a proof", "a->d accept"]);
});

test("the secret never appears on the wire", (t) => {
  const settings = handshakeSettings(1);
  const secret = settings.authentication.mode === "shared_secret" ? settings.authentication.secret : "";
  const result = pair(settings, handshakeSettings(2));
  for (const { frame } of result.transcript) t.false(Buffer.from(frame.payload).toString("utf8").includes(secret));
});

test("a wrong secret is refused on both sides", (t) => {
  const wrong = handshakeSettings(1, { authentication: { mode: "shared_secret", secret: "another-secret-of-enough-length", secretFile: undefined } });
  const result = pair(wrong, handshakeSettings(2));
  // The dialer checks the acceptor's proof first, so the dialer refuses, and the acceptor hears why.
  const local = refusal(result.dialer);
  const remote = refusal(result.acceptor);
  t.is(local.code, "proof");
  t.is(local.by, "local");
  t.is(remote.code, "proof");
  t.is(remote.by, "peer");
  t.is(remote.reason, local.reason);
  t.regex(local.reason, /node 2 could not prove it holds node 1's secret/);
});

test("a dialer with a wrong secret that skips the acceptor's proof check is still refused by the acceptor", (t) => {
  const acceptor = new AcceptorHandshake(handshakeSettings(2));
  const honest = new DialerHandshake(handshakeSettings(1, { authentication: { mode: "shared_secret", secret: "not-the-secret-at-all!!", secretFile: undefined } }), 2);
  const [hello] = honest.start().outgoing;
  const [challenge] = acceptor.receive(hello!).outgoing;
  t.is(challenge?.type, "challenge");
  const forged: Frame = { type: "proof", payload: Buffer.from(JSON.stringify({ proof: "ab".repeat(32) })) };
  const step = acceptor.receive(forged);
  t.is(refusal(step.outcome).code, "proof");
  t.deepEqual(step.outgoing.map((frame) => frame.type), ["refuse"]);
});

test("a different cluster id is refused with both ids in the reason", (t) => {
  const result = pair(handshakeSettings(3, { clusterId: "other" }), handshakeSettings(1));
  const local = refusal(result.acceptor);
  t.is(local.code, "cluster_id");
  t.is(local.reason, 'node 3 presented cluster id "other" but node 1 is in cluster "prod"; give every node of one cluster the same pgraft.cluster_id');
  t.is(refusal(result.dialer).reason, local.reason);
  t.is(
    describeRefusal(local, "peer at 127.0.0.1:50312"),
    'Refused peer at 127.0.0.1:50312: node 3 presented cluster id "other" but node 1 is in cluster "prod"; give every node of one cluster the same pgraft.cluster_id',
  );
  t.regex(describeRefusal(refusal(result.dialer), "peer n1 (127.0.0.1:7001)"), /^Peer n1 \(127\.0\.0\.1:7001\) refused this node: node 3 presented/);
});

test("an unknown node id that proves itself is accepted, and the acceptor learns where it listens", (t) => {
  const dialer = new DialerHandshake(handshakeSettings(7, { memberIds: [1, 2, 3, 7], listenAddress: "10.0.0.7:7007" }), 1);
  const acceptor = new AcceptorHandshake(handshakeSettings(1));
  const result = converse(dialer, acceptor);
  t.deepEqual(result.acceptor, { state: "established", peerId: 7 });
  t.deepEqual(result.dialer, { state: "established", peerId: 1 });
  t.deepEqual(acceptor.peerListenAddress, { host: "10.0.0.7", port: 7007 });
  const hello = JSON.parse(Buffer.from(result.transcript[0]!.frame.payload).toString("utf8")) as Record<string, unknown>;
  t.is(hello.protocolVersion, 2);
  t.is(hello.listenAddress, "10.0.0.7:7007");
});

test("an unknown node id with a wrong secret is refused for its proof", (t) => {
  const wrong = { mode: "shared_secret" as const, secret: "another-secret-of-enough-length", secretFile: undefined };
  const result = pair(handshakeSettings(7, { memberIds: [1, 2, 3, 7], authentication: wrong }), handshakeSettings(1));
  t.is(refusal(result.dialer).code, "proof");
  t.is(refusal(result.acceptor).code, "proof");
});

test("an advertised listen address is part of the proof: changed in flight, the proof fails", (t) => {
  const dialer = new DialerHandshake(handshakeSettings(7, { memberIds: [1, 2, 3, 7], listenAddress: "10.0.0.7:7007" }), 1);
  const acceptor = new AcceptorHandshake(handshakeSettings(1));
  const [hello] = dialer.start().outgoing;
  const body = JSON.parse(Buffer.from(hello!.payload).toString("utf8")) as Record<string, unknown>;
  const [challenge] = acceptor.receive({ type: "hello", payload: Buffer.from(JSON.stringify({ ...body, listenAddress: "10.6.6.6:7007" })) }).outgoing;
  const step = dialer.receive(challenge!);
  t.is(refusal(step.outcome).code, "proof", "the dialer sees the acceptor proved a different transcript");
});

test("a malformed advertised listen address is refused with a reason naming it", (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ["10.0.0.7", /advertised the listen address "10\.0\.0\.7", which node 1 cannot dial back: "10\.0\.0\.7" has no port/],
    ["10.0.0.7:0", /port "0" in "10\.0\.0\.7:0" is out of range/],
    ["10.0.0.7:65536", /port "65536" in "10\.0\.0\.7:65536" is out of range/],
    ["bad host!:7007", /"bad host!" in "bad host!:7007" is not a valid host name or IP address/],
    ["::1:7007", /has several ":"; write IPv6 addresses in brackets/],
    [" 10.0.0.7:7007", /leading or trailing white space/],
    ["", /the address is empty/],
    ["h".repeat(300) + ":1", /field "listenAddress" must be a string of at most 261 characters/],
    [7007, /field "listenAddress" must be a string/],
  ];
  for (const [listenAddress, pattern] of cases) {
    const acceptor = new AcceptorHandshake(handshakeSettings(1));
    const hello = { protocolVersion: 2, clusterId: "prod", nodeId: 7, targetNodeId: 1, auth: "shared_secret", nonce: "07".repeat(32), listenAddress };
    const step = acceptor.receive({ type: "hello", payload: Buffer.from(JSON.stringify(hello)) });
    t.is(refusal(step.outcome).code, "malformed", String(listenAddress));
    t.regex(refusal(step.outcome).reason, pattern, String(listenAddress));
    t.deepEqual(step.outgoing.map((frame) => frame.type), ["refuse"]);
    t.is(acceptor.peerListenAddress, undefined);
  }
  const missing = new AcceptorHandshake(handshakeSettings(1));
  const hello = { protocolVersion: 2, clusterId: "prod", nodeId: 2, targetNodeId: 1, auth: "shared_secret", nonce: "07".repeat(32) };
  t.regex(refusal(missing.receive({ type: "hello", payload: Buffer.from(JSON.stringify(hello)) }).outcome).reason, /field "listenAddress" is missing/);
});

/** A version 1 dialer (an older pgraft): no listen address, version 1 in its transcript. */
function versionOneProof(direction: string, dialerId: number, acceptorId: number, dialerNonce: string, acceptorNonce: string): string {
  const transcript = JSON.stringify(["pgraft peer handshake", 1, direction, "shared_secret", "prod", dialerId, acceptorId, dialerNonce, acceptorNonce]);
  return createHmac("sha256", SECRET).update(transcript).digest("hex");
}

test("an older dialer (protocol version 1) that is a member is answered in version 1 and accepted", (t) => {
  const acceptor = new AcceptorHandshake(handshakeSettings(1));
  const nonce = "05".repeat(32);
  const hello = { protocolVersion: 1, clusterId: "prod", nodeId: 2, targetNodeId: 1, auth: "shared_secret", nonce };
  const [challenge] = acceptor.receive({ type: "hello", payload: Buffer.from(JSON.stringify(hello)) }).outgoing;
  const body = JSON.parse(Buffer.from(challenge!.payload).toString("utf8")) as { protocolVersion: number; nonce: string; proof: string };
  t.is(body.protocolVersion, 1);
  t.is(body.proof, versionOneProof("acceptor", 2, 1, nonce, body.nonce));
  const step = acceptor.receive({ type: "proof", payload: Buffer.from(JSON.stringify({ proof: versionOneProof("dialer", 2, 1, nonce, body.nonce) })) });
  t.deepEqual(step.outcome, { state: "established", peerId: 2 });
  t.is(acceptor.peerListenAddress, undefined);
});

test("an older dialer (protocol version 1) with an unknown node id is refused: it cannot be dialed back", (t) => {
  const acceptor = new AcceptorHandshake(handshakeSettings(1));
  const hello = { protocolVersion: 1, clusterId: "prod", nodeId: 7, targetNodeId: 1, auth: "shared_secret", nonce: "05".repeat(32) };
  const step = acceptor.receive({ type: "hello", payload: Buffer.from(JSON.stringify(hello)) });
  t.is(refusal(step.outcome).code, "unknown_node");
  t.regex(
    refusal(step.outcome).reason,
    /node 7 is not a member known to node 1 \(members: 1, 2, 3\) and speaks peer protocol version 1, which cannot tell node 1 where to reply; a founding member must be in pgraft.initial_cluster/,
  );
});

test("a peer claiming this node's own id is refused", (t) => {
  const result = pair(handshakeSettings(2, { memberIds: [1, 2, 3] }), handshakeSettings(2), 1);
  t.is(refusal(result.acceptor).code, "self");
});

test("a dial that reaches a different node than intended is refused by both ends", (t) => {
  // Node 1 believes node 3 lives at node 2's address.
  const dialer = new DialerHandshake(handshakeSettings(1), 3);
  const acceptor = new AcceptorHandshake(handshakeSettings(2));
  const result = converse(dialer, acceptor);
  t.is(refusal(result.acceptor).code, "wrong_node");
  t.regex(refusal(result.acceptor).reason, /node 1 dialed the address of node 3 but reached node 2/);
});

test("mismatched auth modes are refused with the setting to fix", (t) => {
  const result = pair(handshakeSettings(1, { authentication: AUTH_OFF }), handshakeSettings(2));
  t.is(refusal(result.acceptor).code, "auth_mode");
  t.regex(refusal(result.acceptor).reason, /node 1 has pgraft.auth off but node 2 has it on \(shared secret\)/);
});

test("with auth off the handshake still establishes, and still checks the cluster id", (t) => {
  const off = pair(handshakeSettings(1, { authentication: AUTH_OFF }), handshakeSettings(2, { authentication: AUTH_OFF }));
  t.is(off.dialer.state, "established");
  t.is(off.acceptor.state, "established");
  const other = pair(handshakeSettings(1, { authentication: AUTH_OFF, clusterId: "x" }), handshakeSettings(2, { authentication: AUTH_OFF }));
  t.is(refusal(other.acceptor).code, "cluster_id");
});

test("a hello of another protocol version is refused as such, not as malformed", (t) => {
  const acceptor = new AcceptorHandshake(handshakeSettings(2));
  const hello = { protocolVersion: 3, clusterId: "prod", nodeId: 1, features: ["streams"] };
  const step = acceptor.receive({ type: "hello", payload: Buffer.from(JSON.stringify(hello)) });
  t.is(refusal(step.outcome).code, "protocol_version");
  t.regex(refusal(step.outcome).reason, /node 1 speaks peer protocol version 3 but node 2 speaks only versions 1 and 2/);
});

test("a challenge in version 1 (an older acceptor would refuse instead) is refused by the dialer as such", (t) => {
  const dialer = new DialerHandshake(handshakeSettings(1), 2);
  dialer.start();
  const challenge = { protocolVersion: 1, clusterId: "prod", nodeId: 2, auth: "shared_secret", nonce: "05".repeat(32), proof: "ab".repeat(32) };
  const step = dialer.receive({ type: "challenge", payload: Buffer.from(JSON.stringify(challenge)) });
  t.is(refusal(step.outcome).code, "protocol_version");
  t.regex(refusal(step.outcome).reason, /node 2 speaks peer protocol version 1 but node 1 speaks only version 2/);
});

test("a proof recorded from one connection is refused on the next (fresh nonces)", (t) => {
  const dialerSettings = handshakeSettings(1);
  const first = pair(dialerSettings, handshakeSettings(2));
  t.is(first.acceptor.state, "established");
  const recordedHello = first.transcript.find((step) => step.frame.type === "hello")!.frame;
  const recordedProof = first.transcript.find((step) => step.frame.type === "proof")!.frame;
  // An eavesdropper replays the whole dialer side to a new acceptor.
  const replayed = new AcceptorHandshake(handshakeSettings(2));
  t.is(replayed.receive(recordedHello).outcome.state, "pending");
  const step = replayed.receive(recordedProof);
  t.is(refusal(step.outcome).code, "proof");
  t.regex(refusal(step.outcome).reason, /or presented a proof from another connection/);
});

test("a reflected nonce and a reflected proof are refused", (t) => {
  const acceptor = new AcceptorHandshake(handshakeSettings(2));
  const dialer = new DialerHandshake(handshakeSettings(1), 2);
  const [hello] = dialer.start().outgoing;
  const [challenge] = acceptor.receive(hello!).outgoing;
  // Answer the acceptor with its own proof, relabelled: the direction label makes it useless.
  const proof = JSON.parse(Buffer.from(challenge!.payload).toString("utf8")).proof as string;
  const step = acceptor.receive({ type: "proof", payload: Buffer.from(JSON.stringify({ proof })) });
  t.is(refusal(step.outcome).code, "proof");

  const echo = new AcceptorHandshake(handshakeSettings(2, { randomBytes: () => new Uint8Array(32).fill(7) }));
  const echoedHello = { protocolVersion: 1, clusterId: "prod", nodeId: 1, targetNodeId: 2, auth: "shared_secret", nonce: "07".repeat(32) };
  t.is(refusal(echo.receive({ type: "hello", payload: Buffer.from(JSON.stringify(echoedHello)) }).outcome).code, "nonce");
});

test("malformed and out-of-order handshake frames are refusals, not exceptions", (t) => {
  const frames: Frame[] = [
    { type: "hello", payload: Buffer.from("not json") },
    { type: "hello", payload: Buffer.from("[]") },
    { type: "hello", payload: Buffer.from(JSON.stringify({ protocolVersion: 1, clusterId: "prod", nodeId: 1 })) },
    { type: "hello", payload: Buffer.from(JSON.stringify({ protocolVersion: 1, clusterId: "prod", nodeId: 1, targetNodeId: 2, auth: "shared_secret", nonce: "zz" })) },
    { type: "proof", payload: Buffer.from("{}") },
    { type: "message", payload: Buffer.from("{}") },
    { type: "ping", payload: new Uint8Array(0) },
  ];
  const expected: RefusalCode[] = ["malformed", "malformed", "malformed", "malformed", "unexpected_frame", "unexpected_frame", "unexpected_frame"];
  frames.forEach((frame, i) => {
    const step: HandshakeStep = new AcceptorHandshake(handshakeSettings(2)).receive(frame);
    t.is(refusal(step.outcome).code, expected[i]!, `frame ${i}`);
    t.deepEqual(step.outgoing.map((out) => out.type), ["refuse"], `frame ${i}`);
  });
});

test("a peer's refusal text is sanitized and bounded before it reaches a log", (t) => {
  const dialer = new DialerHandshake(handshakeSettings(1), 2);
  dialer.start();
  const payload = Buffer.from(JSON.stringify({ code: "made_up", reason: "bad\u001b[31m\nnews" }));
  const outcome = dialer.receive({ type: "refuse", payload }).outcome;
  t.deepEqual(refusal(outcome), { code: "other", reason: "bad?[31m?news", by: "peer" });
  const oversized = new DialerHandshake(handshakeSettings(1), 2);
  oversized.start();
  t.is(refusal(oversized.receive({ type: "refuse", payload: Buffer.from(JSON.stringify({ code: "x", reason: "y".repeat(5000) })) }).outcome).code, "malformed");
});

test("timeout() refuses and tells the peer", (t) => {
  const acceptor = new AcceptorHandshake(handshakeSettings(2));
  const step = acceptor.timeout(5000);
  t.is(refusal(step.outcome).code, "timeout");
  t.regex(refusal(step.outcome).reason, /did not finish within 5000 ms/);
  t.deepEqual(step.outgoing.map((frame) => frame.type), ["refuse"]);
});
