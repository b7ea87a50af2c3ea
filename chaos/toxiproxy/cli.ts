/**
 * Runs the Toxiproxy-compatible server, for chaos runs and for trying faults by hand:
 *
 *   npx tsx chaos/toxiproxy/cli.ts [--host 127.0.0.1] [--port 8474] [--config proxies.json] [--seed N]
 *                                  [--allow-non-loopback]
 *
 * Prints one line on stdout once the API listens ("toxiproxy: listening on http://HOST:PORT seed N
 * version V"), so a parent process can wait for it and read the URL and the seed that replays the run.
 * --config takes the same JSON array as POST /populate; a bad file stops the server (the real one logs
 * and carries on). SIGINT or SIGTERM closes every proxy and connection and exits 0. Logs go to stderr.
 * Exit codes: 0 clean shutdown, 1 the server could not start, 2 bad arguments.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger } from "../../src/server/logger.ts";
import { ApiError } from "./api-error.ts";
import { SEED_MAX } from "./random.ts";
import { TOXIPROXY_VERSION, ToxiproxyServer } from "./server.ts";

const USAGE = "usage: tsx chaos/toxiproxy/cli.ts [--host 127.0.0.1] [--port 8474] [--config FILE.json] [--seed N] [--allow-non-loopback]";

interface CliArguments {
  readonly host: string;
  readonly port: number;
  readonly configFile: string | undefined;
  readonly seed: number | undefined;
  readonly allowNonLoopback: boolean;
}

class UsageError extends Error {
  override name = "UsageError";
}

function parseIntegerOption(name: string, text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || Number(text) > max) throw new UsageError(`--${name} must be an integer from 0 to ${max}, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseCliArguments(argv: readonly string[]): CliArguments | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        host: { type: "string" },
        port: { type: "string" },
        config: { type: "string" },
        seed: { type: "string" },
        "allow-non-loopback": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help === true) return "help";
  return {
    host: parsed.values.host ?? "127.0.0.1",
    port: parseIntegerOption("port", parsed.values.port, 65_535) ?? 8474,
    configFile: parsed.values.config,
    seed: parseIntegerOption("seed", parsed.values.seed, SEED_MAX),
    allowNonLoopback: parsed.values["allow-non-loopback"] === true,
  };
}

async function main(argv: readonly string[]): Promise<number> {
  let args: CliArguments | "help";
  try {
    args = parseCliArguments(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n${USAGE}\n`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const logger = createLogger({ name: "toxiproxy" });
  let server: ToxiproxyServer;
  try {
    server = await ToxiproxyServer.start({
      host: args.host,
      port: args.port,
      ...(args.seed === undefined ? {} : { seed: args.seed }),
      allowNonLoopback: args.allowNonLoopback,
      logger: { info: (line) => logger.info(line), warn: (line) => logger.warn(line) },
    });
    if (args.configFile !== undefined) await populateFromFile(server, args.configFile);
  } catch (error) {
    process.stderr.write(`Cannot start the Toxiproxy server: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  process.stdout.write(`toxiproxy: listening on ${server.url} seed ${server.seed} version ${TOXIPROXY_VERSION}\n`);
  await waitForSignal();
  await server.close();
  logger.info("toxiproxy server closed");
  return 0;
}

async function populateFromFile(server: ToxiproxyServer, file: string): Promise<void> {
  let proxies: unknown;
  try {
    proxies = JSON.parse(readFileSync(file, "utf8")) as unknown;
  } catch (error) {
    await server.close();
    throw new Error(`cannot read --config ${file}: ${(error as Error).message}`);
  }
  try {
    await server.proxies.populate(proxies);
  } catch (error) {
    await server.close();
    throw new Error(`--config ${file} was refused: ${error instanceof ApiError ? error.message : String(error)}`);
  }
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits at once. */
async function waitForSignal(): Promise<void> {
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      process.once("SIGINT", () => process.exit(1));
      process.once("SIGTERM", () => process.exit(1));
      resolve();
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  });
}

process.exitCode = await main(process.argv.slice(2));
