/**
 * TcpTransport with TLS, using certificates made on the spot with the machine's openssl: a test CA and
 * node certificates for 127.0.0.1 (serverAuth and clientAuth). Two TLS nodes exchange messages (with
 * the settings-driven constructor reading the files), a node whose certificate comes from another CA
 * is refused by the TLS layer on both sides, and a node without TLS cannot talk to one with it.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Message } from "../../src/core/types.ts";
import { TcpTransport, type TransportConfig, type TransportTls } from "../../src/transport/tcp-transport.ts";
import { heartbeat, members, SHARED_SECRET, waitFor } from "./fixtures.ts";
import { closeAll, connectAll, FAST_LIMITS, startNode, type TestNode } from "./tcp-harness.ts";

const WAIT_MS = 5000;
const directory = fs.mkdtempSync(path.join(os.tmpdir(), "pgraft-tls-"));

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: directory, stdio: "pipe" });
}

/** A CA, and a leaf certificate for 127.0.0.1 signed by it; returns the file paths. */
function makeAuthority(name: string): { ca: string; cert: string; key: string } {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", `${name}-ca.key`, "-out", `${name}-ca.pem`, "-days", "1", "-subj", `/CN=${name} test CA`);
  openssl("req", ...ec, "-keyout", `${name}-node.key`, "-out", `${name}-node.csr`, "-subj", `/CN=${name} node`);
  fs.writeFileSync(path.join(directory, `${name}.ext`), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  openssl("x509", "-req", "-in", `${name}-node.csr`, "-CA", `${name}-ca.pem`, "-CAkey", `${name}-ca.key`, "-CAcreateserial",
    "-out", `${name}-node.pem`, "-days", "1", "-extfile", `${name}.ext`);
  return { ca: path.join(directory, `${name}-ca.pem`), cert: path.join(directory, `${name}-node.pem`), key: path.join(directory, `${name}-node.key`) };
}

const cluster = makeAuthority("cluster");
const rogue = makeAuthority("rogue");

function material(files: { ca: string; cert: string; key: string }, ca = files.ca): TransportTls {
  return { cert: fs.readFileSync(files.cert), key: fs.readFileSync(files.key), ca: fs.readFileSync(ca) };
}

test.after.always(() => fs.rmSync(directory, { recursive: true, force: true }));

test("two TLS nodes (one built from settings files) exchange messages over mutual TLS", async (t) => {
  const n2 = await startNode({ id: 2, count: 2, tls: material(cluster) });
  const received: Message[] = [];
  const events: string[] = [];
  // fromConfig() reads pgraft.tls_cert_file, tls_key_file and tls_ca_file.
  const config: TransportConfig = {
    clusterId: "prod",
    nodeId: 1,
    listenHost: "127.0.0.1",
    listenPort: 0,
    initialCluster: members(2, [0, n2.port]),
    peerAuthentication: SHARED_SECRET,
    tls: { certFile: cluster.cert, keyFile: cluster.key, caFile: cluster.ca },
  };
  const n1 = TcpTransport.fromConfig(config, { onMessage: (message) => received.push(message), onPeerUp: (event) => events.push(`up ${event.name}`) }, FAST_LIMITS);
  try {
    const address = await n1.start();
    n2.transport.setPeerAddress(1, "127.0.0.1", address.port);
    for (let i = 0; i < 20; i++) n1.send(heartbeat(1, 2, i));
    n2.transport.send(heartbeat(2, 1, 100));
    await waitFor(() => n2.received.length === 20 && received.length === 1, WAIT_MS, "messages over TLS");
    t.deepEqual(n2.received.map((message) => (message as { context: number }).context), Array.from({ length: 20 }, (_, i) => i));
    t.deepEqual(events, ["up n2"]);
    t.is(n1.counters().tlsErrors + n2.transport.counters().tlsErrors, 0);
  } finally {
    await n1.close();
    await n2.transport.close();
  }
});

test("a node whose certificate another CA signed is refused by TLS on both sides", async (t) => {
  const nodes = await Promise.all([
    startNode({ id: 1, count: 2, tls: material(cluster) }),
    // Node 2 trusts the cluster CA but presents a certificate from the rogue CA.
    startNode({ id: 2, count: 2, tls: material(rogue, cluster.ca) }),
  ]);
  connectAll(nodes);
  const [n1, n2] = nodes as [TestNode, TestNode];
  try {
    n2.transport.send(heartbeat(2, 1, 1));
    await waitFor(() => n1.transport.counters().tlsErrors > 0 && n2.transport.counters().tlsErrors > 0, WAIT_MS, "TLS errors on both sides");
    await waitFor(() => n1.logs.some((line) => line.includes("TLS")) && n2.logs.some((line) => line.includes("TLS")), WAIT_MS, "TLS failures logged");
    await waitFor(() => n1.logs.some((line) => /^pgraft: Refused a TLS connection from 127\.0\.0\.1:\d+: its certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/.test(line)), WAIT_MS, "n1 names the untrusted certificate");
    t.true(n1.logs.some((line) => /^pgraft: Cannot connect to peer n2 \(127\.0\.0\.1:\d+\): TLS handshake failed: unable to verify the first certificate/.test(line)), n1.logs.join("\n"));
    t.deepEqual(n1.events, []);
    t.deepEqual(n2.events, []);
    t.deepEqual(n1.received, []);
    t.is(n1.transport.counters().connectionsInbound + n2.transport.counters().connectionsInbound, 0);
  } finally {
    await closeAll(nodes);
  }
});

test("a node without TLS cannot exchange messages with a TLS node", async (t) => {
  const nodes = await Promise.all([startNode({ id: 1, count: 2, tls: material(cluster) }), startNode({ id: 2, count: 2 })]);
  connectAll(nodes);
  const [n1, n2] = nodes as [TestNode, TestNode];
  try {
    n1.transport.send(heartbeat(1, 2, 1));
    n2.transport.send(heartbeat(2, 1, 1));
    await waitFor(() => n1.transport.counters().tlsErrors > 0 && n2.transport.counters().decodeErrors + n2.transport.counters().refusalsSent > 0, WAIT_MS, "failures");
    t.deepEqual([...n1.events, ...n2.events], []);
    t.deepEqual([...n1.received, ...n2.received], []);
  } finally {
    await closeAll(nodes);
  }
});
