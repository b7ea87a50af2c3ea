/**
 * Nodes a scenario adds at run time ("joiners") and the proxies a run needs for them.
 *
 * Every member reaches a joiner at the one address in its configuration entry (pgraft_add_node's host
 * and port), not at an address of its own choosing as with pgraft.initial_cluster. So the links into a
 * joiner can go through a proxy per ordered pair only when the provider redirects each node's dials to
 * that address (capabilities.redirectDials: both providers preload dial-redirect.mjs). Without
 * it, only the joiner's own links out have proxies, and runner/support.ts refuses the steps that would
 * fault the links into it.
 */
import { stepTimes, type Scenario, type Step } from "../../sim/scenario/index.ts";

/** The ids the timeline's add_node steps introduce (not founders), in order of first appearance. */
export function joinerIds(scenario: Scenario): number[] {
  const ids: number[] = [];
  for (const step of scenario.timeline) {
    const action = step.action;
    if (action.verb === "add_node" && action.node > scenario.nodes && !ids.includes(action.node)) ids.push(action.node);
  }
  return ids;
}

/**
 * The ordered pairs (from, to) that get a proxy: every pair of founders; with `redirectDials` every pair
 * involving a joiner too; without it only a joiner's links to the founders (those it dials through its
 * own pgraft.initial_cluster).
 */
export function linkPairs(founders: readonly number[], joiners: readonly number[], redirectDials: boolean): [number, number][] {
  const pairs: [number, number][] = [];
  const all = [...founders, ...joiners];
  for (const from of all) {
    for (const to of all) {
      if (from === to) continue;
      const intoJoiner = joiners.includes(to);
      if (intoJoiner && !redirectDials) continue;
      if (!redirectDials && joiners.includes(from) && !founders.includes(to)) continue;
      pairs.push([from, to]);
    }
  }
  return pairs;
}

/**
 * The link steps (partition, cut, isolate, hold, release, link) that may touch a link into a joiner:
 * those that can run once the first add_node has (same time: later in the file) and whose receiving side
 * names a joiner or chooses nodes at run time (leader, follower, all, a bound name). isolate touches
 * every node's links with the isolated one, so any isolate then counts.
 */
export function stepsFaultingJoinerLinks(scenario: Scenario): Step[] {
  const joiners = joinerIds(scenario);
  if (joiners.length === 0) return [];
  const firstAdd = scenario.timeline
    .map((step, index) => ({ step, index }))
    .filter(({ step }) => step.action.verb === "add_node")
    .map(({ step, index }) => ({ timeMs: Math.min(...stepTimes(step)), index }))
    .sort((a, b) => a.timeMs - b.timeMs || a.index - b.index)[0]!;
  const names = (set: readonly { kind: string; id?: number }[]): boolean => set.some((selector) => selector.kind !== "node" || joiners.includes(selector.id!));
  return scenario.timeline.filter((step, index) => {
    const late = stepTimes(step).some((timeMs) => timeMs > firstAdd.timeMs || (timeMs === firstAdd.timeMs && index > firstAdd.index));
    if (!late) return false;
    const action = step.action;
    switch (action.verb) {
      case "isolate":
        return true;
      case "partition":
        return action.groups.some((group) => names(group));
      case "cut":
      case "hold":
      case "release":
        return names(action.to);
      case "link":
        return names(action.to) || (action.bothWays && names(action.from));
      default:
        return false;
    }
  });
}
