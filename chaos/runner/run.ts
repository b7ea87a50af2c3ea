/**
 * One chaos run of one scenario: the cluster started through a provider, every Raft link behind its
 * own Toxiproxy proxy, the timeline performed in real time, the expectations checked on what an
 * operator sees, the client history checked for linearizability, and everything torn down.
 *
 * Time 0 is the moment every node first answers /health (process start-up is not part of the scenario).
 * Steps run in order, each at its time or as soon as the one before it has finished; the recording says
 * when each really ran. After the timeline (unless `liveness: off`): every link healed, paused nodes
 * resumed, crashed ones restarted, and a write must be acknowledged within 12 election timeouts.
 */
import { performance } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import seedrandom from "seedrandom";
import { checkLinearizable } from "../../sim/checkers/linearizability.ts";
import { LIVENESS_ELECTION_TIMEOUTS_MAX } from "../../sim/checkers/liveness.ts";
import { describeNodeSet, describeSelector, formatDuration, nodeName, stepTimes, type Action, type NodeSelector, type NodeSet, type Scenario, type Step } from "../../sim/scenario/index.ts";
import { REMOVED_EXIT_CODE } from "../../src/server/node-server.ts";
import { ToxiproxyServer } from "../toxiproxy/index.ts";
import type { ClusterProvider, NodeEndpoints } from "../providers/provider.ts";
import { Clients, sleep } from "./clients.ts";
import { classifyError, postJson } from "./etcd-client.ts";
import { ExpectationMonitor, type ExpectationContext, type RequestRecord } from "./expectations.ts";
import { joinerIds, linkPairs } from "./joiners.ts";
import { LinkFaults } from "./network.ts";
import { getJson, Observer, readHealth, type Sample } from "./observer.ts";
import { RECORDING_ENTRIES_MAX, RECORDING_FORMAT, writeRecording, type RecordedStep, type Recording } from "./recording.ts";
import type { ChaosRunResult, ChaosStatus } from "./result.ts";
import { addNodeStatement, classifyMembershipFailure, removeNodeStatement, type MembershipStatement } from "./membership-sql.ts";
import { SqlConnections } from "./sql-connections.ts";
import { checkSqlAgainstHealth, readSqlView, settleAgreement, SqlObserver } from "./sql-observer.ts";
import { SqlWorkload } from "./sql-workload.ts";
import { checkSupport, describeRefusal } from "./support.ts";

export interface ChaosRunOptions {
  readonly scenario: Scenario;
  readonly provider: ClusterProvider;
  readonly seed: number;
  /** An external Toxiproxy (http://127.0.0.1:8474); without it an in-process server is started. */
  readonly toxiproxyUrl?: string;
  /**
   * Run PostgreSQL beside each node (`pgraft start --pgdata`) and check it too: the guide's SQL
   * functions sampled on every node, part of the workload through pgraft_kv_put, acknowledged writes
   * read back with pgraft_kv_get. Default: whenever the provider can (capabilities.postgres).
   */
  readonly postgres?: boolean;
  /** Where to write the recorded timeline (JSON). */
  readonly timelineFile?: string;
  readonly note?: (line: string) => void;
  /** Aborting tears the run down at once (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Bound on waiting for every node to answer /health at start. */
  readonly startTimeoutMs?: number;
  /** Timing slack for expectations on real processes (see withSlack); default SLACK_MS_DEFAULT. */
  readonly slackMs?: number;
}

/** Real processes on a shared machine are late by scheduling delays the simulator does not have. */
export const SLACK_MS_DEFAULT = 500;

/**
 * The scenario with its expectation windows widened by `slackMs`: checks that must hold throughout a
 * window (leader none/stable, term, elections, writes and reads) start `slackMs` later; checks that
 * must happen at some point in it (leader elected, caught_up, request) end `slackMs` later; read-only
 * refusals may take `slackMs` longer. 0 keeps the file's windows exactly.
 */
export function withSlack(scenario: Scenario, slackMs: number): Scenario {
  if (slackMs === 0) return scenario;
  const expectations = scenario.expectations.map((expectation) => {
    const check = expectation.check;
    const window = expectation.window;
    const eventually = (check.check === "leader" && check.state === "elected") || check.check === "caught_up" || check.check === "request";
    const point = window.fromMs === window.untilMs;
    const adjustedWindow = point
      ? window
      : eventually
        ? { fromMs: window.fromMs, untilMs: window.untilMs + slackMs }
        : { fromMs: window.fromMs === 0 ? 0 : Math.min(window.untilMs, window.fromMs + slackMs), untilMs: window.untilMs };
    const adjustedCheck = (check.check === "writes" || check.check === "reads") && check.outcome === "read-only" ? { ...check, fastMs: check.fastMs + slackMs } : check;
    return { ...expectation, window: adjustedWindow, check: adjustedCheck };
  });
  return { ...scenario, expectations };
}

export const START_TIMEOUT_MS_DEFAULT = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Node steps whose nodes are acted on at once (isolate and corrupt_disk go one node at a time). */
const PARALLEL_NODE_VERBS: ReadonlySet<string> = new Set(["crash", "restart", "pause", "resume"]);
/** How long SQL may take to catch up with /health after recovery (read-backs, agreement). */
const SQL_SETTLE_MS = 10_000;
const EVENTS_MAX = 10_000;
/** Each node's log tail kept in the recording. */
const LOG_TAIL_CHARS = 20_000;

class AbortedError extends Error {}

export async function runChaosScenario(options: ChaosRunOptions): Promise<ChaosRunResult> {
  const scenario = options.scenario;
  const support = checkSupport(scenario, options.provider.capabilities);
  const base = {
    scenario: scenario.name,
    file: scenario.file,
    seed: options.seed,
    provider: options.provider.name,
    notes: support.notes,
    failoverMs: [],
    elections: 0,
    writeAvailability: null,
    writesAttempted: 0,
    writesAcknowledged: 0,
    operations: 0,
    acknowledgedLost: 0,
    linearizable: "not checked" as const,
    recoveryMs: null,
    wallMs: 0,
    timelineFile: undefined,
  };
  if (support.refusals.length > 0) {
    return { ...base, status: "simulator-only", reasons: support.refusals.map((refusal) => describeRefusal(scenario.file, refusal)) };
  }
  const postgres = options.postgres ?? options.provider.capabilities.postgres;
  if (postgres && !options.provider.capabilities.postgres) {
    return { ...base, status: "error", reasons: [`Cannot run ${scenario.file} with PostgreSQL: the ${options.provider.name} provider cannot start PostgreSQL servers`] };
  }
  const slackMs = options.slackMs ?? SLACK_MS_DEFAULT;
  const notes = slackMs > 0 ? [...support.notes, `timing slack ${slackMs} ms: windows that must hold throughout start ${slackMs} ms later, those that must happen end ${slackMs} ms later, read-only refusals may take ${slackMs} ms longer (--slack 0 for the file's exact windows)`] : support.notes;
  const run = new ChaosRun({ ...options, postgres, scenario: withSlack(scenario, slackMs) });
  return run.execute({ ...base, notes });
}

class ChaosRun {
  readonly scenario: Scenario;
  readonly provider: ClusterProvider;
  readonly options: ChaosRunOptions;
  readonly random: () => number;
  readonly tag: string;
  readonly endpoints = new Map<number, NodeEndpoints>();
  /** Nodes that are members (started as founders or added), minus the removed. */
  readonly members = new Set<number>();
  /**
   * Nodes the timeline has brought in: the founders, and each node whose add_node step has run. The
   * nodes the timeline will add are started at set-up, waiting to be added (see setUp), but until their
   * step they are not part of the scenario: `all`, isolate and the observer leave them out.
   */
  readonly introduced = new Set<number>();
  readonly bindings = new Map<string, number[]>();
  readonly requests = new Map<string, RequestRecord>();
  readonly recording: Recording;
  readonly failures: string[] = [];
  readonly pending: Promise<unknown>[] = [];
  toxiproxy: ToxiproxyServer | undefined;
  network: LinkFaults | undefined;
  observer: Observer | undefined;
  clients: Clients | undefined;
  monitor: ExpectationMonitor | undefined;
  startMs = 0;
  timers: NodeJS.Timeout[] = [];
  /** With PostgreSQL: the SQL view (observer), the SQL workload client, and connections for checks. */
  sqlObserver: SqlObserver | undefined;
  sqlWorkload: SqlWorkload | undefined;
  readonly sqlConnections: SqlConnections[] = [];
  /** The connections membership steps run their SQL on (made at the first such step). */
  membershipConnections: SqlConnections | undefined;
  /** Acknowledged writes found through pgraft_kv_get at the end. */
  sqlReadBackKeys = 0;
  /** Whether the SQL functions agreed with /health after recovery. */
  sqlAgreed: boolean | undefined;

  constructor(options: ChaosRunOptions) {
    this.options = options;
    this.scenario = options.scenario;
    this.provider = options.provider;
    this.random = seedrandom.alea(`chaos-run-${options.seed}`);
    this.tag = `${process.pid.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    let text = "";
    try {
      text = readFileSync(this.scenario.file, "utf8");
    } catch {
      // a scenario built in memory (tests): the replay then has no file text to start from
    }
    this.recording = {
      format: RECORDING_FORMAT,
      scenario: { name: this.scenario.name, file: this.scenario.file, text },
      seed: options.seed,
      provider: options.provider.name,
      postgres: options.postgres === true,
      toxiproxy: { url: options.toxiproxyUrl ?? "", inProcess: options.toxiproxyUrl === undefined, seed: null, drawsAtEnd: null },
      startedAt: new Date().toISOString(),
      steps: [],
      events: [],
      logTails: {},
    };
  }

  note(line: string): void {
    this.options.note?.(line);
  }

  nowMs(): number {
    return performance.now() - this.startMs;
  }

  event(what: string): void {
    if (this.recording.events.length < EVENTS_MAX) this.recording.events.push({ atMs: Math.round(this.nowMs()), what });
  }

  checkAborted(): void {
    if (this.options.signal?.aborted === true) throw new AbortedError("interrupted");
  }

  async sleepUntil(atMs: number): Promise<void> {
    while (this.nowMs() < atMs) {
      this.checkAborted();
      await sleep(Math.min(100, Math.max(1, atMs - this.nowMs())));
    }
  }

  async execute(base: Omit<ChaosRunResult, "status" | "reasons">): Promise<ChaosRunResult> {
    const wallStart = performance.now();
    let status: ChaosStatus = "passed";
    const reasons: string[] = [];
    let recoveryMs: number | null = null;
    let linearizable: ChaosRunResult["linearizable"] = "not checked";
    let acknowledgedLost = 0;
    try {
      await this.setUp();
      recoveryMs = await this.perform();
      const final = await this.finish();
      linearizable = final.linearizable;
      acknowledgedLost = final.acknowledgedLost;
      reasons.push(...final.correctness);
      if (final.correctness.length > 0) status = "correctness";
      else if (final.liveness.length > 0) {
        status = "liveness";
        reasons.push(...final.liveness);
      }
    } catch (error) {
      status = "error";
      reasons.push(error instanceof AbortedError ? "interrupted (Ctrl-C): everything was torn down" : `Cannot run ${this.scenario.file}: ${(error as Error).message}`);
    } finally {
      await this.tearDown();
    }
    const samples = this.observer?.samples ?? [];
    const sqlWorkload = this.sqlWorkload;
    const writesAttempted = (this.clients?.writesAttempted ?? 0) + (sqlWorkload?.writesAttempted ?? 0);
    const writesAcknowledged = (this.clients?.writesAcknowledged ?? 0) + (sqlWorkload?.writesAcknowledged ?? 0);
    const result: ChaosRunResult = {
      ...base,
      status,
      reasons,
      failoverMs: measureFailovers(this.recording.steps, samples),
      elections: countElections(samples),
      writeAvailability: writesAttempted > 0 ? writesAcknowledged / writesAttempted : null,
      writesAttempted,
      writesAcknowledged,
      operations: this.clients?.history.size ?? 0,
      acknowledgedLost,
      linearizable,
      recoveryMs,
      wallMs: Math.round(performance.now() - wallStart),
      timelineFile: this.options.timelineFile,
      ...(this.sqlObserver !== undefined && sqlWorkload !== undefined
        ? {
            sql: {
              samples: this.sqlObserver.samples.length,
              sampleErrors: this.sqlObserver.samples.filter((sample) => sample.view === undefined).length,
              writesAttempted: sqlWorkload.writesAttempted,
              writesAcknowledged: sqlWorkload.writesAcknowledged,
              versionsUnknown: sqlWorkload.versionsUnknown,
              refusals: Object.fromEntries(sqlWorkload.refusals),
              readBack: this.sqlReadBackKeys,
              agreedAtEnd: this.sqlAgreed ?? null,
            },
          }
        : {}),
    };
    this.recording.result = { status, reasons };
    if (this.options.timelineFile !== undefined) writeRecording(this.options.timelineFile, this.recording);
    return result;
  }

  // ---------------------------------------------------------------------------------------------
  // Set-up

  async setUp(): Promise<void> {
    const url = this.options.toxiproxyUrl ?? (await this.startToxiproxy());
    this.network = new LinkFaults(url, this.tag, this.scenario.network);
    const ids = Array.from({ length: this.scenario.nodes }, (_, i) => i + 1);
    const joiners = joinerIds(this.scenario);
    for (const id of [...ids, ...joiners]) this.endpoints.set(id, await this.provider.reserveNode(id));
    this.checkAborted();
    for (const [from, to] of linkPairs(ids, joiners, this.redirectsDials())) {
      await this.network.createLink(from, to, `${this.endpoints.get(to)!.host}:${this.endpoints.get(to)!.peerPort}`);
    }
    for (const id of ids) {
      await this.provider.startNode({ id, settings: this.settingsOf(id, ids, false), postgres: this.options.postgres === true, ...this.dialRedirectsOf(id, joiners) });
      this.members.add(id);
      this.introduced.add(id);
    }
    // Nodes the timeline adds start now, with initial_cluster_state = existing, and wait to be added, as
    // an operator starts a new node before adding it: a real start takes seconds (PostgreSQL, the
    // process) that the simulator's add_node does not, and the request at the step's time would
    // otherwise find no node to catch up.
    for (const id of joiners) {
      await this.provider.startNode({ id, settings: this.settingsOf(id, [...ids, id], true), postgres: this.options.postgres === true, ...this.dialRedirectsOf(id, joiners) });
    }
    this.note(`${this.scenario.name}: ${ids.length} nodes started${joiners.length > 0 ? ` and ${joiners.map(nodeName).join(", ")} waiting to be added` : ""}, waiting for /health`);
    const deadline = performance.now() + (this.options.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT);
    for (const id of [...ids, ...joiners]) {
      while ((await readHealth(this.endpoints.get(id)!.clientUrl)) === undefined) {
        this.checkAborted();
        if (this.provider.nodeState(id) !== "running") throw new Error(`${nodeName(id)} exited while starting; its log ends:\n${this.provider.logTail(id, 2000)}`);
        if (performance.now() > deadline) throw new Error(`${nodeName(id)} did not answer /health within ${this.options.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT} ms; its log ends:\n${this.provider.logTail(id, 2000)}`);
        await sleep(100);
      }
    }
    if (this.options.postgres === true) {
      const connections = this.sqlConnectionsFor("start");
      for (const id of ids) {
        let last = "no answer yet";
        for (;;) {
          this.checkAborted();
          try {
            const view = await readSqlView(connections, id);
            if (view.workerState === "RUNNING") break;
            last = `pgraft_get_worker_state() = ${view.workerState}`;
          } catch (error) {
            last = (error as Error).message;
          }
          if (this.provider.nodeState(id) !== "running") throw new Error(`${nodeName(id)} exited while starting; its log ends:\n${this.provider.logTail(id, 2000)}`);
          if (performance.now() > deadline) throw new Error(`${nodeName(id)}'s PostgreSQL did not report RUNNING within ${this.options.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT} ms (${last}); its log ends:\n${this.provider.logTail(id, 2000)}`);
          await sleep(100);
        }
      }
      await connections.close();
    }
    this.startMs = performance.now();
    this.event(`every node answers /health${this.options.postgres === true ? " and SQL says RUNNING" : ""}: time 0`);
  }

  /** Persistent SQL connections to the nodes' PostgreSQL servers, closed at teardown. */
  sqlConnectionsFor(label: string): SqlConnections {
    const connections = new SqlConnections((id) => {
      if (!this.endpoints.has(id)) return undefined;
      try {
        return this.provider.endpoints(id).postgresUrl;
      } catch {
        return undefined;
      }
    }, label);
    this.sqlConnections.push(connections);
    return connections;
  }

  async startToxiproxy(): Promise<string> {
    this.toxiproxy = await ToxiproxyServer.start({ host: "127.0.0.1", port: 0, seed: this.options.seed });
    (this.recording.toxiproxy as { url: string; seed: number | null }).url = this.toxiproxy.url;
    (this.recording.toxiproxy as { url: string; seed: number | null }).seed = this.toxiproxy.seed;
    return this.toxiproxy.url;
  }

  /** Whether the links into nodes added at run time go through proxies of their own (see linkPairs). */
  redirectsDials(): boolean {
    return this.provider.capabilities.redirectDials === true;
  }

  /**
   * What node `id` dials elsewhere: each node the timeline adds is reached at its configuration address
   * (its real peer port), which for `id` must lead to proxy (id, joiner). Nothing without the capability.
   */
  dialRedirectsOf(id: number, joiners: readonly number[]): { dialRedirects?: Record<string, string> } {
    if (!this.redirectsDials()) return {};
    const redirects: Record<string, string> = {};
    for (const joiner of joiners) {
      if (joiner === id) continue;
      const endpoints = this.endpoints.get(joiner)!;
      redirects[`${endpoints.host}:${endpoints.peerPort}`] = this.network!.listenAddress(id, joiner);
    }
    return Object.keys(redirects).length > 0 ? { dialRedirects: redirects } : {};
  }

  /** The cluster settings of node `id`: peers through the proxies it dials, itself at its real address. */
  settingsOf(id: number, clusterIds: readonly number[], joining: boolean): string[] {
    const network = this.network!;
    const cluster = clusterIds
      .map((other) => {
        const endpoints = this.endpoints.get(other)!;
        const address = other === id || !network.has(id, other) ? `${endpoints.host}:${endpoints.peerPort}` : network.listenAddress(id, other);
        return `${nodeName(other)}=${address}`;
      })
      .join(",");
    const clients = clusterIds.map((other) => `${nodeName(other)}=${this.endpoints.get(other)!.host}:${this.endpoints.get(other)!.clientPort}`).join(",");
    return [
      `pgraft.cluster_id=chaos-${this.scenario.name}`,
      `pgraft.name=${nodeName(id)}`,
      `pgraft.initial_cluster=${cluster}`,
      `pgraft.client_urls=${clients}`,
      ...this.scenario.settings.map((entry) => `${entry.name}=${entry.value}`),
      ...(joining ? ["pgraft.initial_cluster_state=existing", `pgraft.node_id=${id}`] : []),
    ];
  }

  // ---------------------------------------------------------------------------------------------
  // The timeline, expectations and workload

  async perform(): Promise<number | null> {
    const observer = new Observer(
      () => new Map([...this.endpoints].filter(([id]) => this.introduced.has(id)).map(([id, endpoints]) => [id, endpoints.clientUrl])),
      this.startMs,
      undefined,
      (id) => this.provider.nodeState(id) !== "running",
    );
    this.observer = observer;
    const clients = new Clients(
      {
        nowMs: () => this.nowMs(),
        clientUrl: (id) => this.endpoints.get(id)?.clientUrl,
        runningIds: () => this.runningIds(),
        leader: () => observer.latest?.leader,
      },
      this.scenario.workload,
      this.options.seed,
    );
    this.clients = clients;
    const monitor = new ExpectationMonitor(this.expectationContext());
    this.monitor = monitor;
    let lastFed = -1;
    let lastLeaders = "";
    let lastAnswering = "";
    const feed = async (): Promise<void> => {
      const sample = observer.latest;
      if (sample === undefined || sample.timeMs === lastFed) return;
      lastFed = sample.timeMs;
      const leaders = sample.leaderRoles.map((role) => `${nodeName(role.id)}@t${role.term}${role.id === sample.leader ? "" : " (no quorum)"}`).join(",") || "none";
      if (leaders !== lastLeaders) this.event(`leader: ${leaders}`);
      lastLeaders = leaders;
      const answering = [...sample.views.keys()].sort((a, b) => a - b).map((id) => `${nodeName(id)}${sample.stale.has(id) ? " (timed out: last view kept)" : ""}`).join(",") || "none";
      if (answering !== lastAnswering) this.event(`answering /health: ${answering}`);
      lastAnswering = answering;
      await monitor.sample(sample);
    };
    // Windows open at their time with a fresh sample.
    this.scenario.expectations.forEach((expectation, index) => {
      this.timers.push(
        setTimeout(() => {
          const opened = observer.poll().then((sample) => monitor.open(index, sample));
          this.pending.push(opened.catch((error: unknown) => this.failures.push(`expectation at line ${expectation.line}: ${(error as Error).message}`)));
        }, Math.max(0, expectation.window.fromMs - this.nowMs())),
      );
    });
    observer.start();
    clients.start();
    if (this.options.postgres === true) {
      this.sqlObserver = new SqlObserver(this.sqlConnectionsFor("observer"), () => this.runningIds(), () => this.nowMs());
      this.sqlObserver.start();
      this.sqlWorkload = new SqlWorkload(this.sqlConnectionsFor("workload"), clients.history, this.scenario.workload, { nowMs: () => this.nowMs(), leader: () => observer.latest?.leader }, this.options.seed);
      this.sqlWorkload.start();
    }
    const occurrences: { timeMs: number; index: number; step: Step }[] = [];
    this.scenario.timeline.forEach((step, index) => {
      for (const timeMs of stepTimes(step)) occurrences.push({ timeMs, index, step });
    });
    occurrences.sort((a, b) => a.timeMs - b.timeMs || a.index - b.index);
    const feeder = setInterval(() => void feed(), 50);
    try {
      for (const occurrence of occurrences) {
        await this.sleepUntil(occurrence.timeMs);
        await this.runStep(occurrence.step, occurrence.timeMs);
      }
      await this.sleepUntil(this.scenario.durationMs);
      await feed();
    } finally {
      clearInterval(feeder);
    }
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
    if (!this.scenario.liveness) return null;
    return this.livenessPhase();
  }

  runningIds(): number[] {
    return [...this.members].filter((id) => this.provider.nodeState(id) === "running").sort((a, b) => a - b);
  }

  resolveOne(selector: NodeSelector, leader: number | undefined): number | string {
    const set = this.resolveSet([selector], leader);
    if (typeof set === "string") return set;
    if (set.length !== 1) return `${describeSelector(selector)} is ${set.length} nodes, expected one`;
    return set[0]!;
  }

  resolveSet(set: NodeSet, leader: number | undefined): number[] | string {
    const ids = new Set<number>();
    for (const selector of set) {
      switch (selector.kind) {
        case "node":
          ids.add(selector.id);
          break;
        case "leader":
          if (leader === undefined) return "no node leads with a live quorum";
          ids.add(leader);
          break;
        case "follower": {
          const followers = this.runningIds().filter((id) => id !== leader);
          if (followers.length === 0) return "no running follower";
          ids.add(followers[Math.floor(this.random() * followers.length)]!);
          break;
        }
        case "followers":
          for (const id of this.runningIds()) if (id !== leader) ids.add(id);
          break;
        case "all":
          for (const id of this.introduced) ids.add(id);
          break;
        case "bound": {
          const bound = this.bindings.get(selector.name);
          if (bound === undefined) return `$${selector.name} was never bound (its step did not run)`;
          for (const id of bound) ids.add(id);
          break;
        }
      }
    }
    return [...ids].sort((a, b) => a - b);
  }

  expectationContext(): ExpectationContext {
    const leader = (): number | undefined => this.observer?.latest?.leader;
    return {
      scenario: this.scenario,
      nowMs: () => this.nowMs(),
      where: (line) => `${this.scenario.file}:${line}`,
      resolveOne: (selector) => this.resolveOne(selector, leader()),
      resolveSet: (set) => this.resolveSet(set, leader()),
      runningIds: () => this.runningIds(),
      clients: this.clients!,
      requests: this.requests,
      members: async (id) => {
        const url = this.endpoints.get(id)?.clientUrl;
        if (url === undefined) return `no such node ${nodeName(id)}`;
        try {
          const reply = await postJson(`${url}/v3/cluster/member/list`, {}, 3000);
          if (reply.status !== 200) return `HTTP ${reply.status}: ${reply.body.slice(0, 200)}`;
          const members = (JSON.parse(reply.body) as { members?: { ID?: string; isLearner?: boolean }[] }).members ?? [];
          return {
            voters: members.filter((member) => member.isLearner !== true).map((member) => Number(member.ID)),
            learners: members.filter((member) => member.isLearner === true).map((member) => Number(member.ID)),
          };
        } catch (error) {
          return (error as Error).message;
        }
      },
      snapshotsInstalled: async (id) => {
        const url = this.endpoints.get(id)?.metricsUrl;
        if (url === undefined) return undefined;
        const answer = await getJson(url, 2000);
        if (answer === undefined || typeof answer.body !== "string") return undefined;
        const line = answer.body.split("\n").find((text) => text.startsWith("pgraft_snapshots_total") && text.includes('kind="installed"'));
        return line === undefined ? 0 : Number(line.split(" ").pop());
      },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Steps

  async runStep(step: Step, plannedAtMs: number): Promise<void> {
    this.checkAborted();
    const sample = await this.observer!.poll();
    const atMs = this.nowMs();
    const actions: string[] = [];
    const detail: Partial<RecordedStep> = {};
    let error: string | undefined;
    try {
      error = await this.act(step, sample, actions, detail as Record<string, unknown>);
    } catch (caught) {
      error = (caught as Error).message;
    }
    const entry: RecordedStep = {
      atMs: Math.round(atMs),
      plannedAtMs,
      line: step.line,
      verb: step.action.verb,
      description: describeStep(step.action),
      ...detail,
      ...(step.id !== undefined ? { id: step.id } : {}),
      ...(step.bind !== undefined ? { bind: step.bind } : {}),
      actions,
      outcome: error === undefined ? "ok" : "failed",
      ...(error !== undefined ? { error } : {}),
      tookMs: Math.round(this.nowMs() - atMs),
      ...(this.toxiproxy !== undefined ? { toxiproxyDraws: this.toxiproxy.random.draws } : {}),
    };
    if (this.recording.steps.length < RECORDING_ENTRIES_MAX) this.recording.steps.push(entry);
    const where = `${this.scenario.file}:${step.line} at ${formatDuration(Math.round(atMs))}`;
    this.note(`${this.scenario.name} ${formatDuration(Math.round(atMs))}: ${entry.description}${error !== undefined ? `: FAILED: ${error}` : ""}`);
    if (error !== undefined) this.failures.push(`${where}: ${entry.description}: ${error}`);
  }

  bind(step: Step, ids: readonly number[]): void {
    if (step.bind !== undefined) this.bindings.set(step.bind, [...ids]);
  }

  /** Performs a step; returns why it could not. */
  async act(step: Step, sample: Sample, actions: string[], detail: Record<string, unknown>): Promise<string | undefined> {
    const action = step.action;
    const leader = sample.leader;
    const network = this.network!;
    switch (action.verb) {
      case "crash":
      case "restart":
      case "pause":
      case "resume":
      case "isolate":
      case "corrupt_disk": {
        const ids = this.resolveSet(action.nodes, leader);
        if (typeof ids === "string") return ids;
        detail.nodes = ids;
        this.bind(step, ids);
        if (PARALLEL_NODE_VERBS.has(action.verb)) {
          // One step's nodes fail (or return) together, as the simulator has it: sequential docker kills
          // would spread a "crash followers" over a second and delay what the expectations time.
          const perNode = ids.map((): string[] => []);
          const settled = await Promise.allSettled(ids.map((id, i) => this.actOnNode(action.verb, id, perNode[i]!)));
          actions.push(...perNode.flat());
          const failed = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
          if (failed !== undefined) throw failed.reason;
        } else {
          for (const id of ids) await this.actOnNode(action.verb, id, actions);
        }
        return undefined;
      }
      case "partition": {
        const groups: number[][] = [];
        for (const group of action.groups) {
          const ids = this.resolveSet(group, leader);
          if (typeof ids === "string") return ids;
          groups.push(ids);
        }
        const all = groups.flat();
        if (new Set(all).size !== all.length) return `a node is in two groups: ${groups.map((g) => `[${g.map(nodeName).join(",")}]`).join(" | ")}`;
        detail.groups = groups;
        this.bind(step, groups[0]!);
        for (let i = 0; i < groups.length; i++) {
          for (let j = i + 1; j < groups.length; j++) {
            for (const a of groups[i]!) {
              for (const b of groups[j]!) {
                actions.push(describeLinkAction(await network.drop(a, b, "drop")));
                actions.push(describeLinkAction(await network.drop(b, a, "drop")));
              }
            }
          }
        }
        return undefined;
      }
      case "cut":
      case "hold":
      case "release":
      case "link": {
        const from = this.resolveSet(action.from, leader);
        if (typeof from === "string") return from;
        const to = this.resolveSet(action.to, leader);
        if (typeof to === "string") return to;
        detail.from = from;
        detail.to = to;
        this.bind(step, from);
        if (action.verb === "link") {
          detail.conditions = { ...action.conditions };
          detail.bothWays = action.bothWays;
        }
        for (const f of from) {
          for (const t of to) {
            if (f === t) continue;
            if (action.verb === "cut") actions.push(describeLinkAction(await network.drop(f, t, "drop")));
            else if (action.verb === "hold") actions.push(describeLinkAction(await network.drop(f, t, "hold")));
            else if (action.verb === "release") actions.push(describeLinkAction(await network.undrop(f, t, "hold")));
            else {
              actions.push(describeLinkAction(await network.degrade(f, t, action.conditions)));
              if (action.bothWays) actions.push(describeLinkAction(await network.degrade(t, f, action.conditions)));
            }
          }
        }
        return undefined;
      }
      case "heal": {
        const healed = await network.heal();
        actions.push(`${healed.length} toxics removed`);
        return undefined;
      }
      case "add_node":
      case "remove_node":
      case "transfer_leadership":
        return this.request(step, action, leader, actions, detail);
      default:
        return `Cannot ${action.verb}: no real counterpart (refused before the run; this is a bug)`;
    }
  }

  async actOnNode(verb: string, id: number, actions: string[]): Promise<void> {
    const network = this.network!;
    switch (verb) {
      case "crash":
        await this.provider.crashNode(id, { postgres: this.options.postgres === true });
        actions.push(`kill -9 ${nodeName(id)}${this.options.postgres === true ? " and its PostgreSQL" : ""}`);
        this.event(`${nodeName(id)} crashed`);
        return;
      case "restart": {
        const state = this.provider.nodeState(id);
        if (state === "running" || state === "paused") {
          actions.push(`${nodeName(id)} is ${state}: left alone`);
          return;
        }
        await this.provider.restartNode(id);
        actions.push(`restart ${nodeName(id)}`);
        this.event(`${nodeName(id)} restarted`);
        return;
      }
      case "pause":
        await this.provider.pauseNode(id);
        actions.push(`SIGSTOP ${nodeName(id)}`);
        return;
      case "resume":
        await this.provider.resumeNode(id);
        actions.push(`SIGCONT ${nodeName(id)}`);
        return;
      case "isolate":
        // From every node there is (the founders and those added so far), both ways. A link without a
        // proxy throws (a node added at run time without the provider's redirectDials): never skipped.
        for (const other of [...this.introduced].sort((a, b) => a - b)) {
          if (other === id) continue;
          actions.push(describeLinkAction(await network.drop(id, other, "drop")));
          actions.push(describeLinkAction(await network.drop(other, id, "drop")));
        }
        return;
      case "corrupt_disk":
        await this.provider.crashNode(id, { postgres: this.options.postgres === true });
        await this.provider.corruptNodeData(id);
        actions.push(`kill -9 ${nodeName(id)} and flip a byte of its Raft data`);
        return;
    }
  }

  async request(step: Step, action: Action, leader: number | undefined, actions: string[], detail: Record<string, unknown>): Promise<string | undefined> {
    const sentMs = this.nowMs();
    const fail = (message: string): string => {
      if (step.id !== undefined) this.requests.set(step.id, { sentMs, via: undefined, unsent: message, reply: undefined });
      return message;
    };
    if (action.verb !== "add_node" && action.verb !== "remove_node" && action.verb !== "transfer_leadership") return fail("not a request");
    const via = this.resolveOne(action.via, leader);
    if (typeof via === "string") return fail(`no node to ask (${describeSelector(action.via)}): ${via}`);
    detail.via = via;
    let path: string;
    let body: unknown;
    let target: number;
    if (action.verb === "add_node") {
      target = action.node;
      if (!this.endpoints.has(target)) return fail(`${nodeName(target)} was not started at set-up (this is a bug: joinerIds missed it)`);
      if (!this.introduced.has(target)) {
        this.introduced.add(target);
        actions.push(`${nodeName(target)} runs since set-up with initial_cluster_state = existing, waiting to be added`);
      }
      const endpoints = this.endpoints.get(target)!;
      path = "/v3/cluster/member/add";
      body = { ID: String(target), peerURLs: [`http://${endpoints.host}:${endpoints.peerPort}`] };
    } else if (action.verb === "remove_node") {
      const node = this.resolveOne(action.node, leader);
      if (typeof node === "string") return fail(`no node to remove (${describeSelector(action.node)}): ${node}`);
      target = node;
      path = "/v3/cluster/member/remove";
      body = { ID: String(target) };
    } else {
      const to = this.resolveOne(action.to, leader);
      if (typeof to === "string") return fail(`no node to hand leadership to (${describeSelector(action.to)}): ${to}`);
      target = to;
      path = "/v3/maintenance/transfer-leadership";
      body = { targetID: String(target) };
    }
    detail.node = target;
    this.bind(step, [target]);
    const record: RequestRecord = { sentMs, via, unsent: undefined, reply: undefined };
    if (step.id !== undefined) this.requests.set(step.id, record);
    const verb = action.verb;
    if (this.options.postgres === true && verb !== "transfer_leadership") {
      // On PostgreSQL nodes membership changes go through the guide's SQL functions on `via`'s server.
      const endpoints = this.endpoints.get(target)!;
      const statement = verb === "add_node" ? addNodeStatement(target, endpoints.host, endpoints.peerPort) : removeNodeStatement(target);
      actions.push(`SQL on ${nodeName(via)}'s PostgreSQL: ${statement.shown}`);
      detail.sql = statement.shown;
      this.pending.push(this.membershipBySql(verb, target, via, statement, record));
      return undefined;
    }
    actions.push(`POST ${path} ${JSON.stringify(body)} to ${nodeName(via)}`);
    const sent = postJson(`${this.endpoints.get(via)!.clientUrl}${path}`, body, REQUEST_TIMEOUT_MS).then(
      (reply) => {
        const atMs = this.nowMs();
        const leaderAtReply = this.observer?.latest?.leader;
        if (reply.status === 200) {
          record.reply = { atMs, ok: true, code: undefined, message: "accepted", leaderId: undefined, leaderAtReply };
          if (verb === "add_node") this.members.add(target);
          if (verb === "remove_node") this.members.delete(target);
        } else {
          const outcome = classifyError(reply.status, reply.body);
          const code = outcome.kind === "failed" ? (outcome.code === "other" ? (reply.status === 409 ? "change_in_progress" : `http_${reply.status}`) : outcome.code) : "unknown";
          record.reply = { atMs, ok: false, code, message: outcome.kind === "ok" ? "" : outcome.message, leaderId: outcome.kind === "failed" ? outcome.leaderId : undefined, leaderAtReply };
        }
        this.event(`${verb} ${nodeName(target)} via ${nodeName(via)}: ${record.reply.ok ? "accepted" : `refused (${record.reply.code})`}`);
      },
      (error: unknown) => {
        this.event(`${verb} ${nodeName(target)} via ${nodeName(via)}: no answer: ${(error as Error).message}`);
      },
    );
    this.pending.push(sent);
    return undefined;
  }

  /** Runs a membership statement on `via`'s PostgreSQL and records its reply (see membership-sql.ts). */
  async membershipBySql(verb: "add_node" | "remove_node", target: number, via: number, statement: MembershipStatement, record: RequestRecord): Promise<void> {
    this.membershipConnections ??= this.sqlConnectionsFor("membership");
    try {
      const rows = await this.membershipConnections.query(via, statement.text, statement.params, REQUEST_TIMEOUT_MS);
      const atMs = this.nowMs();
      const leaderAtReply = this.observer?.latest?.leader;
      if (rows[0]?.ok === true) {
        record.reply = { atMs, ok: true, code: undefined, message: "accepted", leaderId: undefined, leaderAtReply };
        if (verb === "add_node") this.members.add(target);
        else this.members.delete(target);
      } else {
        record.reply = { atMs, ok: false, code: "not_ok", message: `${statement.shown} returned ${JSON.stringify(rows[0]?.ok ?? null)}, not true`, leaderId: undefined, leaderAtReply };
      }
    } catch (error) {
      const outcome = classifyMembershipFailure(error);
      if (outcome.kind === "unsent") {
        record.unsent = `${statement.shown} could not be sent to ${nodeName(via)}'s PostgreSQL: ${outcome.message}`;
        this.event(`${verb} ${nodeName(target)} via ${nodeName(via)} (SQL): not sent: ${outcome.message}`);
        return;
      }
      if (outcome.kind === "no_answer") {
        this.event(`${verb} ${nodeName(target)} via ${nodeName(via)} (SQL): no answer: ${outcome.message}`);
        return;
      }
      const leaderAtReply = this.observer?.latest?.leader;
      record.reply = { atMs: this.nowMs(), ok: false, code: outcome.code, message: `SQLSTATE ${outcome.sqlState}: ${outcome.message}`, leaderId: outcome.leaderId, leaderAtReply };
    }
    this.event(`${verb} ${nodeName(target)} via ${nodeName(via)} (SQL): ${record.reply.ok ? "accepted" : `refused (${record.reply.code})`}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Liveness, final checks, teardown

  /** Heals everything, then requires an acknowledged write within 12 election timeouts. */
  async livenessPhase(): Promise<number | null> {
    await this.network!.heal();
    for (const id of this.endpoints.keys()) {
      const state = this.provider.nodeState(id);
      if (state === "paused") await this.provider.resumeNode(id);
      if (leftTheCluster(this.provider, id)) {
        // It learned it was removed and exited, as pgraft.on_removed = exit has it: an operator does not
        // start it again (its log says so), whatever the reply to the removal request was.
        if (this.members.delete(id)) this.event(`${nodeName(id)} exited with code ${REMOVED_EXIT_CODE} (removed from the cluster): not restarted`);
        continue;
      }
      if ((state === "crashed" || state === "exited") && this.members.has(id)) await this.provider.restartNode(id);
    }
    const healedMs = this.nowMs();
    this.event("all faults healed: liveness phase");
    const boundMs = LIVENESS_ELECTION_TIMEOUTS_MAX * this.scenario.timing.electionTimeoutMs;
    while (this.nowMs() - healedMs < boundMs) {
      this.checkAborted();
      const probe = this.clients!.write("leader", Math.max(500, Math.min(3000, boundMs / 4)));
      await this.clients!.settleProbes(5000);
      if (probe.status === "ok") return Math.round(probe.endMs! - healedMs);
      await sleep(200);
    }
    this.failures.push(`Liveness: no write was acknowledged within ${boundMs} ms (12 election timeouts) of healing every fault`);
    return null;
  }

  async finish(): Promise<{ correctness: string[]; liveness: string[]; linearizable: ChaosRunResult["linearizable"]; acknowledgedLost: number }> {
    const clients = this.clients!;
    await Promise.all([clients.stop(), this.sqlWorkload?.stop()]);
    await clients.settleProbes(this.scenario.workload.clientTimeoutMs + 2000);
    await Promise.race([Promise.allSettled(this.pending), sleep(REQUEST_TIMEOUT_MS)]);
    // Every acknowledged probe write must read back at the end (when a leader can answer).
    const lostKeys = new Set<string>();
    const lostLines: string[] = [];
    const unreadLines: string[] = [];
    const sqlLines: string[] = [];
    if (this.scenario.liveness) {
      const reads = clients.acknowledged.map((write) => ({ write, probe: clients.read("leader", write.key) }));
      await clients.settleProbes(this.scenario.workload.clientTimeoutMs + 2000);
      for (const { write, probe } of reads) {
        if (probe.status === "ok" && probe.readValue !== write.value) {
          lostKeys.add(write.key);
          lostLines.push(`Durability: ${write.key}=${write.value} was acknowledged at ${(write.atMs / 1000).toFixed(2)}s but reads back as ${JSON.stringify(probe.readValue)}`);
        } else if (probe.status !== "ok" && unreadLines.length < 3) {
          unreadLines.push(`Liveness: the read-back of ${write.key} (acknowledged at ${(write.atMs / 1000).toFixed(2)}s) through the etcd API failed: ${probe.status}${probe.message ? ` (${probe.message})` : ""}`);
        }
      }
      if (this.options.postgres === true) {
        const sql = await this.sqlReadBack(clients.acknowledged);
        for (const line of sql.lost) {
          lostKeys.add(line.key);
          lostLines.push(line.message);
        }
        if (sql.problem !== undefined) unreadLines.push(`Liveness: ${sql.problem}`);
        const agreement = await settleAgreement(this.sqlConnectionsFor("agreement"), () => this.runningIds(), () => this.observer?.latest?.leader, SQL_SETTLE_MS, sleep);
        this.sqlAgreed = agreement === undefined;
        if (agreement !== undefined) sqlLines.push(`SQL: ${SQL_SETTLE_MS / 1000} s after recovery the SQL functions still disagree with /health: ${agreement}`);
      }
    }
    const acknowledgedLost = lostKeys.size;
    this.observer?.stop();
    this.sqlObserver?.stop();
    if (this.sqlObserver !== undefined) {
      for (const problem of checkSqlAgainstHealth(this.observer?.samples ?? [], this.sqlObserver.samples)) sqlLines.push(`SQL: ${problem}`);
    }
    const operations = clients.history.operations();
    const check = checkLinearizable(operations);
    const correctness: string[] = [];
    const liveness: string[] = [];
    let linearizable: ChaosRunResult["linearizable"];
    if (check.ok === true) linearizable = "yes";
    else if (check.ok === false) {
      linearizable = "no";
      correctness.push(`Linearizability: key ${check.key}: ${check.reason}`);
    } else {
      linearizable = "undecided";
      this.note(`${this.scenario.name}: the linearizability check ran out of budget at key ${check.key}: ${check.reason}`);
    }
    correctness.push(...lostLines, ...sqlLines);
    liveness.push(...unreadLines);
    for (const verdict of this.monitor?.verdicts() ?? []) correctness.push(`Expectation: ${verdict.message}`);
    for (const failure of this.failures) (failure.startsWith("Liveness:") ? liveness : correctness).push(failure.startsWith("Liveness:") ? failure : `Step: ${failure}`);
    return { correctness, liveness, linearizable, acknowledgedLost };
  }

  /**
   * Every acknowledged probe write read back through SQL on the leader's server, with the guide's
   * pgraft_kv_get (one statement for all keys). pgraft.kv follows the node's apply asynchronously, so
   * keys still missing are read again until SQL_SETTLE_MS has passed.
   */
  async sqlReadBack(writes: readonly { key: string; value: string; atMs: number }[]): Promise<{ lost: { key: string; message: string }[]; problem: string | undefined }> {
    if (writes.length === 0) return { lost: [], problem: undefined };
    const connections = this.sqlConnectionsFor("read-back");
    const deadline = Date.now() + SQL_SETTLE_MS;
    let lastProblem = "no leader was seen";
    for (;;) {
      const leader = this.observer?.latest?.leader;
      if (leader !== undefined) {
        try {
          const rows = await connections.query(leader, "SELECT k AS key, pgraft_kv_get(k) AS value FROM unnest($1::text[]) AS k", [writes.map((write) => write.key)], 5000);
          const values = new Map(rows.map((row) => [String(row.key), row.value as string | null]));
          const wrong = writes.filter((write) => values.get(write.key) !== write.value);
          if (wrong.length === 0) {
            this.sqlReadBackKeys = writes.length;
            return { lost: [], problem: undefined };
          }
          lastProblem = `pgraft_kv_get on ${nodeName(leader)}`;
          if (Date.now() > deadline) {
            return {
              lost: wrong.map((write) => ({
                key: write.key,
                message: `Durability (SQL): ${write.key}=${write.value} was acknowledged at ${(write.atMs / 1000).toFixed(2)}s but pgraft_kv_get('${write.key}') on the leader ${nodeName(leader)} returns ${JSON.stringify(values.get(write.key) ?? null)}`,
              })),
              problem: undefined,
            };
          }
        } catch (error) {
          lastProblem = `pgraft_kv_get on ${nodeName(leader)} failed: ${(error as Error).message}`;
        }
      }
      if (Date.now() > deadline) return { lost: [], problem: `the read-back of acknowledged writes through SQL could not be made within ${SQL_SETTLE_MS} ms: ${lastProblem}` };
      await sleep(300);
    }
  }

  async tearDown(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.observer?.stop();
    this.sqlObserver?.stop();
    if (this.clients !== undefined) await Promise.race([Promise.all([this.clients.stop(), this.sqlWorkload?.stop()]), sleep(this.scenario.workload.clientTimeoutMs + 1000)]);
    await Promise.all(this.sqlConnections.map((connections) => connections.close()));
    if (this.toxiproxy !== undefined) (this.recording.toxiproxy as { drawsAtEnd: number | null }).drawsAtEnd = this.toxiproxy.random.draws;
    for (const id of this.endpoints.keys()) this.recording.logTails[nodeName(id)] = this.provider.logTail(id, LOG_TAIL_CHARS);
    await this.provider.destroy().catch((error: unknown) => this.note(`teardown: provider: ${(error as Error).message}`));
    await this.network?.close().catch(() => undefined);
    await this.toxiproxy?.close().catch(() => undefined);
  }
}

/** Whether node `id` exited by itself because it learned it was removed (`pgraft start` exit code 3). */
export function leftTheCluster(provider: Pick<ClusterProvider, "nodeState" | "exitCode">, id: number): boolean {
  return provider.nodeState(id) === "exited" && provider.exitCode?.(id) === REMOVED_EXIT_CODE;
}

function describeLinkAction(action: { proxy: string; toxic: string; change: string }): string {
  return `${action.proxy}: ${action.toxic} ${action.change}`;
}

function describeStep(action: Action): string {
  switch (action.verb) {
    case "partition":
      return `partition ${action.groups.map(describeNodeSet).join(" | ")}`;
    case "cut":
    case "hold":
    case "release":
      return `${action.verb} ${describeNodeSet(action.from)} -> ${describeNodeSet(action.to)}`;
    case "link":
      return `link ${describeNodeSet(action.from)} ${action.bothWays ? "<->" : "->"} ${describeNodeSet(action.to)}`;
    case "heal":
      return "heal";
    case "add_node":
      return `add_node ${nodeName(action.node)} via ${describeSelector(action.via)}`;
    case "remove_node":
      return `remove_node ${describeSelector(action.node)} via ${describeSelector(action.via)}`;
    case "transfer_leadership":
      return `transfer_leadership to ${describeSelector(action.to)} via ${describeSelector(action.via)}`;
    case "slow_disk":
    case "clock_drift":
    case "crash":
    case "restart":
    case "pause":
    case "resume":
    case "isolate":
    case "fail_disk":
    case "repair_disk":
    case "corrupt_disk":
      return `${action.verb} ${describeNodeSet(action.nodes)}`;
  }
}

/** For each crash, pause, isolate or cut that hit the node leading then: ms until another node led. */
export function measureFailovers(steps: readonly RecordedStep[], samples: readonly Sample[]): number[] {
  const failovers: number[] = [];
  for (const step of steps) {
    if (!["crash", "pause", "isolate", "cut", "partition"].includes(step.verb) || step.outcome !== "ok") continue;
    const before = [...samples].reverse().find((sample) => sample.timeMs <= step.atMs);
    const leader = before?.leader;
    if (leader === undefined) continue;
    const hit = step.nodes ?? step.from ?? step.groups?.find((group) => group.includes(leader)) ?? [];
    if (!hit.includes(leader)) continue;
    const after = samples.find((sample) => sample.timeMs > step.atMs && sample.leader !== undefined && sample.leader !== leader);
    if (after !== undefined) failovers.push(Math.round(after.timeMs - step.atMs));
  }
  return failovers;
}

/** Rises of the highest term after the first leader was seen. */
export function countElections(samples: readonly Sample[]): number {
  const first = samples.find((sample) => sample.leader !== undefined);
  const last = samples[samples.length - 1];
  if (first === undefined || last === undefined) return 0;
  return last.termMax - first.termMax;
}
