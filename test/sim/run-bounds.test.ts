// The simulator's bounds on one run (sim/clock.ts): a run whose simulated time stops advancing (a
// zero-delay livelock) fails after ClockBounds.eventsAtInstantMax events at one instant, naming the
// events that loop; a run that takes too much wall time or heap fails too. The last test plants a
// livelock in a copy of the simulator (the network re-delivers every heartbeat at zero delay, forever)
// and requires `npm run sim` to fail the seed as a liveness failure with exit code 3, as it does any
// other liveness failure, within the stall bound's events instead of running to the 20,000,000-event cap.
import test from "ava";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { CLOCK_BOUNDS_DEFAULT, collectGarbage, SimClock, SimulationBoundError } from "../../sim/clock.ts";
import { runSeed } from "../../sim/run.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");

/** Runs `clock` until it throws; fails the test if it returns (every loop here is endless otherwise). */
function boundError(clock: SimClock): SimulationBoundError {
  try {
    clock.runUntil(Number.POSITIVE_INFINITY);
  } catch (error) {
    if (error instanceof SimulationBoundError) return error;
    throw error;
  }
  throw new Error("runUntil() returned: the loop under test ended by itself");
}

test("a run whose time stops advancing fails after eventsAtInstantMax events at that instant, naming what loops", (t) => {
  const clock = new SimClock({ eventsAtInstantMax: 5_000 });
  // Healthy traffic first: time moves, so none of it counts toward the stall.
  const tick = (): void => void clock.schedule(10, tick, "n1 timer");
  tick();
  clock.runUntil(1_000);
  const eventsBefore = clock.eventsRun;
  // Then n2 and n3 bounce a message back and forth at zero delay, forever.
  const ping = (): void => void clock.schedule(0, pong, () => "deliver 2->3 MsgHeartbeat t4 c9 x0");
  const pong = (): void => void clock.schedule(0, ping, () => "deliver 3->2 MsgHeartbeatResp t4 x0");
  clock.schedule(0.5, ping, "n2 timer");
  const error = boundError(clock);
  t.is(error.bound, "stalled");
  t.is(clock.nowMs, 1_000.5, "time stopped where the loop started");
  t.true(clock.eventsRun - eventsBefore <= 5_002, `it stopped at the bound, after ${clock.eventsRun - eventsBefore} events`);
  t.regex(error.message, /simulated time stopped at 1000\.500 ms: 5000 events ran at that instant/);
  t.regex(error.message, /512 x deliver 2->3 MsgHeartbeat \(last: deliver 2->3 MsgHeartbeat t4 c9 x0\)/);
  t.regex(error.message, /512 x deliver 3->2 MsgHeartbeatResp/);
  t.regex(error.message, /nodes involved: n2, n3/);
  t.regex(error.message, /bounds per seed: 5000 events at one simulated instant, 300 s of wall time, 1536 MB of heap/);
});

test("busy instants below the bound pass, and the count starts again at each instant", (t) => {
  const clock = new SimClock({ eventsAtInstantMax: 1_000 });
  for (let instant = 1; instant <= 3; instant++) {
    for (let i = 0; i < 900; i++) clock.schedule(instant, () => {});
  }
  t.notThrows(() => clock.runUntil(10));
  t.is(clock.eventsRun, 2_700);
  t.is(clock.eventsAtInstantPeak, 900);
});

test("a run that takes more wall time than wallMsMax fails, saying so", (t) => {
  const clock = new SimClock({ wallMsMax: 50 });
  const step = (): void => void clock.schedule(1, step);
  step();
  const error = boundError(clock);
  t.is(error.bound, "wall-time");
  t.regex(error.message, /^the run took more than 0\.05 s of wall time/);
});

test("a run whose process heap passes heapMbMax fails, saying so", (t) => {
  const clock = new SimClock({ heapMbMax: 1 });
  const step = (): void => void clock.schedule(1, step);
  step();
  const error = boundError(clock);
  t.is(error.bound, "memory");
  t.regex(error.message, /^the run used \d+ MB of heap, more than 1 MB/);
  t.is(clock.eventsRun, 65_536, "heap use is read every 65,536 events");
});

test("garbage a previous seed left behind does not count against heapMbMax: only what survives a collection does", (t) => {
  collectGarbage();
  const liveMb = process.memoryUsage().heapUsed / 2 ** 20;
  const heapMbMax = Math.ceil(liveMb) + 200;
  // 400 MB of arrays that nothing references by the time the clock reads the heap.
  let garbage: number[][] | undefined = Array.from({ length: 500 }, () => new Array<number>(100_000).fill(1.5));
  t.true(process.memoryUsage().heapUsed / 2 ** 20 > heapMbMax, "the garbage puts heapUsed over the bound before the run");
  garbage = undefined;
  const clock = new SimClock({ heapMbMax });
  let events = 0;
  const step = (): void => {
    if (++events < 70_000) clock.schedule(1, step);
  };
  clock.schedule(1, step);
  t.notThrows(() => clock.runUntil(Number.POSITIVE_INFINITY));
  t.is(clock.eventsRun, 70_000, "the run went past the heap check at 65,536 events");
  t.is(garbage, undefined);
});

test("a seed that uses up its cap on events fails as a liveness failure naming the cap, not as a crash", (t) => {
  const result = runSeed({ seed: 1, durationMs: 10_000, faults: "none", eventsMax: 2_000 });
  t.false(result.ok);
  t.is(result.violations.length, 1);
  t.regex(result.violations[0]!, /^Liveness: the run reached its cap of 2000 events at \d+\.\d+ ms simulated, with \d+ events pending and up to \d+ at one instant/);
  t.true(result.events > 2_000 && result.events < 2_100, `stopped at the cap, after ${result.events} events`);
});

test("bad bounds are refused", (t) => {
  t.throws(() => new SimClock({ eventsAtInstantMax: 0 }), { message: /eventsAtInstantMax must be at least 1/ });
  t.throws(() => new SimClock({ wallMsMax: -1 }), { message: /wallMsMax must be positive/ });
});

/** A copy of what `npm run sim` needs, with the network made to re-deliver every heartbeat after 5 s at zero delay. */
function livelockedCopy(): string {
  const copy = mkdtempSync(join(tmpdir(), "pgraft-livelock-"));
  for (const entry of ["src", "sim", "scenarios", "package.json", "tsconfig.json"]) cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"), "dir");
  const path = join(copy, "sim/network.ts");
  const text = readFileSync(path, "utf8");
  const original = "        this.deliver(message);\n";
  const occurrences = text.split(original).length - 1;
  if (occurrences !== 1) {
    rmSync(copy, { recursive: true, force: true });
    throw new Error(`Cannot plant the livelock: expected ${JSON.stringify(original)} once in sim/network.ts, found it ${occurrences} times; update this test to the current code`);
  }
  const planted = `${original}        if (message.type === "MsgHeartbeat" && this.clock.nowMs > 5_000) this.#schedule(message, { ...conditions, latencyMs: 0, jitterMs: 0 });\n`;
  writeFileSync(path, text.replace(original, planted));
  return copy;
}

interface SimOutcome {
  readonly code: number;
  readonly lines: { readonly ok?: boolean; readonly violations?: string[]; readonly events?: number; readonly summary?: { failed: number } }[];
  readonly wallMs: number;
}

async function sim(cwd: string, args: readonly string[]): Promise<SimOutcome> {
  const start = performance.now();
  let stdout: string;
  let code = 0;
  try {
    ({ stdout } = await run(process.execPath, ["--import", "tsx", "sim/cli.ts", ...args, "--json", "--workers", "1"], { cwd, maxBuffer: 64 * 1024 * 1024 }));
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; code?: number };
    if (typeof failed.code !== "number" || failed.stdout === undefined) throw error;
    code = failed.code;
    stdout = failed.stdout;
  }
  return { code, lines: stdout.trim().split("\n").map((line) => JSON.parse(line) as SimOutcome["lines"][number]), wallMs: performance.now() - start };
}

test("npm run sim fails a livelocked seed as a liveness failure (exit 3) at the stall bound, naming the looping messages", async (t) => {
  const copy = livelockedCopy();
  try {
    const args = ["--seed", "1", "--duration", "10s"];
    const [planted, real] = await Promise.all([sim(copy, args), sim(ROOT, args)]);
    t.log(`the livelocked seed failed after ${(planted.wallMs / 1000).toFixed(1)} s of wall time (the process included)`);
    t.is(planted.code, 3, "exit code 3: a liveness failure");
    const seed = planted.lines[0]!;
    t.false(seed.ok);
    t.is(seed.violations!.length, 1);
    t.regex(seed.violations![0]!, /^Liveness: simulated time stopped at \d+\.\d+ ms: 100000 events ran at that instant/);
    // Whichever node leads, its heartbeat to one follower is what loops: each delivery, then the
    // follower's Ready pass for it (a timer of its own, RaftNode.receive()), half the events each.
    const loop = /512 x n(\d) timer, 512 x deliver (\d)->(\d) MsgHeartbeat \(last: deliver \2->\3 MsgHeartbeat t\d+ c\d+ x0\); nodes involved: n(\d), n(\d)/.exec(seed.violations![0]!);
    t.truthy(loop, `the loop is named: ${seed.violations![0]}`);
    t.is(loop![1], loop![3], "the timer is the receiving follower's");
    t.deepEqual([loop![4], loop![5]], [loop![2], loop![3]].sort(), "with the two nodes it runs between");
    t.true(seed.events! < CLOCK_BOUNDS_DEFAULT.eventsAtInstantMax + 50_000, `it stopped near the bound, after ${seed.events} events`);
    t.is(real.code, 0, `the real simulator passes the same seed: ${JSON.stringify(real.lines[0]?.violations)}`);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
