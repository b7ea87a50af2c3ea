/**
 * Every proxy of one server (the real server's ProxyCollection), and the operations the API offers on
 * them, without HTTP: create, update, delete, populate, reset. Bodies arrive as parsed JSON of unknown
 * shape and are checked here; a bad one is an ApiError with the real server's status and message kind.
 *
 * Callers run these operations one at a time (server.ts queues requests), as the real server's locks
 * make them, so no operation sees another half done.
 */
import { assert } from "../../src/assert.ts";
import { badRequestBody, limitReached, missingField, proxyAlreadyExists, proxyNotFound } from "./api-error.ts";
import { Proxy } from "./proxy.ts";
import type { StageEnvironment } from "./stage.ts";
import { NAME_LENGTH_MAX } from "./toxic-spec.ts";

/** Proxies on one server. */
export const PROXIES_MAX = 1000;

export interface ProxyCollectionOptions {
  readonly environment: StageEnvironment;
  readonly allowNonLoopback: boolean;
  readonly onLog?: (line: string) => void;
}

interface ProxyInput {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
}

export class ProxyCollection {
  readonly #options: ProxyCollectionOptions;
  readonly #proxies = new Map<string, Proxy>();

  constructor(options: ProxyCollectionOptions) {
    this.#options = options;
  }

  /** By name, as Go's JSON encoding orders a map's keys. */
  list(): Proxy[] {
    return [...this.#proxies.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): Proxy {
    const proxy = this.#proxies.get(name);
    if (proxy === undefined) throw proxyNotFound(name);
    return proxy;
  }

  /** POST /proxies: `name` and `upstream` required, `enabled` defaults to true. */
  async create(body: unknown): Promise<Proxy> {
    const input = readProxyInput(body, "");
    if (this.#proxies.has(input.name)) throw proxyAlreadyExists(input.name);
    this.#checkRoom(1);
    const proxy = this.#newProxy(input);
    if (input.enabled) await proxy.start();
    this.#proxies.set(proxy.name, proxy);
    return proxy;
  }

  /** POST|PATCH /proxies/{proxy}: omitted fields keep their values. */
  async update(name: string, body: unknown): Promise<Proxy> {
    const proxy = this.get(name);
    const fields = requireObject(body, "a proxy update");
    await proxy.update({
      listen: optionalString(fields, "listen") ?? proxy.listen,
      upstream: optionalString(fields, "upstream") ?? proxy.upstream,
      enabled: optionalBoolean(fields, "enabled") ?? proxy.enabled,
    });
    return proxy;
  }

  delete(name: string): void {
    const proxy = this.get(name);
    proxy.stop();
    this.#proxies.delete(name);
  }

  /**
   * POST /populate: checks every entry first, then for each, keeps an existing proxy of that name whose
   * listen and upstream are the same, or replaces it (stopped, toxics gone) if they differ.
   */
  async populate(body: unknown): Promise<Proxy[]> {
    if (!Array.isArray(body)) throw badRequestBody(`populate takes a JSON array of proxies, got ${body === undefined ? "no body" : body === null ? "null" : typeof body}`);
    const inputs = body.map((entry, index) => readProxyInput(entry, ` at proxy ${index + 1}`));
    const names = new Set<string>();
    for (const [index, input] of inputs.entries()) {
      if (names.has(input.name)) throw badRequestBody(`duplicate proxy name ${JSON.stringify(input.name)} at proxy ${index + 1}`);
      names.add(input.name);
      this.#newProxy(input); // checks its addresses, so a bad entry changes nothing
    }
    this.#checkRoom(inputs.filter((input) => !this.#proxies.has(input.name)).length);
    const result: Proxy[] = [];
    for (const input of inputs) result.push(await this.#addOrReplace(input));
    return result;
  }

  /** POST /reset: every proxy enabled again and every toxic removed, from open connections too. */
  async reset(): Promise<void> {
    for (const proxy of this.list()) {
      await proxy.start();
      proxy.toxics.reset();
    }
  }

  /** Stops every proxy and forgets them (server shutdown). */
  close(): void {
    for (const proxy of this.#proxies.values()) proxy.stop();
    this.#proxies.clear();
  }

  async #addOrReplace(input: ProxyInput): Promise<Proxy> {
    const existing = this.#proxies.get(input.name);
    if (existing !== undefined) {
      if (existing.listen === input.listen && existing.upstream === input.upstream) return existing;
      existing.stop();
    }
    const proxy = this.#newProxy(input);
    if (input.enabled) await proxy.start();
    this.#proxies.set(proxy.name, proxy);
    return proxy;
  }

  #newProxy(input: ProxyInput): Proxy {
    return new Proxy({
      name: input.name,
      listen: input.listen,
      upstream: input.upstream,
      environment: this.#options.environment,
      allowNonLoopback: this.#options.allowNonLoopback,
      ...(this.#options.onLog === undefined ? {} : { onLog: this.#options.onLog }),
    });
  }

  #checkRoom(added: number): void {
    assert(added >= 0, "ProxyCollection: a negative number of proxies to add");
    if (this.#proxies.size + added > PROXIES_MAX) {
      throw limitReached(`bad request body: this server holds at most ${PROXIES_MAX} proxies and has ${this.#proxies.size}: delete some first`);
    }
  }
}

function requireObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    const got = body === undefined ? "no body" : Array.isArray(body) ? "an array" : body === null ? "null" : typeof body;
    throw badRequestBody(`${what} must be a JSON object, got ${got}`);
  }
  return body as Record<string, unknown>;
}

function optionalString(fields: Record<string, unknown>, field: string): string | undefined {
  const value = fields[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badRequestBody(`${field} must be a string, got ${typeof value}`);
  return value;
}

function optionalBoolean(fields: Record<string, unknown>, field: string): boolean | undefined {
  const value = fields[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw badRequestBody(`${field} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** A proxy body for create or populate; `where` (" at proxy 3") locates a populate entry. */
function readProxyInput(body: unknown, where: string): ProxyInput {
  const fields = requireObject(body, `a proxy${where}`);
  const name = optionalString(fields, "name") ?? "";
  if (name === "") throw missingField(`name${where}`);
  if (name.length > NAME_LENGTH_MAX) throw badRequestBody(`name${where} must be at most ${NAME_LENGTH_MAX} characters, got ${name.length}`);
  const upstream = optionalString(fields, "upstream") ?? "";
  if (upstream === "") throw missingField(`upstream${where}`);
  return { name, upstream, listen: optionalString(fields, "listen") ?? "", enabled: optionalBoolean(fields, "enabled") ?? true };
}
