/**
 * etcd's gRPC services, loaded from etcd v3.4's own proto definitions (src/api/proto, Apache-2.0, see
 * their headers), with messages converted to and from the JSON gateway's shape so that the gRPC server
 * can serve through the same code as the gateway (etcd-service.ts, watch.ts):
 *
 *   proto field names as written in the .proto (snake_case, and etcd's few camelCase ones: "TTL", "ID",
 *   "dbSize", "peerURLs"), bytes as base64 strings, int64/uint64 as decimal strings, enums by name,
 *   fields at their default value left out.
 *
 * That is exactly what the gateway's decoders read and its encoders write, so a request and an answer
 * cross from one transport to the other byte for byte (base64 carries any bytes; decimal strings carry
 * any 64-bit integer).
 */
import { fileURLToPath } from "node:url";
import type { ServiceDefinition } from "@grpc/grpc-js";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";

/** The folder holding etcdserverpb/, mvccpb/ and authpb/. */
export const ETCD_PROTO_DIR = fileURLToPath(new URL("./proto", import.meta.url));

/** proto-loader's conversion options: the gateway's JSON (see the comment at the top). */
export const GATEWAY_JSON_OPTIONS = { keepCase: true, longs: String, enums: String, bytes: String, defaults: false, oneofs: false } as const;

export const ETCD_SERVICES = ["KV", "Watch", "Lease", "Cluster", "Maintenance", "Auth"] as const;
export type EtcdServiceName = (typeof ETCD_SERVICES)[number];

let loaded: PackageDefinition | undefined;

/** etcd's package definition (loaded once, from the vendored protos). */
export function etcdPackage(): PackageDefinition {
  loaded ??= loadSync("etcdserverpb/rpc.proto", { ...GATEWAY_JSON_OPTIONS, includeDirs: [ETCD_PROTO_DIR] });
  return loaded;
}

export function etcdService(name: EtcdServiceName): ServiceDefinition {
  const definition = etcdPackage()[`etcdserverpb.${name}`];
  if (definition === undefined || "format" in definition) throw new Error(`etcd's proto has no service ${name}`);
  return definition as ServiceDefinition;
}

/**
 * A message through the binary encoding and back, with the very functions grpc-js uses for `method` of
 * `service`: what a gRPC peer would send and what this server would read. Tests use it to show that a
 * message keeps every field (a field name the proto does not know would be dropped silently).
 */
export function roundTrip(service: EtcdServiceName, method: string, direction: "request" | "response", json: Record<string, unknown>): Record<string, unknown> {
  const definition = etcdService(service)[method];
  if (definition === undefined) throw new Error(`etcd's ${service} service has no method ${method}`);
  const bytes = direction === "request" ? definition.requestSerialize(json) : definition.responseSerialize(json);
  return (direction === "request" ? definition.requestDeserialize(bytes) : definition.responseDeserialize(bytes)) as Record<string, unknown>;
}
