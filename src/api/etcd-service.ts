/**
 * etcd's unary v3 calls at the level of their JSON messages: the gateway's JSON in, the gateway's JSON
 * out. The HTTP gateway (client-api.ts) and the gRPC server (grpc-server.ts) both serve through here;
 * gRPC messages convert to and from this JSON one to one (bytes as base64, int64 as decimal strings,
 * proto field names), so the two transports cannot drift apart.
 *
 *   kv/put, kv/range, kv/deleterange, kv/txn, kv/compaction           (KV)
 *   lease/grant, lease/revoke, lease/timetolive, lease/leases          (Lease; also under kv/lease/)
 *   maintenance/status                                                 (Maintenance)
 *
 * Streams (watch, lease keep-alive) live in watch-api.ts and lease-stream.ts.
 */
import { InvalidRequestError } from "../errors.ts";
import { LEASE_TTL_SEC_MAX } from "../kv/command.ts";
import { UnimplementedError } from "./errors.ts";
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  encodeDeleteRangeResponse,
  encodeHeader,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
  Fields,
} from "./kv-json.ts";
import { isReadOnlyTxn } from "./kv-model.ts";
import type { KvBackend, ResponseHeader } from "./kv-types.ts";

type JsonObject = Record<string, unknown>;

/** etcd's version as clients see it (Patroni picks its API path from `etcdcluster`: 3.4 gives /v3). */
export const ETCD_SERVER_VERSION = "3.4.0";
export const ETCD_CLUSTER_VERSION = "3.4.0";

export interface LeaseGrant {
  readonly id: number;
  readonly ttlSec: number;
  readonly header: ResponseHeader;
}

export interface LeaseTimeToLive {
  readonly id: number;
  /** Seconds left; -1 when the lease does not exist (etcd's answer). */
  readonly ttlSec: number;
  readonly grantedTtlSec: number;
  readonly keys: readonly string[];
  readonly header: ResponseHeader;
}

/** etcd's Lease service. Everything but `leases` needs the leader (NotLeaderError otherwise). */
export interface LeaseBackend {
  grant(id: number, ttlSec: number): Promise<LeaseGrant>;
  /** Rejects with LeaseNotFoundError when there is no such lease. */
  revoke(id: number): Promise<{ readonly header: ResponseHeader }>;
  /** Renews the lease; `ttlSec` 0 when there is no such lease (etcd's keep-alive answer). */
  keepAlive(id: number): Promise<LeaseGrant>;
  timeToLive(id: number, keys: boolean): Promise<LeaseTimeToLive>;
  leases(): Promise<{ readonly ids: readonly number[]; readonly header: ResponseHeader }>;
}

export interface NodeStatusReport {
  readonly header: ResponseHeader;
  readonly leaderId: number;
  readonly raftIndex: number;
  readonly raftTerm: number;
  readonly raftAppliedIndex: number;
  readonly dbSize: number;
  readonly isLearner: boolean;
}

export interface MaintenanceBackend {
  /** etcd's Compact: drops the history below `revision` (RevisionUnavailableError when it cannot). */
  compact(revision: number): Promise<{ readonly header: ResponseHeader }>;
  status(): NodeStatusReport;
}

export interface EtcdBackends {
  readonly kv: KvBackend;
  readonly leases?: LeaseBackend;
  readonly maintenance?: MaintenanceBackend;
}

export interface PreparedCall {
  /** Changes state: on a follower it goes to the leader, and a lost answer leaves the outcome unknown. */
  readonly isWrite: boolean;
  run(): Promise<JsonObject>;
}

/** The gateway paths served here, without the /v3 prefix, each with etcd's gRPC method name. */
export const UNARY_METHODS = {
  "/kv/put": "KV.Put",
  "/kv/range": "KV.Range",
  "/kv/deleterange": "KV.DeleteRange",
  "/kv/txn": "KV.Txn",
  "/kv/compaction": "KV.Compact",
  "/lease/grant": "Lease.LeaseGrant",
  "/lease/revoke": "Lease.LeaseRevoke",
  "/lease/timetolive": "Lease.LeaseTimeToLive",
  "/lease/leases": "Lease.LeaseLeases",
  "/maintenance/status": "Maintenance.Status",
} as const;
export type UnaryPath = keyof typeof UNARY_METHODS;

/** etcd 3.4's gateway also serves the lease calls under /v3/kv/lease/. */
export function unaryPath(path: string): UnaryPath | undefined {
  const normal = path.startsWith("/kv/lease/") ? path.slice("/kv".length) : path;
  return Object.hasOwn(UNARY_METHODS, normal) ? (normal as UnaryPath) : undefined;
}

function leaseId(fields: Fields, what: string, required: boolean): number {
  const id = fields.integer("ID");
  if (required && id === 0) throw new InvalidRequestError(`Cannot ${what}: "ID" is missing or 0; send the lease id that lease/grant returned`);
  return id;
}

function need<T>(backend: T | undefined, path: string): T {
  if (backend === undefined) throw new UnimplementedError(path, `Cannot serve /v3${path}: this server has no backend for it`);
  return backend;
}

/** Decodes the request for `path` (refusing bad input at once) and returns how to run it. */
export function prepareUnary(backends: EtcdBackends, path: UnaryPath, json: unknown): PreparedCall {
  const kv = backends.kv;
  switch (path) {
    case "/kv/put": {
      const request = decodePutRequest(json);
      return { isWrite: true, run: async () => encodePutResponse(await kv.put(request)) };
    }
    case "/kv/range": {
      const request = decodeRangeRequest(json);
      return { isWrite: false, run: async () => encodeRangeResponse(await kv.range(request)) };
    }
    case "/kv/deleterange": {
      const request = decodeDeleteRangeRequest(json);
      return { isWrite: true, run: async () => encodeDeleteRangeResponse(await kv.deleteRange(request)) };
    }
    case "/kv/txn": {
      const request = decodeTxnRequest(json);
      return { isWrite: !isReadOnlyTxn(request), run: async () => encodeTxnResponse(await kv.txn(request)) };
    }
    case "/kv/compaction": {
      const fields = new Fields(json, "compaction request", ["revision", "physical"]);
      const revision = fields.integer("revision");
      if (revision === 0) throw new InvalidRequestError('Cannot compact: "revision" is missing or 0; send the revision below which history may go');
      const maintenance = need(backends.maintenance, path);
      return { isWrite: true, run: async () => ({ header: encodeHeader((await maintenance.compact(revision)).header) }) };
    }
    case "/lease/grant": {
      const fields = new Fields(json, "lease grant request", ["TTL", "ID"]);
      const ttlSec = fields.integer("TTL");
      if (ttlSec > LEASE_TTL_SEC_MAX) throw new InvalidRequestError(`Cannot grant a lease with a TTL of ${ttlSec} s: at most ${LEASE_TTL_SEC_MAX} s are allowed`);
      const id = leaseId(fields, "grant a lease", false);
      const leases = need(backends.leases, path);
      return {
        isWrite: true,
        run: async () => {
          const granted = await leases.grant(id, ttlSec);
          return { header: encodeHeader(granted.header), ID: String(granted.id), TTL: String(granted.ttlSec) };
        },
      };
    }
    case "/lease/revoke": {
      const id = leaseId(new Fields(json, "lease revoke request", ["ID"]), "revoke a lease", true);
      const leases = need(backends.leases, path);
      return { isWrite: true, run: async () => ({ header: encodeHeader((await leases.revoke(id)).header) }) };
    }
    case "/lease/timetolive": {
      const fields = new Fields(json, "lease time-to-live request", ["ID", "keys"]);
      const id = leaseId(fields, "read a lease's time to live", true);
      const keys = fields.boolean("keys");
      const leases = need(backends.leases, path);
      return {
        // The leader keeps the lease clock: a follower forwards this like a write (it changes nothing).
        isWrite: false,
        run: async () => {
          const answer = await leases.timeToLive(id, keys);
          const json: JsonObject = { header: encodeHeader(answer.header), ID: String(answer.id), TTL: String(answer.ttlSec) };
          if (answer.grantedTtlSec !== 0) json.grantedTTL = String(answer.grantedTtlSec);
          if (answer.keys.length > 0) json.keys = answer.keys.map((key) => Buffer.from(key, "latin1").toString("base64"));
          return json;
        },
      };
    }
    case "/lease/leases": {
      new Fields(json, "lease list request", []);
      const leases = need(backends.leases, path);
      return {
        isWrite: false,
        run: async () => {
          const answer = await leases.leases();
          const json: JsonObject = { header: encodeHeader(answer.header) };
          if (answer.ids.length > 0) json.leases = answer.ids.map((id) => ({ ID: String(id) }));
          return json;
        },
      };
    }
    case "/maintenance/status": {
      new Fields(json, "status request", []);
      const maintenance = need(backends.maintenance, path);
      return { isWrite: false, run: () => Promise.resolve(encodeStatus(maintenance.status())) };
    }
  }
}

/** etcd's StatusResponse in the gateway's JSON (its proto names are camelCase already). */
export function encodeStatus(status: NodeStatusReport): JsonObject {
  const json: JsonObject = {
    header: encodeHeader(status.header),
    version: ETCD_SERVER_VERSION,
    dbSize: String(status.dbSize),
    leader: String(status.leaderId),
    raftIndex: String(status.raftIndex),
    raftTerm: String(status.raftTerm),
    raftAppliedIndex: String(status.raftAppliedIndex),
    dbSizeInUse: String(status.dbSize),
  };
  if (status.isLearner) json.isLearner = true;
  return json;
}
