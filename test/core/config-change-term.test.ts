// A leader changes the configuration only after committing an entry of its own term (Ongaro,
// raft-dev 2015, "bug in single-server membership changes"). Without that rule, a configuration an
// old leader left on a few nodes and the new leader's own change can each win a majority of a
// different configuration: the sequence below then applied two different entries at one index.
import test from "ava";
import { Raft, RAFT_CONFIG_DEFAULTS } from "../../src/core/raft.ts";
import type { Entry, Membership, Message, NodeId } from "../../src/core/types.ts";

/** A tiny network of cores: delivers what a filter lets through and checks safety on every step. */
class Network {
  readonly nodes = new Map<NodeId, Raft>();
  queue: Message[] = [];
  readonly applied = new Map<NodeId, Entry[]>();
  readonly leaders = new Map<number, NodeId>();

  constructor(ids: readonly NodeId[], membership: Membership) {
    for (const id of ids) {
      let state = id * 7919 + 1;
      const random = (): number => {
        state = (state * 48271) % 2147483647;
        return (state - 1) / 2147483646;
      };
      this.nodes.set(
        id,
        new Raft(
          { ...RAFT_CONFIG_DEFAULTS, id, electionTicks: 10, heartbeatTicks: 1, random, preVote: false, checkQuorum: false },
          { hardState: { term: 0, vote: 0, commit: 0 }, entries: [], membership, applied: 0 },
        ),
      );
      this.applied.set(id, []);
    }
  }

  node(id: NodeId): Raft {
    return this.nodes.get(id)!;
  }

  /** Runs every Ready; throws on two leaders in a term or two entries applied at one index. */
  process(): void {
    for (let busy = true; busy; ) {
      busy = false;
      for (const [id, node] of this.nodes) {
        if (!node.hasReady()) continue;
        busy = true;
        const ready = node.ready();
        this.queue.push(...ready.messages);
        for (const entry of ready.committedEntries) {
          this.applied.get(id)!.push(entry);
          for (const [other, entries] of this.applied) {
            const theirs = entries[entry.index - 1];
            if (theirs && (theirs.term !== entry.term || theirs.data !== entry.data)) {
              throw new Error(`node ${id} applied ${entry.index}/${entry.term}/${entry.kind} but node ${other} applied ${theirs.index}/${theirs.term}/${theirs.kind}`);
            }
          }
        }
        if (node.role === "leader") {
          const known = this.leaders.get(node.term);
          if (known !== undefined && known !== id) throw new Error(`two leaders in term ${node.term}`);
          this.leaders.set(node.term, id);
        }
        node.advance(ready);
      }
    }
  }

  deliver(allow: (message: Message) => boolean = () => true): void {
    for (let round = 0; round < 200; round++) {
      this.process();
      if (this.queue.length === 0) return;
      const queue = this.queue;
      this.queue = [];
      for (const message of queue) if (allow(message)) this.node(message.to).step(message);
    }
  }

  tick(times: number, who: readonly NodeId[], allow: (message: Message) => boolean): void {
    for (let i = 0; i < times; i++) {
      for (const id of who) this.node(id).tick();
      this.deliver(allow);
    }
  }
}

const within = (...groups: NodeId[][]) => (message: Message): boolean => groups.some((group) => group.includes(message.from) && group.includes(message.to));

test("a new leader refuses a membership change until an entry of its term is committed", (t) => {
  const net = new Network([1, 2, 3], { voters: [1, 2, 3], learners: [] });
  net.node(1).campaign();
  net.deliver((message) => message.type === "MsgVote" || message.type === "MsgVoteResp");
  t.is(net.node(1).role, "leader");
  t.deepEqual(net.node(1).proposeMembership({ type: "add", nodeId: 4 }), { ok: false, reason: "leader_not_ready", term: net.node(1).term });
  net.queue = [];
  net.tick(2, [1], () => true);
  t.true(net.node(1).proposeMembership({ type: "add", nodeId: 4 }).ok, "once its no-op is committed it may");
});

test("the sequence of Ongaro's report no longer applies two entries at one index", (t) => {
  const net = new Network([1, 2, 3, 4, 5], { voters: [1, 2, 3, 4], learners: [] });
  net.node(1).campaign();
  net.deliver();
  t.true(net.node(1).proposeMembership({ type: "add", nodeId: 5 }).ok);
  // The learner catches up and node 1 promotes it (C1 = voters 1..5); C1 reaches node 5 only.
  net.deliver((message) => !(message.type === "MsgApp" && message.to !== 5 && net.node(1).membership.voters.length === 5 && message.entries.length > 0));
  t.deepEqual(net.node(1).membership.voters, [1, 2, 3, 4, 5]);
  net.queue = [];
  net.tick(20, [2, 3, 4], () => false);
  net.queue = [];
  // Node 2 wins with 2, 3 and 4 (a majority of the old voters) and, before its no-op commits,
  // is asked to remove node 4: that must wait.
  net.node(2).campaign();
  net.deliver((message) => within([2, 3, 4])(message) && message.type.includes("Vote"));
  t.is(net.node(2).role, "leader");
  net.queue = [];
  const proposal = net.node(2).proposeMembership({ type: "remove", nodeId: 4 });
  t.like(proposal, { ok: false, reason: "leader_not_ready" });
  // Whatever follows (node 1 returns and wins with 1, 4 and 5, a majority of C1), nothing applies
  // two different entries at one index.
  t.notThrows(() => {
    net.tick(3, [2, 3], within([2, 3]));
    net.node(1).step({ type: "MsgHeartbeat", from: 2, to: 1, term: net.node(2).term, commit: 0, context: 0 });
    net.process();
    net.queue = [];
    net.tick(20, [1, 4, 5], () => false);
    net.queue = [];
    net.node(1).campaign();
    net.deliver(within([1, 4, 5]));
    net.tick(30, [1, 2, 3, 4, 5], () => true);
  });
});

test("a removed node that never hears its removal committed cannot depose the new configuration's leader", (t) => {
  // Node 1 leads, appends its own removal, and loses contact before the answers come back; 2, 3 and 4
  // commit the removal without it. Node 1 still sees the removal as uncommitted, so it keeps
  // campaigning (a node an uncommitted entry removes may be needed). Without PreVote or CheckQuorum its
  // requests carry ever higher terms; the others, whose committed configuration leaves it out, ignore
  // them.
  const net = new Network([1, 2, 3, 4], { voters: [1, 2, 3, 4], learners: [] });
  net.node(1).campaign();
  net.deliver();
  net.tick(2, [1, 2, 3, 4], () => true);
  t.true(net.node(1).proposeMembership({ type: "remove", nodeId: 1 }).ok);
  net.deliver((message) => message.to !== 1);
  net.queue = [];
  net.tick(60, [1, 2, 3, 4], within([2, 3, 4]));
  const leader = [2, 3, 4].find((id) => net.node(id).role === "leader");
  t.truthy(leader, "2, 3 and 4 elected a leader among themselves");
  t.true(net.node(leader!).status().commit >= 2, "and committed the removal");
  // Node 1 hears the new term (and nothing else: the new leader no longer replicates to it), so it
  // stops leading and, its removal still uncommitted as far as it knows, times out and campaigns.
  net.node(1).step({ type: "MsgHeartbeat", from: leader!, to: 1, term: net.node(leader!).term, commit: 0, context: 0 });
  net.process();
  net.queue = [];
  t.is(net.node(1).role, "follower");
  const term = net.node(leader!).term;
  const campaignsBefore = net.node(1).counters.electionsStarted;
  let leaderless = 0;
  for (let i = 0; i < 500; i++) {
    net.tick(1, [1, 2, 3, 4], () => true);
    if (![2, 3, 4].some((id) => net.node(id).role === "leader")) leaderless++;
  }
  t.true(net.node(1).counters.electionsStarted > campaignsBefore, "node 1 did keep campaigning");
  t.is(net.node(leader!).term, term, "the others' term never moved");
  t.is(net.node(leader!).role, "leader");
  t.is(leaderless, 0);
});
