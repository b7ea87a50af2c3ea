/**
 * The handshake state machines, driven frame by frame without sockets: the right secret is accepted
 * on both sides; a wrong secret, another cluster id, an unknown node id, a wrong target, a mismatched
 * auth mode or protocol version is refused with a reason that both sides see; a proof recorded from
 * one connection is refused on the next (fresh nonces); and malformed frames become refusals, never
 * exceptions.
 */
import test from "ava";
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
import { AUTH_OFF, handshakeSettings, wire } from "./fixtures.ts";

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

test("an unknown node id is refused", (t) => {
  const result = pair(handshakeSettings(7, { memberIds: [1, 2, 3, 7] }), handshakeSettings(1));
  t.is(refusal(result.acceptor).code, "unknown_node");
  t.regex(refusal(result.acceptor).reason, /node 7 is not a member known to node 1 \(members: 1, 2, 3\); a founding member must be in pgraft.initial_cluster, a new node must be added on the leader/);
  t.is(refusal(result.dialer).by, "peer");
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
  const hello = { protocolVersion: 2, clusterId: "prod", nodeId: 1, features: ["streams"] };
  const step = acceptor.receive({ type: "hello", payload: Buffer.from(JSON.stringify(hello)) });
  t.is(refusal(step.outcome).code, "protocol_version");
  t.regex(refusal(step.outcome).reason, /node 1 speaks peer protocol version 2 but node 2 speaks only version 1/);
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
