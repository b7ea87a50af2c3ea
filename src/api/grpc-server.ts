/**
 * etcd's gRPC API (v3.4's etcdserverpb services) on the client port, beside the JSON gateway: the HTTP
 * server hands every connection that opens with the HTTP/2 preface here (http-server.ts), as etcd's
 * cmux does, so etcdctl and Go's clientv3 work against pgraft unchanged.
 *
 *   KV          Range, Put, DeleteRange, Txn, Compact
 *   Watch       Watch (create, cancel, progress; served by this node, from its applied history)
 *   Lease       LeaseGrant, LeaseRevoke, LeaseKeepAlive (stream), LeaseTimeToLive, LeaseLeases
 *   Cluster     MemberList, MemberAdd, MemberRemove
 *   Maintenance Status, Alarm (GET: pgraft raises no alarms), MoveLeader
 *   everything else in the protos: UNIMPLEMENTED, and a rate-limited warning naming the method
 *
 * Every call is served by the gateway's code: messages convert one to one to the gateway's JSON
 * (grpc-proto.ts), unary calls run through etcd-service.ts, watches through watch.ts. On a follower, a
 * call that needs the leader goes to the leader's gateway (grpc-forward.ts) and the leader's answer or
 * error comes back unchanged; errors are etcd's statuses (grpc-status.ts).
 */
import { Agent } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type ConnectionInjector,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { NodeId } from "../core/types.ts";
import { InvalidRequestError, NotLeaderError } from "../errors.ts";
import { UnimplementedError } from "./errors.ts";
import { prepareUnary, UNARY_METHODS, type EtcdBackends, type UnaryPath } from "./etcd-service.ts";
import { AuthorityFixer } from "./grpc-authority.ts";
import { forwardJson, GatewayAnswerError } from "./grpc-forward.ts";
import { ETCD_SERVICES, etcdService, type EtcdServiceName } from "./grpc-proto.ts";
import { grpcStatusOf, toGrpcError, type GrpcError } from "./grpc-status.ts";
import type { ApiLogger } from "./http-server.ts";
import { encodeHeader, Fields } from "./kv-json.ts";
import type { UnimplementedLog } from "./unimplemented.ts";
import type { WatchHub } from "./watch.ts";

type JsonObject = Record<string, unknown>;

/** etcd's --max-request-bytes (1.5 MiB) plus its gRPC overhead allowance (512 KiB). */
export const GRPC_RECEIVE_BYTES_MAX = 2 * 1024 * 1024;
/** Responses a slow stream client may leave unread before its stream is ended (RESOURCE_EXHAUSTED). */
export const STREAM_PENDING_MESSAGES_MAX = 10_000;
/** Keep-alive requests one stream may have waiting. */
const KEEPALIVES_QUEUED_MAX = 1024;
const FORWARD_TIMEOUT_MS_DEFAULT = 5000;

/** A call to a gateway path: this node's own for membership (cluster-api.ts lives behind it). */
export type GatewayCaller = (path: string, json: JsonObject) => Promise<JsonObject>;

export interface EtcdGrpcServerOptions {
  readonly backends: EtcdBackends;
  /** The Watch service; without it Watch is UNIMPLEMENTED. */
  readonly watches?: WatchHub;
  /**
   * The Cluster service and MoveLeader, through the gateway's /v3/cluster/member/* and
   * /v3/maintenance/transfer-leadership; without it they are UNIMPLEMENTED.
   */
  readonly cluster?: GatewayCaller;
  /** A node's gateway base URL; without it a follower answers UNAVAILABLE instead of forwarding. */
  readonly peerClientUrls?: (nodeId: NodeId) => string | undefined;
  /** This node's id as the gateway writes it (sent as x-pgraft-forwarded-by). */
  readonly memberId: string;
  readonly unimplementedLog: UnimplementedLog;
  readonly logger?: ApiLogger;
  readonly forwardTimeoutMs?: number;
}

/** The unary calls etcd-service.ts serves, by gRPC service and method. */
const UNARY_BY_METHOD: ReadonlyMap<string, UnaryPath> = new Map(Object.entries(UNARY_METHODS).map(([path, method]) => [method, path as UnaryPath]));

/** Membership calls, served by the gateway's cluster API. */
const CLUSTER_METHODS: Readonly<Record<string, string>> = {
  "Cluster.MemberList": "/v3/cluster/member/list",
  "Cluster.MemberAdd": "/v3/cluster/member/add",
  "Cluster.MemberRemove": "/v3/cluster/member/remove",
  "Maintenance.MoveLeader": "/v3/maintenance/transfer-leadership",
};

export class EtcdGrpcServer {
  readonly #options: EtcdGrpcServerOptions;
  readonly #server: Server;
  readonly #injector: ConnectionInjector;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  readonly #connections = new Set<Duplex>();
  #closed = false;

  constructor(options: EtcdGrpcServerOptions) {
    this.#options = options;
    this.#server = new Server({ "grpc.max_receive_message_length": GRPC_RECEIVE_BYTES_MAX });
    for (const service of ETCD_SERVICES) this.#server.addService(etcdService(service), this.#implementation(service));
    this.#injector = this.#server.createConnectionInjector(ServerCredentials.createInsecure());
  }

  /**
   * Serves a connection whose first bytes are the HTTP/2 client preface, through an AuthorityFixer
   * (grpc-authority.ts: Go's etcd client may send an :authority Node's HTTP/2 server refuses).
   */
  injectConnection(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const connection = new AuthorityFixer(socket);
    this.#connections.add(connection);
    connection.once("close", () => this.#connections.delete(connection));
    this.#injector.injectConnection(connection);
  }

  /** Ends every call and connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#injector.destroy();
    this.#server.forceShutdown();
    for (const connection of this.#connections) connection.destroy();
    this.#agent.destroy();
  }

  #implementation(service: EtcdServiceName): UntypedServiceImplementation {
    const implementation: UntypedServiceImplementation = {};
    for (const [method, definition] of Object.entries(etcdService(service))) {
      const name = `${service}.${method}`;
      const unary = UNARY_BY_METHOD.get(name);
      const clusterPath = CLUSTER_METHODS[name];
      if (unary !== undefined) implementation[method] = this.#unary(unary);
      else if (clusterPath !== undefined && this.#options.cluster !== undefined) implementation[method] = this.#cluster(this.#options.cluster, clusterPath);
      else if (name === "Maintenance.Alarm") implementation[method] = this.#alarm();
      else if (name === "Watch.Watch" && this.#options.watches !== undefined) implementation[method] = this.#watch(this.#options.watches);
      else if (name === "Lease.LeaseKeepAlive" && this.#options.backends.leases !== undefined) implementation[method] = this.#keepAlive();
      else implementation[method] = this.#unimplemented(`/etcdserverpb.${service}/${method}`, definition.responseStream);
    }
    return implementation;
  }

  #unary(path: UnaryPath) {
    return (call: ServerUnaryCall<JsonObject, JsonObject>, callback: sendUnaryData<JsonObject>): void => {
      this.#serveUnary(path, call.request).then(
        (answer) => callback(null, answer),
        (error: unknown) => callback(this.#status(error, path)),
      );
    };
  }

  async #serveUnary(path: UnaryPath, request: JsonObject): Promise<JsonObject> {
    let prepared;
    try {
      prepared = prepareUnary(this.#options.backends, path, request);
    } catch (error) {
      if (error instanceof UnimplementedError) this.#options.unimplementedLog.note(`${UNARY_METHODS[path]} (${error.feature})`, "gRPC", error.message);
      throw error;
    }
    try {
      return await prepared.run();
    } catch (error) {
      if (!(error instanceof NotLeaderError)) throw error;
      return await this.#forward(error, `/v3${path}`, request, prepared.isWrite);
    }
  }

  /** Hands a call to the leader's gateway, or throws `refusal` when its URL is not known. */
  #forward(refusal: NotLeaderError, path: string, json: JsonObject, isWrite: boolean): Promise<JsonObject> {
    const baseUrl = String(refusal.leaderId) === this.#options.memberId ? undefined : this.#options.peerClientUrls?.(refusal.leaderId);
    if (baseUrl === undefined) return Promise.reject(refusal);
    return forwardJson({
      leaderId: refusal.leaderId,
      baseUrl,
      path,
      json,
      fromMemberId: this.#options.memberId,
      isWrite,
      timeoutMs: this.#options.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS_DEFAULT,
      agent: this.#agent,
    });
  }

  #status(error: unknown, what: string): GrpcError {
    const status = error instanceof GatewayAnswerError ? grpcStatusOf(error.body) : toGrpcError(error);
    if (status.code === GrpcStatus.INTERNAL || status.code === GrpcStatus.UNKNOWN) {
      this.#options.logger?.error(`gRPC ${what} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    return status;
  }

  #cluster(caller: GatewayCaller, path: string) {
    return (call: ServerUnaryCall<JsonObject, JsonObject>, callback: sendUnaryData<JsonObject>): void => {
      caller(path, call.request).then(
        (answer) => callback(null, answer),
        (error: unknown) => callback(this.#status(error, path)),
      );
    };
  }

  /** etcd's alarm list: pgraft raises no alarms (NOSPACE, CORRUPT), so GET answers none. */
  #alarm() {
    return (call: ServerUnaryCall<JsonObject, JsonObject>, callback: sendUnaryData<JsonObject>): void => {
      try {
        const fields = new Fields(call.request, "alarm request", ["action", "memberID", "alarm"]);
        const action = fields.enumeration("action", ["GET", "ACTIVATE", "DEACTIVATE"] as const);
        if (action !== "GET") {
          throw this.#options.unimplementedLog.refuse(
            `/etcdserverpb.Maintenance/Alarm (${action})`,
            "gRPC",
            `Cannot ${action.toLowerCase()} an alarm: pgraft has no alarms (it raises neither NOSPACE nor CORRUPT); only GET is served`,
          );
        }
        callback(null, { header: encodeHeader(this.#options.backends.kv.header()) });
      } catch (error) {
        callback(this.#status(error, "Maintenance.Alarm"));
      }
    };
  }

  #unimplemented(method: string, streaming: boolean) {
    const refuse = (): GrpcError => toGrpcError(this.#options.unimplementedLog.refuse(method, "gRPC"));
    if (!streaming) return (_call: unknown, callback: sendUnaryData<JsonObject>): void => callback(refuse());
    return (call: { emit(event: "error", error: GrpcError): boolean }): void => {
      call.emit("error", refuse());
    };
  }

  #watch(hub: WatchHub) {
    return (call: ServerDuplexStream<JsonObject, JsonObject>): void => {
      let ended = false;
      const end = (error?: GrpcError): void => {
        if (ended) return;
        ended = true;
        stream.close();
        if (error !== undefined) call.emit("error", error);
        else call.end();
      };
      const stream = hub.open((message) => {
        if (ended) return;
        if (call.writableLength >= STREAM_PENDING_MESSAGES_MAX) {
          end({
            code: GrpcStatus.RESOURCE_EXHAUSTED,
            details: `Cannot keep the watch stream open: the client left ${STREAM_PENDING_MESSAGES_MAX} responses unread; read events faster, or watch fewer keys per stream`,
          });
          return;
        }
        call.write(message);
      });
      call.on("data", (request: JsonObject) => {
        if (ended) return;
        try {
          stream.request(request);
        } catch (error) {
          // etcd answers a create it cannot serve with a created-and-canceled response and keeps the stream.
          if (!(error instanceof InvalidRequestError)) throw error;
          call.write({ header: encodeHeader(this.#options.backends.kv.header()), watch_id: "-1", created: true, canceled: true, cancel_reason: error.message });
        }
      });
      // The client closing its sending side ends the call, as etcd's recvLoop does.
      call.on("end", () => end());
      call.on("cancelled", () => end());
      call.on("close", () => end());
      call.on("error", () => {
        ended = true;
        stream.close();
      });
    };
  }

  #keepAlive() {
    const leases = this.#options.backends.leases!;
    return (call: ServerDuplexStream<JsonObject, JsonObject>): void => {
      let ended = false;
      let queued = 0;
      let chain = Promise.resolve();
      const fail = (error: unknown): void => {
        if (ended) return;
        ended = true;
        call.emit("error", this.#status(error, "Lease.LeaseKeepAlive"));
      };
      call.on("data", (request: JsonObject) => {
        if (ended) return;
        if (++queued > KEEPALIVES_QUEUED_MAX) {
          fail(new InvalidRequestError(`Cannot queue another keep-alive: ${KEEPALIVES_QUEUED_MAX} are waiting on this stream; wait for their answers`));
          return;
        }
        chain = chain.then(async () => {
          queued--;
          if (ended) return;
          try {
            const id = new Fields(request, "lease keep-alive request", ["ID"]).integer("ID");
            const answer = await this.#keepAliveOnce(leases, id);
            if (!ended) call.write(answer);
          } catch (error) {
            fail(error);
          }
        });
      });
      call.on("end", () => {
        void chain.then(() => {
          if (ended) return;
          ended = true;
          call.end();
        });
      });
      call.on("cancelled", () => {
        ended = true;
      });
      call.on("error", () => {
        ended = true;
      });
    };
  }

  async #keepAliveOnce(leases: NonNullable<EtcdBackends["leases"]>, id: number): Promise<JsonObject> {
    try {
      const answer = await leases.keepAlive(id);
      return { header: encodeHeader(answer.header), ID: String(answer.id), TTL: String(answer.ttlSec) };
    } catch (error) {
      if (!(error instanceof NotLeaderError)) throw error;
      // The leader's gateway answers a one-message keep-alive stream: {"result": ...} or {"error": ...}.
      const line = await this.#forward(error, "/v3/lease/keepalive", { ID: String(id) }, false);
      const result = line.result;
      if (typeof result === "object" && result !== null) return result as JsonObject;
      const failure = (line.error ?? {}) as { grpc_code?: number; message?: string };
      throw new GatewayAnswerError(503, {
        error: failure.message ?? `Cannot renew lease ${id}: the leader, node ${error.leaderId}, gave no answer; retry`,
        code: failure.grpc_code ?? GrpcStatus.UNAVAILABLE,
        message: failure.message ?? "",
        outcome: "failed",
      });
    }
  }
}
