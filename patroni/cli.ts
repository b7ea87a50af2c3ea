/**
 * `npm run patroni`: Patroni 3.0 with three PostgreSQL 15 servers on a 3-node DCS, on this machine.
 *
 *   npm run patroni                       pgraft as the DCS; prints how to reach everything; Ctrl-C stops it
 *   npm run patroni -- --dcs etcd         the same on a 3-member etcd 3.4 (Debian's etcd-server)
 *   npm run patroni -- --measure 5        5 failovers (kill -9 of the primary's Patroni and PostgreSQL) on
 *                                         pgraft and on etcd; prints median, p90 and max time from the kill
 *                                         to the first write the new primary accepted
 *   --ttl S --loop-wait S --retry-timeout S   Patroni's timing (default 20, 2, 8)
 *
 * Runs as root (Patroni and PostgreSQL run as the postgres user).
 */
import { DCS_KINDS, type DcsKind } from "./dcs.ts";
import { measureFailover, summarize, type FailoverResult } from "./failover.ts";
import { DEFAULT_TIMING, PatroniStack, type PatroniTiming } from "./stack.ts";

const USAGE = "Usage: npm run patroni -- [--dcs pgraft|etcd] [--measure N] [--ttl S] [--loop-wait S] [--retry-timeout S]";
const MAX_TRIALS = 100;
const BOOTSTRAP_TIMEOUT_MS = 180_000;
const FAILOVER_TIMEOUT_MS = 180_000;

interface Options {
  dcs: DcsKind;
  measure: number | undefined;
  timing: PatroniTiming;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse(argv: readonly string[]): Options {
  const options: Options = { dcs: "pgraft", measure: undefined, timing: { ...DEFAULT_TIMING } };
  const integer = (flag: string, text: string | undefined, min: number, max: number): number => {
    const value = Number(text);
    if (text === undefined || !Number.isInteger(value) || value < min || value > max) fail(`Cannot use ${flag} ${text ?? "(missing)"}: give a whole number from ${min} to ${max}`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    switch (flag) {
      case "--dcs":
        if (!DCS_KINDS.includes(value as DcsKind)) fail(`Cannot use --dcs ${value ?? "(missing)"}: choose ${DCS_KINDS.join(" or ")}`);
        options.dcs = value as DcsKind;
        i++;
        break;
      case "--measure":
        options.measure = integer(flag, value, 1, MAX_TRIALS);
        i++;
        break;
      case "--ttl":
        options.timing = { ...options.timing, ttl: integer(flag, value, 2, 3600) };
        i++;
        break;
      case "--loop-wait":
        options.timing = { ...options.timing, loopWait: integer(flag, value, 1, 3600) };
        i++;
        break;
      case "--retry-timeout":
        options.timing = { ...options.timing, retryTimeout: integer(flag, value, 1, 3600) };
        i++;
        break;
      case "-h":
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        fail(`Cannot use the argument ${JSON.stringify(flag)}: it is not an option of npm run patroni`);
    }
  }
  const { ttl, loopWait, retryTimeout } = options.timing;
  if (loopWait + 2 * retryTimeout > ttl) fail(`Cannot use --ttl ${ttl} with --loop-wait ${loopWait} and --retry-timeout ${retryTimeout}: Patroni needs loop_wait + 2 * retry_timeout <= ttl`);
  return options;
}

const open = new Set<PatroniStack>();
let interrupted = false;

function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  process.stderr.write(`\n${signal}: stopping Patroni, PostgreSQL and the DCS...\n`);
  void Promise.all([...open].map((stack) => stack.close({ graceful: true }))).then(() => {
    process.stderr.write("Stopped: Patroni, PostgreSQL and the DCS are down and their files removed.\n");
    process.exit(130);
  });
}

async function startStack(dcs: DcsKind, timing: PatroniTiming): Promise<PatroniStack> {
  const stack = await PatroniStack.create({ dcs, timing });
  open.add(stack);
  if (interrupted) throw new Error("interrupted");
  stack.startAllPatroni();
  const primary = await stack.waitForPrimary({ replicas: 2, timeoutMs: BOOTSTRAP_TIMEOUT_MS });
  await stack.createProbeTable(primary);
  return stack;
}

async function serve(options: Options): Promise<void> {
  process.stderr.write(`Starting 3 ${options.dcs} nodes and 3 Patroni + PostgreSQL 15 servers...\n`);
  const stack = await startStack(options.dcs, options.timing);
  process.stdout.write(`${stack.usage()}\n\nPress Ctrl-C to stop everything.\n`);
  await new Promise(() => undefined); // until a signal
}

const ms = (value: number): string => `${(value / 1000).toFixed(2)} s`;

async function measure(trials: number, timing: PatroniTiming): Promise<void> {
  const results = new Map<DcsKind, FailoverResult[]>();
  for (const dcs of DCS_KINDS) {
    process.stderr.write(`== ${dcs}: starting the stack\n`);
    const stack = await startStack(dcs, timing);
    try {
      const list: FailoverResult[] = [];
      for (let trial = 1; trial <= trials && !interrupted; trial++) {
        const result = await measureFailover(stack, FAILOVER_TIMEOUT_MS);
        list.push(result);
        process.stderr.write(`${dcs} trial ${trial}/${trials}: killed ${result.killed}, ${result.newPrimary} accepted a write after ${ms(result.failoverMs)}\n`);
      }
      results.set(dcs, list);
    } finally {
      await stack.close();
      open.delete(stack);
    }
  }
  const rows = DCS_KINDS.map((dcs) => {
    const summary = summarize(results.get(dcs)!.map((result) => result.failoverMs));
    return `| ${dcs.padEnd(6)} | ${String(summary.trials).padStart(6)} | ${ms(summary.medianMs).padStart(8)} | ${ms(summary.p90Ms).padStart(8)} | ${ms(summary.maxMs).padStart(8)} |`;
  });
  process.stdout.write(
    [
      `Failover: kill -9 of the primary's Patroni and PostgreSQL to the first write accepted by the new primary`,
      `(Patroni 3.0.2, ttl=${timing.ttl} s, loop_wait=${timing.loopWait} s, retry_timeout=${timing.retryTimeout} s; PostgreSQL 15; DCS of 3 nodes on 127.0.0.1)`,
      "",
      "| DCS    | trials |   median |      p90 |      max |",
      "|--------|--------|----------|----------|----------|",
      ...rows,
      "",
    ].join("\n"),
  );
}

const options = parse(process.argv.slice(2));
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
try {
  if (options.measure !== undefined) await measure(options.measure, options.timing);
  else await serve(options);
  process.exit(0);
} catch (error) {
  if (!interrupted) {
    process.stderr.write(`npm run patroni: ${(error as Error).message}\n`);
    await Promise.all([...open].map((stack) => stack.close()));
    process.exit(1);
  }
}
