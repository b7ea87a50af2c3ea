/**
 * The etcd-compatibility pieces of the client port, built in one place for `pgraft start`: the stream
 * routes (watch, lease keep-alive), GET /version, the unimplemented-endpoint catch-all and the log
 * they share. Order of routes on the client port:
 *
 *   [etcd.streamRoute, clusterApi.route, clientApi.route, health, etcd.versionRoute, etcd.unimplementedRoute]
 */
import type { NodeId } from "../core/types.ts";
import type { RaftNode } from "../node/raft-node.ts";
import { createUnimplementedRoute, createVersionRoute } from "./etcd-routes.ts";
import type { ApiLogger, HttpRoute } from "./http-server.ts";
import type { RaftNodeBackend } from "./raft-node-backend.ts";
import { createStreamRoute } from "./stream-routes.ts";
import { UnimplementedLog } from "./unimplemented.ts";
import { WatchHub } from "./watch.ts";
import type { Timers } from "../node/environment.ts";

export interface EtcdEndpointsOptions {
  readonly node: Pick<RaftNode, "store" | "onApplied" | "id">;
  readonly backend: RaftNodeBackend;
  readonly peerClientUrls: (nodeId: NodeId) => string | undefined;
  readonly logger?: ApiLogger;
  /** For periodic watch progress notifications (without timers none are sent; a client can still ask). */
  readonly timers?: Timers;
  /** How often a watch that asked for progress notifications gets one (pgraft.watch_progress_notify_interval). */
  readonly progressIntervalMs?: number;
}

export interface EtcdEndpoints {
  readonly watches: WatchHub;
  readonly unimplementedLog: UnimplementedLog;
  readonly streamRoute: HttpRoute;
  readonly versionRoute: HttpRoute;
  readonly unimplementedRoute: HttpRoute;
  close(): void;
}

export function createEtcdEndpoints(options: EtcdEndpointsOptions): EtcdEndpoints {
  const { node, backend } = options;
  const watches = new WatchHub(
    { store: () => node.store, header: (revision) => ({ ...backend.header(), revision }), onApplied: (listener) => node.onApplied(listener) },
    { timers: options.timers, progressIntervalMs: options.progressIntervalMs },
  );
  const unimplementedLog = new UnimplementedLog({ logger: options.logger });
  return {
    watches,
    unimplementedLog,
    streamRoute: createStreamRoute({ watches, leases: backend, peerClientUrls: options.peerClientUrls, memberId: String(node.id), logger: options.logger }),
    versionRoute: createVersionRoute(),
    unimplementedRoute: createUnimplementedRoute(unimplementedLog),
    close: () => watches.close(),
  };
}
