/**
 * Probe clients for `writes:`, `reads:` and `acknowledged_writes:` expectations. A probe is one client
 * operation sent the way an operator's client would send it:
 *
 * - to "the leader": ask running nodes, in a random order, who leads (`SELECT pgraft_get_leader()`),
 *   send the operation there, and follow up to three "not the leader, node N is" refusals;
 * - or straight to one named node, taking whatever it answers (for read-only checks).
 *
 * Every probe goes into the run's client history (so the linearizability check covers it) and every
 * acknowledged probe write is reported to the safety checker, as the workload's are. Probe writes use
 * keys of their own (`probe-1`, `probe-2`, ...), each written once, so reading one back says exactly
 * whether an acknowledged write is still there.
 */
import type { NodeId } from "../../src/core/types.ts";
import { NotLeaderError } from "../../src/errors.ts";
import { encodeWrite, type KvInput } from "../../src/kv/command.ts";
import type { ClientResult } from "../../src/node/raft-node.ts";
import type { Random } from "../random.ts";
import { formatDuration } from "./scenario.ts";
import type { ScenarioContext } from "./scenario-context.ts";

/** History client ids of probes start here, far above the workload's. */
const PROBE_CLIENT_FIRST = 1_000_000;
const REDIRECTS_MAX = 3;

export type ProbeStatus = "pending" | "ok" | "refused" | "timeout";

export interface Probe {
  readonly kind: "write" | "read";
  readonly key: string;
  /** The value a write probe writes. */
  readonly value: string | undefined;
  readonly startMs: number;
  status: ProbeStatus;
  endMs: number | undefined;
  /** The node that gave the final answer (or was last asked). */
  node: NodeId | undefined;
  /** The error code of a refusal ("no_quorum", "not_leader", ...). */
  code: string | undefined;
  message: string | undefined;
  /** What a read probe read. */
  readValue: string | null | undefined;
}

export class Prober {
  readonly #context: ScenarioContext;
  readonly #random: Random;
  #clientId = PROBE_CLIENT_FIRST;
  #writeSequence = 0;
  /** Acknowledged probe writes, in order: each key was written once. */
  readonly acknowledged: { key: string; value: string; atMs: number }[] = [];

  constructor(context: ScenarioContext, random: Random) {
    this.#context = context;
    this.#random = random;
  }

  /** A put of a fresh probe key, to the leader (following redirects) or to `node` as it is. */
  write(node: NodeId | "leader"): Probe {
    const sequence = ++this.#writeSequence;
    const input: KvInput = { op: "put", key: `probe-${sequence}`, value: `p${sequence}` };
    return this.#send(input, node);
  }

  /** A linearizable read of `key` (the last acknowledged probe key when not given). */
  read(node: NodeId | "leader", key?: string): Probe {
    const readKey = key ?? this.acknowledged.at(-1)?.key ?? "probe-0";
    return this.#send({ op: "get", key: readKey }, node);
  }

  /** Running nodes, asked in a random order who leads; the first leader named that runs, else any running node. */
  #leader(): NodeId | undefined {
    const cluster = this.#context.cluster;
    const live = cluster.liveIds();
    if (live.length === 0) return undefined;
    for (const id of this.#random.shuffle(live)) {
      const leaderId = cluster.node(id)?.status().leaderId ?? 0;
      if (leaderId !== 0 && cluster.state(leaderId) === "up") return leaderId;
    }
    return this.#random.pick(live);
  }

  #send(input: KvInput, target: NodeId | "leader"): Probe {
    const context = this.#context;
    const cluster = context.cluster;
    const clock = cluster.clock;
    const history = context.workload.history;
    const client = this.#clientId++;
    const historyId = history.invoke(client, input, clock.nowMs);
    const probe: Probe = {
      kind: input.op === "get" ? "read" : "write",
      key: input.key,
      value: input.op === "put" ? input.value : undefined,
      startMs: clock.nowMs,
      status: "pending",
      endMs: undefined,
      node: undefined,
      code: undefined,
      message: undefined,
      readValue: undefined,
    };
    const timeoutMs = context.scenario.workload.clientTimeoutMs;
    const timeout = clock.schedule(timeoutMs, () => {
      if (probe.status !== "pending") return;
      probe.status = "timeout";
      probe.endMs = clock.nowMs;
      probe.message = `no answer within ${formatDuration(timeoutMs)}`;
      history.unknown(historyId);
      context.note(`probe #${historyId} timeout`);
    });
    const attempt = (node: NodeId | undefined, redirects: number): void => {
      probe.node = node;
      if (node === undefined) return; // No node runs: the probe times out.
      context.note(`probe #${historyId} ${input.op}(${input.key}) at n${node}`);
      const settle = (result: ClientResult): void => {
        if (probe.status !== "pending") return;
        if (!result.ok && target === "leader" && result.error instanceof NotLeaderError && result.error.leaderId !== 0 && redirects < REDIRECTS_MAX) {
          attempt(result.error.leaderId, redirects + 1);
          return;
        }
        timeout.cancel();
        probe.endMs = clock.nowMs;
        if (result.ok) {
          probe.status = "ok";
          history.complete(historyId, result.output, clock.nowMs);
          if (result.output.op === "get") probe.readValue = result.output.value;
          if (input.op !== "get") {
            cluster.checker.acknowledged(result.index, `command:${encodeWrite(input)}`);
            if (input.op === "put") this.acknowledged.push({ key: input.key, value: input.value, atMs: clock.nowMs });
          }
          context.note(`probe #${historyId} ok at ${result.index}`);
          return;
        }
        probe.status = "refused";
        probe.code = result.error.code;
        probe.message = result.error.message;
        if (result.error.outcome === "failed") history.fail(historyId, clock.nowMs);
        else history.unknown(historyId);
        context.note(`probe #${historyId} ${result.error.outcome} at n${node}: ${result.error.code}`);
      };
      const latencyMs = context.scenario.workload.clientLatencyMs;
      if (input.op === "get") cluster.submitRead(node, input.key, latencyMs, settle);
      else cluster.submitWrite(node, input, latencyMs, settle);
    };
    attempt(target === "leader" ? this.#leader() : target, 0);
    return probe;
  }
}

/** "write at 27.1s to n2: no_quorum after 2 ms". */
export function describeProbe(probe: Probe): string {
  const at = `${probe.kind} of ${probe.key} at ${formatSeconds(probe.startMs)} to ${probe.node === undefined ? "no running node" : `n${probe.node}`}`;
  const tookMs = probe.endMs === undefined ? undefined : Math.round(probe.endMs - probe.startMs);
  switch (probe.status) {
    case "pending":
      return `${at}: still unanswered`;
    case "ok":
      return `${at}: succeeded after ${tookMs} ms${probe.kind === "read" ? ` reading ${JSON.stringify(probe.readValue)}` : ""}`;
    case "refused":
      return `${at}: refused with ${probe.code} after ${tookMs} ms (${probe.message})`;
    case "timeout":
      return `${at}: ${probe.message}`;
  }
}

/** "27.125s". */
export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}
