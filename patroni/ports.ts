/**
 * Free TCP ports on 127.0.0.1, chosen by the OS: every port is held open until all are known (so one
 * call never returns the same port twice), then released for the servers that take them.
 */
import { createServer, type Server } from "node:net";

const MAX_PORTS = 64;

export async function freePorts(count: number): Promise<number[]> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_PORTS) throw new Error(`Cannot choose ${count} ports: ask for 1 to ${MAX_PORTS}`);
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("Cannot choose a port: the OS gave no TCP address");
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}
