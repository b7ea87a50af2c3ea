/** Helpers for the tests that check dial redirection in a child node process. */
import { spawn } from "node:child_process";
import * as net from "node:net";

export interface ChildResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `code` (an ES module) in a child node with `environment` over `base` (the parent's environment
 * without NODE_OPTIONS by default; `{ PATH }` alone for a container-like one). Killed after 20 s.
 */
export function runChild(code: string, environment: Record<string, string>, base: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: "" }): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], { env: { ...base, ...environment } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("error", reject);
    child.on("exit", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A loopback TCP server that answers every connection with `reply` and closes it. */
export async function replyServer(reply: string): Promise<net.Server> {
  const listener = net.createServer((socket) => socket.end(reply));
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  return listener;
}
