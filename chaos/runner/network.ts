/**
 * The Raft links of a chaos run, one Toxiproxy proxy per ordered pair of nodes, driven only through
 * toxiproxy-node-client so that a real Toxiproxy works in place of chaos/toxiproxy unchanged.
 *
 * Proxy (i, j) listens on a port of its own (127.0.0.1:0, bound by the server) and forwards to j's peer
 * listener; node i's pgraft.initial_cluster names that proxy as j's address. Node i sends to j only on
 * the connection it dialed, so the upstream stream of proxy (i, j) carries exactly i's messages to j:
 *
 * - drop (cut, partition, isolate, hold): a `timeout` toxic, timeout 0, on the upstream of (i, j);
 * - link conditions: a `latency` toxic (latency, jitter) on the upstream of (i, j);
 * - the file's `network` baseline: a `latency` toxic named "baseline" on every proxy;
 * - heal: every toxic this run added is removed, and the baseline put back. (POST /reset would also
 *   re-enable other runs' proxies on a shared Toxiproxy, so it is not used.)
 *
 * Proxy names carry the run's tag ("pgraft-<tag>-n1-n2") so runs sharing one Toxiproxy never collide.
 */
import { Toxiproxy, type Proxy, type Toxic } from "toxiproxy-node-client";
import type { NetworkConditions } from "../../sim/scenario/index.ts";

export type DropKind = "drop" | "hold";

interface Link {
  readonly from: number;
  readonly to: number;
  readonly proxy: Proxy;
  /** host:port the proxy listens on (what `from` dials for `to`). */
  readonly listen: string;
  readonly toxics: Map<string, Toxic<unknown>>;
}

/** What the run records for each proxy action. */
export interface LinkAction {
  readonly proxy: string;
  readonly toxic: string;
  readonly change: "added" | "removed" | "kept";
}

export class LinkFaults {
  readonly client: Toxiproxy;
  readonly #tag: string;
  readonly #links = new Map<string, Link>();
  #baseline: NetworkConditions;

  constructor(toxiproxyUrl: string, tag: string, baseline: NetworkConditions) {
    this.client = new Toxiproxy(toxiproxyUrl);
    this.#tag = tag;
    this.#baseline = baseline;
  }

  /** The proxy name of (from, to). */
  proxyName(from: number, to: number): string {
    return `pgraft-${this.#tag}-n${from}-n${to}`;
  }

  /**
   * Whether the pair has a proxy. Every pair has one, except links into a node added at run time when
   * the provider cannot redirect dials (runner/joiners.ts): those members reach it directly.
   */
  has(from: number, to: number): boolean {
    return this.#links.has(key(from, to));
  }

  /** The address `from` must dial for `to`. */
  listenAddress(from: number, to: number): string {
    const link = this.#links.get(key(from, to));
    if (link === undefined) throw new Error(`Cannot route n${from} -> n${to}: no proxy was created for that pair`);
    return link.listen;
  }

  /** Creates proxy (from, to) forwarding to `upstream` (host:port), with the baseline latency. */
  async createLink(from: number, to: number, upstream: string): Promise<void> {
    if (this.has(from, to)) return;
    const name = this.proxyName(from, to);
    const proxy = await this.client.createProxy({ name, listen: "127.0.0.1:0", upstream });
    const link: Link = { from, to, proxy, listen: proxy.listen, toxics: new Map() };
    this.#links.set(key(from, to), link);
    await this.#addBaseline(link);
  }

  /** Stops i's messages to j (cut, partition, isolate: "drop"; hold: "hold"). */
  async drop(from: number, to: number, kind: DropKind): Promise<LinkAction> {
    const link = this.#link(from, to);
    const name = kind;
    if (link.toxics.has(name)) return { proxy: link.proxy.name, toxic: name, change: "kept" };
    const toxic = await link.proxy.addToxic<{ timeout: number }>({ name, type: "timeout", stream: "upstream", toxicity: 1, attributes: { timeout: 0 } });
    link.toxics.set(name, toxic as Toxic<unknown>);
    return { proxy: link.proxy.name, toxic: name, change: "added" };
  }

  /** Lets i's messages to j through again (release of a hold). */
  async undrop(from: number, to: number, kind: DropKind): Promise<LinkAction> {
    const link = this.#link(from, to);
    const toxic = link.toxics.get(kind);
    if (toxic === undefined) return { proxy: link.proxy.name, toxic: kind, change: "kept" };
    await toxic.remove();
    link.toxics.delete(kind);
    return { proxy: link.proxy.name, toxic: kind, change: "removed" };
  }

  /** Degrades i -> j: latency and jitter from `conditions`, the baseline's where a field is left out. */
  async degrade(from: number, to: number, conditions: Partial<NetworkConditions>): Promise<LinkAction> {
    const link = this.#link(from, to);
    const latency = Math.round(conditions.latencyMs ?? this.#baseline.latencyMs);
    const jitter = Math.round(conditions.jitterMs ?? this.#baseline.jitterMs);
    // The baseline is replaced, not added to: the step's numbers are the link's, as in the simulator.
    const baseline = link.toxics.get("baseline");
    if (baseline !== undefined) {
      await baseline.remove();
      link.toxics.delete("baseline");
    }
    const existing = link.toxics.get("link");
    if (existing !== undefined) {
      await existing.remove();
      link.toxics.delete("link");
    }
    const toxic = await link.proxy.addToxic<{ latency: number; jitter: number }>({ name: "link", type: "latency", stream: "upstream", toxicity: 1, attributes: { latency, jitter } });
    link.toxics.set("link", toxic as Toxic<unknown>);
    return { proxy: link.proxy.name, toxic: `link latency ${latency}ms jitter ${jitter}ms`, change: "added" };
  }

  /** Removes every fault toxic and restores the baseline on every link. */
  async heal(): Promise<LinkAction[]> {
    const actions: LinkAction[] = [];
    for (const link of this.#links.values()) {
      for (const [name, toxic] of [...link.toxics]) {
        if (name === "baseline") continue;
        await toxic.remove();
        link.toxics.delete(name);
        actions.push({ proxy: link.proxy.name, toxic: name, change: "removed" });
      }
      if (!link.toxics.has("baseline")) await this.#addBaseline(link);
    }
    return actions;
  }

  /** The toxics in place now, per proxy (for the recording). */
  activeToxics(): Record<string, string[]> {
    const active: Record<string, string[]> = {};
    for (const link of this.#links.values()) {
      const names = [...link.toxics.keys()].filter((name) => name !== "baseline");
      if (names.length > 0) active[link.proxy.name] = names;
    }
    return active;
  }

  /** Deletes every proxy of this run (best effort: a server already gone is fine). */
  async close(): Promise<void> {
    const links = [...this.#links.values()];
    this.#links.clear();
    await Promise.all(links.map((link) => link.proxy.remove().catch(() => undefined)));
  }

  async #addBaseline(link: Link): Promise<void> {
    const latency = Math.round(this.#baseline.latencyMs);
    const jitter = Math.round(this.#baseline.jitterMs);
    if (latency === 0 && jitter === 0) return;
    const toxic = await link.proxy.addToxic<{ latency: number; jitter: number }>({
      name: "baseline",
      type: "latency",
      stream: "upstream",
      toxicity: 1,
      attributes: { latency, jitter: Math.min(jitter, latency) },
    });
    link.toxics.set("baseline", toxic as Toxic<unknown>);
  }

  #link(from: number, to: number): Link {
    const link = this.#links.get(key(from, to));
    if (link === undefined) {
      throw new Error(
        `Cannot change the link n${from} -> n${to}: it has no proxy (a node added at run time is reached at the address in its configuration entry, which all members share, and this provider cannot redirect each member's dials to a proxy of its own; runner/support.ts should have refused the step)`,
      );
    }
    return link;
  }
}

function key(from: number, to: number): string {
  return `${from}>${to}`;
}
