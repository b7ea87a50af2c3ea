/**
 * Value parsers for pgraft settings, following PostgreSQL's own rules so a value means in pgraft what it
 * would mean to PostgreSQL: durations with GUC time units, booleans as parse_bool() reads them, whole
 * numbers, host:port addresses and the `name=host:port,...` member list of pgraft.initial_cluster.
 *
 * Each parser returns a result instead of throwing; a failure carries the part of the message after
 * `Invalid value for "pgraft.x" (source): `, so the caller adds the setting name and source.
 */
import { isIP } from "node:net";

export type ValueResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problem: string };

/** Milliseconds per PostgreSQL time unit. Unit names are case-sensitive, as in PostgreSQL. */
export const DURATION_UNITS_MS: Readonly<Record<string, number>> = Object.freeze({
  us: 0.001,
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
});

const DURATION_HINT = 'use a number of milliseconds or a value like "100ms" or "1s"';
const DURATION_PATTERN = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$/;

function ok<T>(value: T): ValueResult<T> {
  return { ok: true, value };
}

function failure<T>(problem: string): ValueResult<T> {
  return { ok: false, problem };
}

/** Quotes a value for a message: "fast". */
export function quoteValue(text: string): string {
  return JSON.stringify(text);
}

/**
 * A duration in whole milliseconds: `1000` (a bare number is milliseconds), `1000ms`, `1s`, `2 s`, `1min`,
 * `1.5s`, with PostgreSQL's units us, ms, s, min, h, d. Fractions are rounded to the nearest millisecond,
 * as PostgreSQL rounds to the setting's base unit.
 */
export function parseDurationMs(text: string): ValueResult<number> {
  const match = DURATION_PATTERN.exec(text);
  if (match === null) return failure(`${quoteValue(text)} is not a duration; ${DURATION_HINT}`);
  const unit = match[2]!;
  const unitMs = unit === "" ? 1 : DURATION_UNITS_MS[unit];
  if (unitMs === undefined) {
    const units = Object.keys(DURATION_UNITS_MS).join(", ");
    return failure(
      `${quoteValue(text)} is not a duration: unit ${quoteValue(unit)} is unknown; ` +
        `valid units are ${units} (case-sensitive): ${DURATION_HINT}`,
    );
  }
  const valueMs = Math.round(Number(match[1]) * unitMs);
  if (!Number.isSafeInteger(valueMs)) return failure(`${quoteValue(text)} is too large for a duration`);
  return ok(valueMs);
}

/** A whole number, optionally signed: `100`, `+5`, `-1`. Fractions are refused rather than rounded. */
export function parseInteger(text: string): ValueResult<number> {
  if (!/^\s*[+-]?\d+\s*$/.test(text)) {
    return failure(`${quoteValue(text)} is not a whole number; use digits only, for example 100`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) return failure(`${quoteValue(text)} is too large`);
  return ok(value);
}

/**
 * A boolean as PostgreSQL's parse_bool() reads it, case-insensitively: on, off, true, false, yes, no,
 * 1, 0, and any unambiguous prefix of true, false, yes, no ("t", "f", "y", "n") or "of" for off.
 */
export function parseBoolean(text: string): ValueResult<boolean> {
  const word = text.trim().toLowerCase();
  if (word.length > 0) {
    if ("true".startsWith(word) || "yes".startsWith(word) || word === "on" || word === "1") return ok(true);
    if ("false".startsWith(word) || "no".startsWith(word) || word === "off" || word === "of") return ok(false);
    if (word === "0") return ok(false);
  }
  return failure(`${quoteValue(text)} is not a boolean; use on or off (also true/false, yes/no, 1/0)`);
}

/** One of `allowed`, compared case-insensitively as PostgreSQL compares enum settings. */
export function parseEnum<T extends string>(text: string, allowed: readonly T[]): ValueResult<T> {
  const word = text.trim().toLowerCase();
  const found = allowed.find((candidate) => candidate === word);
  if (found !== undefined) return ok(found);
  return failure(`${quoteValue(text)} is not one of ${allowed.join(", ")}; use one of them`);
}

export interface HostAndPort {
  /** A host name or IP address; IPv6 addresses without their brackets. */
  readonly host: string;
  readonly port: number;
}

const HOST_NAME_PATTERN = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$/;
const ADDRESS_EXAMPLE = '"127.0.0.1:7001"';

/** Whether `host` is an IP address or a syntactically valid host name. */
export function isValidHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  if (/^[\d.]+$/.test(host)) return false; // Looks like IPv4 but is not one ("10.0.0.300").
  return host.length <= 253 && HOST_NAME_PATTERN.test(host);
}

/** `host:port`, with IPv6 hosts in brackets (`[::1]:7001`) and a port from 1 to 65535. */
export function parseHostAndPort(text: string): ValueResult<HostAndPort> {
  const address = text.trim();
  if (address === "") return failure(`the address is empty; use host:port, for example ${ADDRESS_EXAMPLE}`);
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(address);
  let host: string;
  let portText: string | undefined;
  if (bracketed !== null) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (isIP(host) !== 6) return failure(`${quoteValue(host)} in ${quoteValue(address)} is not an IPv6 address`);
  } else {
    const colon = address.lastIndexOf(":");
    if (colon !== address.indexOf(":")) {
      return failure(`${quoteValue(address)} has several ":"; write IPv6 addresses in brackets, for example "[::1]:7001"`);
    }
    host = colon === -1 ? address : address.slice(0, colon);
    portText = colon === -1 ? undefined : address.slice(colon + 1);
    if (!isValidHost(host)) {
      return failure(`${quoteValue(host)} in ${quoteValue(address)} is not a valid host name or IP address`);
    }
  }
  if (portText === undefined) {
    return failure(`${quoteValue(address)} has no port; use host:port, for example ${ADDRESS_EXAMPLE}`);
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) {
    return failure(`port ${quoteValue(portText)} in ${quoteValue(address)} is out of range; use a port from 1 to 65535`);
  }
  return ok({ host, port });
}

/** Renders an address back as `host:port`, bracketing IPv6 hosts. */
export function formatHostAndPort(address: HostAndPort): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Names of clusters and nodes: a letter or digit, then letters, digits, "_", "." or "-"; at most 63. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function parseName(text: string): ValueResult<string> {
  if (NAME_PATTERN.test(text)) return ok(text);
  return failure(
    `${quoteValue(text)} is not a valid name; use 1 to 63 letters, digits, "_", "." or "-", ` +
      `starting with a letter or digit, for example "node-1"`,
  );
}

export interface MemberAddress {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export type MemberProblem = { readonly code: "invalid_value" | "duplicate_member"; readonly problem: string };

const CLUSTER_EXAMPLE = "'n1=10.0.0.1:7001,n2=10.0.0.2:7001,n3=10.0.0.3:7001'";

/**
 * `name1=host:port,name2=host:port,...` in order; the 1-based position of a member is its default node
 * id. Every malformed member and every duplicate name or address is reported, not only the first.
 */
export function parseInitialCluster(text: string): { members: MemberAddress[]; problems: MemberProblem[] } {
  const members: MemberAddress[] = [];
  const problems: MemberProblem[] = [];
  const items = text.split(",");
  if (text.trim() === "") {
    problems.push({ code: "invalid_value", problem: `the member list is empty; use name=host:port,..., for example ${CLUSTER_EXAMPLE}` });
    return { members, problems };
  }
  items.forEach((rawItem, index) => {
    const item = rawItem.trim();
    const position = `member ${index + 1}`;
    if (item === "") {
      problems.push({ code: "invalid_value", problem: `${position} is empty; remove the stray ","` });
      return;
    }
    const equals = item.indexOf("=");
    if (equals === -1) {
      problems.push({ code: "invalid_value", problem: `${position} ${quoteValue(item)} has no name; write name=host:port, for example ${CLUSTER_EXAMPLE}` });
      return;
    }
    const name = parseName(item.slice(0, equals).trim());
    const address = parseHostAndPort(item.slice(equals + 1));
    if (!name.ok) problems.push({ code: "invalid_value", problem: `${position}: ${name.problem}` });
    if (!address.ok) problems.push({ code: "invalid_value", problem: `${position} ${quoteValue(item)}: ${address.problem}` });
    if (name.ok && address.ok) members.push({ name: name.value, host: address.value.host, port: address.value.port });
  });
  problems.push(...findDuplicateMembers(members));
  return { members, problems };
}

function findDuplicateMembers(members: readonly MemberAddress[]): MemberProblem[] {
  const problems: MemberProblem[] = [];
  const byName = new Map<string, number>();
  const byAddress = new Map<string, string>();
  for (const member of members) {
    const address = formatHostAndPort(member);
    const count = (byName.get(member.name) ?? 0) + 1;
    byName.set(member.name, count);
    if (count === 2) {
      problems.push({ code: "duplicate_member", problem: `the name ${quoteValue(member.name)} appears more than once; give every member a unique name` });
    }
    const holder = byAddress.get(address);
    if (holder !== undefined && holder !== member.name) {
      problems.push({
        code: "duplicate_member",
        problem: `${quoteValue(holder)} and ${quoteValue(member.name)} share the address ${quoteValue(address)}; give every member its own host:port`,
      });
    }
    if (holder === undefined) byAddress.set(address, member.name);
  }
  return problems;
}

/**
 * The edit distance between two strings, counting an adjacent transposition as one edit (optimal string
 * alignment), so "timout" is one edit from "timeout" and "heatrbeat" one from "heartbeat".
 */
export function editDistance(source: string, target: string): number {
  const rows = source.length + 1;
  const columns = target.length + 1;
  const distances: number[][] = Array.from({ length: rows }, () => new Array<number>(columns).fill(0));
  for (let row = 0; row < rows; row++) distances[row]![0] = row;
  for (let column = 0; column < columns; column++) distances[0]![column] = column;
  for (let row = 1; row < rows; row++) {
    for (let column = 1; column < columns; column++) {
      const cost = source[row - 1] === target[column - 1] ? 0 : 1;
      let best = Math.min(
        distances[row - 1]![column]! + 1,
        distances[row]![column - 1]! + 1,
        distances[row - 1]![column - 1]! + cost,
      );
      const transposed =
        row > 1 && column > 1 && source[row - 1] === target[column - 2] && source[row - 2] === target[column - 1];
      if (transposed) best = Math.min(best, distances[row - 2]![column - 2]! + 1);
      distances[row]![column] = best;
    }
  }
  return distances[source.length]![target.length]!;
}
