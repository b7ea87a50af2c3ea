/**
 * Generates client histories of a correct key-value store, for the linearizability checker's tests and
 * benchmarks: several clients issue operations one at a time with random, overlapping intervals, and
 * each operation is applied atomically to a real in-memory store at a random instant inside its
 * interval, so the history is linearizable by construction. Some operations fail (and never take
 * effect); some end with an unknown outcome, and of those about half took effect (possibly after the
 * client gave up on them, as a write committed by a later leader would) and the rest never did.
 *
 * Deterministic: the same options give the same history, bit for bit (seedrandom).
 */
import seedrandom from "seedrandom";
import { assert } from "../../src/assert.ts";
import { HistoryRecorder, type KvInput, type KvOutput, type Operation } from "../history.ts";

export interface HistoryGeneratorOptions {
  readonly seed: number | string;
  /** How many operations to invoke in all. */
  readonly operations: number;
  readonly clients: number;
  readonly keys: number;
  /** Probability that an operation's outcome is unknown to its client. Default 0.05. */
  readonly unknownFraction?: number;
  /** Probability that an operation is rejected without taking effect. Default 0.02. */
  readonly failedFraction?: number;
  /** Each operation lasts 1..latencyMsMax ms. Default 20. */
  readonly latencyMsMax?: number;
  /** A client waits 0..thinkMsMax ms between operations. Default 5. */
  readonly thinkMsMax?: number;
}

interface StoredValue {
  readonly value: string;
  readonly version: number;
}

type GeneratorEvent =
  | { readonly kind: "effect"; readonly timeMs: number; readonly id: number; readonly input: KvInput }
  | { readonly kind: "settle"; readonly timeMs: number; readonly id: number; readonly fate: Fate }
  | { readonly kind: "call"; readonly timeMs: number; readonly client: number };

type Fate = "ok" | "failed" | "unknown";

/** Events at one time run effects first (an operation's output exists before it returns), then settles, then calls. */
const EVENT_RANK = { effect: 0, settle: 1, call: 2 } as const;

export function generateHistory(options: HistoryGeneratorOptions): Operation[] {
  assert(options.operations >= 0 && options.clients > 0 && options.keys > 0, "generateHistory() needs clients and keys");
  const random = seedrandom(String(options.seed));
  const unknownFraction = options.unknownFraction ?? 0.05;
  const failedFraction = options.failedFraction ?? 0.02;
  const latencyMsMax = options.latencyMsMax ?? 20;
  const thinkMsMax = options.thinkMsMax ?? 5;
  const randomInt = (low: number, high: number): number => low + Math.floor(random() * (high - low + 1));

  const recorder = new HistoryRecorder();
  const store = new Map<string, StoredValue>();
  const outputs = new Map<number, KvOutput>();
  /** The last version each client saw for each key, to aim its cas operations at. */
  const versionsSeen = new Map<string, number>();
  /** For each operation, its entry in versionsSeen. */
  const seenKeys: string[] = [];
  const queue = new EventQueue<GeneratorEvent>((a, b) => a.timeMs - b.timeMs || EVENT_RANK[a.kind] - EVENT_RANK[b.kind]);
  for (let client = 0; client < options.clients; client++) queue.push({ kind: "call", timeMs: randomInt(0, thinkMsMax), client });

  let invoked = 0;
  // Bounded: each operation adds at most three events, and no calls are scheduled past `operations`.
  for (let event = queue.pop(); event !== undefined; event = queue.pop()) {
    if (event.kind === "call") {
      if (invoked >= options.operations) continue;
      invoked++;
      const input = drawInput(random, recorder.size, event.client, options.keys, versionsSeen);
      const id = recorder.invoke(event.client, input, event.timeMs);
      seenKeys[id] = `${event.client} ${input.key}`;
      const returnMs = event.timeMs + randomInt(1, latencyMsMax);
      const draw = random();
      const fate: Fate = draw < failedFraction ? "failed" : draw < failedFraction + unknownFraction ? "unknown" : "ok";
      if (fate === "ok") queue.push({ kind: "effect", timeMs: randomInt(event.timeMs, returnMs), id, input });
      // Half the unknown operations take effect, some of them after the client has given up.
      if (fate === "unknown" && random() < 0.5) {
        queue.push({ kind: "effect", timeMs: randomInt(event.timeMs, returnMs + 2 * latencyMsMax), id, input });
      }
      queue.push({ kind: "settle", timeMs: returnMs, id, fate });
      queue.push({ kind: "call", timeMs: returnMs + randomInt(0, thinkMsMax), client: event.client });
    } else if (event.kind === "effect") {
      outputs.set(event.id, applyToStore(store, event.input));
    } else if (event.fate === "ok") {
      const output = outputs.get(event.id);
      assert(output !== undefined, `Operation ${event.id} took effect before it returned`);
      recorder.complete(event.id, output, event.timeMs);
      if ("version" in output) versionsSeen.set(seenKeys[event.id]!, output.version);
    } else if (event.fate === "failed") {
      recorder.fail(event.id, event.timeMs);
    } else {
      recorder.unknown(event.id);
    }
  }
  assert(recorder.pendingCount === 0, "Every generated operation settles");
  return recorder.operations();
}

function drawInput(
  random: () => number,
  id: number,
  client: number,
  keyCount: number,
  versionsSeen: ReadonlyMap<string, number>,
): KvInput {
  const key = `k${Math.floor(random() * keyCount)}`;
  const value = `v${id}`;
  const draw = random();
  if (draw < 0.4) return { op: "get", key };
  if (draw < 0.7) return { op: "put", key, value };
  if (draw < 0.9) {
    const seen = versionsSeen.get(`${client} ${key}`) ?? 0;
    const expectedVersion = random() < 0.8 ? seen : Math.floor(random() * (seen + 3));
    return { op: "cas", key, expectedVersion, value };
  }
  return { op: "delete", key };
}

/** Applies `input` atomically to `store` and returns what the client would be told. */
export function applyToStore(store: Map<string, StoredValue>, input: KvInput): KvOutput {
  const current = store.get(input.key);
  const version = current?.version ?? 0;
  switch (input.op) {
    case "put":
      store.set(input.key, { value: input.value, version: version + 1 });
      return { op: "put", version: version + 1 };
    case "get":
      return { op: "get", value: current?.value ?? null, version };
    case "delete":
      store.delete(input.key);
      return { op: "delete", deleted: current !== undefined };
    case "cas":
      if (version !== input.expectedVersion) return { op: "cas", succeeded: false, version };
      store.set(input.key, { value: input.value, version: version + 1 });
      return { op: "cas", succeeded: true, version: version + 1 };
  }
}

/** A binary min-heap; ties keep insertion order, so runs are deterministic. */
class EventQueue<T> {
  readonly #items: { item: T; sequence: number }[] = [];
  readonly #compare: (a: T, b: T) => number;
  #sequence = 0;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  push(item: T): void {
    const items = this.#items;
    items.push({ item, sequence: this.#sequence++ });
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (this.#less(items[parent]!, items[index]!)) break;
      [items[parent], items[index]] = [items[index]!, items[parent]!];
      index = parent;
    }
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top?.item;
    items[0] = last;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < items.length && this.#less(items[left]!, items[smallest]!)) smallest = left;
      if (right < items.length && this.#less(items[right]!, items[smallest]!)) smallest = right;
      if (smallest === index) return top.item;
      [items[smallest], items[index]] = [items[index]!, items[smallest]!];
      index = smallest;
    }
  }

  #less(a: { item: T; sequence: number }, b: { item: T; sequence: number }): boolean {
    return (this.#compare(a.item, b.item) || a.sequence - b.sequence) < 0;
  }
}
