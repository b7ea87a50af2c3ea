/**
 * Assertions for our own mistakes (TigerStyle): a broken invariant throws an AssertionError at once, so
 * the simulator turns a silent correctness bug into a crash with a seed. Bad input from the outside world
 * never goes through here: it gets a typed error that says what was wrong and what to do.
 */
export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a switch branch that the type system proves unreachable. */
export function unreachable(value: never, what: string): never {
  throw new AssertionError(`Unreachable ${what}: ${JSON.stringify(value)}`);
}
