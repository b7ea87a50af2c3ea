/**
 * The cluster controls scenarios need beyond SimCluster's fault verbs (slow and failing disks, clock
 * rates), and the one place a scenario watches messages: to see a leader send a node a snapshot.
 *
 * The controls are SimCluster methods; a cluster without one (an older simulator, or another
 * implementation of the same verbs) makes the step fail with "not supported by this cluster" instead
 * of silently doing nothing.
 */
import type { Message, NodeId } from "../../src/core/types.ts";
import type { SimCluster } from "../cluster.ts";

/** Disk and clock controls a scenario's steps need from the cluster. */
export interface ClusterControlMethods {
  /** Every write on node `id` takes `fsyncMs` to become durable; the node waits for it. */
  setDiskLatency(id: NodeId, fsyncMs: number): void;
  /** Every write on node `id` fails from now on: the node stops at its next write and cannot start. */
  failDisk(id: NodeId): void;
  /** Node `id`'s disk works again; a stopped node can then be restarted. */
  repairDisk(id: NodeId): void;
  /** Node `id`'s clock runs at `rate` times real time from now on (1.1: 10% fast). */
  setClockRate(id: NodeId, rate: number): void;
}

export class ClusterControls {
  readonly #cluster: SimCluster;
  readonly #methods: Partial<ClusterControlMethods>;
  readonly #baselineFsyncMs: number;
  readonly #snapshotsReceived = new Set<NodeId>();
  /** Nodes a step slowed down or failed, to put right at the final heal. */
  readonly #slowed = new Set<NodeId>();
  readonly #failed = new Set<NodeId>();

  constructor(cluster: SimCluster, baselineFsyncMs: number) {
    this.#cluster = cluster;
    this.#methods = cluster as unknown as Partial<ClusterControlMethods>;
    this.#baselineFsyncMs = baselineFsyncMs;
    this.#watchSnapshots();
  }

  /** Whether a leader ever sent node `id` a snapshot. */
  snapshotReceived(id: NodeId): boolean {
    return this.#snapshotsReceived.has(id);
  }

  /** Each returns why it cannot act, or undefined once it did. */
  setFsync(id: NodeId, fsyncMs: number): string | undefined {
    return this.#call("setDiskLatency", "slow a node's disk", () => {
      this.#methods.setDiskLatency!.call(this.#cluster, id, fsyncMs);
      this.#slowed.add(id);
    });
  }

  failDisk(id: NodeId): string | undefined {
    return this.#call("failDisk", "fail a node's disk", () => {
      this.#methods.failDisk!.call(this.#cluster, id);
      this.#failed.add(id);
    });
  }

  repairDisk(id: NodeId): string | undefined {
    return this.#call("repairDisk", "repair a node's disk", () => {
      this.#methods.repairDisk!.call(this.#cluster, id);
      this.#failed.delete(id);
    });
  }

  setClockRate(id: NodeId, rate: number): string | undefined {
    return this.#call("setClockRate", "change a node's clock rate", () => this.#methods.setClockRate!.call(this.#cluster, id, rate));
  }

  /** Every disk back to the baseline: repaired and at the scenario's fsync time. */
  healAll(): void {
    for (const id of [...this.#failed]) this.repairDisk(id);
    for (const id of this.#slowed) this.setFsync(id, this.#baselineFsyncMs);
    this.#slowed.clear();
  }

  #call(method: keyof ClusterControlMethods, what: string, act: () => void): string | undefined {
    if (typeof this.#methods[method] !== "function") {
      const signature = method === "setClockRate" ? "setClockRate(id, rate)" : method === "setDiskLatency" ? "setDiskLatency(id, fsyncMs)" : `${method}(id)`;
      return `Cannot ${what}: not supported by this cluster (SimCluster needs ${signature})`;
    }
    act();
    return undefined;
  }

  #watchSnapshots(): void {
    const network = this.#cluster.network;
    const send = network.send.bind(network);
    network.send = (message: Message): void => {
      if (message.type === "MsgSnap") this.#snapshotsReceived.add(message.to);
      send(message);
    };
  }
}
