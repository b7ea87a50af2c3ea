// A leader changes the configuration only after committing an entry of its own term (Ongaro,
// raft-dev 2015, "bug in single-server membership changes"). Without that rule, a configuration an
// old leader left on a few nodes and the new leader's own change can each win a majority of a
// different configuration: the sequence below then applied two different entries at one index.
import test from "ava";
import type { Message, NodeId } from "../../src/core/types.ts";
import { Network } from "./harness.ts";

/** A network of `nodeCount` cores starting from `voters`, PreVote and CheckQuorum off (as the report). */
function network(nodeCount: number, voters: NodeId[]): Network {
  return new Network({ nodeCount, membership: { voters, learners: [] }, config: { preVote: false, checkQuorum: false } });
}

/** Ticks only the nodes `who`, `times` rounds, delivering what `allow` lets through after each round. */
function tickSome(net: Network, times: number, who: readonly NodeId[], allow: (message: Message) => boolean): void {
  for (let i = 0; i < times; i++) {
    for (const id of who) net.tick(id);
    net.stabilize(allow);
  }
}

const within = (...groups: NodeId[][]) => (message: Message): boolean => groups.some((group) => group.includes(message.from) && group.includes(message.to));

test("a new leader refuses a membership change until an entry of its term is committed", (t) => {
  const net = network(3, [1, 2, 3]);
  net.raft(1).campaign();
  net.stabilize((message) => message.type === "MsgVote" || message.type === "MsgVoteResp");
  t.is(net.raft(1).role, "leader");
  t.deepEqual(net.raft(1).proposeMembership({ type: "add", nodeId: 4 }), { ok: false, reason: "leader_not_ready", term: net.raft(1).term });
  net.drop();
  tickSome(net, 2, [1], () => true);
  t.true(net.raft(1).proposeMembership({ type: "add", nodeId: 4 }).ok, "once its no-op is committed it may");
});

test("the sequence of Ongaro's report no longer applies two entries at one index", (t) => {
  const net = network(5, [1, 2, 3, 4]);
  net.raft(1).campaign();
  net.stabilize();
  t.true(net.raft(1).proposeMembership({ type: "add", nodeId: 5 }).ok);
  // The learner catches up and node 1 promotes it (C1 = voters 1..5); C1 reaches node 5 only.
  net.stabilize((message) => !(message.type === "MsgApp" && message.to !== 5 && net.raft(1).membership.voters.length === 5 && message.entries.length > 0));
  t.deepEqual(net.raft(1).membership.voters, [1, 2, 3, 4, 5]);
  net.drop();
  tickSome(net, 20, [2, 3, 4], () => false);
  net.drop();
  // Node 2 wins with 2, 3 and 4 (a majority of the old voters) and, before its no-op commits,
  // is asked to remove node 4: that must wait.
  net.raft(2).campaign();
  net.stabilize((message) => within([2, 3, 4])(message) && message.type.includes("Vote"));
  t.is(net.raft(2).role, "leader");
  net.drop();
  const proposal = net.raft(2).proposeMembership({ type: "remove", nodeId: 4 });
  t.like(proposal, { ok: false, reason: "leader_not_ready" });
  // Whatever follows (node 1 returns and wins with 1, 4 and 5, a majority of C1), nothing applies
  // two different entries at one index.
  t.notThrows(() => {
    tickSome(net, 3, [2, 3], within([2, 3]));
    net.raft(1).step({ type: "MsgHeartbeat", from: 2, to: 1, term: net.raft(2).term, commit: 0, context: 0 });
    net.processAll();
    net.drop();
    tickSome(net, 20, [1, 4, 5], () => false);
    net.drop();
    net.raft(1).campaign();
    net.stabilize(within([1, 4, 5]));
    tickSome(net, 30, [1, 2, 3, 4, 5], () => true);
  });
});

test("a removed node that never hears its removal committed cannot depose the new configuration's leader", (t) => {
  // Node 1 leads, appends its own removal, and loses contact before the answers come back; 2, 3 and 4
  // commit the removal without it. Node 1 still sees the removal as uncommitted, so it keeps
  // campaigning (a node an uncommitted entry removes may be needed). Without PreVote or CheckQuorum its
  // requests carry ever higher terms; the others, whose committed configuration leaves it out, ignore
  // them.
  const net = network(4, [1, 2, 3, 4]);
  net.raft(1).campaign();
  net.stabilize();
  tickSome(net, 2, [1, 2, 3, 4], () => true);
  t.true(net.raft(1).proposeMembership({ type: "remove", nodeId: 1 }).ok);
  net.stabilize((message) => message.to !== 1);
  net.drop();
  tickSome(net, 60, [1, 2, 3, 4], within([2, 3, 4]));
  const leader = [2, 3, 4].find((id) => net.raft(id).role === "leader");
  t.truthy(leader, "2, 3 and 4 elected a leader among themselves");
  t.true(net.raft(leader!).status().commit >= 2, "and committed the removal");
  // Node 1 hears the new term (and nothing else: the new leader no longer replicates to it), so it
  // stops leading and, its removal still uncommitted as far as it knows, times out and campaigns.
  net.raft(1).step({ type: "MsgHeartbeat", from: leader!, to: 1, term: net.raft(leader!).term, commit: 0, context: 0 });
  net.processAll();
  net.drop();
  t.is(net.raft(1).role, "follower");
  const term = net.raft(leader!).term;
  const campaignsBefore = net.raft(1).counters.electionsStarted;
  let leaderless = 0;
  for (let i = 0; i < 500; i++) {
    tickSome(net, 1, [1, 2, 3, 4], () => true);
    if (![2, 3, 4].some((id) => net.raft(id).role === "leader")) leaderless++;
  }
  t.true(net.raft(1).counters.electionsStarted > campaignsBefore, "node 1 did keep campaigning");
  t.is(net.raft(leader!).term, term, "the others' term never moved");
  t.is(net.raft(leader!).role, "leader");
  t.is(leaderless, 0);
});
