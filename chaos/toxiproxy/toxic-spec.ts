/**
 * What a toxic is, as the API sees it: its JSON (`{attributes, name, type, stream, toxicity}`, the real
 * ToxicWrapper's field order), the attributes of each type with their units and bounds, and the parsing
 * of create and update bodies with the real server's defaults (stream `downstream`, toxicity 1.0, name
 * `<type>_<stream>`; an update merges attributes and keeps an omitted toxicity).
 *
 * Bounds are ours. The real server takes any int64 and misbehaves on some (a negative latency sends at
 * once, a slicer average_size of 0 recurses forever); here a value outside its range, a fraction, an
 * unknown attribute or a toxicity outside [0, 1] is a 400 that names the attribute and what is allowed.
 */
import { assert } from "../../src/assert.ts";
import { badRequestBody, invalidStream, invalidToxicType } from "./api-error.ts";

export const TOXIC_TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop"] as const;
export type ToxicType = (typeof TOXIC_TYPES)[number];

export const STREAMS = ["upstream", "downstream"] as const;
/** `upstream` is client to server, `downstream` server to client. */
export type Stream = (typeof STREAMS)[number];

/** Names of proxies and toxics travel in URLs and logs. */
export const NAME_LENGTH_MAX = 255;
/** One hour: longer than any fault a test should wait for. */
export const DURATION_MS_MAX = 3_600_000;
/** 10 GB/s: above what a proxy in one Node process can move. */
export const RATE_KB_PER_S_MAX = 10_000_000;
/** One slice of at most 1 MiB; bigger slices than a socket read are no slicing at all. */
export const SLICE_BYTES_MAX = 1_048_576;
/** One minute between slices. */
export const SLICE_DELAY_US_MAX = 60_000_000;

interface AttributeDefinition {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly unit: string;
}

function attribute(name: string, min: number, max: number, unit: string): AttributeDefinition {
  return { name, min, max, unit };
}

/** Per type, its attributes in the real server's JSON order; every attribute defaults to 0. */
export const TOXIC_ATTRIBUTES: Readonly<Record<ToxicType, readonly AttributeDefinition[]>> = {
  latency: [attribute("latency", 0, DURATION_MS_MAX, "ms"), attribute("jitter", 0, DURATION_MS_MAX, "ms")],
  bandwidth: [attribute("rate", 0, RATE_KB_PER_S_MAX, "KB/s")],
  slow_close: [attribute("delay", 0, DURATION_MS_MAX, "ms")],
  timeout: [attribute("timeout", 0, DURATION_MS_MAX, "ms")],
  reset_peer: [attribute("timeout", 0, DURATION_MS_MAX, "ms")],
  slicer: [attribute("average_size", 1, SLICE_BYTES_MAX, "bytes"), attribute("size_variation", 0, SLICE_BYTES_MAX - 1, "bytes"), attribute("delay", 0, SLICE_DELAY_US_MAX, "µs")],
  limit_data: [attribute("bytes", 0, Number.MAX_SAFE_INTEGER, "bytes")],
  noop: [],
};

export type ToxicAttributes = Readonly<Record<string, number>>;

export interface ToxicSpec {
  readonly name: string;
  readonly type: ToxicType;
  readonly stream: Stream;
  /** The share of connections the toxic applies to, decided once per connection. */
  readonly toxicity: number;
  readonly attributes: ToxicAttributes;
}

/** The JSON the API returns, in the real server's field order. */
export function toxicJson(spec: ToxicSpec): Record<string, unknown> {
  return { attributes: { ...spec.attributes }, name: spec.name, type: spec.type, stream: spec.stream, toxicity: spec.toxicity };
}

/** Reads one attribute of a parsed spec; every attribute of its type is always present. */
export function attributeOf(spec: ToxicSpec, name: string): number {
  const value = spec.attributes[name];
  assert(value !== undefined, `attributeOf(): toxic ${spec.name} of type ${spec.type} has no attribute ${name}`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isToxicType(value: unknown): value is ToxicType {
  return typeof value === "string" && (TOXIC_TYPES as readonly string[]).includes(value);
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badRequestBody(`${field} must be a string, got ${typeof value}`);
  return value;
}

function parseToxicity(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw badRequestBody(`toxicity must be a number from 0 to 1 (the share of connections the toxic applies to), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Merges `input` (the body's `attributes`) into `base`, checking names, integers and ranges. */
function mergeAttributes(type: ToxicType, base: ToxicAttributes, input: unknown): ToxicAttributes {
  const definitions = TOXIC_ATTRIBUTES[type];
  const merged: Record<string, number> = {};
  for (const definition of definitions) merged[definition.name] = base[definition.name] ?? 0;
  if (input === undefined || input === null) return checkAttributes(type, merged);
  if (!isObject(input)) throw badRequestBody(`attributes must be an object, got ${Array.isArray(input) ? "an array" : typeof input}`);
  for (const [name, value] of Object.entries(input)) {
    const definition = definitions.find((candidate) => candidate.name === name);
    if (definition === undefined) {
      const known = definitions.length === 0 ? "none" : definitions.map((candidate) => candidate.name).join(", ");
      throw badRequestBody(`a ${type} toxic has no attribute ${JSON.stringify(name)}: its attributes are ${known}`);
    }
    if (value === null) continue;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < definition.min || value > definition.max) {
      throw badRequestBody(`${type} attribute ${name} must be an integer from ${definition.min} to ${definition.max} (${definition.unit}), got ${JSON.stringify(value)}`);
    }
    merged[name] = value;
  }
  return checkAttributes(type, merged);
}

/** Checks ranges (defaults included) and the rules that tie attributes together. */
function checkAttributes(type: ToxicType, attributes: Record<string, number>): ToxicAttributes {
  for (const definition of TOXIC_ATTRIBUTES[type]) {
    const value = attributes[definition.name]!;
    if (value < definition.min) {
      throw badRequestBody(`${type} attribute ${definition.name} must be from ${definition.min} to ${definition.max} (${definition.unit}), got ${value}; set it explicitly`);
    }
  }
  if (type === "slicer" && attributes["size_variation"]! >= attributes["average_size"]!) {
    throw badRequestBody(
      `slicer attribute size_variation must be smaller than average_size, got size_variation ${attributes["size_variation"]} and average_size ${attributes["average_size"]}`,
    );
  }
  return Object.freeze(attributes);
}

/** Parses a POST /proxies/{proxy}/toxics body, checking in the real server's order. */
export function parseToxicCreate(body: unknown): ToxicSpec {
  if (!isObject(body)) throw badRequestBody(`a toxic must be a JSON object, got ${Array.isArray(body) ? "an array" : typeof body}`);
  const streamText = optionalString(body, "stream") ?? "downstream";
  if (!(STREAMS as readonly string[]).includes(streamText)) throw invalidStream(streamText);
  const stream = streamText as Stream;
  const typeText = optionalString(body, "type");
  const nameText = optionalString(body, "name");
  const name = nameText === undefined || nameText === "" ? `${typeText ?? ""}_${stream}` : nameText;
  if (!isToxicType(typeText)) throw invalidToxicType(typeText, TOXIC_TYPES);
  if (name.length > NAME_LENGTH_MAX) throw badRequestBody(`name must be at most ${NAME_LENGTH_MAX} characters, got ${name.length}`);
  const toxicity = parseToxicity(body["toxicity"]) ?? 1;
  const attributes = mergeAttributes(typeText, {}, body["attributes"]);
  return { name, type: typeText, stream, toxicity, attributes };
}

/** Parses a POST|PATCH /proxies/{proxy}/toxics/{toxic} body: attributes merge, the rest is kept. */
export function parseToxicUpdate(existing: ToxicSpec, body: unknown): ToxicSpec {
  if (!isObject(body)) throw badRequestBody(`a toxic update must be a JSON object, got ${Array.isArray(body) ? "an array" : typeof body}`);
  const toxicity = parseToxicity(body["toxicity"]) ?? existing.toxicity;
  const attributes = mergeAttributes(existing.type, existing.attributes, body["attributes"]);
  return { ...existing, toxicity, attributes };
}
