// Watch progress notifications and cancel, side by side on a 3-node pgraft cluster and a 3-member etcd
// 3.4 (Debian's etcd-server): the same requests over etcd's gRPC Watch service, etcdctl's interactive
// watch and the gateway's chunked JSON stream (POST /v3/watch, as Patroni reads it), the same
// assertions on both, and then the two transcripts must be equal. Revisions differ between the two
// (pgraft's are Raft log indexes), so transcripts hold what the answers are relative to the store: the
// fields each response has, and whether a revision is the store's current one.
//
// etcd sends progress notifications every 10 minutes unless started with
// --experimental-watch-progress-notify-interval; pgraft's equivalent is
// pgraft.watch_progress_notify_interval. Both run with 1 s here.
//
// What etcd 3.4 does, and this suite holds pgraft to:
// - A watch created with progress_notify that had no events since the last tick gets a response with
//   no events, its watch_id and the current revision; a watch without it gets none.
// - A progress_request is answered once, with watch_id -1 and the current revision.
// - A cancel_request answers canceled with the watch_id (the first watch of a stream has id 0, which
//   proto3 leaves out of the answer), and that watch gets no events afterwards; the stream's other
//   watches go on. A cancel for an id the stream does not have gets no answer.
// - etcdctl 3.4's `watch -i` has a `progress` command (and no `--progress-notify`, no `cancel`).
// - The gateway serves the same requests sent together in one body (etcd's gateway answers nothing
//   before the request body ends, so clients send the whole body at once).
import test, { type ExecutionContext } from "ava";
import * as grpc from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import { etcdPackage } from "../../src/api/grpc-proto.ts";
import { sleep } from "../server/process-cluster.ts";
import { requirePrograms, startEtcd, startPgraft, type Target } from "./targets.ts";
import { readJsonLines } from "./json-lines.ts";

/** The progress-notify interval both systems run with. */
const PROGRESS_INTERVAL = "1s";
/** How long a response that must come is waited for, at most (many intervals on a busy machine). */
const ARRIVAL_WAIT_MS_MAX = 20_000;
/** How long the suite watches for events that must not come, after the ones that must have come. */
const QUIET_WAIT_MS = 1500;

type Message = Record<string, any>;

const targets: Target[] = [];
let closing: Promise<void> | undefined;
const closeAll = (): Promise<void> => (closing ??= Promise.all(targets.map((target) => target.close())).then(() => undefined));
const onSigint = (): void => void closeAll().then(() => process.exit(130));

test.before(async () => {
  requirePrograms();
  process.once("SIGINT", onSigint);
  targets.push(await startPgraft(28300, [`pgraft.watch_progress_notify_interval=${PROGRESS_INTERVAL}`]));
  targets.push(await startEtcd(28600, [`--experimental-watch-progress-notify-interval=${PROGRESS_INTERVAL}`]));
});

test.after.always(async () => {
  process.off("SIGINT", onSigint);
  await closeAll();
});

/** Runs `check` on every target (its assertions name the target) and requires equal transcripts. */
function compat(title: string, check: (t: ExecutionContext, target: Target) => Promise<unknown>): void {
  test.serial(title, async (t) => {
    t.timeout(120_000);
    t.is(targets.length, 2, "both pgraft and etcd must be running");
    const transcripts: Record<string, unknown> = {};
    for (const target of targets) transcripts[target.name] = await check(t, target);
    t.log(`transcript: ${JSON.stringify(transcripts.etcd)}`);
    t.deepEqual(transcripts.pgraft, transcripts.etcd, "pgraft's transcript differs from etcd's");
  });
}

const b64 = (text: string): string => Buffer.from(text, "latin1").toString("base64");
const unb64 = (text: string | undefined): string => Buffer.from(text ?? "", "base64").toString("latin1");

/** A response's shape: its fields and its header's fields, sorted (values differ between systems). */
function shape(message: Message): string {
  const header = message.header === undefined ? "" : `header{${Object.keys(message.header).sort().join(",")}}`;
  return [header, ...Object.keys(message).filter((key) => key !== "header").sort()].filter(Boolean).join(" ");
}

const watchIdOf = (message: Message): string => String(message.watch_id ?? "0");
const eventsOf = (message: Message): Message[] => (message.events as Message[] | undefined) ?? [];
const isControl = (message: Message): boolean => message.created === true || message.canceled === true;
/** A progress response: no events, not a create or cancel answer. */
const isProgress = (message: Message): boolean => eventsOf(message).length === 0 && !isControl(message);
const eventKeys = (message: Message): string[] => eventsOf(message).map((event) => unb64(event.kv?.key));

/** Polls `messages` (bounded) for the first one at or after `from` that `matches`. */
async function waitFor(target: Target, messages: readonly Message[], what: string, matches: (message: Message) => boolean, from = 0): Promise<{ message: Message; index: number }> {
  const deadline = Date.now() + ARRIVAL_WAIT_MS_MAX;
  for (;;) {
    for (let index = from; index < messages.length; index++) if (matches(messages[index]!)) return { message: messages[index]!, index };
    if (Date.now() > deadline) {
      throw new Error(`${target.name}: no ${what} within ${ARRIVAL_WAIT_MS_MAX} ms; got ${JSON.stringify(messages.slice(from))}\n${target.logs()}`);
    }
    await sleep(20);
  }
}

/** etcd's gRPC services on the target's first member. */
class Clients {
  readonly #package = grpc.loadPackageDefinition(etcdPackage()) as any;
  readonly kv: any;
  readonly watch: any;

  constructor(readonly target: Target) {
    const address = new URL(target.endpoints[0]!).host;
    this.kv = new this.#package.etcdserverpb.KV(address, grpc.credentials.createInsecure());
    this.watch = new this.#package.etcdserverpb.Watch(address, grpc.credentials.createInsecure());
  }

  #unary(method: "Put" | "Range", request: Message): Promise<Message> {
    return new Promise((resolve, reject) => {
      this.kv[method](request, { deadline: Date.now() + 15_000 }, (error: Error | null, response: Message) => (error ? reject(error) : resolve(response)));
    });
  }

  /** Puts `key`; returns the revision of the write. */
  async put(key: string, value = "v"): Promise<number> {
    return Number((await this.#unary("Put", { key: b64(key), value: b64(value) })).header.revision);
  }

  /** The store's current revision, as a read's header reports it. */
  async revision(): Promise<number> {
    return Number((await this.#unary("Range", { key: b64("no-such-key") })).header.revision);
  }

  /** One Watch stream; every response is appended to `messages`. */
  openStream(): { call: grpc.ClientDuplexStream<Message, Message>; messages: Message[]; errors: string[] } {
    const call = this.watch.Watch() as grpc.ClientDuplexStream<Message, Message>;
    const messages: Message[] = [];
    const errors: string[] = [];
    call.on("data", (message: Message) => messages.push(message));
    call.on("error", (error: Error) => {
      if (!/CANCELLED/.test(error.message)) errors.push(error.message);
    });
    return { call, messages, errors };
  }

  close(): void {
    this.kv.close();
    this.watch.close();
  }
}

/**
 * Waits (bounded) for a progress response for watch `id` whose revision is the store's current one.
 * The revision is read before and after the response arrives; a write between the two (pgraft and
 * etcd write nothing of their own while idle, so this should not happen) makes it wait for the next.
 */
async function currentProgress(t: ExecutionContext, clients: Clients, messages: Message[], id: string, from: number): Promise<{ message: Message; index: number }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = await clients.revision();
    const found = await waitFor(clients.target, messages, `progress notification for watch ${id}`, (message) => isProgress(message) && watchIdOf(message) === id, from);
    const after = await clients.revision();
    if (before === after) {
      t.is(Number(found.message.header.revision), after, `${clients.target.name}: a progress notification carries the current revision`);
      return found;
    }
    from = found.index + 1;
  }
  throw new Error(`${clients.target.name}: the store's revision kept changing while the suite waited for a progress notification`);
}

compat("gRPC: a progress_notify watch gets progress notifications at the current revision while idle; a watch without it gets none", async (t, target) => {
  const clients = new Clients(target);
  t.teardown(() => clients.close());
  const { call, messages, errors } = clients.openStream();
  t.teardown(() => call.cancel());
  call.write({ create_request: { key: b64("pn/a"), progress_notify: true } });
  const created = await waitFor(target, messages, "created answer for the progress_notify watch", (message) => message.created === true);
  call.write({ create_request: { key: b64("pn/b") } });
  const createdPlain = await waitFor(target, messages, "created answer for the second watch", (message) => message.created === true, created.index + 1);
  const notifying = watchIdOf(created.message);
  const plain = watchIdOf(createdPlain.message);
  t.not(notifying, plain, `${target.name}: two watches on one stream have different ids`);

  // An event first, so the notifications below must report a revision past the watch's creation.
  const written = await clients.put("pn/a");
  const event = await waitFor(target, messages, "event for pn/a", (message) => eventKeys(message).includes("pn/a"));
  const first = await currentProgress(t, clients, messages, notifying, event.index + 1);
  t.true(Number(first.message.header.revision) >= written, `${target.name}: the progress revision is at or past the last write`);
  const second = await currentProgress(t, clients, messages, notifying, first.index + 1);
  const toPlain = messages.filter((message) => isProgress(message) && watchIdOf(message) === plain);
  t.deepEqual(toPlain, [], `${target.name}: the watch without progress_notify got no progress notification`);
  t.deepEqual(errors, [], `${target.name}: the stream reported no error`);
  return {
    created: [shape(created.message), shape(createdPlain.message)],
    ids: [notifying, plain],
    event: shape(event.message),
    progress: [shape(first.message), shape(second.message)],
  };
});

compat("gRPC: a progress_request is answered with watch_id -1 and the current revision", async (t, target) => {
  const clients = new Clients(target);
  t.teardown(() => clients.close());
  const { call, messages, errors } = clients.openStream();
  t.teardown(() => call.cancel());
  call.write({ create_request: { key: b64("pr/a") } });
  const created = await waitFor(target, messages, "created answer", (message) => message.created === true);
  const written = await clients.put("pr/a");
  await waitFor(target, messages, "event for pr/a", (message) => eventKeys(message).includes("pr/a"));
  const from = messages.length;
  call.write({ progress_request: {} });
  const answer = await waitFor(target, messages, "answer to the progress_request", (message) => message.watch_id === "-1", from);
  t.true(isProgress(answer.message), `${target.name}: the answer carries no events and is no create or cancel answer`);
  t.is(Number(answer.message.header.revision), written, `${target.name}: the answer carries the revision of the last write`);
  t.is(await clients.revision(), written, `${target.name}: nothing else was written meanwhile`);
  // A second request on the same stream is answered the same way.
  call.write({ progress_request: {} });
  const again = await waitFor(target, messages, "answer to the second progress_request", (message) => message.watch_id === "-1", answer.index + 1);
  t.is(Number(again.message.header.revision), written, `${target.name}: the second answer carries the same revision`);
  t.deepEqual(errors, [], `${target.name}: the stream reported no error`);
  return { created: shape(created.message), progress: [shape(answer.message), shape(again.message)] };
});

compat("gRPC: a cancel answers canceled with the watch_id, stops that watch's events, and the stream's other watches go on", async (t, target) => {
  const clients = new Clients(target);
  t.teardown(() => clients.close());
  const { call, messages, errors } = clients.openStream();
  t.teardown(() => call.cancel());
  const ids: string[] = [];
  for (const key of ["ca/0", "ca/1", "ca/2"]) {
    const from = messages.length;
    call.write({ create_request: { key: b64(key) } });
    ids.push(watchIdOf((await waitFor(target, messages, `created answer for ${key}`, (message) => message.created === true, from)).message));
  }
  t.is(new Set(ids).size, 3, `${target.name}: three watches, three ids`);

  // Cancel the middle watch (a non-zero id), then an id the stream does not have; the progress answer
  // after them shows that the unknown id got no answer of its own.
  let from = messages.length;
  call.write({ cancel_request: { watch_id: ids[1] } });
  call.write({ cancel_request: { watch_id: "99" } });
  call.write({ progress_request: {} });
  const canceled = await waitFor(target, messages, `canceled answer for watch ${ids[1]}`, (message) => message.canceled === true, from);
  const progress = await waitFor(target, messages, "answer to the progress_request", (message) => message.watch_id === "-1", from);
  const between = messages.slice(from, progress.index + 1);
  t.is(watchIdOf(canceled.message), ids[1], `${target.name}: the canceled answer names the canceled watch`);
  t.deepEqual(between.filter(isControl).map(watchIdOf), [ids[1]], `${target.name}: only the known watch's cancel was answered`);

  // Writes to every key: the canceled watch sees nothing, the others see theirs.
  from = messages.length;
  for (const key of ["ca/1", "ca/0", "ca/2"]) await clients.put(key);
  await waitFor(target, messages, "event for ca/0", (message) => eventKeys(message).includes("ca/0"), from);
  await waitFor(target, messages, "event for ca/2", (message) => eventKeys(message).includes("ca/2"), from);
  await sleep(QUIET_WAIT_MS);
  const afterCancel = messages.slice(canceled.index + 1);
  t.deepEqual(afterCancel.filter((message) => eventKeys(message).includes("ca/1")), [], `${target.name}: no event for the canceled watch's key`);
  t.deepEqual(afterCancel.filter((message) => watchIdOf(message) === ids[1]), [], `${target.name}: nothing more for the canceled watch`);

  // Cancel the first watch (id 0), and write again: only the last watch still hears.
  from = messages.length;
  call.write({ cancel_request: { watch_id: ids[0] } });
  const canceledFirst = await waitFor(target, messages, `canceled answer for watch ${ids[0]}`, (message) => message.canceled === true, from);
  t.is(watchIdOf(canceledFirst.message), ids[0], `${target.name}: the canceled answer is for the first watch`);
  from = messages.length;
  for (const key of ["ca/0", "ca/1", "ca/2"]) await clients.put(key);
  const lastEvent = await waitFor(target, messages, "second event for ca/2", (message) => eventKeys(message).includes("ca/2"), from);
  await sleep(QUIET_WAIT_MS);
  const late = messages.slice(from).filter((message) => eventsOf(message).length > 0);
  t.deepEqual(late.flatMap(eventKeys), ["ca/2"], `${target.name}: after both cancels only ca/2's watch hears its write`);
  t.deepEqual(errors, [], `${target.name}: the stream reported no error`);
  return {
    ids,
    canceled: [shape(canceled.message), shape(canceledFirst.message)],
    progress: shape(progress.message),
    lastEvent: shape(lastEvent.message),
  };
});

/** etcdctl 3.4's interactive watch, driven line by line through its stdin. */
function interactiveWatch(target: Target): { send(line: string): void; end(): Promise<number | null>; stdout(): string; stderr(): string } {
  const child = spawn("etcdctl", [`--endpoints=${target.endpoints.join(",")}`, "watch", "-i", "-w", "json"], {
    env: { ...process.env, ETCDCTL_API: "3" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return {
    send: (line) => void child.stdin.write(`${line}\n`),
    end: async () => {
      child.stdin.end();
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    stdout: () => stdout,
    stderr: () => stderr,
  };
}

async function waitForText(target: Target, read: () => string, pattern: RegExp, what: string): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ARRIVAL_WAIT_MS_MAX;
  for (;;) {
    const match = read().match(pattern);
    if (match !== null) return match;
    if (Date.now() > deadline) throw new Error(`${target.name}: etcdctl printed no ${what} within ${ARRIVAL_WAIT_MS_MAX} ms; it printed ${JSON.stringify(read())}`);
    await sleep(20);
  }
}

compat("etcdctl watch -i: `progress` prints the current revision, events keep coming, and 3.4 has no `cancel`", async (t, target) => {
  const clients = new Clients(target);
  t.teardown(() => clients.close());
  const first = await clients.put("ctl/a", "1");
  const watch = interactiveWatch(target);
  // From the revision of the write: its event shows the watch is in place, with no timing involved.
  watch.send(`watch ctl/a --rev=${first}`);
  await waitForText(target, watch.stdout, new RegExp(`"mod_revision":${first}\\b`), "event for the first write");
  watch.send("progress");
  const progress = await waitForText(target, watch.stdout, /progress notify: (\d+)/, "progress notification");
  t.is(Number(progress[1]), await clients.revision(), `${target.name}: etcdctl's progress line shows the current revision`);
  const second = await clients.put("ctl/a", "2");
  await waitForText(target, watch.stdout, new RegExp(`"mod_revision":${second}\\b`), "event for the second write");
  watch.send("cancel 0");
  const refused = await waitForText(target, watch.stderr, /Invalid command cancel 0[^\n]*/, "refusal of `cancel`");
  const code = await watch.end();
  const lines = watch.stdout().split("\n").filter((line) => line.trim() !== "");
  const normalized = lines.map((line) => {
    if (line.startsWith("progress notify:")) return "progress notify: <revision>";
    // etcdctl's JSON has uint64 ids as bare numbers: quote every integer so JSON.parse keeps them.
    const json = JSON.parse(line.replace(/([:[,])(-?\d+)(?=[,}\]])/g, '$1"$2"')) as Message;
    return `${shape(json)} events=${(json.Events as unknown[] | undefined)?.length ?? 0}`;
  });
  return { stdout: normalized, refused: refused[0], code, lastStderr: watch.stderr().trim().split("\n").at(-1) };
});

/** POST /v3/watch with `body` (the whole request at once, as gateway clients send it); lines under "result" go to `messages`. */
function gatewayWatch(target: Target, body: string, signal: AbortSignal): { messages: Message[]; errors: string[]; status: Promise<number> } {
  const messages: Message[] = [];
  const errors: string[] = [];
  const status = (async () => {
    const response = await fetch(`${target.endpoints[0]}/v3/watch`, { method: "POST", headers: { "content-type": "application/json" }, body, signal });
    void (async () => {
      try {
        await readJsonLines(response.body!, (parsed: { result?: Message; error?: unknown }, line) => {
          if (parsed.result !== undefined) messages.push(parsed.result);
          else errors.push(line);
        });
      } catch (error) {
        if (!signal.aborted) errors.push((error as Error).message);
      }
    })();
    return response.status;
  })();
  return { messages, errors, status };
}

compat("gateway: create with progress_notify, create, progress_request and cancel in one body; progress notifications follow", async (t, target) => {
  const clients = new Clients(target);
  t.teardown(() => clients.close());
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const current = await clients.revision();
  const body = [
    { create_request: { key: b64("gw/a"), progress_notify: true } },
    { create_request: { key: b64("gw/b"), watch_id: "7" } },
    { progress_request: {} },
    { cancel_request: { watch_id: "7" } },
  ].map((message) => JSON.stringify(message)).join("");
  const { messages, errors, status } = gatewayWatch(target, body, abort.signal);
  t.is(await status, 200, `${target.name}: the watch stream answers 200`);
  const createdA = await waitFor(target, messages, "created answer for gw/a", (message) => message.created === true);
  const createdB = await waitFor(target, messages, "created answer for gw/b", (message) => message.created === true, createdA.index + 1);
  const progress = await waitFor(target, messages, "answer to the progress_request", (message) => message.watch_id === "-1");
  const canceled = await waitFor(target, messages, "canceled answer", (message) => message.canceled === true);
  t.is(watchIdOf(createdB.message), "7", `${target.name}: the watch_id the client chose is used`);
  t.is(watchIdOf(canceled.message), "7", `${target.name}: the canceled answer names watch 7`);
  t.is(Number(progress.message.header.revision), current, `${target.name}: the progress answer carries the current revision`);
  const controls = messages.filter((message) => isControl(message) || message.watch_id === "-1").map((message) => `${watchIdOf(message)}:${message.created ? "created" : message.canceled ? "canceled" : "progress"}`);

  const from = messages.length;
  await clients.put("gw/b");
  const written = await clients.put("gw/a");
  const event = await waitFor(target, messages, "event for gw/a", (message) => eventKeys(message).includes("gw/a"), from);
  t.is(watchIdOf(event.message), watchIdOf(createdA.message), `${target.name}: the event is for the gw/a watch`);
  const notification = await currentProgress(t, clients, messages, watchIdOf(createdA.message), event.index + 1);
  t.true(Number(notification.message.header.revision) >= written, `${target.name}: the notification is at or past the last write`);
  await sleep(QUIET_WAIT_MS);
  t.deepEqual(messages.filter((message) => eventKeys(message).includes("gw/b")), [], `${target.name}: no event for the canceled watch's key`);
  t.deepEqual(messages.filter((message) => watchIdOf(message) === "7" && !isControl(message)), [], `${target.name}: nothing but its create and cancel answers for watch 7`);
  t.deepEqual(errors, [], `${target.name}: the stream reported no error`);
  abort.abort();
  return {
    controls,
    created: [shape(createdA.message), shape(createdB.message)],
    progress: shape(progress.message),
    canceled: shape(canceled.message),
    event: shape(event.message),
    notification: shape(notification.message),
  };
});
