/**
 * What an operator sees, sampled: every node's /health (role, term, leader, whether a quorum backs a
 * leader, commit and applied indexes) polled in parallel at a fixed interval. With PostgreSQL,
 * `sqlProbe` adds the guide's SQL view of each node (pgraft_is_leader(), pgraft_get_term()) to the
 * sample, and the two must agree.
 *
 * A node that refuses the connection or answers as not running is down for that sample. A node whose
 * poll times out is not necessarily down: on a loaded machine a node busy catching a follower up can
 * miss one poll. Unless the runner itself stopped it (crash, pause), such a node keeps its last view,
 * marked stale, for at most STALE_POLLS_MAX polls in a row; after that it is down. A stale leader leads
 * in the sample only while the nodes that did answer back it (one names it as leader of the same term)
 * and none reports a higher term, so a leader that is really gone still counts as none.
 */
import { performance } from "node:perf_hooks";
import { request as httpRequest } from "node:http";

export interface NodeView {
  readonly role: string;
  readonly term: number;
  readonly leaderId: number;
  readonly quorumActive: boolean;
  readonly commit: number;
  readonly applied: number;
}

/** One round of polls, as the simulator's Sample has it. */
export interface Sample {
  readonly timeMs: number;
  /** The node leading with a live quorum (/leader would answer 200), if any. */
  readonly leader: number | undefined;
  /** Answering nodes in the leader role, with or without a quorum. */
  readonly leaderRoles: readonly { readonly id: number; readonly term: number }[];
  /** The term of every answering node. */
  readonly terms: ReadonlyMap<number, number>;
  /** The highest term any node has reported so far. */
  readonly termMax: number;
  readonly views: ReadonlyMap<number, NodeView>;
  /** Nodes whose poll timed out and whose last view `views` holds instead (see the module comment). */
  readonly stale: ReadonlySet<number>;
}

/** One node's poll: a view, down (refused, not running), or no answer in time. */
export type Poll = { readonly kind: "view"; readonly view: NodeView } | { readonly kind: "down" } | { readonly kind: "timeout" };

export const POLL_INTERVAL_MS = 100;
export const POLL_TIMEOUT_MS = 400;
/** Samples kept: an hour at the poll interval. */
export const SAMPLES_MAX = 36_000;
/** Polls in a row a node not stopped by the runner may time out and keep its last view (about 1 s). */
export const STALE_POLLS_MAX = 2;

export async function getJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown } | undefined> {
  const answer = await requestJson(url, timeoutMs);
  return typeof answer === "string" ? undefined : answer;
}

/** A GET of `url`: its answer, "timeout" when none came within `timeoutMs`, or "error". */
export function requestJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown } | "timeout" | "error"> {
  return new Promise((resolve) => {
    const target = new URL(url);
    let done = false;
    const finish = (value: { status: number; body: unknown } | "timeout" | "error"): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(value);
    };
    const request = httpRequest({ host: target.hostname, port: target.port, path: target.pathname, method: "GET", agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        finish({ status: response.statusCode ?? 0, body });
      });
      response.on("error", () => finish("error"));
    });
    const timer = setTimeout(() => {
      request.destroy();
      finish("timeout");
    }, timeoutMs);
    request.on("error", () => finish("error"));
    request.end();
  });
}

/** One node's /health, or undefined when it does not answer as a running node. */
export async function readHealth(clientUrl: string, timeoutMs = POLL_TIMEOUT_MS): Promise<NodeView | undefined> {
  const poll = await pollHealth(clientUrl, timeoutMs);
  return poll.kind === "view" ? poll.view : undefined;
}

/** One node's /health as a Poll: a timeout is told apart from a refusal. */
export async function pollHealth(clientUrl: string, timeoutMs = POLL_TIMEOUT_MS): Promise<Poll> {
  const answer = await requestJson(`${clientUrl}/health`, timeoutMs);
  if (answer === "timeout") return { kind: "timeout" };
  if (answer === "error" || answer.status !== 200) return { kind: "down" };
  const body = answer.body as Record<string, unknown>;
  if (body.state !== "running") return { kind: "down" };
  return {
    kind: "view",
    view: {
      role: String(body.role),
      term: Number(body.term ?? 0),
      leaderId: Number(body.leader_id ?? 0),
      quorumActive: body.quorum_active === true,
      commit: Number(body.commit ?? 0),
      applied: Number(body.applied ?? 0),
    },
  };
}

/**
 * Turns rounds of polls into samples, remembering each node's last view and its timeouts in a row.
 * Pure (no I/O, no clock), so the rules of the module comment are tested directly.
 */
export class SampleBuilder {
  #termMax = 0;
  readonly #last = new Map<number, NodeView>();
  readonly #timeouts = new Map<number, number>();

  constructor(readonly stalePollsMax = STALE_POLLS_MAX) {
    if (!Number.isInteger(stalePollsMax) || stalePollsMax < 0) throw new RangeError(`Cannot build samples: stalePollsMax must be an integer >= 0, got ${stalePollsMax}`);
  }

  /** The sample of one round; `stopped(id)` is true for nodes the runner crashed or paused. */
  build(timeMs: number, polls: readonly (readonly [number, Poll])[], stopped: (id: number) => boolean): Sample {
    const fresh = new Map<number, NodeView>();
    const staleViews = new Map<number, NodeView>();
    for (const [id, poll] of polls) {
      if (poll.kind === "view") {
        fresh.set(id, poll.view);
        this.#last.set(id, poll.view);
        this.#timeouts.delete(id);
        continue;
      }
      const last = this.#last.get(id);
      const timeouts = (this.#timeouts.get(id) ?? 0) + 1;
      if (poll.kind === "timeout" && !stopped(id) && last !== undefined && timeouts <= this.stalePollsMax) {
        this.#timeouts.set(id, timeouts);
        staleViews.set(id, last);
        continue;
      }
      this.#last.delete(id);
      this.#timeouts.delete(id);
    }
    const freshTermMax = Math.max(0, ...[...fresh.values()].map((view) => view.term));
    let leader: number | undefined;
    const leaderRoles: { id: number; term: number }[] = [];
    for (const [id, view] of fresh) {
      if (view.role !== "leader") continue;
      leaderRoles.push({ id, term: view.term });
      if (view.quorumActive && (leader === undefined || view.term > fresh.get(leader)!.term)) leader = id;
    }
    for (const [id, view] of staleViews) {
      // A stale claim that a fresh, higher term contradicts is over.
      if (view.role !== "leader" || view.term < freshTermMax) continue;
      leaderRoles.push({ id, term: view.term });
      const backed = [...fresh].some(([other, seen]) => other !== id && seen.leaderId === id && seen.term === view.term);
      if (leader === undefined && view.quorumActive && backed) leader = id;
    }
    const views = new Map<number, NodeView>([...fresh, ...staleViews]);
    const terms = new Map<number, number>([...views].map(([id, view]) => [id, view.term]));
    for (const term of terms.values()) this.#termMax = Math.max(this.#termMax, term);
    return { timeMs, leader, leaderRoles, terms, termMax: this.#termMax, views, stale: new Set(staleViews.keys()) };
  }
}

export class Observer {
  readonly samples: Sample[] = [];
  readonly #builder = new SampleBuilder();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<Sample> | undefined;
  readonly #startMs: number;

  constructor(
    readonly clientUrls: () => ReadonlyMap<number, string>,
    startMs: number,
    readonly intervalMs = POLL_INTERVAL_MS,
    /** True for a node the runner crashed or paused: its timeouts are not a busy node's. */
    readonly stopped: (id: number) => boolean = () => false,
  ) {
    this.#startMs = startMs;
  }

  get latest(): Sample | undefined {
    return this.samples[this.samples.length - 1];
  }

  nowMs(): number {
    return performance.now() - this.#startMs;
  }

  start(): void {
    const tick = (): void => {
      void this.poll().finally(() => {
        if (this.#timer !== undefined) this.#timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.#timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Polls every node now (joining a poll already under way) and records the sample. */
  poll(): Promise<Sample> {
    if (this.#polling !== undefined) return this.#polling;
    this.#polling = this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  async #poll(): Promise<Sample> {
    const timeMs = this.nowMs();
    const entries = [...this.clientUrls()];
    const polls = await Promise.all(entries.map(async ([id, url]) => [id, await pollHealth(url)] as const));
    const sample = this.#builder.build(timeMs, polls, this.stopped);
    if (this.samples.length < SAMPLES_MAX) this.samples.push(sample);
    return sample;
  }
}
