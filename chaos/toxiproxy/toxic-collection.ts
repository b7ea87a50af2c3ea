/**
 * A proxy's toxics (the real server's ToxicCollection): one ordered chain per direction, and every live
 * link of the proxy's open connections, so that adding, updating, removing or resetting toxics changes
 * the connections already open, not only the ones opened later. Toxic names are unique across both
 * directions; the list the API shows is the upstream chain, then the downstream one.
 */
import { assert } from "../../src/assert.ts";
import { limitReached, toxicAlreadyExists, toxicNotFound } from "./api-error.ts";
import { Link, type LinkEnds } from "./link.ts";
import type { StageEnvironment } from "./stage.ts";
import { parseToxicCreate, parseToxicUpdate, type Stream, type ToxicSpec } from "./toxic-spec.ts";

/** Toxics on one proxy, both directions together. */
export const PROXY_TOXICS_MAX = 64;

export class ToxicCollection {
  readonly #proxyName: string;
  readonly #environment: StageEnvironment;
  readonly #chains: Record<Stream, ToxicSpec[]> = { upstream: [], downstream: [] };
  readonly #links = new Set<Link>();

  constructor(proxyName: string, environment: StageEnvironment) {
    this.#proxyName = proxyName;
    this.#environment = environment;
  }

  /** Upstream toxics first, then downstream, each in chain order. */
  list(): ToxicSpec[] {
    return [...this.#chains.upstream, ...this.#chains.downstream];
  }

  /** Live links (two per open connection). */
  get linkCount(): number {
    return this.#links.size;
  }

  get(name: string): ToxicSpec {
    const found = this.#find(name);
    if (found === undefined) throw toxicNotFound(name, this.#proxyName);
    return found;
  }

  add(body: unknown): ToxicSpec {
    const spec = parseToxicCreate(body);
    if (this.#find(spec.name) !== undefined) throw toxicAlreadyExists(spec.name, this.#proxyName);
    if (this.list().length >= PROXY_TOXICS_MAX) {
      throw limitReached(`bad request body: proxy ${JSON.stringify(this.#proxyName)} already has ${PROXY_TOXICS_MAX} toxics, the most this server allows: remove one first`);
    }
    this.#chains[spec.stream].push(spec);
    for (const link of this.#links) if (link.stream === spec.stream) link.addToxic(spec);
    return spec;
  }

  update(name: string, body: unknown): ToxicSpec {
    const existing = this.get(name);
    const updated = parseToxicUpdate(existing, body);
    const chain = this.#chains[existing.stream];
    const index = chain.indexOf(existing);
    assert(index >= 0, `ToxicCollection.update(): toxic ${name} is not in its ${existing.stream} chain`);
    chain[index] = updated;
    for (const link of this.#links) if (link.stream === updated.stream) link.updateToxic(updated);
    return updated;
  }

  remove(name: string): void {
    const existing = this.get(name);
    const chain = this.#chains[existing.stream];
    chain.splice(chain.indexOf(existing), 1);
    for (const link of this.#links) if (link.stream === existing.stream) link.removeToxic(name);
  }

  /** Removes every toxic, from open connections too (POST /reset). */
  reset(): void {
    for (const spec of this.list()) this.remove(spec.name);
    assert(this.list().length === 0, "ToxicCollection.reset(): toxics left after removing all");
  }

  /** A link for a new connection, with the toxics in force now; it follows every later change. */
  createLink(stream: Stream, ends: LinkEnds): Link {
    const link = new Link({ stream, toxics: [...this.#chains[stream]], environment: this.#environment, ends });
    this.#links.add(link);
    return link;
  }

  releaseLink(link: Link): void {
    this.#links.delete(link);
  }

  #find(name: string): ToxicSpec | undefined {
    return this.#chains.upstream.find((spec) => spec.name === name) ?? this.#chains.downstream.find((spec) => spec.name === name);
  }
}
