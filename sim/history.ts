/**
 * The client history of a simulated run: every key-value operation a client invoked, when it was
 * invoked, when (and whether) it returned and what it returned. The linearizability checker
 * (sim/checkers/linearizability.ts) reads it; the workload writes it through a HistoryRecorder.
 *
 * The replicated state machine is a key-value store with etcd's version semantics: a put creates a key
 * at version 1 or increments its version, a delete removes it (an absent key has version 0), and
 * `cas(key, expectedVersion, value)` acts as a put only when the key's version equals `expectedVersion`
 * (0 means the key must be absent).
 *
 * An operation ends in one of three outcomes:
 * - `ok`: the client received `output`; the operation took effect exactly once between its call and
 *   its return;
 * - `failed`: the operation definitely did not take effect (a follower rejected it, say);
 * - `unknown`: the client never learned the outcome (a timeout, a crashed leader); the operation may
 *   have taken effect at any time after its call, or never.
 */
import { assert } from "../src/assert.ts";

// The operations and results are the state machine's own (src/kv/command.ts); re-exported for the
// checker and the generator, so the history can never drift from what the store really returns.
export type { KvInput, KvOutput } from "../src/kv/command.ts";
import type { KvInput, KvOutput, KvWriteOutput } from "../src/kv/command.ts";

export type OperationOutcome = "ok" | "failed" | "unknown";

export interface Operation {
  readonly id: number;
  readonly client: number;
  readonly input: KvInput;
  /** Invocation time, in simulated milliseconds. */
  readonly callMs: number;
  /** Completion time; null when the outcome is unknown. */
  readonly returnMs: number | null;
  readonly outcome: OperationOutcome;
  /** Present if and only if `outcome` is "ok". */
  readonly output: KvOutput | null;
}

interface OperationDraft {
  id: number;
  client: number;
  input: KvInput;
  callMs: number;
  returnMs: number | null;
  outcome: OperationOutcome | "pending";
  output: KvOutput | null;
}

/**
 * Records a history as the workload runs. Ids are dense, starting at 0, in invocation order. An
 * operation still pending when `operations()` is called is reported as `unknown`: from the checker's
 * point of view a reply that never arrived is the same as one that was lost.
 *
 * Misuse (completing an operation twice, an output of the wrong kind, time going backwards) is a bug in
 * the workload, so it fails an assertion.
 */
export class HistoryRecorder {
  #drafts: OperationDraft[] = [];
  #pendingCount = 0;

  /** Records an invocation and returns the operation's id. */
  invoke(client: number, input: KvInput, nowMs: number): number {
    if (!(Number.isInteger(client) && client >= 0)) assert(false, `Client ids are non-negative integers: got ${client}`);
    if (!Number.isFinite(nowMs)) assert(false, `Invocation time must be finite: got ${nowMs}`);
    const id = this.#drafts.length;
    this.#drafts.push({ id, client, input, callMs: nowMs, returnMs: null, outcome: "pending", output: null });
    this.#pendingCount++;
    return id;
  }

  /** Records that the operation returned `output` at `nowMs`. */
  complete(id: number, output: KvWriteOutput, nowMs: number): void {
    const draft = this.#settle(id, nowMs);
    assert(output.op !== "txn" && output.op === draft.input.op, `Operation ${id} is a ${draft.input.op} but completed as a ${output.op}`);
    draft.outcome = "ok";
    draft.returnMs = nowMs;
    draft.output = output as KvOutput; // the assert above: the same op as the input, a simple one
  }

  /** Records that the operation definitely did not take effect, learned at `nowMs`. */
  fail(id: number, nowMs: number): void {
    const draft = this.#settle(id, nowMs);
    draft.outcome = "failed";
    draft.returnMs = nowMs;
  }

  /** Records that the client gave up on the operation without learning its outcome. */
  unknown(id: number): void {
    const draft = this.#settle(id, null);
    draft.outcome = "unknown";
  }

  /** Whether the operation has neither completed, failed nor been given up on. */
  isPending(id: number): boolean {
    return this.#draft(id).outcome === "pending";
  }

  get pendingCount(): number {
    return this.#pendingCount;
  }

  get size(): number {
    return this.#drafts.length;
  }

  /** A snapshot of the history, in id order; pending operations appear as unknown. */
  operations(): Operation[] {
    return this.#drafts.map((draft) => ({
      id: draft.id,
      client: draft.client,
      input: draft.input,
      callMs: draft.callMs,
      returnMs: draft.outcome === "pending" ? null : draft.returnMs,
      outcome: draft.outcome === "pending" ? "unknown" : draft.outcome,
      output: draft.output,
    }));
  }

  #draft(id: number): OperationDraft {
    const draft = this.#drafts[id];
    assert(draft !== undefined, `No operation has id ${id}: ${this.#drafts.length} recorded`);
    return draft;
  }

  #settle(id: number, nowMs: number | null): OperationDraft {
    const draft = this.#draft(id);
    assert(draft.outcome === "pending", `Operation ${id} is already settled as ${draft.outcome}`);
    if (nowMs !== null) {
      if (!(nowMs >= draft.callMs)) assert(false, `Operation ${id} cannot end at ${nowMs} ms, before its call at ${draft.callMs} ms`);
    }
    this.#pendingCount--;
    return draft;
  }
}

/** Checks the shape of an operation: a typed list of problems, empty when it is well formed. */
export function operationIssues(op: Operation): string[] {
  const issues: string[] = [];
  if (!Number.isFinite(op.callMs)) issues.push(`call time must be finite: got ${op.callMs}`);
  if (op.outcome === "ok") {
    if (op.output === null) issues.push("an ok operation must have an output");
    else if (op.output.op !== op.input.op) issues.push(`output is a ${op.output.op} for a ${op.input.op}`);
  } else if (op.output !== null) {
    issues.push(`a ${op.outcome} operation must not have an output`);
  }
  if (op.outcome === "unknown") {
    if (op.returnMs !== null) issues.push("an unknown operation must have no return time");
  } else if (op.returnMs === null || !Number.isFinite(op.returnMs)) {
    issues.push(`a ${op.outcome} operation must have a finite return time`);
  } else if (op.returnMs < op.callMs) {
    issues.push(`returns at ${op.returnMs} ms, before its call at ${op.callMs} ms`);
  }
  if (op.input.op === "cas" && !(Number.isInteger(op.input.expectedVersion) && op.input.expectedVersion >= 0)) {
    issues.push(`cas expects a non-negative integer version: got ${op.input.expectedVersion}`);
  }
  return issues;
}

/** `put(k1,"v9")`, `get(k1)`, `delete(k1)`, `cas(k1,v3,"x")`. */
export function formatInput(input: KvInput): string {
  switch (input.op) {
    case "put":
      return `put(${input.key},${JSON.stringify(input.value)})`;
    case "get":
      return `get(${input.key})`;
    case "delete":
      return `delete(${input.key})`;
    case "cas":
      return `cas(${input.key},v${input.expectedVersion},${JSON.stringify(input.value)})`;
  }
}

/** `v4`, `"v9" v4`, `absent`, `deleted`, `not found`, `ok v4`, `mismatch v5`. */
export function formatOutput(output: KvOutput): string {
  switch (output.op) {
    case "put":
      return `v${output.version}`;
    case "get":
      return output.value === null && output.version === 0
        ? "absent"
        : `${JSON.stringify(output.value)} v${output.version}`;
    case "delete":
      return output.deleted ? "deleted" : "not found";
    case "cas":
      return `${output.succeeded ? "ok" : "mismatch"} v${output.version}`;
  }
}

/**
 * One readable line per operation: `c3 put(k1,"v9") -> v4 @[120ms,134ms]`. A failed operation reads
 * `-> not applied`, an unknown one `-> ? @[120ms,?]`. With `id`, the operation id is appended (`#12`).
 */
export function formatOperation(op: Operation, options: { id?: boolean } = {}): string {
  let result: string;
  if (op.outcome === "ok" && op.output !== null) result = formatOutput(op.output);
  else if (op.outcome === "failed") result = "not applied";
  else result = "?";
  const returnText = op.returnMs === null ? "?" : `${op.returnMs}ms`;
  const idText = options.id === true ? ` #${op.id}` : "";
  return `c${op.client} ${formatInput(op.input)} -> ${result} @[${op.callMs}ms,${returnText}]${idText}`;
}
