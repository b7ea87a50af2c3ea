/**
 * etcd's JSON gateway encoding of the KV service: decoding requests (base64 bytes, int64 as strings or
 * numbers, enums by name or number, snake_case field names with their lowerCamelCase aliases as
 * protobuf's JSON mapping allows) and encoding responses as etcd's gateway does (snake_case names,
 * int64 as decimal strings, bytes in base64, fields at their default value left out).
 *
 * Decoding is strict where etcd's gateway is lax: an unknown field, a wrongly typed value or bad base64
 * is a 400 that names the field, so a typo such as "rangeend" does not silently become a one-key read.
 * Keys and values decode to byte strings (src/kv/bytes.ts), whatever their bytes. Features pgraft
 * does not have (ignore_value, ignore_lease) are refused with 501, never ignored.
 */
import { InvalidRequestError } from "../errors.ts";
import { UnimplementedError } from "./errors.ts";
import { checkTxnWrites } from "./kv-model.ts";
import {
  COMPARE_RESULTS,
  COMPARE_TARGETS,
  SORT_ORDERS,
  SORT_TARGETS,
  type Compare,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type DeleteRangeResult,
  type KeyValue,
  type PutRequest,
  type PutResponse,
  type PutResult,
  type RangeRequest,
  type RangeResponse,
  type RangeResult,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
  type TxnResult,
} from "./kv-types.ts";

/** etcd's default --max-txn-ops. */
export const TXN_OPS_MAX = 128;
/** Nested transactions deeper than this are refused (bounded recursion). */
export const TXN_DEPTH_MAX = 8;

type JsonObject = Record<string, unknown>;

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function camelCase(name: string): string {
  return name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads the fields of one JSON message, refusing unknown ones. `what` names it in errors. */
export class Fields {
  readonly #object: JsonObject;
  readonly #what: string;

  constructor(value: unknown, what: string, names: readonly string[]) {
    if (!isJsonObject(value)) {
      throw new InvalidRequestError(`Cannot decode the ${what}: expected a JSON object, received ${describe(value)}`);
    }
    this.#object = value;
    this.#what = what;
    const known = new Map<string, string>();
    for (const name of names) {
      known.set(name, name);
      known.set(camelCase(name), name);
    }
    for (const field of Object.keys(value)) {
      if (known.has(field)) continue;
      let nearest: { name: string; distance: number } | undefined;
      for (const name of names) {
        const distance = Math.min(editDistance(field.toLowerCase(), name), editDistance(field.toLowerCase(), camelCase(name).toLowerCase()));
        if (distance <= 3 && (nearest === undefined || distance < nearest.distance)) nearest = { name, distance };
      }
      const hint = nearest === undefined ? "" : `; did you mean "${nearest.name}"?`;
      throw new InvalidRequestError(
        `Cannot decode the ${what}: unknown field "${field}"${hint}; the known fields are ${names.map((name) => `"${name}"`).join(", ")}`,
      );
    }
  }

  #raw(name: string): unknown {
    const value = this.#object[name] ?? this.#object[camelCase(name)];
    return value === null ? undefined : value;
  }

  has(name: string): boolean {
    return this.#raw(name) !== undefined;
  }

  #fail(name: string, expected: string, value: unknown): never {
    throw new InvalidRequestError(`Cannot decode the ${this.#what}: "${name}" must be ${expected}, received ${describe(value)}`);
  }

  bytes(name: string): Buffer {
    const value = this.#raw(name);
    if (value === undefined) return Buffer.alloc(0);
    if (typeof value !== "string" || !BASE64.test(value) || value.replace(/=+$/, "").length % 4 === 1) {
      this.#fail(name, "a base64 string (etcd's JSON gateway sends keys and values in base64)", value);
    }
    return Buffer.from(value, "base64");
  }

  /** A key or value as a byte string (one char per byte, src/kv/bytes.ts): any bytes are accepted. */
  byteString(name: string): string {
    return this.bytes(name).toString("latin1");
  }

  integer(name: string, minimum = 0): number {
    const value = this.#raw(name);
    if (value === undefined) return 0;
    const parsed = typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed)) this.#fail(name, "an integer (a JSON number or a decimal string, at most 2^53-1)", value);
    if (parsed < minimum) this.#fail(name, `an integer >= ${minimum}`, value);
    return parsed;
  }

  boolean(name: string): boolean {
    const value = this.#raw(name);
    if (value === undefined) return false;
    if (typeof value !== "boolean") this.#fail(name, "true or false", value);
    return value;
  }

  enumeration<T extends string>(name: string, values: readonly T[]): T {
    const value = this.#raw(name);
    if (value === undefined) return values[0]!;
    if (typeof value === "string" && (values as readonly string[]).includes(value)) return value as T;
    if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value < values.length) return values[value]!;
    return this.#fail(name, `one of ${values.map((v, i) => `"${v}" (${i})`).join(", ")}`, value);
  }

  array(name: string): unknown[] {
    const value = this.#raw(name);
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.#fail(name, "an array", value);
    return value;
  }

  message(name: string): unknown {
    return this.#raw(name);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function requireKey(key: string, what: string): string {
  if (key.length === 0) {
    throw new InvalidRequestError(`Cannot decode the ${what}: "key" is missing or empty; send a non-empty key in base64, such as "Zm9v" for foo`);
  }
  return key;
}

const RANGE_FIELDS = [
  "key",
  "range_end",
  "limit",
  "revision",
  "sort_order",
  "sort_target",
  "serializable",
  "keys_only",
  "count_only",
  "min_mod_revision",
  "max_mod_revision",
  "min_create_revision",
  "max_create_revision",
] as const;
const PUT_FIELDS = ["key", "value", "lease", "prev_kv", "ignore_value", "ignore_lease"] as const;
const DELETE_RANGE_FIELDS = ["key", "range_end", "prev_kv"] as const;
const TXN_FIELDS = ["compare", "success", "failure"] as const;
const COMPARE_FIELDS = ["result", "target", "key", "range_end", "version", "create_revision", "mod_revision", "value", "lease"] as const;
const REQUEST_OP_FIELDS = ["request_range", "request_put", "request_delete_range", "request_txn"] as const;

export function decodeRangeRequest(json: unknown, what = "range request"): RangeRequest {
  const fields = new Fields(json, what, RANGE_FIELDS);
  return {
    key: requireKey(fields.byteString("key"), what),
    rangeEnd: fields.bytes("range_end"),
    limit: fields.integer("limit"),
    revision: fields.integer("revision", Number.MIN_SAFE_INTEGER),
    sortOrder: fields.enumeration("sort_order", SORT_ORDERS),
    sortTarget: fields.enumeration("sort_target", SORT_TARGETS),
    serializable: fields.boolean("serializable"),
    keysOnly: fields.boolean("keys_only"),
    countOnly: fields.boolean("count_only"),
    minModRevision: fields.integer("min_mod_revision"),
    maxModRevision: fields.integer("max_mod_revision"),
    minCreateRevision: fields.integer("min_create_revision"),
    maxCreateRevision: fields.integer("max_create_revision"),
  };
}

export function decodePutRequest(json: unknown, what = "put request"): PutRequest {
  const fields = new Fields(json, what, PUT_FIELDS);
  const lease = fields.integer("lease");
  const request = { key: requireKey(fields.byteString("key"), what), value: fields.byteString("value"), prevKv: fields.boolean("prev_kv"), ...(lease !== 0 ? { lease } : {}) };
  if (fields.boolean("ignore_value")) {
    throw new UnimplementedError("ignore_value", `Cannot put with "ignore_value": pgraft does not support it; send the value to write`);
  }
  if (fields.boolean("ignore_lease")) {
    throw new UnimplementedError("ignore_lease", `Cannot put with "ignore_lease": pgraft does not support it yet; send the lease to keep`);
  }
  return request;
}

export function decodeDeleteRangeRequest(json: unknown, what = "delete range request"): DeleteRangeRequest {
  const fields = new Fields(json, what, DELETE_RANGE_FIELDS);
  return { key: requireKey(fields.byteString("key"), what), rangeEnd: fields.bytes("range_end"), prevKv: fields.boolean("prev_kv") };
}

export function decodeTxnRequest(json: unknown): TxnRequest {
  const request = decodeTxn(json, "txn request", 1);
  const problem = checkTxnWrites(request);
  if (problem !== undefined) throw new InvalidRequestError(problem);
  return request;
}

function decodeTxn(json: unknown, what: string, depth: number): TxnRequest {
  if (depth > TXN_DEPTH_MAX) {
    throw new InvalidRequestError(`Cannot decode the ${what}: transactions nest deeper than ${TXN_DEPTH_MAX} levels; flatten it`);
  }
  const fields = new Fields(json, what, TXN_FIELDS);
  const list = (name: "compare" | "success" | "failure"): unknown[] => {
    const items = fields.array(name);
    if (items.length > TXN_OPS_MAX) {
      throw new InvalidRequestError(`Cannot decode the ${what}: "${name}" has ${items.length} items; at most ${TXN_OPS_MAX} are allowed`);
    }
    return items;
  };
  return {
    compare: list("compare").map((item, i) => decodeCompare(item, `${what}'s compare[${i}]`)),
    success: list("success").map((item, i) => decodeRequestOp(item, `${what}'s success[${i}]`, depth)),
    failure: list("failure").map((item, i) => decodeRequestOp(item, `${what}'s failure[${i}]`, depth)),
  };
}

const COMPARE_OPERAND_FIELDS = { VERSION: "version", CREATE: "create_revision", MOD: "mod_revision", VALUE: "value", LEASE: "lease" } as const;

function decodeCompare(json: unknown, what: string): Compare {
  const fields = new Fields(json, what, COMPARE_FIELDS);
  const target = fields.enumeration("target", COMPARE_TARGETS);
  const result = fields.enumeration("result", COMPARE_RESULTS);
  const key = requireKey(fields.byteString("key"), what);
  const rangeEnd = fields.bytes("range_end");
  const operandField = COMPARE_OPERAND_FIELDS[target];
  for (const [otherTarget, other] of Object.entries(COMPARE_OPERAND_FIELDS)) {
    if (other === operandField || !fields.has(other)) continue;
    const isDefault = other === "value" ? fields.bytes(other).length === 0 : fields.integer(other, Number.MIN_SAFE_INTEGER) === 0;
    if (!isDefault) {
      throw new InvalidRequestError(
        `Cannot decode the ${what}: "target" is ${target} but the operand is in "${other}" (the field for target ${otherTarget}); put it in "${operandField}"`,
      );
    }
  }
  if (target === "VALUE") return { target, result, key, rangeEnd, operand: fields.bytes("value") };
  return { target, result, key, rangeEnd, operand: fields.integer(operandField, Number.MIN_SAFE_INTEGER) };
}

function decodeRequestOp(json: unknown, what: string, depth: number): RequestOp {
  const fields = new Fields(json, what, REQUEST_OP_FIELDS);
  const present = REQUEST_OP_FIELDS.filter((name) => fields.has(name));
  if (present.length !== 1) {
    throw new InvalidRequestError(
      `Cannot decode the ${what}: it must hold exactly one of "request_range", "request_put", "request_delete_range", "request_txn"; it holds ${present.length === 0 ? "none" : present.map((name) => `"${name}"`).join(" and ")}`,
    );
  }
  const name = present[0]!;
  const inner = fields.message(name);
  switch (name) {
    case "request_range":
      return { type: "range", request: decodeRangeRequest(inner, `${what}'s request_range`) };
    case "request_put":
      return { type: "put", request: decodePutRequest(inner, `${what}'s request_put`) };
    case "request_delete_range":
      return { type: "delete_range", request: decodeDeleteRangeRequest(inner, `${what}'s request_delete_range`) };
    case "request_txn":
      return { type: "txn", request: decodeTxn(inner, `${what}'s request_txn`, depth + 1) };
  }
}

// ---------------------------------------------------------------------------------------------------
// Responses

function base64(text: string): string {
  return Buffer.from(text, "latin1").toString("base64");
}

export function encodeHeader(header: ResponseHeader): JsonObject {
  return {
    cluster_id: header.clusterId,
    member_id: header.memberId,
    revision: String(header.revision),
    raft_term: String(header.raftTerm),
  };
}

export function encodeKeyValue(kv: KeyValue): JsonObject {
  const json: JsonObject = {
    key: base64(kv.key),
    create_revision: String(kv.createRevision),
    mod_revision: String(kv.modRevision),
    version: String(kv.version),
  };
  if (kv.value.length > 0) json.value = base64(kv.value);
  if (kv.lease !== 0) json.lease = String(kv.lease);
  return json;
}

function encodeRangeResult(result: RangeResult, json: JsonObject): JsonObject {
  if (result.kvs.length > 0) json.kvs = result.kvs.map(encodeKeyValue);
  if (result.more) json.more = true;
  if (result.count > 0) json.count = String(result.count);
  return json;
}

function encodePutResult(result: PutResult, json: JsonObject): JsonObject {
  if (result.prevKv !== undefined) json.prev_kv = encodeKeyValue(result.prevKv);
  return json;
}

function encodeDeleteRangeResult(result: DeleteRangeResult, json: JsonObject): JsonObject {
  if (result.deleted > 0) json.deleted = String(result.deleted);
  if (result.prevKvs.length > 0) json.prev_kvs = result.prevKvs.map(encodeKeyValue);
  return json;
}

function encodeTxnResult(result: TxnResult, json: JsonObject, revision: number): JsonObject {
  if (result.succeeded) json.succeeded = true;
  if (result.responses.length > 0) json.responses = result.responses.map((op) => encodeResponseOp(op, revision));
  return json;
}

/** Responses inside a transaction carry a header with only the revision, as etcd's do. */
function encodeResponseOp(op: ResponseOp, revision: number): JsonObject {
  const header = (): JsonObject => ({ header: { revision: String(revision) } });
  switch (op.type) {
    case "range":
      return { response_range: encodeRangeResult(op.result, header()) };
    case "put":
      return { response_put: encodePutResult(op.result, header()) };
    case "delete_range":
      return { response_delete_range: encodeDeleteRangeResult(op.result, header()) };
    case "txn":
      return { response_txn: encodeTxnResult(op.result, header(), revision) };
  }
}

export function encodeRangeResponse(response: RangeResponse): JsonObject {
  return encodeRangeResult(response, { header: encodeHeader(response.header) });
}

export function encodePutResponse(response: PutResponse): JsonObject {
  return encodePutResult(response, { header: encodeHeader(response.header) });
}

export function encodeDeleteRangeResponse(response: DeleteRangeResponse): JsonObject {
  return encodeDeleteRangeResult(response, { header: encodeHeader(response.header) });
}

export function encodeTxnResponse(response: TxnResponse): JsonObject {
  return encodeTxnResult(response, { header: encodeHeader(response.header) }, response.header.revision);
}
