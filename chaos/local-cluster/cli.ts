/**
 * `npm run cluster`: a local cluster of real PostgreSQL servers, each with its pgraft node, on 127.0.0.1,
 * for trying pgraft out.
 *
 *   npm run cluster [-- --nodes N] [--name NAME] [--keep]       start, print, wait; Ctrl-C stops all
 *   npm run --silent cluster -- --detach [--json] [--nodes N] [--name NAME]   start in the background
 *   npm run cluster -- --stop [--name NAME] [--keep]            stop a background (or leftover) cluster
 *
 * Progress goes to stderr. Exit codes: 0 done, 1 the cluster could not be started or stopped (or the
 * name is taken), 2 bad arguments, 130 interrupted while starting (everything started is stopped).
 * (`npm run` prints its own banner on stdout; `npm run --silent` keeps stdout to our JSON alone.)
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { isProcessAlive } from "../../src/postgres/data-directory.ts";
import { ClusterUsageError, parseClusterArguments, USAGE, type ClusterArguments } from "./arguments.ts";
import { healthRow, psql, QUICK_HEALTH_CHECK } from "./health.ts";
import { readyJson, readyText, stopCommand } from "./output.ts";
import { initialState, logTail, startCluster } from "./start.ts";
import {
  claimClusterName,
  clusterDirectory,
  clusterLiveness,
  isAlive,
  isRunning,
  otherClusterStates,
  processesUsing,
  readClusterState,
  type ClusterLiveness,
  type ClusterState,
} from "./state.ts";
import { stopCluster } from "./stop.ts";

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;
/** How often a start retries claiming a name after clearing a stale cluster that held it. */
const CLAIM_ATTEMPTS_MAX = 3;
/** How long --stop waits for a foreground `npm run cluster` to stop its own cluster after SIGTERM. */
const OWNER_STOP_MS = 60_000;
/** A second signal within this long of the first is the same Ctrl-C relayed by npm or tsx. */
const REPEATED_SIGNAL_MS = 2_000;
const GROUP_LEADER_POLL_MS = 1_000;

class Refusal extends Error {
  override name = "Refusal";
}

const note = (line: string): void => void process.stderr.write(`cluster: ${line}\n`);

process.exit(await main(process.argv.slice(2)));

async function main(argv: readonly string[]): Promise<number> {
  let args: ClusterArguments;
  try {
    args = parseClusterArguments(argv);
  } catch (error) {
    if (!(error instanceof ClusterUsageError)) throw error;
    if (error.message === "") {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    process.stderr.write(`${error.message}\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  try {
    return args.command === "stop" ? await stop(args) : await start(args);
  } catch (error) {
    note(error instanceof Error ? error.message : String(error));
    return EXIT_FAILED;
  }
}

async function start(args: ClusterArguments): Promise<number> {
  const interrupt = new AbortController();
  let stopRequested: (signal: string) => void = (signal) => {
    if (!interrupt.signal.aborted) note(`received ${signal}: stopping what was started`);
    interrupt.abort();
  };
  for (const name of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(name, () => stopRequested(name));
  const startedMs = Date.now();
  const mode = args.command === "detach" ? "detached" : "foreground";
  let state: ClusterState;
  try {
    state = await claim(args.name, mode);
  } catch (error) {
    if (error instanceof Refusal) {
      note(error.message);
      return EXIT_FAILED;
    }
    throw error;
  }
  note(`cluster "${args.name}" in ${state.directory}`);
  const children = new Map<string, ChildProcess>();
  let readiness: Awaited<ReturnType<typeof startCluster>>;
  try {
    readiness = await startCluster(state, { name: args.name, nodeCount: args.nodeCount, mode, projectRoot, progress: note, signal: interrupt.signal }, children);
  } catch (error) {
    note(interrupt.signal.aborted ? "interrupted; stopping every process started so far" : `${(error as Error).message}\nstopping every process started so far`);
    await stopCluster(state, { keep: args.keep, note });
    note(args.keep ? `stopped; the files stay in ${state.directory}` : `stopped; removed ${state.directory}`);
    return interrupt.signal.aborted ? EXIT_INTERRUPTED : EXIT_FAILED;
  }
  const readyMs = Date.now() - startedMs;
  note(`ready in ${(readyMs / 1000).toFixed(1)} s`);
  const report = { state, leaderName: readiness.leader!.name, term: readiness.term!, readyMs };
  if (mode === "detached") {
    if (args.json) {
      const rows = await Promise.all(state.nodes.map((node) => healthRow(node)));
      process.stdout.write(`${JSON.stringify(readyJson({ ...report, rows }))}\n`);
    } else {
      process.stdout.write(readyText({ ...report, psqlOutputs: await healthOutputs(state) }));
      process.stdout.write(`Running in the background. Stop it with: ${stopCommand(state.name)}\n`);
    }
    for (const child of children.values()) child.unref();
    return 0;
  }
  process.stdout.write(readyText({ ...report, psqlOutputs: await healthOutputs(state) }));
  process.stdout.write(
    args.keep
      ? `Press Ctrl-C to stop every server and node; the files in ${state.directory} stay (--keep).\n`
      : `Press Ctrl-C to stop every server and node and delete ${state.directory} (--keep keeps it).\n`,
  );
  return waitAndStop(state, children, args, interrupt, (handler) => (stopRequested = handler));
}

/** Foreground: waits for Ctrl-C or SIGTERM (or every node gone), then stops everything. */
async function waitAndStop(
  state: ClusterState,
  children: Map<string, ChildProcess>,
  args: ClusterArguments,
  interrupt: AbortController,
  setHandler: (handler: (signal: string) => void) => void,
): Promise<number> {
  let stoppingSinceMs: number | undefined;
  let exitCode = 0;
  const stopped = new Promise<void>((resolveStopped) => {
    const begin = (reason: string): void => {
      if (stoppingSinceMs !== undefined) {
        // npm and tsx relay the terminal's Ctrl-C, so one press often arrives twice: stay quiet about that.
        if (Date.now() - stoppingSinceMs > REPEATED_SIGNAL_MS) note(`${reason}: already stopping; this takes at most a minute`);
        return;
      }
      stoppingSinceMs = Date.now();
      note(`${reason}: stopping ${state.nodes.length === 1 ? "the node and its PostgreSQL server" : `${state.nodes.length} nodes and their PostgreSQL servers`}`);
      resolveStopped();
    };
    setHandler((signal) => begin(`received ${signal}`));
    if (interrupt.signal.aborted) begin("interrupted");
    // `kill <npm's pid>` ends npm and its shell but not us; the terminal job is over, so stop too.
    const groupLeader = processGroupLeader();
    if (groupLeader !== undefined && groupLeader !== process.pid) {
      const watch = setInterval(() => {
        if (stoppingSinceMs !== undefined) clearInterval(watch);
        else if (!isProcessAlive(groupLeader)) begin(`the process that leads this terminal job (pid ${groupLeader}, npm) is gone`);
      }, GROUP_LEADER_POLL_MS);
      watch.unref();
    }
    for (const [name, child] of children) {
      child.once("exit", (code, signal) => {
        if (stoppingSinceMs !== undefined) return;
        const node = state.nodes.find((candidate) => candidate.name === name)!;
        note(`${name}'s node exited (${code ?? signal}) on its own; its log ${node.logFile} ends with:\n${logTail(node.logFile, 1500)}`);
        if ([...children.values()].every((other) => other.exitCode !== null || other.signalCode !== null)) {
          exitCode = EXIT_FAILED;
          begin("every node has exited");
        }
      });
    }
  });
  await stopped;
  const summary = await stopCluster(state, { keep: args.keep, note });
  note(`stopped${summary.killed.length > 0 ? ` (SIGKILL needed for ${summary.killed.join(", ")})` : ""}; ${summary.removedDirectory ? `removed ${state.directory}` : `the files stay in ${state.directory}; delete them with ${stopCommand(state.name)}`}`);
  return exitCode;
}

/** This process's group (the terminal job: npm's pid under `npm run`), from /proc; undefined without it. */
function processGroupLeader(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const group = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    return Number.isInteger(group) && group > 1 ? group : undefined;
  } catch {
    return undefined;
  }
}

async function healthOutputs(state: ClusterState): Promise<string[]> {
  return Promise.all(
    state.nodes.map(async (node) => {
      const output = await psql(node, QUICK_HEALTH_CHECK);
      return output.code === 0 ? output.stdout : `psql failed (exit ${output.code}): ${output.stderr.trim()}`;
    }),
  );
}

/**
 * Claims the cluster's name. A running cluster of that name, or one whose files were kept, is refused;
 * the leftovers of one whose processes are all gone are removed, with a note, and the name claimed.
 */
async function claim(name: string, mode: "foreground" | "detached"): Promise<ClusterState> {
  for (let attempt = 1; attempt <= CLAIM_ATTEMPTS_MAX; attempt++) {
    const state = initialState({ name, mode });
    if (claimClusterName(state)) return state;
    const existing = readClusterState(name);
    if (existing.kind === "none") continue; // Stopped meanwhile: claim again.
    if (existing.kind === "unreadable") {
      const users = processesUsing(existing.directory);
      if (users.length > 0) {
        throw new Refusal(
          `Cannot start cluster "${name}": ${existing.reason}, and processes ${users.join(", ")} still use ${existing.directory}; ` +
            `stop them with \`${stopCommand(name)}\`, or start another cluster beside it with --name OTHER`,
        );
      }
      note(`removing ${existing.directory}: ${existing.reason}, and no process uses it`);
      await stopCluster({ ...state, directory: existing.directory }, { keep: false, note });
      continue;
    }
    const previous = existing.state;
    const liveness = clusterLiveness(previous);
    if (isRunning(liveness)) throw new Refusal(runningRefusal(previous, liveness));
    if (previous.status === "kept") {
      throw new Refusal(
        `Cannot start cluster "${name}": the files of a cluster stopped with --keep are in ${previous.directory}; ` +
          `delete them with \`${stopCommand(name)}\`, or start another cluster beside them with --name OTHER`,
      );
    }
    note(`found the files of cluster "${name}" (started ${previous.createdAt}) whose processes are all gone; removing ${previous.directory}`);
    await stopCluster(previous, { keep: false, note });
  }
  throw new Error(`Cannot start cluster "${name}": its name was taken again ${CLAIM_ATTEMPTS_MAX} times while clearing it; is another \`npm run cluster --name ${name}\` starting?`);
}

function runningRefusal(state: ClusterState, liveness: ClusterLiveness): string {
  const what = [
    ...(liveness.owner ? [`${state.mode === "foreground" ? "its foreground `npm run cluster`" : "the `npm run cluster` starting it"} (pid ${state.owner.pid})`] : []),
    ...(liveness.nodePids.length > 0 ? [`node pids ${liveness.nodePids.join(", ")}`] : []),
    ...(liveness.postmasterPids.length > 0 ? [`postmaster pids ${liveness.postmasterPids.join(", ")}`] : []),
  ];
  return (
    `Cannot start cluster "${state.name}": one with that name runs already (started ${state.createdAt}; ${what.join("; ") || `processes ${liveness.usingDirectoryPids.join(", ")}`}). ` +
    `Stop it with \`${stopCommand(state.name)}\`${state.mode === "foreground" && liveness.owner ? " (or Ctrl-C in its terminal)" : ""}, ` +
    `or start another beside it with --name OTHER (say, \`npm run cluster -- --name second\`)`
  );
}

async function stop(args: ClusterArguments): Promise<number> {
  const existing = readClusterState(args.name);
  if (existing.kind === "none") {
    const others = otherClusterStates(args.name).map((other) => other.name);
    note(
      `No cluster named "${args.name}" to stop: ${clusterDirectory(args.name)} does not exist` +
        (others.length > 0 ? `; clusters found: ${others.join(", ")} (stop one with --stop --name NAME)` : "; nothing to do"),
    );
    return 0;
  }
  let state: ClusterState;
  if (existing.kind === "unreadable") {
    note(`${existing.reason}; stopping every process that uses ${existing.directory}`);
    state = { ...initialState({ name: args.name, mode: "detached" }), directory: existing.directory };
  } else {
    state = existing.state;
    if (state.mode === "foreground" && isAlive(state.owner)) {
      // Its own `npm run cluster` stops it in order (and prints so in its terminal): ask it to.
      note(`cluster "${args.name}" runs in the foreground (pid ${state.owner.pid}); sending it SIGTERM`);
      process.kill(state.owner.pid, "SIGTERM");
      const deadline = Date.now() + OWNER_STOP_MS;
      while (isAlive(state.owner) && Date.now() < deadline) await sleep(100);
    }
  }
  const summary = await stopCluster(state, { keep: args.keep, note });
  const count = state.nodes.length;
  note(
    `stopped cluster "${args.name}" (${count} node${count === 1 ? "" : "s"}, no process left)` +
      (summary.killed.length > 0 ? `; SIGKILL was needed for ${summary.killed.join(", ")}` : "") +
      (summary.removedDirectory ? `; removed ${state.directory}` : `; the files stay in ${state.directory}`),
  );
  return 0;
}
