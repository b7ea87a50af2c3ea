/**
 * The public surface of the client API (etcd v3's JSON gateway for the key-value subset), the health
 * endpoints, and the HTTP server they share. See README.md in this folder.
 */
export {
  BODY_BYTES_MAX_DEFAULT,
  CLIENT_OPERATIONS,
  ClientApi,
  FORWARD_TIMEOUT_MS_DEFAULT,
  type ClientApiOptions,
  type ClientOperation,
  type ClientOutcome,
} from "./client-api.ts";
export {
  ForwardError,
  GRPC_CODES,
  RequestTooLargeError,
  RevisionUnavailableError,
  RouteError,
  toGatewayError,
  UnimplementedError,
  type GatewayError,
  type GatewayErrorBody,
} from "./errors.ts";
export { FORWARDED_BY_HEADER } from "./forward.ts";
export { clusterIdNumber } from "./header.ts";
export {
  clusterReport,
  createHealthRoute,
  nodeReport,
  PEER_TIMEOUT_MS_DEFAULT,
  type ClusterReport,
  type HealthOptions,
  type MemberReport,
  type NodeReport,
} from "./health.ts";
export { readBody, sendError, sendJson, startHttpServer, type ApiLogger, type HttpRoute, type HttpServerOptions, type RunningHttpServer } from "./http-server.ts";
export { TXN_DEPTH_MAX, TXN_OPS_MAX } from "./kv-json.ts";
export {
  applyDeleteRange,
  applyPut,
  applyTxn,
  checkTxnWrites,
  compareHolds,
  evaluateRange,
  isReadOnlyTxn,
  keysInRange,
  prefixRangeEnd,
  type KvRecordStore,
  type KvRecordView,
} from "./kv-model.ts";
export type * from "./kv-types.ts";
export { COMPARE_RESULTS, COMPARE_TARGETS, SORT_ORDERS, SORT_TARGETS } from "./kv-types.ts";
export { MemoryKvBackend, MemoryKvState, type MemoryKvBackendOptions } from "./memory-backend.ts";
export { casShape, RaftNodeBackend, type RaftNodeBackendOptions, type RaftNodeLike } from "./raft-node-backend.ts";
export { ClusterApi, type ClusterApiOptions, type ClusterBackend } from "./cluster-api.ts";
