/**
 * Structured logs with pino: one JSON line per event that matters, human-readable through pino-pretty
 * when stderr is a terminal. Every message starts with "pgraft:", so the operations guide's
 * `grep pgraft:` finds them in a PostgreSQL log as in ours.
 */
import pino, { type Logger } from "pino";

export type PgraftLogger = Logger;

export function createLogger(options: { level?: string; name: string; pretty?: boolean; destination?: number }): PgraftLogger {
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const base = { level: options.level ?? "info", msgPrefix: "pgraft: ", base: { node: options.name } };
  if (pretty) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { destination: options.destination ?? 2, translateTime: "SYS:HH:MM:ss.l" } } });
  }
  return pino(base, pino.destination({ dest: options.destination ?? 2, sync: true }));
}
