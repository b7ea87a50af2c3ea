import { Network, describe } from "./harness.ts";
const net = new Network({ nodeCount: 3, config: { preVote: false, checkQuorum: false } });
net.campaign(1);
net.raft(1).propose(["a"]);
net.processAll();
console.log("dropped", describe(net.drop()));
net.tick(1);
for (let i = 0; i < 10; i++) { net.processAll(); if (!net.queue.length) break; console.log(describe(net.queue)); net.deliver(); }
for (const id of net.ids) console.log(id, net.raft(id).status().commit, net.raft(id).status().lastIndex, net.raft(id).status().peers);
