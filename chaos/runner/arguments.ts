/**
 * The `npm run chaos` command line. Malformed or contradictory flags are refused with a message naming
 * the flag, what it received and what it takes (exit 2).
 */
import { DEFAULT_PROVIDER, PROVIDER_NAMES } from "../providers/registry.ts";

export class ChaosUsageError extends Error {
  override name = "ChaosUsageError";
}

export interface ChaosArguments {
  readonly scenarioPath: string | undefined;
  readonly provider: string;
  readonly seed: number | undefined;
  readonly repeat: number;
  readonly json: boolean;
  readonly toxiproxyUrl: string | undefined;
  readonly setup: boolean;
  /** PostgreSQL beside every node (the default); --no-postgres runs the nodes alone, for quick runs. */
  readonly postgres: boolean;
  /** Where recorded timelines go (a folder); default: <os temp dir>/pgraft-chaos-timelines. */
  readonly timelineDir: string | undefined;
  /** Timing slack for expectations (ms); undefined: the runner's default. */
  readonly slackMs: number | undefined;
}

export const CHAOS_USAGE =
  "Usage: npm run chaos -- --scenario FILE|DIR [--provider local|testcontainers] [--seed N] [--repeat N] [--json] [--toxiproxy-url URL] [--no-postgres] [--timeline-dir DIR] [--slack MS] | --setup [--provider NAME]";

export const REPEAT_MAX = 1000;

export function parseChaosArguments(argv: readonly string[]): ChaosArguments {
  let scenarioPath: string | undefined;
  let provider = DEFAULT_PROVIDER;
  let seed: number | undefined;
  let repeat = 1;
  let json = false;
  let toxiproxyUrl: string | undefined;
  let setup = false;
  let postgres = true;
  let timelineDir: string | undefined;
  let slackMs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined || next.startsWith("--")) throw new ChaosUsageError(`Missing value for ${flag}: ${CHAOS_USAGE}`);
      return next;
    };
    const integer = (min: number, max: number): number => {
      const text = value();
      const number = Number(text);
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(number) || number < min || number > max) {
        throw new ChaosUsageError(`Invalid value for ${flag}: "${text}" must be an integer from ${min} to ${max}`);
      }
      return number;
    };
    switch (flag) {
      case "--scenario":
        scenarioPath = value();
        break;
      case "--provider": {
        provider = value();
        if (!PROVIDER_NAMES.includes(provider)) throw new ChaosUsageError(`Invalid value for --provider: "${provider}" is not a provider; use one of ${PROVIDER_NAMES.join(", ")}`);
        break;
      }
      case "--seed":
        seed = integer(0, Number.MAX_SAFE_INTEGER);
        break;
      case "--repeat":
        repeat = integer(1, REPEAT_MAX);
        break;
      case "--json":
        json = true;
        break;
      case "--toxiproxy-url": {
        const text = value();
        let url: URL;
        try {
          url = new URL(text);
        } catch {
          throw new ChaosUsageError(`Invalid value for --toxiproxy-url: "${text}" is not a URL; use one like http://127.0.0.1:8474`);
        }
        if (url.protocol !== "http:") throw new ChaosUsageError(`Invalid value for --toxiproxy-url: "${text}" must be an http:// URL (Toxiproxy's API speaks plain HTTP)`);
        if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname) && !url.hostname.startsWith("127.")) {
          throw new ChaosUsageError(`Invalid value for --toxiproxy-url: "${text}" is not on loopback; chaos runs send traffic only to 127.0.0.0/8`);
        }
        toxiproxyUrl = text.replace(/\/+$/, "");
        break;
      }
      case "--setup":
        setup = true;
        break;
      case "--postgres":
        postgres = true;
        break;
      case "--no-postgres":
        postgres = false;
        break;
      case "--timeline-dir":
        timelineDir = value();
        break;
      case "--slack":
        slackMs = integer(0, 60_000);
        break;
      case "--help":
      case "-h":
        throw new ChaosUsageError(CHAOS_USAGE);
      default:
        throw new ChaosUsageError(`Unknown flag "${flag}": ${CHAOS_USAGE}`);
    }
  }
  if (!setup && scenarioPath === undefined) throw new ChaosUsageError(`Missing --scenario: name a scenario file or a folder of them; ${CHAOS_USAGE}`);
  return { scenarioPath, provider, seed, repeat, json, toxiproxyUrl, setup, postgres, timelineDir, slackMs };
}
