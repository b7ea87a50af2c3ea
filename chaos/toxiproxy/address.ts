/**
 * Listen and upstream addresses as Toxiproxy writes them: "host:port", "[v6]:port", ":port", "localhost:0".
 *
 * A proxy's listen address decides who can reach the fault we inject, so by default this server binds
 * proxies to loopback only: an empty host (":0", which the real server binds on every interface) becomes
 * 127.0.0.1, "localhost" becomes 127.0.0.1, and any other host must be a loopback address (127.0.0.0/8 or
 * ::1). A server started with `allowNonLoopback` binds wherever it is told, for containers that must
 * reach a proxy from outside the host. Upstreams may be any host: dialling out exposes nothing.
 */
import { isIP } from "node:net";
import { badRequestBody } from "./api-error.ts";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export const PORT_MAX = 65_535;
/** Longer than any DNS name (253) plus brackets, port and colon. */
export const ADDRESS_LENGTH_MAX = 300;

/** Splits "host:port" (the host may be "[v6]" or empty). Throws a 400 naming `field` when malformed. */
export function parseHostPort(text: string, field: string): HostPort {
  if (text.length > ADDRESS_LENGTH_MAX) throw badRequestBody(`${field} must be at most ${ADDRESS_LENGTH_MAX} characters, got ${text.length}`);
  const colon = text.lastIndexOf(":");
  if (colon < 0) throw badRequestBody(`${field} must be host:port, got ${JSON.stringify(text)}`);
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (host.startsWith("[") && host.endsWith("]")) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw badRequestBody(`${field} has brackets around ${JSON.stringify(host)}, which is not an IPv6 address`);
  } else if (host.includes(":")) {
    throw badRequestBody(`${field} must write an IPv6 host in brackets ([::1]:port), got ${JSON.stringify(text)}`);
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > PORT_MAX) {
    throw badRequestBody(`${field} must end in a port from 0 to ${PORT_MAX}, got ${JSON.stringify(text)}`);
  }
  return { host, port: Number(portText) };
}

export function formatHostPort(address: HostPort): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** Where a proxy with this listen text binds: loopback unless `allowNonLoopback`. */
export function resolveListen(text: string, allowNonLoopback: boolean): HostPort {
  const parsed = parseHostPort(text === "" ? ":0" : text, "listen");
  if (parsed.host === "") return { host: allowNonLoopback ? "0.0.0.0" : "127.0.0.1", port: parsed.port };
  if (parsed.host === "localhost") return { host: "127.0.0.1", port: parsed.port };
  if (!allowNonLoopback && !isLoopbackHost(parsed.host)) {
    throw badRequestBody(
      `listen ${JSON.stringify(text)} is not a loopback address: this server binds proxies to 127.0.0.0/8, ::1 or localhost ` +
        "unless it is started with --allow-non-loopback",
    );
  }
  if (isIP(parsed.host) === 0) throw badRequestBody(`listen host must be an IP address or localhost, got ${JSON.stringify(parsed.host)}`);
  return parsed;
}

/** Checks an upstream's form; the host is resolved when a client connects, as the real server does. */
export function parseUpstream(text: string): HostPort {
  const parsed = parseHostPort(text, "upstream");
  if (parsed.host === "") throw badRequestBody(`upstream must name a host, got ${JSON.stringify(text)}`);
  if (parsed.port === 0) throw badRequestBody(`upstream port must be from 1 to ${PORT_MAX}, got 0`);
  return parsed;
}
