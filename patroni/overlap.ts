/**
 * The split-brain check: from the writes each node accepted (a COMMIT that returned), the periods in
 * which each node was accepting writes, and any two periods of different nodes that overlap in time.
 *
 * A node's period is a run of its accepted writes with no failed attempt between them, from the start
 * of its first write to the end of its last (times are the writer's, from one monotonic clock). Two
 * periods of different nodes that intersect mean that both nodes accepted writes at the same time:
 * between two writes that node A accepted with nothing failing in between, node B accepted one too.
 */

export interface WriteAttempt {
  readonly node: string;
  /** Sent at (ms, monotonic). */
  readonly startMs: number;
  /** Answered at (ms, monotonic). */
  readonly endMs: number;
  readonly ok: boolean;
}

export interface WritePeriod {
  readonly node: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly writes: number;
}

export interface Overlap {
  readonly a: WritePeriod;
  readonly b: WritePeriod;
}

/** Each node's periods of consecutive accepted writes (attempts of one node are sequential). */
export function writePeriods(attempts: readonly WriteAttempt[]): WritePeriod[] {
  const byNode = new Map<string, WriteAttempt[]>();
  for (const attempt of attempts) {
    if (!(attempt.endMs >= attempt.startMs)) throw new Error(`Cannot judge a write of ${attempt.node} that ended (${attempt.endMs}) before it started (${attempt.startMs})`);
    byNode.set(attempt.node, [...(byNode.get(attempt.node) ?? []), attempt]);
  }
  const periods: WritePeriod[] = [];
  for (const [node, list] of byNode) {
    const sorted = [...list].sort((x, y) => x.startMs - y.startMs);
    let current: { fromMs: number; toMs: number; writes: number } | undefined;
    for (const attempt of sorted) {
      if (attempt.ok) {
        if (current === undefined) current = { fromMs: attempt.startMs, toMs: attempt.endMs, writes: 1 };
        else {
          current.toMs = attempt.endMs;
          current.writes++;
        }
      } else if (current !== undefined) {
        periods.push({ node, ...current });
        current = undefined;
      }
    }
    if (current !== undefined) periods.push({ node, ...current });
  }
  return periods.sort((x, y) => x.fromMs - y.fromMs);
}

/**
 * Pairs of periods of different nodes that intersect. A period of a single write is only an instant
 * of acceptance, so two single writes overlap only when their [start, end] intervals intersect.
 */
export function overlaps(attempts: readonly WriteAttempt[]): Overlap[] {
  const periods = writePeriods(attempts);
  const found: Overlap[] = [];
  for (let i = 0; i < periods.length; i++) {
    for (let j = i + 1; j < periods.length; j++) {
      const a = periods[i]!;
      const b = periods[j]!;
      if (b.fromMs > a.toMs) continue;
      if (a.node !== b.node) found.push({ a, b });
    }
  }
  return found;
}

export function describeOverlap({ a, b }: Overlap): string {
  return `${a.node} accepted ${a.writes} writes from ${a.fromMs.toFixed(0)} to ${a.toMs.toFixed(0)} ms while ${b.node} accepted ${b.writes} from ${b.fromMs.toFixed(0)} to ${b.toMs.toFixed(0)} ms`;
}
