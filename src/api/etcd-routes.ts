/**
 * Small HTTP routes etcd clients expect beside the gateway: GET /version (Patroni reads its
 * `etcdcluster` to choose the API path: 3.4 or later means /v3) and the last route of the client port,
 * which answers whatever no other route served with etcd's "unimplemented" error and a rate-limited
 * warning naming it (src/api/unimplemented.ts), never a silent 404.
 */
import { PACKAGE_VERSION } from "../server/version.ts";
import { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION } from "./etcd-service.ts";
import { sendError, sendJson, type HttpRoute } from "./http-server.ts";
import type { UnimplementedLog } from "./unimplemented.ts";

export function createVersionRoute(): HttpRoute {
  return (request, response, url) => {
    if (url.pathname !== "/version") return false;
    sendJson(request, response, 200, { etcdserver: ETCD_SERVER_VERSION, etcdcluster: ETCD_CLUSTER_VERSION, pgraft: PACKAGE_VERSION });
    return true;
  };
}

/** Put it last: it serves every request. */
export function createUnimplementedRoute(log: UnimplementedLog): HttpRoute {
  return (request, response, url) => {
    request.resume();
    sendError(request, response, log.refuse(`${request.method ?? "GET"} ${url.pathname}`, "HTTP"));
    return true;
  };
}
