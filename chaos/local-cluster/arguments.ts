/**
 * `npm run cluster` flags. Every malformed or contradictory flag is refused with a message naming it,
 * what was received and what to do; the CLI prints the message and the usage and exits 2.
 */

export const NODES_MIN = 1;
export const NODES_MAX = 7;
export const NODES_DEFAULT = 3;
export const CLUSTER_NAME_DEFAULT = "default";
/** Letters, digits, "-" and "_": the name becomes a directory and part of pgraft.cluster_id. */
const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

export const USAGE = `Usage:
  npm run cluster [-- --nodes N] [--name NAME] [--keep]
      start N PostgreSQL servers and pgraft nodes (default 3) on 127.0.0.1, print how to reach them,
      and wait; Ctrl-C stops everything and deletes the files (--keep keeps them)
  npm run --silent cluster -- --detach [--json] [--nodes N] [--name NAME]
      start the same in the background and exit once it is ready (--json: one JSON object on stdout)
  npm run cluster -- --stop [--name NAME] [--keep]
      stop a cluster started with --detach (or left behind) and delete its files
NAME defaults to "${CLUSTER_NAME_DEFAULT}"; clusters with different names run side by side.`;

export type ClusterCommand = "foreground" | "detach" | "stop";

export interface ClusterArguments {
  readonly command: ClusterCommand;
  readonly name: string;
  readonly nodeCount: number;
  readonly json: boolean;
  readonly keep: boolean;
}

export class ClusterUsageError extends Error {
  override name = "ClusterUsageError";
}

export function parseClusterArguments(argv: readonly string[]): ClusterArguments {
  let detach = false;
  let stop = false;
  let json = false;
  let keep = false;
  let name: string | undefined;
  let nodeCount: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined || next.startsWith("--")) throw new ClusterUsageError(`Cannot read ${flag}: it needs a value; write ${flag} VALUE`);
      return next;
    };
    const noValue = (): void => {
      if (inline !== undefined) throw new ClusterUsageError(`Cannot read ${arg}: ${flag} takes no value; write ${flag} alone`);
    };
    switch (flag) {
      case "--detach":
        noValue();
        detach = true;
        break;
      case "--stop":
        noValue();
        stop = true;
        break;
      case "--json":
        noValue();
        json = true;
        break;
      case "--keep":
        noValue();
        keep = true;
        break;
      case "--name":
        if (name !== undefined) throw new ClusterUsageError(`Cannot read --name twice; give one name`);
        name = parseName(value());
        break;
      case "--nodes":
        if (nodeCount !== undefined) throw new ClusterUsageError(`Cannot read --nodes twice; give one count`);
        nodeCount = parseNodeCount(value());
        break;
      case "--help":
      case "-h":
        throw new ClusterUsageError("");
      default:
        throw new ClusterUsageError(`Cannot use ${JSON.stringify(arg)}: it is not a flag of npm run cluster; see the usage below`);
    }
  }
  if (detach && stop) throw new ClusterUsageError("Cannot use --detach with --stop: one starts a cluster, the other stops one; run them one after the other");
  if (stop && nodeCount !== undefined) throw new ClusterUsageError("Cannot use --nodes with --stop: --stop stops every node of the cluster; drop --nodes");
  if (stop && json) throw new ClusterUsageError("Cannot use --json with --stop: --stop prints a line on stderr and exits 0 when everything is gone; drop --json");
  if (json && !detach) throw new ClusterUsageError("Cannot use --json without --detach: the foreground cluster prints text for people; add --detach for one JSON object");
  if (detach && keep) throw new ClusterUsageError("Cannot use --keep with --detach: files are kept or deleted when the cluster stops; pass --keep to --stop instead");
  return {
    command: stop ? "stop" : detach ? "detach" : "foreground",
    name: name ?? CLUSTER_NAME_DEFAULT,
    nodeCount: nodeCount ?? NODES_DEFAULT,
    json,
    keep,
  };
}

function parseName(text: string): string {
  if (!CLUSTER_NAME_PATTERN.test(text)) {
    throw new ClusterUsageError(`Cannot use --name ${JSON.stringify(text)}: use 1 to 32 letters, digits, "-" or "_", starting with a letter or digit, for example --name second`);
  }
  return text;
}

function parseNodeCount(text: string): number {
  const count = Number(text);
  if (!/^\d+$/.test(text) || count < NODES_MIN || count > NODES_MAX) {
    throw new ClusterUsageError(`Cannot use --nodes ${JSON.stringify(text)}: give a whole number from ${NODES_MIN} to ${NODES_MAX}, for example --nodes 5`);
  }
  return count;
}
