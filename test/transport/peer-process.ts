/**
 * A pgraft transport in its own process, for the test that kills a peer with SIGKILL: node 2 of a
 * two-node cluster whose node 1 listens on the port given as the first argument. Prints
 * "listening <port>" once bound, and exits by itself after LIFETIME_MS so it can never outlive a test.
 */
import { TcpTransport } from "../../src/transport/tcp-transport.ts";
import { members, SHARED_SECRET } from "./fixtures.ts";

const LIFETIME_MS = 20_000;
const peerPort = Number(process.argv[2]);

const transport = new TcpTransport({
  clusterId: "prod",
  nodeId: 2,
  listenHost: "127.0.0.1",
  listenPort: 0,
  members: members(2, [peerPort, 0]),
  peerAuthentication: SHARED_SECRET,
  limits: { backoffMsMin: 20, backoffMsMax: 300 },
  onMessage: () => {},
});
const address = await transport.start();
process.stdout.write(`listening ${address.port}\n`);
setTimeout(() => process.exit(0), LIFETIME_MS);
