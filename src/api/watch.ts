/**
 * etcd's Watch service over this node's applied state, transport-neutral: a WatchStream takes
 * WatchRequests in the gateway's JSON (create_request, cancel_request, progress_request) and emits
 * WatchResponses in the gateway's JSON. The HTTP gateway (POST /v3/watch, a chunked stream) and the
 * gRPC Watch call both drive it.
 *
 * Every node serves watches from what it has applied, as etcd members do: events come from the store's
 * history (src/kv/kv-store.ts) in revision order, each revision's events together, exactly once, and a
 * leader change changes nothing here (the applied sequence is the committed log). A watch from a
 * revision the history no longer holds (compacted, or a snapshot replaced the store) is canceled with
 * etcd's compact_revision, so the client re-reads and watches again.
 */
import { InvalidRequestError } from "../errors.ts";
import type { KvEvent, KvStore } from "../kv/kv-store.ts";
import { toByteString } from "../kv/bytes.ts";
import { encodeHeader, encodeKeyValue, Fields } from "./kv-json.ts";
import { isFromKey, toKeyValue } from "./kv-model.ts";
import type { ResponseHeader } from "./kv-types.ts";
import type { Timers } from "../node/environment.ts";

type JsonObject = Record<string, unknown>;

/** etcd's default progress-notify interval. */
export const PROGRESS_INTERVAL_MS_DEFAULT = 10 * 60 * 1000;
/** Watches one stream may hold, and events one response carries (a revision's events never split). */
export const WATCHES_PER_STREAM_MAX = 1024;
const EVENTS_PER_RESPONSE_MAX = 1000;
const FILTERS = ["NOPUT", "NODELETE"] as const;

export interface WatchSource {
  /** The node's store now (a snapshot may replace it). */
  store(): KvStore;
  header(revision: number): ResponseHeader;
  /** Calls `listener` after entries are applied; returns the unsubscribe. */
  onApplied(listener: () => void): () => void;
}

interface Watcher {
  readonly id: number;
  readonly key: string;
  readonly rangeEnd: string;
  readonly fromKey: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
  readonly progressNotify: boolean;
  /** etcd's per-watch progress flag: no events were sent since the last progress tick. */
  progressDue: boolean;
  nextRevision: number;
}

/**
 * The watch_id field as etcd writes it: proto3 leaves a zero out (gRPC and gateway JSON alike), so the
 * first watch of a stream answers without one, exactly as etcd's does.
 */
function watchIdField(id: number): JsonObject {
  return id === 0 ? {} : { watch_id: String(id) };
}

export class WatchHub {
  readonly #source: WatchSource;
  readonly #streams = new Set<WatchStream>();
  readonly #progressIntervalMs: number;
  readonly #timers: Timers | undefined;
  #unsubscribe: (() => void) | undefined;
  #progressTimer: { cancel(): void } | undefined;

  constructor(source: WatchSource, options: { progressIntervalMs?: number; timers?: Timers } = {}) {
    this.#source = source;
    this.#progressIntervalMs = options.progressIntervalMs ?? PROGRESS_INTERVAL_MS_DEFAULT;
    this.#timers = options.timers;
  }

  get streams(): number {
    return this.#streams.size;
  }

  /** A new stream; `send` gets each WatchResponse (the JSON under "result" in the gateway). */
  open(send: (response: JsonObject) => void): WatchStream {
    const stream = new WatchStream(this.#source, send, () => this.#streams.delete(stream));
    this.#streams.add(stream);
    if (this.#unsubscribe === undefined) this.#unsubscribe = this.#source.onApplied(() => this.#deliver());
    this.#scheduleProgress();
    return stream;
  }

  /** Ends every stream (the server is stopping). */
  close(): void {
    for (const stream of [...this.#streams]) stream.close();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#progressTimer?.cancel();
    this.#progressTimer = undefined;
  }

  #deliver(): void {
    for (const stream of this.#streams) stream.deliver();
  }

  #scheduleProgress(): void {
    if (this.#progressTimer !== undefined || this.#timers === undefined) return;
    this.#progressTimer = this.#timers.after(this.#progressIntervalMs, () => {
      this.#progressTimer = undefined;
      if (this.#streams.size === 0) return;
      for (const stream of this.#streams) stream.notifyProgress();
      this.#scheduleProgress();
    });
  }
}

export class WatchStream {
  readonly #source: WatchSource;
  readonly #send: (response: JsonObject) => void;
  readonly #onClose: () => void;
  readonly #watchers = new Map<number, Watcher>();
  #nextId = 0;
  #closed = false;

  constructor(source: WatchSource, send: (response: JsonObject) => void, onClose: () => void) {
    this.#source = source;
    this.#send = send;
    this.#onClose = onClose;
  }

  /** Handles one WatchRequest; bad input throws InvalidRequestError (the stream stays usable). */
  request(json: unknown): void {
    const fields = new Fields(json, "watch request", ["create_request", "cancel_request", "progress_request"]);
    if (fields.has("create_request")) this.#create(fields.message("create_request"));
    else if (fields.has("cancel_request")) this.#cancel(fields.message("cancel_request"));
    else if (fields.has("progress_request")) this.#send({ header: encodeHeader(this.#header()), watch_id: "-1" });
    else throw new InvalidRequestError('Cannot decode the watch request: send one of "create_request", "cancel_request" or "progress_request"');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchers.clear();
    this.#onClose();
  }

  /** Sends every watcher the events applied since it last heard. */
  deliver(): void {
    if (this.#closed) return;
    const store = this.#source.store();
    for (const watcher of [...this.#watchers.values()]) this.#catchUp(store, watcher);
  }

  /**
   * etcd's periodic progress notification (v3rpc sendLoop's progress ticker): each progress_notify
   * watcher that is synced and was sent no events since the previous tick gets the current revision, as
   * a response with no events; every watcher's flag is then set for the next tick.
   */
  notifyProgress(): void {
    if (this.#closed) return;
    const store = this.#source.store();
    for (const watcher of this.#watchers.values()) {
      if (!watcher.progressNotify) continue;
      if (watcher.progressDue && watcher.nextRevision > store.appliedIndex) this.#send({ header: encodeHeader(this.#header()), ...watchIdField(watcher.id) });
      watcher.progressDue = true;
    }
  }

  #header(): ResponseHeader {
    return this.#source.header(this.#source.store().appliedIndex);
  }

  #create(json: unknown): void {
    const fields = new Fields(json, "watch create_request", ["key", "range_end", "start_revision", "progress_notify", "filters", "prev_kv", "watch_id", "fragment"]);
    const key = fields.byteString("key");
    const rangeEndBytes = fields.bytes("range_end");
    const filters = fields.array("filters").map((filter) => {
      if (typeof filter === "string" && (FILTERS as readonly string[]).includes(filter)) return filter;
      if (filter === 0 || filter === 1) return FILTERS[filter];
      throw new InvalidRequestError(`Cannot decode the watch create_request: "filters" holds ${JSON.stringify(filter)}; use "NOPUT" (0) or "NODELETE" (1)`);
    });
    const store = this.#source.store();
    const requestedId = fields.integer("watch_id");
    if (this.#watchers.size >= WATCHES_PER_STREAM_MAX) {
      throw new InvalidRequestError(`Cannot create a watch: this stream holds ${WATCHES_PER_STREAM_MAX} watches already; cancel some or open another stream`);
    }
    let id = requestedId;
    if (id === 0) {
      while (this.#watchers.has(this.#nextId)) this.#nextId++;
      id = this.#nextId++;
    } else if (this.#watchers.has(id)) {
      throw new InvalidRequestError(`Cannot create a watch with watch_id ${id}: this stream already has one; pick another or send 0`);
    }
    const startRevision = fields.integer("start_revision");
    const watcher: Watcher = {
      id,
      key,
      rangeEnd: toByteString(rangeEndBytes),
      fromKey: isFromKey(rangeEndBytes),
      noPut: filters.includes("NOPUT"),
      noDelete: filters.includes("NODELETE"),
      prevKv: fields.boolean("prev_kv"),
      progressNotify: fields.boolean("progress_notify"),
      progressDue: true,
      nextRevision: startRevision > 0 ? startRevision : store.appliedIndex + 1,
    };
    this.#watchers.set(id, watcher);
    this.#send({ header: encodeHeader(this.#header()), ...watchIdField(id), created: true });
    this.#catchUp(store, watcher);
  }

  #cancel(json: unknown): void {
    const id = new Fields(json, "watch cancel_request", ["watch_id"]).integer("watch_id");
    if (!this.#watchers.delete(id)) return; // etcd answers nothing for an unknown id
    this.#send({ header: encodeHeader(this.#header()), ...watchIdField(id), canceled: true });
  }

  #catchUp(store: KvStore, watcher: Watcher): void {
    if (watcher.nextRevision > store.appliedIndex) return;
    if (watcher.nextRevision < store.compactedRevision) {
      this.#watchers.delete(watcher.id);
      this.#send({
        header: encodeHeader(this.#header()),
        ...watchIdField(watcher.id),
        canceled: true,
        compact_revision: String(store.compactedRevision),
        cancel_reason: `etcdserver: mvcc: required revision has been compacted`,
      });
      return;
    }
    const events = store.eventsFrom(watcher.nextRevision).filter((event) => this.#matches(watcher, event));
    watcher.nextRevision = store.appliedIndex + 1;
    if (events.length > 0) watcher.progressDue = false;
    for (let start = 0; start < events.length; ) {
      let end = Math.min(events.length, start + EVENTS_PER_RESPONSE_MAX);
      while (end < events.length && events[end]!.revision === events[end - 1]!.revision) end++;
      this.#send({ header: encodeHeader(this.#header()), ...watchIdField(watcher.id), events: events.slice(start, end).map((event) => encodeEvent(event, watcher.prevKv)) });
      start = end;
    }
  }

  #matches(watcher: Watcher, event: KvEvent): boolean {
    if (event.record === undefined ? watcher.noDelete : watcher.noPut) return false;
    if (watcher.rangeEnd.length === 0) return event.key === watcher.key;
    return event.key >= watcher.key && (watcher.fromKey || event.key < watcher.rangeEnd);
  }
}

/** etcd's Event: type (PUT, the default, is left out), kv (for a delete: the key and revision only), prev_kv. */
export function encodeEvent(event: KvEvent, withPrev: boolean): JsonObject {
  const json: JsonObject =
    event.record === undefined
      ? { type: "DELETE", kv: { key: Buffer.from(event.key, "latin1").toString("base64"), mod_revision: String(event.revision) } }
      : { kv: encodeKeyValue(toKeyValue(event.key, event.record)) };
  if (withPrev && event.prev !== undefined) json.prev_kv = encodeKeyValue(toKeyValue(event.key, event.prev));
  return json;
}
