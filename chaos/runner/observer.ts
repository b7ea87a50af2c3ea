/**
 * What an operator sees, sampled: every node's /health (role, term, leader, whether a quorum backs a
 * leader, commit and applied indexes) polled in parallel at a fixed interval. A node that does not
 * answer within the poll timeout (crashed, paused, starting) is not running for that sample, as
 * `pgraft_is_leader()` would not answer either. With PostgreSQL, `sqlProbe` adds the guide's SQL view
 * of each node (pgraft_is_leader(), pgraft_get_term()) to the sample, and the two must agree.
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
}

export const POLL_INTERVAL_MS = 100;
export const POLL_TIMEOUT_MS = 400;
/** Samples kept: an hour at the poll interval. */
export const SAMPLES_MAX = 36_000;

export function getJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown } | undefined> {
  return new Promise((resolve) => {
    const target = new URL(url);
    let done = false;
    const finish = (value: { status: number; body: unknown } | undefined): void => {
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
      response.on("error", () => finish(undefined));
    });
    const timer = setTimeout(() => {
      request.destroy();
      finish(undefined);
    }, timeoutMs);
    request.on("error", () => finish(undefined));
    request.end();
  });
}

/** One node's /health, or undefined when it does not answer as a running node. */
export async function readHealth(clientUrl: string, timeoutMs = POLL_TIMEOUT_MS): Promise<NodeView | undefined> {
  const answer = await getJson(`${clientUrl}/health`, timeoutMs);
  if (answer === undefined || answer.status !== 200) return undefined;
  const body = answer.body as Record<string, unknown>;
  if (body.state !== "running") return undefined;
  return {
    role: String(body.role),
    term: Number(body.term ?? 0),
    leaderId: Number(body.leader_id ?? 0),
    quorumActive: body.quorum_active === true,
    commit: Number(body.commit ?? 0),
    applied: Number(body.applied ?? 0),
  };
}

export class Observer {
  readonly samples: Sample[] = [];
  #termMax = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<Sample> | undefined;
  readonly #startMs: number;

  constructor(
    readonly clientUrls: () => ReadonlyMap<number, string>,
    startMs: number,
    readonly intervalMs = POLL_INTERVAL_MS,
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
    const views = await Promise.all(entries.map(async ([id, url]) => [id, await readHealth(url)] as const));
    const sample = this.#sample(timeMs, views);
    if (this.samples.length < SAMPLES_MAX) this.samples.push(sample);
    return sample;
  }

  #sample(timeMs: number, views: readonly (readonly [number, NodeView | undefined])[]): Sample {
    const map = new Map<number, NodeView>();
    const terms = new Map<number, number>();
    const leaderRoles: { id: number; term: number }[] = [];
    let leader: number | undefined;
    for (const [id, view] of views) {
      if (view === undefined) continue;
      map.set(id, view);
      terms.set(id, view.term);
      this.#termMax = Math.max(this.#termMax, view.term);
      if (view.role === "leader") {
        leaderRoles.push({ id, term: view.term });
        if (view.quorumActive && (leader === undefined || view.term > terms.get(leader)!)) leader = id;
      }
    }
    return { timeMs, leader, leaderRoles, terms, termMax: this.#termMax, views: map };
  }
}
