// A member that a committed configuration removed is refused with code "removed" and the refuser's
// commit index, but only after both sides proved they hold the secret (a forged refusal cannot stop a
// node); it is not accepted as an unknown node would be; and a node with a wrong secret claiming to refuse
// learns nothing.
import test from "ava";
import type { Frame } from "../../src/transport/frame.ts";
import { AcceptorHandshake, DialerHandshake, type HandshakeOutcome, type HandshakeSettings } from "../../src/transport/handshake.ts";
import { handshakeSettings, wire } from "./fixtures.ts";

function converse(dialerSettings: HandshakeSettings, acceptorSettings: HandshakeSettings): { dialer: HandshakeOutcome; acceptor: HandshakeOutcome; frames: string[] } {
  const dialer = new DialerHandshake(dialerSettings, acceptorSettings.nodeId);
  const acceptor = new AcceptorHandshake(acceptorSettings);
  const frames: string[] = [];
  let toAcceptor = wire(dialer.start().outgoing);
  for (let round = 0; round < 10 && toAcceptor.length > 0; round++) {
    const toDialer: Frame[] = [];
    for (const frame of toAcceptor) {
      frames.push(`d->a ${frame.type}`);
      if (!acceptor.finished) toDialer.push(...wire(acceptor.receive(frame).outgoing));
    }
    toAcceptor = [];
    for (const frame of toDialer) {
      frames.push(`a->d ${frame.type}`);
      if (!dialer.finished) toAcceptor.push(...wire(dialer.receive(frame).outgoing));
    }
  }
  return { dialer: dialer.outcome, acceptor: acceptor.outcome, frames };
}

test("a removed member is refused as removed, after the proofs, with the refuser's commit index", (t) => {
  // Node 1 no longer lists node 2 among its members, and knows a committed configuration removed it.
  const acceptor: HandshakeSettings = { ...handshakeSettings(1), memberIds: [1, 3], removed: new Map([[2, 17]]) };
  const result = converse(handshakeSettings(2), acceptor);
  t.deepEqual(result.frames, ["d->a hello", "a->d challenge", "d->a proof", "a->d refuse"], "refused only once both proofs were checked");
  t.is(result.dialer.state, "refused");
  if (result.dialer.state === "refused") {
    t.is(result.dialer.refusal.code, "removed");
    t.is(result.dialer.refusal.by, "peer");
    t.is(result.dialer.refusal.commitIndex, 17);
    t.regex(result.dialer.refusal.reason, /node 2 was removed from the cluster .*wipe its data directory/);
  }
});

test("without the removal known, a non-member that proves itself is accepted (it may be a member added since)", (t) => {
  const result = converse(handshakeSettings(2), { ...handshakeSettings(1), memberIds: [1, 3] });
  t.deepEqual(result.frames, ["d->a hello", "a->d challenge", "d->a proof", "a->d accept"]);
  t.deepEqual(result.acceptor, { state: "established", peerId: 2 });
});

test("a removed node with the wrong secret is refused for its proof, not told it was removed", (t) => {
  const acceptor: HandshakeSettings = { ...handshakeSettings(1), memberIds: [1, 3], removed: new Map([[2, 17]]) };
  const intruder: HandshakeSettings = { ...handshakeSettings(2), authentication: { mode: "shared_secret", secret: "another secret of enough length", secretFile: undefined } };
  const result = converse(intruder, acceptor);
  t.is(result.dialer.state === "refused" ? result.dialer.refusal.code : undefined, "proof");
});
