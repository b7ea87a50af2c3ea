/**
 * Strict reading of JSON frame payloads, shared by the message codec and the handshake. A payload from
 * a peer is untrusted: it is parsed with a fatal UTF-8 decoder, must be a plain object with exactly the
 * expected keys, and every field is checked for type, integer-ness and range. Each failure is a
 * PayloadError naming the field path ("entries[3].kind") and what was received, which the callers wrap
 * in their own typed errors.
 */

/** A payload that is not what the protocol allows; `problem` is a sentence fragment for a wrapper. */
export class PayloadError extends Error {
  override name = "PayloadError";
  constructor(readonly problem: string) {
    super(problem);
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Parses a payload as UTF-8 JSON; throws PayloadError, never a SyntaxError or a RangeError. */
export function parseJsonPayload(payload: Uint8Array): unknown {
  let text: string;
  try {
    text = UTF8.decode(payload);
  } catch {
    throw new PayloadError("the payload is not valid UTF-8");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PayloadError(`the payload is not valid JSON: ${(error as Error).message}`);
  }
}

export interface IntegerBounds {
  readonly min: number;
  readonly max?: number;
}

/** Reads the fields of one JSON object; `path` prefixes every field name in errors. */
export class ObjectReader {
  readonly path: string;
  readonly #fields: Record<string, unknown>;

  constructor(value: unknown, path: string, what = "a JSON object") {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new PayloadError(`${path === "" ? "the payload" : `field ${quote(path)}`} must be ${what}: received ${describeValue(value)}`);
    }
    this.path = path;
    this.#fields = value as Record<string, unknown>;
  }

  /** Requires exactly these keys: a missing key or an unknown one is an error. */
  expectKeys(keys: readonly string[]): void {
    for (const key of keys) {
      if (!Object.hasOwn(this.#fields, key)) throw new PayloadError(`field ${quote(this.#child(key))} is missing`);
    }
    const allowed = new Set(keys);
    for (const key of Object.keys(this.#fields)) {
      if (!allowed.has(key)) throw new PayloadError(`field ${quote(this.#child(key))} is not allowed here`);
    }
  }

  has(key: string): boolean {
    return Object.hasOwn(this.#fields, key);
  }

  /** The object's own keys, in order. */
  keys(): string[] {
    return Object.keys(this.#fields);
  }

  raw(key: string): unknown {
    return Object.hasOwn(this.#fields, key) ? this.#fields[key] : undefined;
  }

  integer(key: string, bounds: IntegerBounds): number {
    const value = this.raw(key);
    const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < bounds.min || value > max) {
      const range = bounds.max === undefined ? `an integer >= ${bounds.min}` : `an integer from ${bounds.min} to ${max}`;
      this.#reject(key, range, value);
    }
    return value;
  }

  boolean(key: string): boolean {
    const value = this.raw(key);
    if (typeof value !== "boolean") this.#reject(key, "true or false", value);
    return value;
  }

  string(key: string, lengthMax: number = Number.MAX_SAFE_INTEGER): string {
    const value = this.raw(key);
    if (typeof value !== "string" || value.length > lengthMax) {
      this.#reject(key, lengthMax === Number.MAX_SAFE_INTEGER ? "a string" : `a string of at most ${lengthMax} characters`, value);
    }
    return value;
  }

  /** A string from a fixed list. */
  literal<T extends string>(key: string, values: readonly T[]): T {
    const value = this.raw(key);
    if (typeof value !== "string" || !(values as readonly string[]).includes(value)) {
      this.#reject(key, `one of ${values.map((item) => quote(item)).join(", ")}`, value);
    }
    return value as T;
  }

  /** A string of lowercase hex digits with exactly `length` characters. */
  hex(key: string, length: number): string {
    const value = this.raw(key);
    if (typeof value !== "string" || value.length !== length || !/^[0-9a-f]*$/.test(value)) {
      this.#reject(key, `${length} lowercase hex digits`, value);
    }
    return value;
  }

  array(key: string, itemsMax: number): readonly unknown[] {
    const value = this.raw(key);
    if (!Array.isArray(value) || value.length > itemsMax) {
      this.#reject(key, itemsMax === Number.MAX_SAFE_INTEGER ? "an array" : `an array of at most ${itemsMax} items`, value);
    }
    return value as readonly unknown[];
  }

  object(key: string): ObjectReader {
    return new ObjectReader(this.raw(key), this.#child(key));
  }

  /** A reader for item `index` of an array field read with `array(key)`. */
  item(key: string, items: readonly unknown[], index: number): ObjectReader {
    return new ObjectReader(items[index], `${this.#child(key)}[${index}]`);
  }

  /** Rejects a field that passed its type check but breaks a rule between fields. */
  fail(key: string, rule: string): never {
    throw new PayloadError(`field ${quote(this.#child(key))} ${rule}`);
  }

  #child(key: string): string {
    return this.path === "" ? key : `${this.path}.${key}`;
  }

  #reject(key: string, expected: string, value: unknown): never {
    if (!Object.hasOwn(this.#fields, key)) throw new PayloadError(`field ${quote(this.#child(key))} is missing`);
    throw new PayloadError(`field ${quote(this.#child(key))} must be ${expected}: received ${describeValue(value)}`);
  }
}

/** A short, safe rendering of any parsed JSON value for an error message. */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  if (typeof value === "object" && value !== null) return "an object";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function quote(text: string): string {
  const json = JSON.stringify(text);
  return json.length > 80 ? `${json.slice(0, 76)}..."` : json;
}
