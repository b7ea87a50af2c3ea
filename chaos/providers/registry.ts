/**
 * Cluster providers by name (`npm run chaos -- --provider NAME`). Each module is imported only when it
 * is chosen, so a provider's dependencies (testcontainers, a Docker engine) cost nothing otherwise.
 * A provider module exports `createProvider: ProviderFactory` (chaos/providers/provider.ts).
 */
import type { ProviderFactory } from "./provider.ts";

/**
 * What a provider module exports. `setup` (optional) prepares what the provider needs once per
 * machine (a container engine, an image), saying what it does through `note`; `npm run chaos -- --setup
 * --provider NAME` calls it.
 */
export interface ProviderModule {
  readonly createProvider: ProviderFactory;
  readonly setup?: (options: { readonly projectRoot: string; readonly note: (line: string) => void }) => Promise<void>;
}

const PROVIDERS: Readonly<Record<string, () => Promise<ProviderModule>>> = {
  local: () => import("./local.ts"),
  // The module path is built at run time so the type check does not require the file to exist yet.
  testcontainers: () => import(/* @vite-ignore */ `./${"testcontainers"}.ts`) as Promise<ProviderModule>,
};

export const PROVIDER_NAMES: readonly string[] = Object.keys(PROVIDERS);
export const DEFAULT_PROVIDER = "local";

/** The module of provider `name`; throws a message listing the known names for an unknown one. */
export async function loadProvider(name: string): Promise<ProviderModule> {
  const load = PROVIDERS[name];
  if (load === undefined) {
    throw new Error(`Cannot use provider ${JSON.stringify(name)}: no such provider; use one of ${PROVIDER_NAMES.join(", ")}`);
  }
  let module: ProviderModule;
  try {
    module = await load();
  } catch (error) {
    throw new Error(`Cannot load provider ${JSON.stringify(name)}: ${(error as Error).message}; is chaos/providers/${name}.ts present?`);
  }
  if (typeof module.createProvider !== "function") {
    throw new Error(`Cannot use provider ${JSON.stringify(name)}: chaos/providers/${name}.ts does not export createProvider`);
  }
  return module;
}
