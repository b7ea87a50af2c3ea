// Vote requests from nodes outside the voter's configuration (thesis 4.1 and 4.2.3).
//
// Two histories pull in opposite directions. A voter that lags may hold a committed configuration
// older than the only node able to win, which it must still vote for (4.1: "servers process incoming
// RPC requests without consulting their current configurations", since a new server may be needed to
// keep the cluster available); swarm seed 21744 stalled for good when voters refused such candidates.
// A removed node that never learns its removal committed keeps campaigning, and must not depose a
// working leader or raise everyone's term; 4.2.3's answer is to ignore vote requests while a current
// leader has been heard from within the minimum election timeout. Each test runs with PreVote and
// CheckQuorum off and on, since the rule must hold without either.
import test from "ava";
import type { Entry, Membership, Message, NodeId } from "../../src/core/types.ts";
import type { ConfigOverrides } from "./harness.ts";
import { Network } from "./harness.ts";

const MODES: readonly { readonly name: string; readonly config: ConfigOverrides }[] = [
  { name: "PreVote and CheckQuorum off", config: { preVote: false, checkQuorum: false } },
  { name: "PreVote on, CheckQuorum off", config: { preVote: true, checkQuorum: false } },
  { name: "PreVote off, CheckQuorum on", config: { preVote: false, checkQuorum: true } },
  { name: "PreVote and CheckQuorum on", config: { preVote: true, checkQuorum: true } },
];

const ROUNDS_MAX = 400;

const config = (index: number, term: number, membership: Membership): Entry => ({ index, term, kind: "config", data: JSON.stringify(membership) });
const command = (index: number, term: number): Entry => ({ index, term, kind: "command", data: `x${index}` });

/** Ticks the running nodes of `who` one round at a time, delivering what `allow` lets through after each. */
function tickRounds(net: Network, rounds: number, who: readonly NodeId[], allow: (message: Message) => boolean = () => true): void {
  for (let i = 0; i < rounds; i++) {
    for (const id of who) if (net.node(id).raft !== undefined) net.tick(id);
    net.stabilize(allow);
  }
}

/** Rounds until some node of `among` leads, or -1 after ROUNDS_MAX. */
function roundsToLeader(net: Network, among: readonly NodeId[]): number {
  for (let round = 1; round <= ROUNDS_MAX; round++) {
    tickRounds(net, 1, among);
    if (among.some((id) => net.raft(id).role === "leader")) return round;
  }
  return -1;
}

const within = (group: readonly NodeId[]) => (message: Message): boolean => group.includes(message.from) && group.includes(message.to);

for (const mode of MODES) {
  test(`a lagging voter votes for the only electable candidate although its committed configuration predates it (${mode.name})`, (t) => {
    // The history of seed 21744, reduced. The cluster was 1, 2 and 3; node 1 led, added 4 as a learner
    // (index 2) and promoted it (index 3) while node 3 was cut off, so node 3 holds index 1 only and its
    // committed configuration is {1, 2, 3}. Node 1 appended index 5, which reached only node 4, and then
    // died for good. Voters 2, 3 and 4 are left, a majority of four. Node 4 alone can win (its log is
    // the most complete); it needs node 3's vote, and node 3 has heard from no leader since.
    const full = [command(1, 1), config(2, 1, { voters: [1, 2, 3], learners: [4] }), config(3, 1, { voters: [1, 2, 3, 4], learners: [] }), command(4, 1), command(5, 1)];
    const logs: Record<NodeId, { entries: Entry[]; commit: number }> = {
      1: { entries: full, commit: 4 },
      2: { entries: full.slice(0, 4), commit: 4 },
      3: { entries: full.slice(0, 1), commit: 1 },
      4: { entries: full, commit: 4 },
    };
    const net = new Network({
      nodeCount: 4,
      membership: { voters: [1, 2, 3], learners: [] },
      config: mode.config,
      storage: (id) => ({ hardState: { term: 1, vote: 0, commit: logs[id]!.commit }, entries: logs[id]!.entries }),
    });
    net.crash(1);
    t.deepEqual(net.raft(3).committedMembership, { voters: [1, 2, 3], learners: [] }, "node 3's committed configuration leaves node 4 out");
    t.deepEqual(net.raft(4).membership.voters, [1, 2, 3, 4]);
    const rounds = roundsToLeader(net, [2, 3, 4]);
    t.not(rounds, -1, `a leader among 2, 3 and 4 within ${ROUNDS_MAX} rounds (roles: ${[2, 3, 4].map((id) => `${id} ${net.raft(id).role}`).join(", ")})`);
    t.is(net.raft(4).role, "leader", "node 4, the only node whose log can win");
    tickRounds(net, 5, [2, 3, 4]);
    const last = net.raft(4).log.lastIndex();
    t.true(last > 5, "the leader appended its no-op");
    for (const id of [2, 3]) t.is(net.raft(id).status().commit, last, `node ${id} caught up`);
    t.deepEqual(net.raft(3).membership.voters, [1, 2, 3, 4], "and node 3 learned the configuration that holds node 4");
  });

  test(`a removed node that never hears its removal committed neither deposes the leader nor raises the term (${mode.name})`, (t) => {
    // Node 1 leads four, appends its own removal and is cut off before any answer returns; 2, 3 and 4
    // commit the removal without it. Node 1 still sees the removal as uncommitted, so it keeps
    // campaigning (4.2.2: it may be needed until the entry commits). Nobody tells it otherwise: the new
    // leader no longer replicates to it. Voters that hear from their leader ignore it (4.2.3).
    const net = new Network({ nodeCount: 4, membership: { voters: [1, 2, 3, 4], learners: [] }, config: mode.config });
    net.raft(1).campaign();
    net.stabilize();
    tickRounds(net, 2, [1, 2, 3, 4]);
    t.is(net.raft(1).role, "leader");
    t.true(net.raft(1).proposeMembership({ type: "remove", nodeId: 1 }).ok);
    net.stabilize((message) => message.to !== 1);
    net.drop();
    tickRounds(net, 60, [1, 2, 3, 4], within([2, 3, 4]));
    const leader = [2, 3, 4].find((id) => net.raft(id).role === "leader");
    t.truthy(leader, "2, 3 and 4 elected a leader among themselves");
    t.true(net.raft(leader!).status().commit >= 2, "and committed the removal");
    t.is(net.raft(1).committedMembership.voters.includes(1), true, "node 1 does not know its removal committed");
    // Node 1 hears the new term (nothing else) and stops leading if it still did (with CheckQuorum it
    // stepped down by itself and may campaign at a higher term already).
    net.raft(1).step({ type: "MsgHeartbeat", from: leader!, to: 1, term: net.raft(leader!).term, commit: 0, context: 0 });
    net.processAll();
    net.drop();
    t.not(net.raft(1).role, "leader");
    const term = net.raft(leader!).term;
    const campaigns = (): number => net.raft(1).counters.electionsStarted + net.raft(1).counters.preVotesStarted;
    const campaignsBefore = campaigns();
    let leaderless = 0;
    for (let i = 0; i < 500; i++) {
      tickRounds(net, 1, [1, 2, 3, 4]);
      if (![2, 3, 4].some((id) => net.raft(id).role === "leader")) leaderless++;
    }
    t.true(campaigns() > campaignsBefore, "node 1 did keep campaigning");
    for (const id of [2, 3, 4]) t.is(net.raft(id).term, term, `node ${id}'s term never moved`);
    t.is(net.raft(leader!).role, "leader");
    t.is(leaderless, 0);
  });
}

test("a vote request from outside the configuration is heard once no leader is: the removed node then raises the term, and the members still elect one of their own", (t) => {
  // The other side of 4.2.3: the rule holds only while a leader is live. Here the new configuration's
  // leader dies; node 1 (removed, never told) may now push the term up (without PreVote), but it
  // cannot win (its log lacks the new leader's entries), and 2 and 3 elect a leader between them.
  const net = new Network({ nodeCount: 4, membership: { voters: [1, 2, 3, 4], learners: [] }, config: { preVote: false, checkQuorum: false } });
  net.raft(1).campaign();
  net.stabilize();
  tickRounds(net, 2, [1, 2, 3, 4]);
  t.true(net.raft(1).proposeMembership({ type: "remove", nodeId: 1 }).ok);
  net.stabilize((message) => message.to !== 1);
  net.drop();
  tickRounds(net, 60, [1, 2, 3, 4], within([2, 3, 4]));
  const leader = [2, 3, 4].find((id) => net.raft(id).role === "leader")!;
  t.truthy(leader);
  net.raft(1).step({ type: "MsgHeartbeat", from: leader, to: 1, term: net.raft(leader).term, commit: 0, context: 0 });
  net.processAll();
  net.drop();
  t.is(net.raft(1).role, "follower", "node 1 no longer leads");
  net.crash(leader);
  const others = [2, 3, 4].filter((id) => id !== leader);
  const termBefore = net.raft(others[0]!).term;
  let elected: NodeId | undefined;
  for (let i = 0; i < ROUNDS_MAX && elected === undefined; i++) {
    tickRounds(net, 1, [1, ...others]);
    elected = others.find((id) => net.raft(id).role === "leader");
  }
  t.truthy(elected, "one of the remaining members leads");
  t.true(net.raft(elected!).term > termBefore);
  t.not(net.raft(1).role, "leader", "the removed node never leads");
});
