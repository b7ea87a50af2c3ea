// changeMembership() computes single-server changes on copies and refuses the impossible ones with a
// reason an operator can read (thesis 4.1): one voter at a time, learners first, never the last voter.
import test from "ava";
import { changeMembership, decodeMembership, encodeMembership } from "../../src/core/membership.ts";

const three = { voters: [1, 2, 3], learners: [] };

test("changeMembership() adds a node as a learner, then promotes it to voter", (t) => {
  const added = changeMembership(three, { type: "add", nodeId: 4 });
  t.deepEqual(added, { ok: true, membership: { voters: [1, 2, 3], learners: [4] } });
  const promoted = changeMembership(added.ok ? added.membership : three, { type: "promote", nodeId: 4 });
  t.deepEqual(promoted, { ok: true, membership: { voters: [1, 2, 3, 4], learners: [] } });
});

test("changeMembership() removes a voter or a learner", (t) => {
  t.deepEqual(changeMembership(three, { type: "remove", nodeId: 2 }), { ok: true, membership: { voters: [1, 3], learners: [] } });
  t.deepEqual(changeMembership({ voters: [1], learners: [5] }, { type: "remove", nodeId: 5 }), {
    ok: true,
    membership: { voters: [1], learners: [] },
  });
});

test("changeMembership() refuses impossible changes with a reason", (t) => {
  t.deepEqual(changeMembership(three, { type: "add", nodeId: 2 }), { ok: false, reason: "node 2 is already a voting member" });
  t.deepEqual(changeMembership({ voters: [1], learners: [4] }, { type: "add", nodeId: 4 }), {
    ok: false,
    reason: "node 4 is already joining as a learner",
  });
  t.deepEqual(changeMembership(three, { type: "remove", nodeId: 7 }), { ok: false, reason: "node 7 is not a member" });
  t.deepEqual(changeMembership({ voters: [1], learners: [] }, { type: "remove", nodeId: 1 }), {
    ok: false,
    reason: "node 1 is the last voting member",
  });
  t.deepEqual(changeMembership(three, { type: "promote", nodeId: 3 }), { ok: false, reason: "node 3 is not a learner" });
  t.deepEqual(changeMembership(three, { type: "add", nodeId: 0 }), { ok: false, reason: "node id must be a positive integer, received 0" });
});

test("membership survives the configuration entry encoding", (t) => {
  const membership = { voters: [1, 3, 9], learners: [4] };
  t.deepEqual(decodeMembership(encodeMembership(membership)), membership);
});
