/**
 * The two systems the compatibility suite drives with the same commands: a 3-node pgraft cluster (real
 * `pgraft start` processes) and a 3-member etcd 3.4 cluster (Debian's etcd-server), both on loopback,
 * each on ports checked free, each stopped by close() (the suite calls it from test.after.always and
 * on SIGINT). etcdctl (Debian's etcd-client) runs as a child process with ETCDCTL_API=3.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessCluster, sleep } from "../server/process-cluster.ts";

export interface Target {
  /** "pgraft" or "etcd". */
  readonly name: string;
  /** Client URLs, http://127.0.0.1:port. */
  readonly endpoints: readonly string[];
  /** The last lines each server process wrote (for failure messages). */
  logs(): string;
  close(): Promise<void>;
}

/** The programs the suite needs, by path; throws naming the Debian packages when one is missing. */
export function requirePrograms(): { etcd: string; etcdctl: string } {
  const which = (program: string): string | undefined => {
    try {
      return execFileSync("which", [program], { encoding: "utf8" }).trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const etcd = which("etcd");
  const etcdctl = which("etcdctl");
  const missing = [etcd === undefined ? "etcd-server (etcd)" : "", etcdctl === undefined ? "etcd-client (etcdctl)" : ""].filter(Boolean);
  if (missing.length > 0) {
    throw new Error(`Cannot run the etcd compatibility suite: ${missing.join(" and ")} not installed; run apt-get install etcd-server etcd-client (.ci/run and test/machine-packages.sh do)`);
  }
  const version = execFileSync(etcdctl!, ["version"], { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } });
  if (!/etcdctl version: 3\.4\./.test(version)) throw new Error(`Cannot run the etcd compatibility suite: it is written for etcdctl 3.4, found ${JSON.stringify(version.split("\n")[0])}`);
  return { etcd: etcd!, etcdctl: etcdctl! };
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A base port such that base..base+count-1 and base+100..base+100+count-1 are free (ProcessCluster's layout). */
export async function freeBasePort(preferred: number, count: number): Promise<number> {
  for (let base = preferred; base < preferred + 2000; base += 7) {
    const ports = Array.from({ length: count }, (_, i) => [base + i, base + 100 + i]).flat();
    let free = true;
    for (const port of ports) if (!(free = await isPortFree(port))) break;
    if (free) return base;
  }
  throw new Error(`No free ports near ${preferred}`);
}

export interface EtctlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs etcdctl against `endpoints` (all of them, as users list them), bounded by `timeoutMs`. */
export function etcdctl(endpoints: readonly string[], args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<EtctlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("etcdctl", [`--endpoints=${endpoints.join(",")}`, "--command-timeout=15s", ...args], {
      env: { ...process.env, ETCDCTL_API: "3" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** Waits (bounded) until `endpoint health --cluster`-style checks pass on every endpoint. */
async function waitHealthy(target: Target, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: EtctlResult | undefined;
  while (Date.now() < deadline) {
    last = await etcdctl(target.endpoints, ["endpoint", "health"], { timeoutMs: 20_000 });
    if (last.code === 0) return;
    await sleep(200);
  }
  throw new Error(`${target.name} did not become healthy within ${timeoutMs} ms: ${last?.stderr}\n${target.logs()}`);
}

/** `extraSettings`: more `pgraft.name=value` settings for every node. */
export async function startPgraft(preferredBase: number, extraSettings: readonly string[] = []): Promise<Target> {
  const base = await freeBasePort(preferredBase, 3);
  const cluster = new ProcessCluster(3, base, [...extraSettings]);
  cluster.startAll();
  const target: Target = {
    name: "pgraft",
    endpoints: cluster.nodes.map((node) => node.clientUrl),
    logs: () => cluster.nodes.map((node) => `--- ${node.name}\n${node.log.slice(-3000)}`).join("\n"),
    close: () => cluster.close(),
  };
  try {
    await cluster.waitForLeader(30_000);
    await waitHealthy(target, 30_000);
  } catch (error) {
    await target.close();
    throw error;
  }
  return target;
}

/** `extraFlags`: more command-line flags for every member. */
export async function startEtcd(preferredBase: number, extraFlags: readonly string[] = []): Promise<Target> {
  const base = await freeBasePort(preferredBase, 3);
  const directory = mkdtempSync(join(tmpdir(), "pgraft-compat-etcd-"));
  const members = [0, 1, 2].map((i) => ({ name: `e${i + 1}`, peer: `http://127.0.0.1:${base + i}`, client: `http://127.0.0.1:${base + 100 + i}` }));
  const initialCluster = members.map((member) => `${member.name}=${member.peer}`).join(",");
  const logs = new Map<string, string>();
  const children: ChildProcess[] = members.map((member) => {
    const child = spawn(
      "etcd",
      [
        `--name=${member.name}`,
        `--data-dir=${join(directory, member.name)}`,
        `--listen-peer-urls=${member.peer}`,
        `--initial-advertise-peer-urls=${member.peer}`,
        `--listen-client-urls=${member.client}`,
        `--advertise-client-urls=${member.client}`,
        `--initial-cluster=${initialCluster}`,
        "--initial-cluster-state=new",
        `--initial-cluster-token=pgraft-compat-${base}`,
        "--heartbeat-interval=100",
        "--election-timeout=1000",
        "--logger=zap",
        "--log-level=warn",
        ...extraFlags,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    logs.set(member.name, "");
    child.stderr!.on("data", (chunk: Buffer) => logs.set(member.name, (logs.get(member.name)! + chunk.toString("utf8")).slice(-100_000)));
    return child;
  });
  const target: Target = {
    name: "etcd",
    endpoints: members.map((member) => member.client),
    logs: () => [...logs].map(([name, log]) => `--- ${name}\n${log.slice(-3000)}`).join("\n"),
    close: async () => {
      await Promise.all(
        children.map((child) => {
          if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
          const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
          child.kill("SIGKILL");
          return exited;
        }),
      );
      rmSync(directory, { recursive: true, force: true });
    },
  };
  try {
    await waitHealthy(target, 30_000);
  } catch (error) {
    await target.close();
    throw error;
  }
  return target;
}
