/**
 * The clients of a chaos run, all recording into one history (sim/history.ts) with times in
 * milliseconds from the run's start, which the simulator's linearizability checker reads.
 *
 * - Workload: the scenario's `workload` clients, each a closed loop of gets, puts, compare-and-sets and
 *   deletes over keys k0..kN-1, as the simulator's, sent to the node they believe leads (the observer's
 *   latest leader, or a "not the leader" answer's hint), each bounded by the client timeout.
 * - Probes: the expectations' writes and reads (`probe-N` keys, each written once) to a given node or
 *   to the leader, following "not the leader" answers (bounded hops).
 */
import seedrandom from "seedrandom";
import { HistoryRecorder, type KvInput } from "../../sim/history.ts";
import type { ScenarioWorkload } from "../../sim/scenario/index.ts";
import { runOperation, type ClientOutcome, type RefusalCode } from "./etcd-client.ts";

export interface ClientContext {
  nowMs(): number;
  /** Client URLs of the nodes that exist now. */
  clientUrl(id: number): string | undefined;
  /** Ids of nodes believed running (the provider's view). */
  runningIds(): number[];
  /** The observer's latest leader. */
  leader(): number | undefined;
}

/** Probe and workload client ids are apart in the history: probes use ids from this up. */
export const PROBE_CLIENT_ID = 1000;
const LEADER_HOPS_MAX = 3;
/** A workload client stops after this many operations whatever the time. */
export const OPERATIONS_PER_CLIENT_MAX = 200_000;

export interface Probe {
  readonly kind: "write" | "read";
  readonly key: string;
  readonly target: number | "leader";
  readonly startMs: number;
  endMs: number | undefined;
  status: "pending" | "ok" | "refused" | "unknown";
  code: RefusalCode | undefined;
  node: number | undefined;
  message: string | undefined;
  readValue: string | null | undefined;
}

export function describeProbe(probe: Probe): string {
  const at = `${(probe.startMs / 1000).toFixed(2)}s`;
  const where = probe.node !== undefined ? ` to n${probe.node}` : probe.target === "leader" ? " to the leader" : ` to n${probe.target}`;
  const took = probe.endMs !== undefined ? ` after ${Math.round(probe.endMs - probe.startMs)} ms` : "";
  switch (probe.status) {
    case "ok":
      return `${probe.kind} of ${probe.key} at ${at}${where}: ok${took}`;
    case "refused":
      return `${probe.kind} of ${probe.key} at ${at}${where}: refused with ${probe.code}${took} (${probe.message})`;
    default:
      return `${probe.kind} of ${probe.key} at ${at}${where}: ${probe.status}${took}${probe.message ? ` (${probe.message})` : ""}`;
  }
}

export class Clients {
  readonly history = new HistoryRecorder();
  readonly acknowledged: { key: string; value: string; atMs: number }[] = [];
  readonly probes: Probe[] = [];
  writesAttempted = 0;
  writesAcknowledged = 0;
  #probeSequence = 0;
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #random: () => number;

  constructor(
    readonly context: ClientContext,
    readonly workload: ScenarioWorkload,
    seed: number,
  ) {
    this.#random = seedrandom.alea(`chaos-clients-${seed}`);
  }

  /** Starts the workload clients; they run until stop(). */
  start(): void {
    this.#running = true;
    for (let client = 0; client < this.workload.clients; client++) this.#loops.push(this.#loop(client));
  }

  /** Stops the workload and waits for the operations in flight (each bounded by its timeout). */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  /** A probe write of a fresh key. */
  write(target: number | "leader", timeoutMs = this.workload.clientTimeoutMs): Probe {
    const key = `probe-${++this.#probeSequence}`;
    const probe = this.#probe("write", key, target);
    const value = `${key}-value`;
    void this.#sendProbe(probe, { op: "put", key, value }, timeoutMs).then(() => {
      if (probe.status === "ok") this.acknowledged.push({ key, value, atMs: probe.endMs! });
    });
    return probe;
  }

  /** A probe read of `key` (a fresh probe key by default, which reads as absent). */
  read(target: number | "leader", key = `probe-${++this.#probeSequence}`, timeoutMs = this.workload.clientTimeoutMs): Probe {
    const probe = this.#probe("read", key, target);
    void this.#sendProbe(probe, { op: "get", key }, timeoutMs);
    return probe;
  }

  /** Waits (bounded) until every probe has an answer. */
  async settleProbes(timeoutMs: number): Promise<void> {
    const deadline = this.context.nowMs() + timeoutMs;
    while (this.probes.some((probe) => probe.status === "pending") && this.context.nowMs() < deadline) await sleep(20);
  }

  #probe(kind: "write" | "read", key: string, target: number | "leader"): Probe {
    const probe: Probe = { kind, key, target, startMs: this.context.nowMs(), endMs: undefined, status: "pending", code: undefined, node: undefined, message: undefined, readValue: undefined };
    this.probes.push(probe);
    return probe;
  }

  async #sendProbe(probe: Probe, input: KvInput, timeoutMs: number): Promise<void> {
    let node = probe.target === "leader" ? this.context.leader() ?? this.#randomRunning() : probe.target;
    const id = this.history.invoke(PROBE_CLIENT_ID, input, this.context.nowMs());
    for (let hop = 0; ; hop++) {
      probe.node = node;
      const url = node === undefined ? undefined : this.context.clientUrl(node);
      if (url === undefined) {
        probe.status = "refused";
        probe.code = "other";
        probe.message = "no node to send it to";
        probe.endMs = this.context.nowMs();
        this.history.fail(id, probe.endMs);
        return;
      }
      const outcome = await runOperation(url, input, timeoutMs);
      const now = this.context.nowMs();
      if (outcome.kind === "failed" && probe.target === "leader" && outcome.code === "not_leader" && outcome.leaderId !== undefined && hop < LEADER_HOPS_MAX) {
        node = outcome.leaderId;
        continue;
      }
      probe.endMs = now;
      this.#settle(id, outcome, now);
      if (outcome.kind === "ok") {
        probe.status = "ok";
        if (outcome.output.op === "get") probe.readValue = outcome.output.value;
      } else if (outcome.kind === "failed") {
        probe.status = "refused";
        probe.code = outcome.code;
        probe.message = outcome.message;
      } else {
        probe.status = "unknown";
        probe.message = outcome.message;
      }
      return;
    }
  }

  #settle(id: number, outcome: ClientOutcome, now: number): void {
    if (outcome.kind === "ok") this.history.complete(id, outcome.output, now);
    else if (outcome.kind === "failed") this.history.fail(id, now);
    else this.history.unknown(id);
  }

  async #loop(client: number): Promise<void> {
    const versions = new Map<string, number>();
    let hint: number | undefined;
    let sequence = 0;
    for (let n = 0; this.#running && n < OPERATIONS_PER_CLIENT_MAX; n++) {
      const input = this.#draw(client, ++sequence, versions);
      const node = hint ?? this.context.leader() ?? this.#randomRunning();
      const url = node === undefined ? undefined : this.context.clientUrl(node);
      if (url === undefined) {
        await sleep(50);
        continue;
      }
      const isWrite = input.op !== "get";
      if (isWrite) this.writesAttempted++;
      const id = this.history.invoke(client, input, this.context.nowMs());
      const outcome = await runOperation(url, input, this.workload.clientTimeoutMs);
      const now = this.context.nowMs();
      this.#settle(id, outcome, now);
      if (outcome.kind === "ok") {
        if (isWrite) this.writesAcknowledged++;
        const output = outcome.output;
        if ("version" in output) versions.set(input.key, output.version);
        if (output.op === "delete") versions.set(input.key, 0);
      } else {
        hint = outcome.kind === "failed" && outcome.code === "not_leader" ? outcome.leaderId : undefined;
        await sleep(20 + this.#random() * 80);
      }
      await sleep(this.#random() * 2 * this.workload.thinkTimeMsMean);
    }
  }

  #draw(client: number, sequence: number, versions: Map<string, number>): KvInput {
    const key = `k${Math.floor(this.#random() * this.workload.keys)}`;
    const value = `c${client}-${sequence}`;
    const roll = this.#random();
    const w = this.workload;
    if (roll < w.readRatio) return { op: "get", key };
    if (roll < w.readRatio + w.casRatio) return { op: "cas", key, expectedVersion: versions.get(key) ?? 0, value };
    if (roll < w.readRatio + w.casRatio + w.deleteRatio) return { op: "delete", key };
    return { op: "put", key, value };
  }

  #randomRunning(): number | undefined {
    const ids = this.context.runningIds();
    return ids.length === 0 ? undefined : ids[Math.floor(this.#random() * ids.length)];
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
