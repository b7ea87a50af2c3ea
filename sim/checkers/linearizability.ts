/**
 * Linearizability of a client history against the versioned key-value model (sim/history.ts).
 *
 * The search is Wing and Gong's, with Lowe's improvements, as Porcupine does it:
 * - P-compositionality: a history is linearizable if and only if the sub-history of every key is, so
 *   each key is checked on its own (smallest first, so a budget runs out on the hardest key last);
 * - per key, the call and return events sit in a doubly linked list sorted by time; an operation may
 *   take effect next if its call comes before the first return still in the list; placing it lifts
 *   both of its events out, backtracking puts them back;
 * - a cache of (set of placed operations, model state) prunes every configuration already explored;
 * - the depth-first search keeps an explicit stack, so 100,000 operations cannot overflow the call stack.
 *
 * Time: the simulator's clock is integer milliseconds, so ties are common. Equal times are treated as
 * concurrent: an operation returning at t precedes an operation called at t' only if t < t'. In the
 * event list, calls sort before returns at the same time. This is the weaker ordering, so the checker
 * never reports a violation that depends on which of two events in the same millisecond came first.
 *
 * Operations whose outcome is unknown may have taken effect at any time after their call, or never
 * (Porcupine's treatment: return time +infinity, any output accepted). Exact reductions keep them cheap:
 * - an unknown get changes nothing, so it is dropped;
 * - an unknown write whose value a completed get read as (w, g), and that no other operation writes,
 *   must have taken effect before that get returned and left version g: it is checked as a write that
 *   returned g by then (etcd's robustness tests bound return times the same way);
 * - the other unknown operations never need to be placed (the search is done when every completed
 *   operation is), are tried only after completed ones, and are grouped into classes of
 *   interchangeable operations (same kind, same expected version, same value or any value no get
 *   reads), placed within a class in call order: swapping two members of a class in a valid order
 *   gives another valid order, so 2^n subsets of n pending writes become n + 1 prefixes;
 * - the stretches of unknown operations between two completed ones are cut down to canonical forms
 *   (see "The search over one prepared key" below).
 *
 * Two reductions help with plain concurrency, each again keeping every answer exact:
 * - a read-only operation (get, failed cas, delete that found nothing) that may come next and fits
 *   the current state is placed at once, with no alternative tried;
 * - of two operations with the same effect and the same result that may both come next, only the one
 *   returning first is tried there.
 * Values that no completed get reads are one value to the model, so states that differ only in them
 * meet in the cache. test/sim/checkers/linearizability.test.ts compares the result with a naive
 * enumeration of orders on thousands of random small histories.
 *
 * Failed operations definitely did not take effect and are left out entirely.
 *
 * A violation is explained twice over: the shortest prefix of the key's history (cut at a return
 * time, with every operation still running at the cut treated as unknown) that is already not
 * linearizable, and, in that prefix, the deepest point the search reached: the order it had found,
 * the state it led to, and why each operation that could come next contradicts that state.
 */
import { assert } from "../../src/assert.ts";
import { formatOperation, formatOutput, operationIssues, type KvOutput, type Operation } from "../history.ts";

export { formatOperation };

export interface LinearizabilityOptions {
  /** Wall-clock budget for the search, across all keys; diagnosing a violation may use as much again. */
  readonly timeBudgetMs?: number;
  /** A deterministic bound on search steps (a step tries or retracts one operation), across all keys. */
  readonly searchStepsMax?: number;
  /** Bounds memory: the configurations one key's search may remember (about 100 bytes each). */
  readonly cacheEntriesMax?: number;
}

export const TIME_BUDGET_MS_DEFAULT = 10_000;
export const CACHE_ENTRIES_MAX_DEFAULT = 2_000_000;

/** The model state of one key: an absent key is value null at version 0. */
export interface KvState {
  readonly value: string | null;
  readonly version: number;
}

export type LinearizabilityResult = LinearizabilityPass | LinearizabilityViolation | LinearizabilityUndecided;

export interface LinearizabilityPass {
  readonly ok: true;
  readonly keysChecked: number;
  /** Operations that took part in the check: every one that did not fail. */
  readonly operationsChecked: number;
}

export interface LinearizabilityViolation {
  readonly ok: false;
  /** The key whose sub-history has no linearization. */
  readonly key: string;
  /** A readable, multi-line explanation, meant to be printed as it is. */
  readonly reason: string;
  /** The shortest prefix of the key's history that is already not linearizable, when found in budget. */
  readonly minimalPrefix?: MinimalPrefix;
  /** Where the search got stuck, when found in budget. */
  readonly stuck?: StuckPoint;
}

export interface LinearizabilityUndecided {
  readonly ok: "unknown";
  readonly reason: string;
  /** The key being checked when the budget ran out. */
  readonly key: string;
  readonly keysChecked: number;
  readonly operationsChecked: number;
}

export interface MinimalPrefix {
  /** The prefix holds every operation called at or before `endMs`; those still running are unknown. */
  readonly endMs: number;
  /** The completed operations returning at `endMs`: the ones whose results complete the contradiction. */
  readonly completing: readonly Operation[];
  readonly operations: readonly Operation[];
}

export interface StuckPoint {
  /** The longest order found that explains the results of the operations in it. */
  readonly linearized: readonly Operation[];
  readonly state: KvState;
  /** The operation whose return forces something to take effect next, by `blockingMs`. */
  readonly blocking: Operation;
  readonly blockingMs: number;
  /** Every operation that could take effect next, and why it cannot. */
  readonly candidates: readonly StuckCandidate[];
}

export interface StuckCandidate {
  readonly operation: Operation;
  readonly why: string;
}

/** A history the checker cannot read: a bug in whatever recorded it. */
export class HistoryError extends Error {
  override name = "HistoryError";
  constructor(
    readonly operationId: number,
    message: string,
  ) {
    super(message);
  }
}

/** Checks that `ops` (any order, any keys) is linearizable; never runs much past the budget. */
export function checkLinearizable(ops: readonly Operation[], options: LinearizabilityOptions = {}): LinearizabilityResult {
  validateHistory(ops);
  const limits = validateOptions(options);
  const control = new SearchControl(limits);
  const partitions = partitionByKey(ops);
  let keysChecked = 0;
  let operationsChecked = 0;
  for (const [key, keyOps] of partitions) {
    const partition = preparePartition(key, keyOps, Number.POSITIVE_INFINITY);
    const outcome = new PartitionSearch(partition).run(control, null);
    if (outcome.kind === "exhausted") {
      const reason =
        `Cannot decide linearizability: the search reached ${outcome.limit} on key ${JSON.stringify(key)} ` +
        `(${keyOps.length} operations) after ${keysChecked} keys passed; raise the limit or shorten the history`;
      return { ok: "unknown", reason, key, keysChecked, operationsChecked };
    }
    if (outcome.kind === "violation") {
      return diagnoseViolation(key, keyOps, outcome.finitePlacedMax, new SearchControl(limits));
    }
    keysChecked++;
    operationsChecked += partition.operationCount;
  }
  return { ok: true, keysChecked, operationsChecked };
}

function validateOptions(options: LinearizabilityOptions): Required<LinearizabilityOptions> {
  const limits = {
    timeBudgetMs: options.timeBudgetMs ?? TIME_BUDGET_MS_DEFAULT,
    searchStepsMax: options.searchStepsMax ?? Number.POSITIVE_INFINITY,
    cacheEntriesMax: options.cacheEntriesMax ?? CACHE_ENTRIES_MAX_DEFAULT,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!(value >= 0)) throw new RangeError(`Cannot check linearizability: "${name}" must be >= 0, received ${value}`);
  }
  return limits;
}

function validateHistory(ops: readonly Operation[]): void {
  const ids = new Set<number>();
  for (const op of ops) {
    const issues = operationIssues(op);
    if (issues.length > 0) {
      throw new HistoryError(op.id, `Cannot check history: operation ${op.id} is malformed: ${issues.join("; ")}`);
    }
    if (ids.has(op.id)) throw new HistoryError(op.id, `Cannot check history: operation id ${op.id} appears twice`);
    ids.add(op.id);
  }
}

/** Operations that did not fail, grouped by key; keys ordered by size, then name. */
function partitionByKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    if (op.outcome === "failed") continue;
    const list = byKey.get(op.input.key);
    if (list === undefined) byKey.set(op.input.key, [op]);
    else list.push(op);
  }
  const keys = [...byKey.keys()].sort((a, b) => byKey.get(a)!.length - byKey.get(b)!.length || (a < b ? -1 : 1));
  return new Map(keys.map((key) => [key, byKey.get(key)!]));
}

// ---------------------------------------------------------------------------------------------------
// Search control: the budget shared by every key.

const STEPS_PER_CHECK = 1024;

class SearchControl {
  readonly #options: Required<LinearizabilityOptions>;
  readonly #deadlineMs: number;
  #stepsLeft: number;

  constructor(options: Required<LinearizabilityOptions>) {
    this.#options = options;
    this.#deadlineMs = performance.now() + options.timeBudgetMs;
    this.#stepsLeft = options.searchStepsMax;
  }

  /** Consumes a batch of steps; names the limit reached, or null while the search may go on. */
  spend(steps: number, cacheEntries: number): string | null {
    this.#stepsLeft -= steps;
    if (this.#stepsLeft < 0) return `the step budget (${this.#options.searchStepsMax} steps)`;
    if (cacheEntries > this.#options.cacheEntriesMax) return `the cache bound (${this.#options.cacheEntriesMax} entries)`;
    if (performance.now() > this.#deadlineMs) return `the time budget (${this.#options.timeBudgetMs} ms)`;
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// A key's history, prepared for the search: typed arrays indexed by a local operation number.
// Local numbers 0..finiteCount-1 are operations that must be placed (completed ones, and unknown
// writes bounded by an observation), sorted by call; the rest are optional unknown operations.

const KIND_PUT = 0;
const KIND_GET = 1;
const KIND_DELETE = 2;
const KIND_CAS = 3;
/** Value ids: 0 is the absent key's null, 1 stands for every value that no completed get reads. */
const VALUE_ABSENT = 0;
const VALUE_UNREAD = 1;
const KIND_BY_NAME = { put: KIND_PUT, get: KIND_GET, delete: KIND_DELETE, cas: KIND_CAS } as const;

interface Partition {
  readonly key: string;
  /** Non-failed operations in the prepared history, including dropped unknown gets. */
  readonly operationCount: number;
  readonly sources: readonly Operation[];
  /** The output each operation is checked against; null accepts any. */
  readonly outputs: readonly (KvOutput | null)[];
  /** Whether the operation was treated as unknown (it may be ok in the full history but running at a cut). */
  readonly treatedUnknown: Uint8Array;
  readonly finiteCount: number;
  readonly kind: Uint8Array;
  readonly valueId: Int32Array;
  readonly expectedVersion: Int32Array;
  readonly anyOutput: Uint8Array;
  readonly outVersion: Int32Array;
  readonly outFlag: Uint8Array;
  /** For a completed get, the encoded state it read. */
  readonly outState: Float64Array;
  readonly callMs: Float64Array;
  /** Values by id; id 0 is "absent". A state is encoded as version * valueRadix + valueId. */
  readonly valueNames: readonly (string | null)[];
  readonly valueRadix: number;
  /** Events sorted by time (calls first at equal times): which operation, and whether it is a return. */
  readonly eventOp: Int32Array;
  readonly eventIsReturn: Uint8Array;
  readonly eventTimeMs: Float64Array;
  readonly callEvent: Int32Array;
  readonly returnEvent: Int32Array;
  /** Optional operations by class: members of class c are classMembers[classStart[c]..classStart[c+1]). */
  readonly classStart: Int32Array;
  readonly classMembers: Int32Array;
  readonly opClass: Int32Array;
  /** For completed operations: operations with equal twin classes have the same effect and result. */
  readonly twinClass: Int32Array;
  /** Whether the operation's twin class has other members. */
  readonly twinned: Uint8Array;
  /** The class of unknown puts of values no get reads, or -1. */
  readonly anonymousPutClass: number;
  /** By expected version, the class of unknown cas operations writing values no get reads. */
  readonly anonymousCasClassByVersion: ReadonlyMap<number, number>;
}

interface PreparedOp {
  readonly source: Operation;
  readonly treatedUnknown: boolean;
  /** The output the search checks: the recorded one, one inferred from a read, or null for any. */
  readonly output: KvOutput | null;
  /** Return time used by the search: finite for completed and observation-bounded operations. */
  readonly returnMs: number;
}

/**
 * Prepares `ops` (one key, none failed) for the search. With a finite `cutMs`, only operations called
 * at or before it are kept, and those not completed by then are treated as unknown.
 */
function preparePartition(key: string, ops: readonly Operation[], cutMs: number): Partition {
  const kept: { op: Operation; unknown: boolean }[] = [];
  let operationCount = 0;
  for (const op of ops) {
    assert(op.outcome !== "failed", "Failed operations are removed before preparation");
    if (op.callMs > cutMs) continue;
    operationCount++;
    const unknown = op.outcome !== "ok" || op.returnMs! > cutMs;
    if (unknown && op.input.op === "get") continue; // Reads change nothing: an unknown one constrains nothing.
    kept.push({ op, unknown });
  }
  const inferred = inferredOutcomes(kept);
  const finite: PreparedOp[] = [];
  const optional: PreparedOp[] = [];
  for (const { op, unknown } of kept) {
    const inference = inferred.get(op);
    if (!unknown) finite.push({ source: op, treatedUnknown: false, output: op.output, returnMs: op.returnMs! });
    else if (inference !== undefined) finite.push({ source: op, treatedUnknown: true, ...inference });
    else optional.push({ source: op, treatedUnknown: true, output: null, returnMs: Number.POSITIVE_INFINITY });
  }
  finite.sort(compareByCall);
  const classes = classifyOptional(optional, observedValues(kept));
  const prepared = [...finite, ...[...classes.values()].flat()];
  return encodePartition(key, operationCount, prepared, finite.length, classes);
}

function compareByCall(a: PreparedOp, b: PreparedOp): number {
  return a.source.callMs - b.source.callMs || a.source.id - b.source.id;
}

/** Values some completed get read. */
function observedValues(kept: readonly { op: Operation; unknown: boolean }[]): Set<string> {
  const values = new Set<string>();
  for (const { op, unknown } of kept) {
    if (!unknown && op.output?.op === "get" && op.output.value !== null) values.add(op.output.value);
  }
  return values;
}

/**
 * Outcomes of unknown writes that a completed get proves: the get read (w, g), and only this write
 * writes w. Then the write took effect before the get returned, and left the key at version g: between
 * the two, any operation that changed the version would also have replaced or removed w. So it is
 * checked as a write that returned version g by the get's return (the earliest such get's, when several
 * read w; if they disagree the search finds that no order exists). A read before the write's call is
 * impossible: no outcome is inferred, and the search reports the read.
 */
function inferredOutcomes(
  kept: readonly { op: Operation; unknown: boolean }[],
): Map<Operation, { readonly returnMs: number; readonly output: KvOutput }> {
  const writers = new Map<string, Operation[]>();
  const firstReads = new Map<string, Operation>();
  for (const { op, unknown } of kept) {
    if (op.input.op === "put" || op.input.op === "cas") {
      const list = writers.get(op.input.value);
      if (list === undefined) writers.set(op.input.value, [op]);
      else list.push(op);
    }
    if (!unknown && op.output?.op === "get" && op.output.value !== null) {
      const first = firstReads.get(op.output.value);
      if (first === undefined || op.returnMs! < first.returnMs!) firstReads.set(op.output.value, op);
    }
  }
  const inferred = new Map<Operation, { readonly returnMs: number; readonly output: KvOutput }>();
  for (const { op, unknown } of kept) {
    if (!unknown || (op.input.op !== "put" && op.input.op !== "cas")) continue;
    const read = firstReads.get(op.input.value);
    if (read === undefined || writers.get(op.input.value)!.length !== 1 || read.returnMs! < op.callMs) continue;
    assert(read.output?.op === "get", "A first read is a completed get");
    const version = read.output.version;
    const output: KvOutput =
      op.input.op === "put" ? { op: "put", version } : { op: "cas", succeeded: true, version };
    inferred.set(op, { returnMs: read.returnMs!, output });
  }
  return inferred;
}

/**
 * Groups optional operations into classes of interchangeable ones, each sorted by call, keyed by
 * ["put", value], ["cas", expectedVersion, value] (value null when no get reads it) or ["delete"].
 */
function classifyOptional(optional: readonly PreparedOp[], observed: ReadonlySet<string>): Map<string, PreparedOp[]> {
  const byClass = new Map<string, PreparedOp[]>();
  for (const prepared of [...optional].sort(compareByCall)) {
    const input = prepared.source.input;
    let classKey: string;
    if (input.op === "put") classKey = JSON.stringify(["put", observed.has(input.value) ? input.value : null]);
    else if (input.op === "cas") {
      const value = observed.has(input.value) ? input.value : null;
      classKey = JSON.stringify(["cas", input.expectedVersion, value]);
    } else {
      assert(input.op === "delete", `Optional operations are writes: got ${input.op}`);
      classKey = JSON.stringify(["delete"]);
    }
    const members = byClass.get(classKey);
    if (members === undefined) byClass.set(classKey, [prepared]);
    else members.push(prepared);
  }
  // Deletes last, so a run is first tried without one: a heuristic only, any order is complete.
  const rank = (classKey: string): number => ({ cas: 0, put: 1, delete: 2 })[JSON.parse(classKey)[0] as string] ?? 3;
  return new Map([...byClass].sort(([a], [b]) => rank(a) - rank(b)));
}

function encodePartition(
  key: string,
  operationCount: number,
  prepared: readonly PreparedOp[],
  finiteCount: number,
  classesByKey: ReadonlyMap<string, PreparedOp[]>,
): Partition {
  const classes = [...classesByKey.values()];
  const classKeys = [...classesByKey.keys()];
  const anonymousPutClass = classKeys.indexOf(JSON.stringify(["put", null]));
  const anonymousCasClassByVersion = new Map<number, number>();
  classKeys.forEach((classKey, c) => {
    const parsed: unknown = JSON.parse(classKey);
    if (Array.isArray(parsed) && parsed[0] === "cas" && parsed[2] === null) anonymousCasClassByVersion.set(parsed[1], c);
  });
  const count = prepared.length;
  // Values no completed get reads are told apart by no check, so they share one id: states that
  // differ only in such a value are the same state, which the cache then sees.
  const valueIds = new Map<string, number>();
  const valueNames: (string | null)[] = [null, null];
  const read = new Set<string>();
  for (const { source, treatedUnknown: unknown } of prepared) {
    if (!unknown && source.output?.op === "get" && source.output.value !== null) read.add(source.output.value);
  }
  const intern = (value: string): number => {
    if (!read.has(value)) return VALUE_UNREAD;
    let id = valueIds.get(value);
    if (id === undefined) {
      id = valueNames.length;
      valueIds.set(value, id);
      valueNames.push(value);
    }
    return id;
  };
  for (const { source } of prepared) {
    if (source.input.op === "put" || source.input.op === "cas") intern(source.input.value);
    if (source.output?.op === "get" && source.output.value !== null) intern(source.output.value);
  }
  const valueRadix = valueNames.length;
  const kind = new Uint8Array(count);
  const valueId = new Int32Array(count);
  const expectedVersion = new Int32Array(count);
  const anyOutput = new Uint8Array(count);
  const outVersion = new Int32Array(count);
  const outFlag = new Uint8Array(count);
  const outState = new Float64Array(count).fill(-1);
  const callMs = new Float64Array(count);
  const treatedUnknown = new Uint8Array(count);
  for (let index = 0; index < count; index++) {
    const { source, treatedUnknown: unknown, output } = prepared[index]!;
    const input = source.input;
    callMs[index] = source.callMs;
    treatedUnknown[index] = unknown ? 1 : 0;
    anyOutput[index] = output === null ? 1 : 0;
    kind[index] = KIND_BY_NAME[input.op];
    if (input.op === "put" || input.op === "cas") valueId[index] = intern(input.value);
    if (input.op === "cas") expectedVersion[index] = input.expectedVersion;
    if (output === null) continue;
    if (output.op === "put") outVersion[index] = output.version;
    else if (output.op === "get") {
      outVersion[index] = output.version;
      const readId = output.value === null ? VALUE_ABSENT : intern(output.value);
      outState[index] = output.version * valueRadix + readId;
    } else if (output.op === "delete") outFlag[index] = output.deleted ? 1 : 0;
    else {
      outFlag[index] = output.succeeded ? 1 : 0;
      outVersion[index] = output.version;
    }
  }
  const events = sortEvents(prepared, finiteCount);
  const { twinClass, twinned } = twinClasses(finiteCount, [kind, valueId, expectedVersion, anyOutput, outVersion, outFlag, outState]);
  const classStart = new Int32Array(classes.length + 1);
  const classMembers = new Int32Array(count - finiteCount);
  const opClass = new Int32Array(count).fill(-1);
  let member = 0;
  for (let c = 0; c < classes.length; c++) {
    classStart[c] = member;
    for (let i = 0; i < classes[c]!.length; i++) {
      classMembers[member] = finiteCount + member;
      opClass[finiteCount + member] = c;
      member++;
    }
  }
  classStart[classes.length] = member;
  assert(member === count - finiteCount, "Every optional operation belongs to exactly one class");
  return {
    key, operationCount, sources: prepared.map((p) => p.source), outputs: prepared.map((p) => p.output), treatedUnknown, finiteCount, kind, valueId,
    expectedVersion, anyOutput, outVersion, outFlag, outState, callMs, valueNames, valueRadix, ...events,
    classStart, classMembers, opClass, twinClass, twinned, anonymousPutClass, anonymousCasClassByVersion,
  };
}

/** Numbers the distinct rows of `columns` among the first `count` operations. */
function twinClasses(count: number, columns: readonly ArrayLike<number>[]): { twinClass: Int32Array; twinned: Uint8Array } {
  const twinClass = new Int32Array(count);
  const classByRow = new Map<string, number>();
  const sizes: number[] = [];
  for (let op = 0; op < count; op++) {
    const row = columns.map((column) => column[op]).join(" ");
    let c = classByRow.get(row);
    if (c === undefined) {
      c = sizes.length;
      classByRow.set(row, c);
      sizes.push(0);
    }
    twinClass[op] = c;
    sizes[c]!++;
  }
  const twinned = new Uint8Array(count);
  for (let op = 0; op < count; op++) twinned[op] = sizes[twinClass[op]!]! > 1 ? 1 : 0;
  return { twinClass, twinned };
}

/** Merges calls (already in order) with returns, calls first at equal times. */
function sortEvents(prepared: readonly PreparedOp[], finiteCount: number) {
  const returnOrder = Array.from({ length: finiteCount }, (_, index) => index);
  returnOrder.sort((a, b) => prepared[a]!.returnMs - prepared[b]!.returnMs || a - b);
  const eventCount = 2 * finiteCount;
  const eventOp = new Int32Array(eventCount);
  const eventIsReturn = new Uint8Array(eventCount);
  const eventTimeMs = new Float64Array(eventCount);
  const callEvent = new Int32Array(finiteCount);
  const returnEvent = new Int32Array(finiteCount);
  let nextCall = 0;
  let nextReturn = 0;
  for (let event = 0; event < eventCount; event++) {
    const callMs = nextCall < finiteCount ? prepared[nextCall]!.source.callMs : Number.POSITIVE_INFINITY;
    const returnOp = returnOrder[nextReturn];
    const returnMs = returnOp === undefined ? Number.POSITIVE_INFINITY : prepared[returnOp]!.returnMs;
    if (nextCall < finiteCount && callMs <= returnMs) {
      eventOp[event] = nextCall;
      eventTimeMs[event] = callMs;
      callEvent[nextCall++] = event;
    } else {
      assert(returnOp !== undefined, "Events run out only when both calls and returns do");
      eventOp[event] = returnOp;
      eventIsReturn[event] = 1;
      eventTimeMs[event] = returnMs;
      returnEvent[returnOp] = event;
      assert(callEvent[returnOp]! < event || finiteCount === 0, "An operation's call precedes its return");
      nextReturn++;
    }
  }
  return { eventOp, eventIsReturn, eventTimeMs, callEvent, returnEvent };
}

// ---------------------------------------------------------------------------------------------------
// The search over one prepared key.
//
// Placed optional operations form runs: maximal stretches of the order with no completed operation.
// Two rules cut the runs the search tries, without losing any solution:
// - a run must change the state at every step and never come back to a state it has held: the
//   operations between two visits of one state can be left out, and every later result stays the same;
// - a run must end with a completed operation K whose result the state at the run's start
//   contradicts (or whose output is unknown). If K fits the start state, then either K determines the
//   state after it alone (put, delete, successful cas: the run can be dropped), or K leaves the state
//   as it is (get, failed cas: K and the run commute), so an order without this run exists.
// Four more rewrites, particular to this model, order what is left of a run:
// - an optional delete only opens a run: it leaves the key absent whatever came before it in the run,
//   so the operations before it can be left out;
// - an unknown put of an unread value is not placed at version e while an unknown cas from e of an
//   unread value could be: both lead to the same state, and the put fits anywhere the cas fits, so
//   swapping them keeps the order valid and leaves the more useful operation free;
// - a run never raises the version above what some operation that may end it needs (the version only
//   rises within a run after its opening delete), unless one of them has an unknown output;
// - a run opened by a delete never rises above the version it started from: if it ended at version t
//   above it, its last t - s increments alone, applied from the start version s, would meet the same
//   versions and end in the same state.
// Repeatedly applying these rewrites to any valid order ends (each one removes a placed optional
// operation or moves one past a completed operation) in a valid order that obeys all of them. The rules
// depend on the run so far, so the cache keys a configuration by its run as well: the run's start
// state and the set of states the run has held.

type SearchOutcome =
  | { readonly kind: "linearizable" }
  | { readonly kind: "violation"; readonly finitePlacedMax: number }
  | { readonly kind: "exhausted"; readonly limit: string }
  | { readonly kind: "captured"; readonly stuck: StuckPoint };

interface CaptureRequest {
  /** Capture the first stuck point where this many completed operations are placed. */
  readonly finitePlaced: number;
}

const NIL = -1;
const WORD_FULL = 0xffffffff;
const TWO_POW_32 = 4294967296;
/** Pool entry layout: state (2 words), full-word prefix, tail length, run length, then variable parts. */
const ENTRY_HEADER_WORDS = 5;

class PartitionSearch {
  readonly #p: Partition;
  readonly #head: number;
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  // The set of placed completed operations: a bitset, with its run of full leading words and its end
  // (one past the last non-zero word) kept current, so a cache entry stores only the words between.
  readonly #words: Uint32Array;
  #wordsFullPrefix = 0;
  #wordsEnd = 0;
  readonly #zobristLow: Int32Array;
  readonly #zobristHigh: Int32Array;
  #hashLow = 0;
  #hashHigh = 0;
  /** How many members of each optional class are placed (always the earliest-called ones). */
  readonly #classUsed: Int32Array;
  #state = 0;
  readonly #stackOp: Int32Array;
  /** The state before each placed operation. */
  readonly #stackState: Float64Array;
  /** #runStart before each placed operation. */
  readonly #stackRunStart: Int32Array;
  /** Whether each placed operation was a fitting read, placed without alternatives. */
  readonly #stackForced: Uint8Array;
  #poppedForced = false;
  #depth = 0;
  /** The stack depth of the current run's first operation, or NIL when the last placed one completed. */
  #runStart = NIL;
  /** Scratch for a configuration's run: its start state, then the other states it held, sorted. */
  #runStates: number[] = [];
  #finitePlaced = 0;
  #finitePlacedMax = 0;
  readonly #cache = new Map<number, number | number[]>();
  #cacheEntries = 0;
  #pool = new Uint32Array(1 << 12);
  #poolUsed = 0;

  constructor(partition: Partition) {
    this.#p = partition;
    const eventCount = partition.eventOp.length;
    this.#head = eventCount;
    this.#next = new Int32Array(eventCount + 1);
    this.#prev = new Int32Array(eventCount + 1);
    for (let event = 0; event < eventCount; event++) {
      this.#next[event] = event + 1 < eventCount ? event + 1 : NIL;
      this.#prev[event] = event > 0 ? event - 1 : this.#head;
    }
    this.#next[this.#head] = eventCount > 0 ? 0 : NIL;
    this.#words = new Uint32Array(Math.ceil(partition.finiteCount / 32));
    this.#zobristLow = new Int32Array(partition.finiteCount);
    this.#zobristHigh = new Int32Array(partition.finiteCount);
    let seed = 0x2545f491;
    for (let op = 0; op < partition.finiteCount; op++) {
      seed = (seed + 0x9e3779b9) | 0;
      this.#zobristLow[op] = mix32(seed);
      this.#zobristHigh[op] = mix32(seed ^ 0x68e31da4);
    }
    this.#classUsed = new Int32Array(partition.classStart.length - 1);
    const stackSize = partition.sources.length;
    this.#stackOp = new Int32Array(stackSize);
    this.#stackState = new Float64Array(stackSize);
    this.#stackRunStart = new Int32Array(stackSize);
    this.#stackForced = new Uint8Array(stackSize);
  }

  run(control: SearchControl, capture: CaptureRequest | null): SearchOutcome {
    const p = this.#p;
    const next = this.#next;
    let entry = next[this.#head]!;
    let inClasses = false;
    let classCursor = 0;
    let frontierMs = 0;
    let stepsUntilCheck = STEPS_PER_CHECK;
    let fresh = true;
    // Bounded by the budget: every iteration is one step, and the budget is checked every batch.
    for (;;) {
      if (--stepsUntilCheck === 0) {
        const limit = control.spend(STEPS_PER_CHECK, this.#cacheEntries);
        if (limit !== null) return { kind: "exhausted", limit };
        stepsUntilCheck = STEPS_PER_CHECK;
      }
      if (next[this.#head] === NIL) return { kind: "linearizable" };
      if (fresh) {
        fresh = false;
        const read = this.#runStart === NIL ? this.#fittingRead() : NIL;
        if (read !== NIL && this.#tryFinite(read, true)) {
          fresh = true;
          entry = next[this.#head]!;
          continue;
        }
        if (read !== NIL) {
          // The read leads to a configuration already explored, so this one fails too: backtrack.
          inClasses = true;
          classCursor = this.#classUsed.length;
        }
      }
      if (!inClasses) {
        assert(entry !== NIL, "The event list always ends with a return");
        if (p.eventIsReturn[entry] === 0) {
          const op = p.eventOp[entry]!;
          fresh = this.#tryFinite(op, false);
          entry = fresh ? next[this.#head]! : next[entry]!;
          continue;
        }
        frontierMs = p.eventTimeMs[entry]!;
        inClasses = true;
        classCursor = 0;
      }
      if (this.#tryClasses(classCursor, frontierMs)) {
        inClasses = false;
        fresh = true;
        entry = next[this.#head]!;
        continue;
      }
      if (capture !== null && this.#finitePlaced === capture.finitePlaced) {
        return { kind: "captured", stuck: this.#stuckPoint() };
      }
      // A read placed because it fit was the only child worth trying: its parent fails with it.
      let popped = NIL;
      do {
        if (this.#depth === 0) return { kind: "violation", finitePlacedMax: this.#finitePlacedMax };
        popped = this.#backtrack();
      } while (this.#poppedForced);
      if (popped < p.finiteCount) {
        inClasses = false;
        entry = next[p.callEvent[popped]!]!;
      } else {
        classCursor = p.opClass[popped]! + 1;
        frontierMs = p.eventTimeMs[this.#firstReturn()]!;
      }
    }
  }

  /** The model: the state after `op` from `state`, or -1 if `op`'s result contradicts `state`. */
  #step(state: number, op: number): number {
    const p = this.#p;
    const radix = p.valueRadix;
    const version = Math.floor(state / radix);
    const anyOutput = p.anyOutput[op] === 1;
    switch (p.kind[op]) {
      case KIND_PUT: {
        if (!anyOutput && p.outVersion[op] !== version + 1) return -1;
        return (version + 1) * radix + p.valueId[op]!;
      }
      case KIND_GET:
        return anyOutput || p.outState[op] === state ? state : -1;
      case KIND_DELETE:
        if (!anyOutput && (p.outFlag[op] === 1) !== version > 0) return -1;
        return 0;
      default: {
        if (version === p.expectedVersion[op]) {
          if (!anyOutput && (p.outFlag[op] !== 1 || p.outVersion[op] !== version + 1)) return -1;
          return (version + 1) * radix + p.valueId[op]!;
        }
        if (!anyOutput && (p.outFlag[op] !== 0 || p.outVersion[op] !== version)) return -1;
        return state;
      }
    }
  }

  /** Whether `op` may end the current run: see the rules above. */
  #endsRun(op: number, runStartState: number): boolean {
    return this.#p.anyOutput[op] === 1 || this.#step(runStartState, op) < 0;
  }

  /**
   * A get, failed cas or delete that found nothing, that may come next and fits the current state, or NIL. Placing it now loses
   * nothing: in any valid order it can move forward to here (it may come next, so nothing must precede
   * it, and it leaves the state alone), so no alternative to it needs trying.
   */
  #fittingRead(): number {
    const p = this.#p;
    for (let entry = this.#next[this.#head]!; p.eventIsReturn[entry] === 0; entry = this.#next[entry]!) {
      const op = p.eventOp[entry]!;
      if (p.anyOutput[op] === 1) continue;
      const kind = p.kind[op];
      const readOnly = kind === KIND_GET || (kind !== KIND_PUT && p.outFlag[op] === 0);
      if (readOnly && this.#step(this.#state, op) === this.#state) return op;
    }
    return NIL;
  }

  #tryFinite(op: number, forced: boolean): boolean {
    const stateNext = this.#step(this.#state, op);
    if (stateNext < 0) return false;
    if (!forced && this.#p.twinned[op] === 1 && this.#hasEarlierTwin(op)) return false;
    if (this.#runStart !== NIL && !this.#endsRun(op, this.#stackState[this.#runStart]!)) return false;
    this.#setBit(op);
    this.#runStates.length = 0;
    if (!this.#visit(stateNext)) {
      this.#clearBit(op);
      return false;
    }
    this.#push(op, NIL);
    this.#stackForced[this.#depth - 1] = forced ? 1 : 0;
    this.#state = stateNext;
    this.#lift(op);
    this.#finitePlaced++;
    if (this.#finitePlaced > this.#finitePlacedMax) this.#finitePlacedMax = this.#finitePlaced;
    return true;
  }

  /** Tries the next member of each class from `classFirst` on that was called by `frontierMs`. */
  #tryClasses(classFirst: number, frontierMs: number): boolean {
    const p = this.#p;
    const runStartState = this.#runStart === NIL ? this.#state : this.#stackState[this.#runStart]!;
    let versionMax = this.#runVersionMax(runStartState);
    if (versionMax < 0) return false;
    if (this.#runStart !== NIL && p.kind[this.#stackOp[this.#runStart]!] === KIND_DELETE) {
      versionMax = Math.min(versionMax, Math.floor(runStartState / p.valueRadix));
    }
    for (let c = classFirst; c < this.#classUsed.length; c++) {
      const op = this.#classHead(c, frontierMs);
      if (op === NIL) continue;
      if (p.kind[op] === KIND_DELETE && this.#runStart !== NIL) continue;
      const stateNext = this.#step(this.#state, op);
      if (stateNext < 0 || this.#runHeld(stateNext)) continue;
      if (Math.floor(stateNext / p.valueRadix) > versionMax) continue;
      if (c === p.anonymousPutClass) {
        const casClass = p.anonymousCasClassByVersion.get(Math.floor(this.#state / p.valueRadix));
        if (casClass !== undefined && this.#classHead(casClass, frontierMs) !== NIL) continue;
      }
      this.#bumpClass(c, 1);
      this.#describeRun(stateNext);
      if (!this.#visit(stateNext)) {
        this.#bumpClass(c, -1);
        continue;
      }
      this.#push(op, this.#runStart === NIL ? this.#depth : this.#runStart);
      this.#stackForced[this.#depth - 1] = 0;
      this.#state = stateNext;
      return true;
    }
    return false;
  }

  /** The next member of class `c`, if it was called by `frontierMs`; else NIL. */
  #classHead(c: number, frontierMs: number): number {
    const p = this.#p;
    const member = p.classStart[c]! + this.#classUsed[c]!;
    if (member >= p.classStart[c + 1]!) return NIL;
    const op = p.classMembers[member]!;
    return p.callMs[op]! <= frontierMs ? op : NIL;
  }

  /**
   * The highest version a run from `runStartState` may reach: the most any operation that could end
   * it needs before it (infinite if one has an unknown output), or -1 if none could end it.
   */
  #runVersionMax(runStartState: number): number {
    const p = this.#p;
    let versionMax = -1;
    for (let entry = this.#next[this.#head]!; p.eventIsReturn[entry] === 0; entry = this.#next[entry]!) {
      const op = p.eventOp[entry]!;
      if (!this.#endsRun(op, runStartState)) continue;
      if (p.anyOutput[op] === 1) return Number.POSITIVE_INFINITY;
      versionMax = Math.max(versionMax, this.#versionNeeded(op));
    }
    return versionMax;
  }

  /** The version a completed operation's result says the key had just before it. */
  #versionNeeded(op: number): number {
    const p = this.#p;
    switch (p.kind[op]) {
      case KIND_PUT:
        return p.outVersion[op]! - 1;
      case KIND_GET:
        return p.outVersion[op]!;
      case KIND_DELETE:
        return p.outFlag[op] === 1 ? 1 : 0; // Deleting needs some version; 1 is the first a run reaches.
      default:
        return p.outFlag[op] === 1 ? p.expectedVersion[op]! : p.outVersion[op]!;
    }
  }

  /**
   * Whether a twin of `op` (same effect, same result) that returns earlier may also come next. Then `op`
   * need not be tried: in a valid order that places `op` here and the twin later, swapping the two keeps
   * every state, and the twin's earlier return bounds every operation before its old place, so `op`
   * fits there. Ties are broken by operation number.
   */
  #hasEarlierTwin(op: number): boolean {
    const p = this.#p;
    const returnMs = p.eventTimeMs[p.returnEvent[op]!]!;
    for (let entry = this.#next[this.#head]!; p.eventIsReturn[entry] === 0; entry = this.#next[entry]!) {
      const other = p.eventOp[entry]!;
      if (other === op || p.twinClass[other] !== p.twinClass[op]) continue;
      const otherReturnMs = p.eventTimeMs[p.returnEvent[other]!]!;
      if (otherReturnMs < returnMs || (otherReturnMs === returnMs && other < op)) return true;
    }
    return false;
  }

  /** Whether the current run (or, outside a run, the current state) has held `state`. */
  #runHeld(state: number): boolean {
    if (state === this.#state) return true;
    if (this.#runStart === NIL) return false;
    for (let depth = this.#runStart; depth < this.#depth; depth++) {
      if (this.#stackState[depth] === state) return true;
    }
    return false;
  }

  /** Fills #runStates for the configuration reached by placing an optional operation that leads to `stateNext`. */
  #describeRun(stateNext: number): void {
    const states = this.#runStates;
    states.length = 0;
    if (this.#runStart === NIL) {
      states.push(this.#state, stateNext);
      return;
    }
    for (let depth = this.#runStart; depth < this.#depth; depth++) states.push(this.#stackState[depth]!);
    states.push(this.#state, stateNext);
    const start = states[0]!;
    const held = states.slice(1).sort((a, b) => a - b);
    states.length = 0;
    states.push(start, ...held);
  }

  /** Retracts the last placed operation and returns it. */
  #backtrack(): number {
    assert(this.#depth > 0, "Backtracking needs a placed operation");
    this.#depth--;
    const op = this.#stackOp[this.#depth]!;
    this.#state = this.#stackState[this.#depth]!;
    this.#runStart = this.#stackRunStart[this.#depth]!;
    this.#poppedForced = this.#stackForced[this.#depth] === 1;
    if (op < this.#p.finiteCount) {
      this.#clearBit(op);
      this.#unlift(op);
      this.#finitePlaced--;
    } else {
      this.#bumpClass(this.#p.opClass[op]!, -1);
    }
    return op;
  }

  #push(op: number, runStart: number): void {
    this.#stackOp[this.#depth] = op;
    this.#stackState[this.#depth] = this.#state;
    this.#stackRunStart[this.#depth] = this.#runStart;
    this.#runStart = runStart;
    this.#depth++;
  }

  #lift(op: number): void {
    const next = this.#next;
    const prev = this.#prev;
    const call = this.#p.callEvent[op]!;
    next[prev[call]!] = next[call]!;
    if (next[call] !== NIL) prev[next[call]!] = prev[call]!;
    const ret = this.#p.returnEvent[op]!;
    next[prev[ret]!] = next[ret]!;
    if (next[ret] !== NIL) prev[next[ret]!] = prev[ret]!;
  }

  /** Undoes #lift, in reverse order, so the removed events' own links are still valid. */
  #unlift(op: number): void {
    const next = this.#next;
    const prev = this.#prev;
    const ret = this.#p.returnEvent[op]!;
    next[prev[ret]!] = ret;
    if (next[ret] !== NIL) prev[next[ret]!] = ret;
    const call = this.#p.callEvent[op]!;
    next[prev[call]!] = call;
    if (next[call] !== NIL) prev[next[call]!] = call;
  }

  #firstReturn(): number {
    let entry = this.#next[this.#head]!;
    while (this.#p.eventIsReturn[entry] === 0) entry = this.#next[entry]!;
    return entry;
  }

  #setBit(op: number): void {
    const word = op >>> 5;
    this.#words[word]! |= 1 << (op & 31);
    this.#hashLow ^= this.#zobristLow[op]!;
    this.#hashHigh ^= this.#zobristHigh[op]!;
    if (word + 1 > this.#wordsEnd) this.#wordsEnd = word + 1;
    if (word === this.#wordsFullPrefix) {
      while (this.#wordsFullPrefix < this.#words.length && this.#words[this.#wordsFullPrefix] === WORD_FULL) {
        this.#wordsFullPrefix++;
      }
    }
  }

  #clearBit(op: number): void {
    const word = op >>> 5;
    assert((this.#words[word]! & (1 << (op & 31))) !== 0, `Operation ${op} is placed before it is retracted`);
    this.#words[word]! &= ~(1 << (op & 31));
    this.#hashLow ^= this.#zobristLow[op]!;
    this.#hashHigh ^= this.#zobristHigh[op]!;
    if (word < this.#wordsFullPrefix) this.#wordsFullPrefix = word;
    while (this.#wordsEnd > 0 && this.#words[this.#wordsEnd - 1] === 0) this.#wordsEnd--;
  }

  #bumpClass(c: number, delta: 1 | -1): void {
    const before = this.#classUsed[c]!;
    const after = before + delta;
    assert(after >= 0, `Class ${c} cannot go below zero placed members`);
    this.#classUsed[c] = after;
    this.#hashLow ^= classHash(c, before, 0x3c6ef372) ^ classHash(c, after, 0x3c6ef372);
    this.#hashHigh ^= classHash(c, before, 0x1b873593) ^ classHash(c, after, 0x1b873593);
  }

  /**
   * Records the configuration (placed set, `state`, #runStates) in the cache; false if it was there
   * already, so everything after it has been explored.
   */
  #visit(state: number): boolean {
    let mixed = this.#hashLow ^ mixState(state, 0x5bd1e995);
    const runStates = this.#runStates;
    for (let i = 0; i < runStates.length; i++) mixed ^= mixState(runStates[i]!, i === 0 ? 0x7feb352d : 0x846ca68b);
    const key = (this.#hashHigh & 0xfffff) * TWO_POW_32 + (mixed >>> 0);
    const found = this.#cache.get(key);
    if (found === undefined) {
      this.#cache.set(key, this.#store(state));
      return true;
    }
    if (typeof found === "number") {
      if (this.#equals(found, state)) return false;
      this.#cache.set(key, [found, this.#store(state)]);
      return true;
    }
    for (const offset of found) if (this.#equals(offset, state)) return false;
    found.push(this.#store(state));
    return true;
  }

  /** Appends an entry to the pool: header, tail words, class counts, run states (two words each). */
  #store(state: number): number {
    const tailLength = Math.max(0, this.#wordsEnd - this.#wordsFullPrefix);
    const runLength = this.#runStates.length;
    const size = ENTRY_HEADER_WORDS + tailLength + this.#classUsed.length + 2 * runLength;
    if (this.#poolUsed + size > this.#pool.length) {
      const grown = new Uint32Array(Math.max(this.#pool.length * 2, this.#poolUsed + size));
      grown.set(this.#pool.subarray(0, this.#poolUsed));
      this.#pool = grown;
    }
    const offset = this.#poolUsed;
    const pool = this.#pool;
    pool[offset] = state >>> 0;
    pool[offset + 1] = Math.floor(state / TWO_POW_32);
    pool[offset + 2] = this.#wordsFullPrefix;
    pool[offset + 3] = tailLength;
    pool[offset + 4] = runLength;
    let cursor = offset + ENTRY_HEADER_WORDS;
    pool.set(this.#words.subarray(this.#wordsFullPrefix, this.#wordsFullPrefix + tailLength), cursor);
    cursor += tailLength;
    pool.set(this.#classUsed, cursor);
    cursor += this.#classUsed.length;
    for (const runState of this.#runStates) {
      pool[cursor++] = runState >>> 0;
      pool[cursor++] = Math.floor(runState / TWO_POW_32);
    }
    this.#poolUsed += size;
    this.#cacheEntries++;
    return offset;
  }

  #equals(offset: number, state: number): boolean {
    const pool = this.#pool;
    const tailLength = Math.max(0, this.#wordsEnd - this.#wordsFullPrefix);
    if (pool[offset] !== state >>> 0 || pool[offset + 1] !== Math.floor(state / TWO_POW_32)) return false;
    if (pool[offset + 2] !== this.#wordsFullPrefix || pool[offset + 3] !== tailLength) return false;
    if (pool[offset + 4] !== this.#runStates.length) return false;
    let cursor = offset + ENTRY_HEADER_WORDS;
    for (let i = 0; i < tailLength; i++) {
      if (pool[cursor++] !== this.#words[this.#wordsFullPrefix + i]) return false;
    }
    for (let c = 0; c < this.#classUsed.length; c++) {
      if (pool[cursor++] !== this.#classUsed[c]) return false;
    }
    for (const runState of this.#runStates) {
      if (pool[cursor++] !== runState >>> 0 || pool[cursor++] !== Math.floor(runState / TWO_POW_32)) return false;
    }
    return true;
  }

  /** Describes the current dead end: the order so far, its state, and every operation that could follow. */
  #stuckPoint(): StuckPoint {
    const p = this.#p;
    const state = { ...decodeState(p, this.#state), ...this.#lastWrittenValue() };
    const linearized = Array.from(this.#stackOp.subarray(0, this.#depth), (op) => p.sources[op]!);
    const blockingEvent = this.#firstReturn();
    const frontierMs = p.eventTimeMs[blockingEvent]!;
    const candidates: StuckCandidate[] = [];
    for (let entry = this.#next[this.#head]!; entry !== blockingEvent; entry = this.#next[entry]!) {
      const op = p.eventOp[entry]!;
      candidates.push({ operation: p.sources[op]!, why: this.#whyNot(op, state) });
    }
    for (let c = 0; c < this.#classUsed.length; c++) {
      const member = p.classStart[c]! + this.#classUsed[c]!;
      if (member >= p.classStart[c + 1]! || p.callMs[p.classMembers[member]!]! > frontierMs) continue;
      candidates.push({ operation: p.sources[p.classMembers[member]!]!, why: this.#whyNot(p.classMembers[member]!, state) });
    }
    return { linearized, state, blocking: p.sources[p.eventOp[blockingEvent]!]!, blockingMs: frontierMs, candidates };
  }

  /** The real value behind VALUE_UNREAD: the one the last write in the order wrote. */
  #lastWrittenValue(): { value: string } | undefined {
    const p = this.#p;
    if (this.#state - Math.floor(this.#state / p.valueRadix) * p.valueRadix !== VALUE_UNREAD) return undefined;
    for (let depth = this.#depth - 1; depth >= 0; depth--) {
      const input = p.sources[this.#stackOp[depth]!]!.input;
      const after = depth + 1 < this.#depth ? this.#stackState[depth + 1]! : this.#state;
      if ((input.op === "put" || input.op === "cas") && after !== this.#stackState[depth]) return { value: input.value };
    }
    return undefined;
  }

  #whyNot(op: number, state: KvState): string {
    if (this.#step(this.#state, op) >= 0) {
      const unknown = this.#p.treatedUnknown[op] === 1 ? "its outcome is unknown, so it " : "it ";
      return `${unknown}could take effect here, but every order continuing from there fails`;
    }
    const output = this.#p.outputs[op];
    assert(output !== null && output !== undefined, "Only an operation with a known output contradicts a state");
    const contradiction = explainContradiction(this.#p.sources[op]!, output, state);
    if (this.#p.treatedUnknown[op] === 0) return contradiction;
    return `its outcome is unknown, but a get read its value, so it returned ${formatOutput(output)}; ${contradiction}`;
  }
}

function decodeState(p: Partition, state: number): KvState {
  const version = Math.floor(state / p.valueRadix);
  const value = p.valueNames[state - version * p.valueRadix];
  assert(value !== undefined, `State ${state} decodes to a known value`);
  return { value, version };
}

/** A hash of an encoded state (below 2^53), salted. */
function mixState(state: number, salt: number): number {
  return mix32((state >>> 0) ^ salt) ^ mix32(Math.floor(state / TWO_POW_32) + salt);
}

/** Murmur3's 32-bit finalizer: a cheap, well-mixed hash of an integer. */
function mix32(input: number): number {
  let x = input | 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x | 0;
}

/** The hash contribution of class `c` having `count` members placed; zero for none. */
function classHash(c: number, count: number, salt: number): number {
  if (count === 0) return 0;
  return mix32(Math.imul(c + 1, 0x9e3779b1) ^ mix32(count ^ salt));
}

// ---------------------------------------------------------------------------------------------------
// Explaining a violation.

function formatState(state: KvState): string {
  if (state.value === null && state.version === 0) return "absent (version 0)";
  return `${JSON.stringify(state.value)} at version ${state.version}`;
}

/** Why `op`'s recorded result cannot follow `state`. */
export function explainContradiction(op: Operation, output: KvOutput, state: KvState): string {
  const held = `the key is ${formatState(state)}`;
  switch (output.op) {
    case "put":
      return `it returned version ${output.version}, so the key was at version ${output.version - 1} before it, but ${held}`;
    case "get":
      return `it read ${formatState(output)}, but ${held}`;
    case "delete":
      return output.deleted ? `it deleted the key, but ${held}` : `it found no key to delete, but ${held}`;
    case "cas": {
      assert(op.input.op === "cas", "A cas output belongs to a cas input");
      const expected = op.input.expectedVersion;
      if (output.succeeded && state.version !== expected) return `it succeeded expecting version ${expected}, but ${held}`;
      if (output.succeeded) return `it succeeded from version ${expected} but reported version ${output.version}`;
      if (state.version === expected) return `it failed although ${held}, the version it expected`;
      return `it failed seeing version ${output.version}, but ${held}`;
    }
  }
}

const PREFIX_TAIL_SHOWN_MAX = 8;
const CANDIDATES_SHOWN_MAX = 12;

function diagnoseViolation(
  key: string,
  keyOps: readonly Operation[],
  finitePlacedMax: number,
  control: SearchControl,
): LinearizabilityViolation {
  const minimal = findMinimalPrefix(key, keyOps, control);
  const target = minimal ?? {
    partition: preparePartition(key, keyOps, Number.POSITIVE_INFINITY),
    finitePlacedMax,
  };
  const outcome = new PartitionSearch(target.partition).run(control, { finitePlaced: target.finitePlacedMax });
  assert(outcome.kind !== "linearizable", `Key ${JSON.stringify(key)} fails the same search twice`);
  const stuck = outcome.kind === "captured" ? outcome.stuck : undefined;
  const minimalPrefix = minimal === null ? undefined : minimalPrefixOf(keyOps, minimal.endMs);
  const reason = violationReason(key, keyOps.length, minimalPrefix, stuck);
  return { ok: false, key, reason, ...(minimalPrefix && { minimalPrefix }), ...(stuck && { stuck }) };
}

interface FailingCut {
  readonly endMs: number;
  readonly partition: Partition;
  readonly finitePlacedMax: number;
}

/**
 * Binary search for the earliest return time at which the key's history, cut there, is already not
 * linearizable. Cutting is monotone: a linearization of a longer history, restricted to the operations
 * called by the cut, explains the cut history (everything after the first dropped operation was still
 * running at the cut, so its result is unknown there). Null when the budget runs out first.
 */
function findMinimalPrefix(key: string, keyOps: readonly Operation[], control: SearchControl): FailingCut | null {
  const endTimes = [...new Set(keyOps.filter((op) => op.outcome === "ok").map((op) => op.returnMs!))].sort((a, b) => a - b);
  assert(endTimes.length > 0, "A violation needs at least one completed operation");
  const check = (endMs: number): FailingCut | "linearizable" | "exhausted" => {
    const partition = preparePartition(key, keyOps, endMs);
    const outcome = new PartitionSearch(partition).run(control, null);
    if (outcome.kind === "violation") return { endMs, partition, finitePlacedMax: outcome.finitePlacedMax };
    assert(outcome.kind !== "captured", "A search without a capture request captures nothing");
    return outcome.kind;
  };
  let low = 0;
  let high = endTimes.length - 1;
  let failing: FailingCut | null = null;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const outcome = check(endTimes[middle]!);
    if (outcome === "exhausted") return null;
    if (outcome === "linearizable") low = middle + 1;
    else {
      high = middle;
      failing = outcome;
    }
  }
  if (failing !== null && failing.endMs === endTimes[low]) return failing;
  const outcome = check(endTimes[low]!);
  if (outcome === "exhausted") return null;
  assert(outcome !== "linearizable", "The full history of a failing key fails when cut at its last return");
  return outcome;
}

function minimalPrefixOf(keyOps: readonly Operation[], endMs: number): MinimalPrefix {
  const operations = keyOps.filter((op) => op.callMs <= endMs).sort((a, b) => a.callMs - b.callMs || a.id - b.id);
  const completing = operations.filter((op) => op.outcome === "ok" && op.returnMs === endMs);
  return { endMs, completing, operations };
}

function violationReason(
  key: string,
  operationCount: number,
  minimalPrefix: MinimalPrefix | undefined,
  stuck: StuckPoint | undefined,
): string {
  const lines = [`Key ${JSON.stringify(key)} is not linearizable: no order of its ${operationCount} operations explains every result`];
  if (minimalPrefix !== undefined) {
    lines.push(
      `Its history is already not linearizable at ${minimalPrefix.endMs} ms ` +
        `(${minimalPrefix.operations.length} operations called by then), when this returned:`,
      ...minimalPrefix.completing.map((op) => `  ${formatOperation(op, { id: true })}`),
    );
  }
  if (stuck === undefined) {
    lines.push("The search budget ran out before the point where the search got stuck was found");
    return lines.join("\n");
  }
  const cut = minimalPrefix === undefined ? "" : ` (cut at ${minimalPrefix.endMs} ms)`;
  lines.push(
    `The longest order found${cut} places ${stuck.linearized.length} operations and leaves the key ${formatState(stuck.state)}` +
      (stuck.linearized.length > PREFIX_TAIL_SHOWN_MAX ? `; its last ${PREFIX_TAIL_SHOWN_MAX}:` : ":"),
    ...stuck.linearized.slice(-PREFIX_TAIL_SHOWN_MAX).map((op) => `  ${formatOperation(op, { id: true })}`),
    `Then ${formatOperation(stuck.blocking, { id: true })} must take effect by ${stuck.blockingMs} ms, ` +
      `but none of the operations that may come next can:`,
    ...stuck.candidates
      .slice(0, CANDIDATES_SHOWN_MAX)
      .map((candidate) => `  ${formatOperation(candidate.operation, { id: true })}: ${candidate.why}`),
  );
  if (stuck.candidates.length > CANDIDATES_SHOWN_MAX) {
    lines.push(`  and ${stuck.candidates.length - CANDIDATES_SHOWN_MAX} more`);
  }
  return lines.join("\n");
}
