/**
 * The public surface of the Toxiproxy-compatible server: start it, read its URL and seed, close it.
 * Chaos runs drive it only through its HTTP API (toxiproxy-node-client), as they would a real Toxiproxy.
 */
export { ApiError } from "./api-error.ts";
export { PROXIES_MAX } from "./proxy-collection.ts";
export { PROXY_CONNECTIONS_MAX } from "./proxy.ts";
export { PROXY_TOXICS_MAX } from "./toxic-collection.ts";
export { SEED_MAX, ToxicRandom } from "./random.ts";
export { BODY_BYTES_MAX, REQUEST_ID_HEADER, TOXIPROXY_VERSION, ToxiproxyServer, type ToxiproxyLogger, type ToxiproxyServerOptions } from "./server.ts";
export { TOXIC_ATTRIBUTES, TOXIC_TYPES, type Stream, type ToxicSpec, type ToxicType } from "./toxic-spec.ts";
