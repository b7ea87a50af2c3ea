/**
 * One leader failure: wait until the cluster is healthy, SIGKILL (or SIGSTOP) the leader at a random
 * point of a heartbeat interval, then probe both survivors with writes (open loop: a new put to each every
 * `probeIntervalMs`, each bounded by `probeTimeoutMs`, so a request stuck on the dead leader never
 * delays the next one). The failover time runs from the kill signal to the first write that a survivor
 * answers 200, i.e. a write committed by the new leader. Then the killed member restarts on its data
 * directory (a stopped one gets SIGCONT) and the next failure waits until the cluster is healthy again.
 * SIGKILL closes the leader's connections, which the survivors see at once; SIGSTOP closes nothing, so
 * they learn of it only from the silence, as after a network partition.
 */
import { Agent } from "node:http";
import { performance } from "node:perf_hooks";
import type { BenchCluster, Member } from "./cluster.ts";
import { sleep } from "./http.ts";
import { put, type Workload } from "./load.ts";

export interface FailoverOptions {
  readonly heartbeatMs: number;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  /** Give up on one kill after this long (counted as a failure, not as a time). */
  readonly failoverTimeoutMs: number;
  readonly healthyTimeoutMs: number;
  /** Quiet time after the cluster is healthy again, before the next kill. */
  readonly settleMs: number;
}

/** How the leader fails: killed (its connections close) or stopped (silent, connections open). */
export type FailureKind = "kill" | "stop";

export interface FailoverResult {
  readonly kind: FailureKind;
  readonly killed: string;
  /** undefined when no write succeeded within failoverTimeoutMs. */
  readonly failoverMs: number | undefined;
  readonly answeredBy: string | undefined;
  readonly probes: number;
  readonly lastError: string | undefined;
}

const PROBES_IN_FLIGHT_MAX = 1000;

async function warmConnection(agent: Agent, member: Member, body: string, timeoutMs: number): Promise<void> {
  let lastError: string | undefined;
  for (let attempt = 0; attempt < 50; attempt++) {
    const answer = await put(agent, new URL(member.clientUrl), body, timeoutMs);
    if (answer.status === 200) return;
    lastError = answer.error;
    await sleep(100);
  }
  throw new Error(`Cannot write through ${member.name} before the kill: ${lastError ?? "no answer"}`);
}

export async function killLeaderOnce(cluster: BenchCluster, workload: Workload, options: FailoverOptions, kill: number, kind: FailureKind = "kill"): Promise<FailoverResult> {
  const leader = await cluster.waitHealthy(options.healthyTimeoutMs);
  const survivors = cluster.members.filter((member) => member !== leader);
  const agent = new Agent({ keepAlive: true, maxSockets: PROBES_IN_FLIGHT_MAX + 16 });
  try {
    // Open a kept-alive connection to each survivor and check writes flow through it.
    await Promise.all(survivors.map((member) => warmConnection(agent, member, workload.body(kill), options.probeTimeoutMs)));
    await sleep(options.settleMs + Math.random() * options.heartbeatMs);
    const killedAt = performance.now();
    if (kind === "kill") await cluster.kill(leader);
    else cluster.pause(leader);
    let answeredAt: number | undefined;
    let answeredBy: string | undefined;
    let lastError: string | undefined;
    let probes = 0;
    let inFlight = 0;
    const deadline = killedAt + options.failoverTimeoutMs;
    while (answeredAt === undefined && performance.now() < deadline) {
      for (const member of survivors) {
        if (inFlight >= PROBES_IN_FLIGHT_MAX) break;
        inFlight++;
        probes++;
        void put(agent, new URL(member.clientUrl), workload.body(kill * 1000 + probes), options.probeTimeoutMs).then((answer) => {
          inFlight--;
          if (answer.status === 200) {
            if (answeredAt === undefined) {
              answeredAt = performance.now();
              answeredBy = member.name;
            }
          } else {
            lastError = answer.error;
          }
        });
      }
      await sleep(options.probeIntervalMs);
    }
    const result: FailoverResult = {
      kind,
      killed: leader.name,
      failoverMs: answeredAt === undefined ? undefined : answeredAt - killedAt,
      answeredBy,
      probes,
      lastError,
    };
    if (kind === "kill") await cluster.restart(leader);
    else cluster.resume(leader);
    await cluster.waitHealthy(options.healthyTimeoutMs);
    return result;
  } finally {
    agent.destroy();
  }
}
