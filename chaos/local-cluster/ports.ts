/**
 * Ports for a local cluster: four per node (PostgreSQL, Raft peers, client API, metrics), drawn free
 * below Linux's ephemeral range by chaos/providers/ports.ts, never one that another local cluster or a
 * live chaos run has recorded. The children bind them seconds later, so the choice and its recording
 * happen under a lock file that two `npm run cluster` processes side by side take in turn.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { choosePorts } from "../providers/ports.ts";
import { livePorts } from "../providers/run-registry.ts";
import { ensureClustersDirectory, identify, isAlive, otherClusterStates, portsOf, type ProcessIdentity } from "./state.ts";

export const PORTS_PER_NODE = 4;
const LOCK_WAIT_MS_MAX = 15_000;
const LOCK_POLL_MS = 50;

export interface NodePorts {
  readonly pgPort: number;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly metricsPort: number;
}

/**
 * Chooses ports for `nodeCount` nodes of cluster `name` and calls `record` with them while holding the
 * lock, so the next cluster to choose sees them in `record`'s state file.
 */
export async function choosePortsRecorded(name: string, nodeCount: number, record: (ports: NodePorts[]) => void): Promise<NodePorts[]> {
  const lock = join(ensureClustersDirectory(), ".ports.lock");
  await acquireLock(lock);
  try {
    const avoid = livePorts();
    for (const state of otherClusterStates(name)) for (const port of portsOf(state)) avoid.add(port);
    const ports = await choosePorts(nodeCount * PORTS_PER_NODE, avoid);
    const nodes: NodePorts[] = [];
    for (let i = 0; i < nodeCount; i++) {
      const [pgPort, peerPort, clientPort, metricsPort] = ports.slice(i * PORTS_PER_NODE, (i + 1) * PORTS_PER_NODE);
      nodes.push({ pgPort: pgPort!, peerPort: peerPort!, clientPort: clientPort!, metricsPort: metricsPort! });
    }
    record(nodes);
    return nodes;
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Creates `lock` exclusively; takes over a lock whose owner died; gives up after LOCK_WAIT_MS_MAX. */
async function acquireLock(lock: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS_MAX;
  for (;;) {
    try {
      writeFileSync(lock, JSON.stringify(identify(process.pid)), { flag: "wx" });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = readLockHolder(lock);
    if (holder !== undefined && !isAlive(holder)) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`Cannot choose ports: ${lock} has been held by pid ${holder?.pid ?? "unknown"} for ${LOCK_WAIT_MS_MAX / 1000} s; if no other \`npm run cluster\` is starting, delete that file and retry`);
    }
    await sleep(LOCK_POLL_MS);
  }
}

function readLockHolder(lock: string): ProcessIdentity | undefined {
  try {
    const holder = JSON.parse(readFileSync(lock, "utf8")) as ProcessIdentity;
    return Number.isInteger(holder.pid) ? holder : undefined;
  } catch {
    // Being written, or removed meanwhile: look again on the next round.
    return undefined;
  }
}
