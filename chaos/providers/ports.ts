/**
 * Ports for nodes that are started later by other processes. The OS cannot hold a port for a child
 * that binds it seconds later, so ports are drawn at random below Linux's ephemeral range (where
 * outgoing connections never take them), checked free by binding, and skipped when another live chaos
 * run has reserved them (run-registry.ts). Two runs side by side therefore never pick the same port.
 */
import { createServer } from "node:net";

/** Below the default ephemeral range (32768-60999). */
export const PORT_RANGE_FIRST = 20_000;
export const PORT_RANGE_LAST = 32_000;
/** Draws before giving up: a machine with this many taken ports has another problem. */
export const PORT_DRAWS_MAX = 2_000;

export function canBind(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * `count` distinct ports that bind now on 127.0.0.1 and are in none of `avoid`. Throws after
 * PORT_DRAWS_MAX draws.
 */
export async function choosePorts(count: number, avoid: ReadonlySet<number>, random: () => number = Math.random): Promise<number[]> {
  const chosen: number[] = [];
  for (let draw = 0; draw < PORT_DRAWS_MAX && chosen.length < count; draw++) {
    const port = PORT_RANGE_FIRST + Math.floor(random() * (PORT_RANGE_LAST - PORT_RANGE_FIRST));
    if (avoid.has(port) || chosen.includes(port)) continue;
    if (await canBind(port)) chosen.push(port);
  }
  if (chosen.length < count) {
    throw new Error(
      `Cannot reserve ${count} ports: only ${chosen.length} of ${PORT_DRAWS_MAX} draws in ${PORT_RANGE_FIRST}-${PORT_RANGE_LAST} were free; stop other servers or stale chaos runs`,
    );
  }
  return chosen;
}
