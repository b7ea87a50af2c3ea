/** A small HTTP client over node:http for the benchmark: one request, a deadline, the status and body. */
import { Agent, request as httpRequest } from "node:http";

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export interface HttpCall {
  readonly method: "GET" | "POST";
  readonly url: string;
  readonly body?: string;
  readonly timeoutMs: number;
  readonly agent?: Agent;
}

/** Rejects on connection errors and when no full answer arrives within `timeoutMs`. */
export function httpCall(call: HttpCall): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    const url = new URL(call.url);
    const headers: Record<string, string | number> = {};
    if (call.body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(call.body);
    }
    let settled = false;
    const finish = (error: Error | undefined, answer?: HttpAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(answer!);
    };
    const request = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname, method: call.method, headers, agent: call.agent ?? false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => finish(undefined, { status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", (error) => finish(error));
      },
    );
    const timer = setTimeout(() => {
      request.destroy(new Error(`no answer from ${call.url} within ${call.timeoutMs} ms`));
    }, call.timeoutMs);
    request.on("error", (error) => finish(error));
    request.end(call.body);
  });
}

/** Like httpCall, but any failure is undefined (for polling). */
export async function tryHttp(call: HttpCall): Promise<HttpAnswer | undefined> {
  try {
    return await httpCall(call);
  } catch {
    return undefined;
  }
}

export function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
