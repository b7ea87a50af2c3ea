/**
 * Loaded into a chaos node with `node --import` (the provider sets NODE_OPTIONS): outgoing TCP
 * connections to an address named in PGRAFT_CHAOS_DIAL_REDIRECTS go to the address it maps to instead.
 *
 * Why: a node added at run time is reached by every member at the one address in its configuration
 * entry, so without this the links *into* it could not be faulted pair by pair. The runner maps that
 * address, in node i's environment, to the Toxiproxy proxy (i, j), exactly as pgraft.initial_cluster
 * points founding members at their proxies. It is the test harness's network (as an iptables DNAT rule
 * would be), not the node's code: the node still learns the address from the cluster and dials it.
 *
 * The variable holds a JSON object {"127.0.0.1:5001": "127.0.0.1:6001", ...}; without it, or with an
 * empty object, nothing is patched. A malformed value stops the process at once with a clear message
 * (a node silently reached directly would make a partition step lie).
 *
 * Plain JavaScript on purpose: it runs before tsx or the esbuild bundle, in the node process.
 */
import net from "node:net";

export const DIAL_REDIRECTS_VARIABLE = "PGRAFT_CHAOS_DIAL_REDIRECTS";

/** Parses the variable's text into Map("host:port" -> {host, port}); throws naming what is wrong. */
export function parseDialRedirects(text) {
  const redirects = new Map();
  if (text === undefined || text === "") return redirects;
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`Cannot read ${DIAL_REDIRECTS_VARIABLE}: it is not JSON (${error.message}); give an object {"host:port": "host:port"}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`Cannot read ${DIAL_REDIRECTS_VARIABLE}: expected an object {"host:port": "host:port"}, got ${JSON.stringify(parsed)}`);
  }
  for (const [from, to] of Object.entries(parsed)) {
    splitAddress(from);
    if (typeof to !== "string") throw new Error(`Cannot read ${DIAL_REDIRECTS_VARIABLE}: the target of ${from} is ${JSON.stringify(to)}, not "host:port"`);
    redirects.set(from, splitAddress(to));
  }
  return redirects;
}

function splitAddress(address) {
  const colon = address.lastIndexOf(":");
  const port = Number(address.slice(colon + 1));
  if (colon < 1 || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`Cannot read ${DIAL_REDIRECTS_VARIABLE}: ${JSON.stringify(address)} is not "host:port"`);
  }
  return { host: address.slice(0, colon), port };
}

/** The options object with its destination redirected, or undefined when it is not redirected. */
function redirected(options, redirects) {
  if (options === null || typeof options !== "object" || options.path !== undefined || options.port === undefined) return undefined;
  const target = redirects.get(`${options.host ?? "localhost"}:${Number(options.port)}`);
  return target === undefined ? undefined : { ...options, host: target.host, port: target.port };
}

/** Patches net.Socket.prototype.connect (net.connect, net.createConnection and tls.connect use it). */
export function installDialRedirects(redirects) {
  if (redirects.size === 0) return;
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function connectRedirected(...args) {
    const first = args[0];
    if (Array.isArray(first)) {
      // net.connect() passes its normalized [options, callback] array (it carries a private symbol, so
      // the array itself is kept and only its options element replaced).
      const options = redirected(first[0], redirects);
      if (options !== undefined) first[0] = options;
    } else if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
      const host = typeof args[1] === "string" ? args[1] : "localhost";
      const target = redirects.get(`${host}:${Number(first)}`);
      if (target !== undefined) {
        args[0] = target.port;
        if (typeof args[1] === "string") args[1] = target.host;
        else args.splice(1, 0, target.host);
      }
    } else {
      const options = redirected(first, redirects);
      if (options !== undefined) args[0] = options;
    }
    return connect.apply(this, args);
  };
}

try {
  installDialRedirects(parseDialRedirects(process.env[DIAL_REDIRECTS_VARIABLE]));
} catch (error) {
  process.stderr.write(`pgraft chaos: ${error.message}\n`);
  process.exit(2);
}
