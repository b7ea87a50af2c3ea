/**
 * Simulated clients: each runs a closed loop of key-value operations (reads, puts, compare-and-set,
 * deletes) against the cluster, with its own timeout, following leader hints and retrying elsewhere
 * when a node refuses. Every invocation and completion goes into the history that the
 * linearizability checker reads; every acknowledged write is reported to the safety checker.
 */
import type { NodeId } from "../src/core/types.ts";
import { encodeWrite, type KvInput, type KvWrite } from "../src/kv/command.ts";
import type { ClientResult } from "../src/node/raft-node.ts";
import { NotLeaderError } from "../src/errors.ts";
import type { SimCluster } from "./cluster.ts";
import { HistoryRecorder } from "./history.ts";
import type { Random } from "./random.ts";

export interface WorkloadOptions {
  readonly clients: number;
  readonly keys: number;
  /** Mean pause between one operation's end and the next one's start. */
  readonly thinkTimeMsMean: number;
  /** One-way latency between a client and a node. */
  readonly clientLatencyMs: number;
  /** A client gives up on an operation after this long; a write's outcome is then unknown. */
  readonly clientTimeoutMs: number;
  readonly readRatio: number;
  readonly casRatio: number;
  readonly deleteRatio: number;
}

export const WORKLOAD_DEFAULTS: WorkloadOptions = {
  clients: 4,
  keys: 6,
  thinkTimeMsMean: 40,
  clientLatencyMs: 1,
  clientTimeoutMs: 3_000,
  readRatio: 0.4,
  casRatio: 0.2,
  deleteRatio: 0.05,
};

interface ClientState {
  readonly id: number;
  leaderHint: NodeId | undefined;
  sequence: number;
  /** Last version seen per key, for realistic compare-and-set. */
  versions: Map<string, number>;
}

export class Workload {
  readonly history = new HistoryRecorder();
  #running = false;
  #clients: ClientState[] = [];
  acknowledgedWrites = 0;
  completed = 0;

  constructor(
    readonly cluster: SimCluster,
    readonly random: Random,
    readonly options: WorkloadOptions,
  ) {}

  start(): void {
    this.#running = true;
    for (let id = 0; id < this.options.clients; id++) {
      const client: ClientState = { id, leaderHint: undefined, sequence: 0, versions: new Map() };
      this.#clients.push(client);
      this.#schedule(client, this.random.real(0, this.options.thinkTimeMsMean));
    }
  }

  /** Stops issuing new operations; those in flight still complete or time out. */
  stop(): void {
    this.#running = false;
  }

  get running(): boolean {
    return this.#running;
  }

  #schedule(client: ClientState, delayMs: number): void {
    this.cluster.clock.schedule(delayMs, () => {
      if (this.#running) this.#issue(client);
    });
  }

  #issue(client: ClientState): void {
    const input = this.#nextInput(client);
    const target = client.leaderHint ?? this.random.pick(this.cluster.ids);
    const nowMs = this.cluster.clock.nowMs;
    const id = this.history.invoke(client.id, input, nowMs);
    this.cluster.trace.record(nowMs, `c${client.id} invoke #${id} ${describeInput(input)} at n${target}`);
    let settled = false;
    const timeout = this.cluster.clock.schedule(this.options.clientTimeoutMs, () => {
      if (settled) return;
      settled = true;
      this.history.unknown(id);
      this.cluster.trace.record(this.cluster.clock.nowMs, `c${client.id} timeout #${id}`);
      client.leaderHint = undefined;
      this.#schedule(client, this.random.exponential(this.options.thinkTimeMsMean));
    });
    const onResult = (result: ClientResult): void => {
      if (settled) return;
      settled = true;
      timeout.cancel();
      this.#settle(client, id, input, result);
      this.#schedule(client, this.random.exponential(this.options.thinkTimeMsMean));
    };
    if (input.op === "get") this.cluster.submitRead(target, input.key, this.options.clientLatencyMs, onResult);
    else this.cluster.submitWrite(target, input, this.options.clientLatencyMs, onResult);
  }

  #settle(client: ClientState, id: number, input: KvInput, result: ClientResult): void {
    const nowMs = this.cluster.clock.nowMs;
    if (result.ok) {
      this.history.complete(id, result.output, nowMs);
      this.completed++;
      const output = result.output;
      if (output.op === "get" || output.op === "put" || output.op === "cas") client.versions.set(input.key, output.version);
      if (output.op === "delete") client.versions.set(input.key, 0);
      if (input.op !== "get") {
        this.acknowledgedWrites++;
        this.cluster.checker.acknowledged(result.index, `command:${encodeWrite(input)}`);
      }
      this.cluster.trace.record(nowMs, `c${client.id} ok #${id} at ${result.index}`);
      return;
    }
    const error = result.error;
    if (error.outcome === "failed") this.history.fail(id, nowMs);
    else this.history.unknown(id);
    client.leaderHint = error instanceof NotLeaderError && error.leaderId !== 0 ? error.leaderId : undefined;
    this.cluster.trace.record(nowMs, `c${client.id} ${error.outcome} #${id}: ${error.code}`);
  }

  #nextInput(client: ClientState): KvInput {
    const key = `k${this.random.int(0, this.options.keys - 1)}`;
    const roll = this.random.next();
    const value = `c${client.id}v${++client.sequence}`;
    if (roll < this.options.readRatio) return { op: "get", key };
    if (roll < this.options.readRatio + this.options.casRatio) {
      const write: KvWrite = { op: "cas", key, expectedVersion: client.versions.get(key) ?? 0, value };
      return write;
    }
    if (roll < this.options.readRatio + this.options.casRatio + this.options.deleteRatio) return { op: "delete", key };
    return { op: "put", key, value };
  }
}

function describeInput(input: KvInput): string {
  switch (input.op) {
    case "get":
      return `get(${input.key})`;
    case "put":
      return `put(${input.key},${input.value})`;
    case "delete":
      return `delete(${input.key})`;
    case "cas":
      return `cas(${input.key},v${input.expectedVersion},${input.value})`;
  }
}
