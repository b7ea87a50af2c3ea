/**
 * Links into nodes added at run time (issue 10, learner-with-old-leader): with a provider that can
 * redirect dials, every ordered pair involving a joiner gets a proxy and the node's connections to the
 * joiner's configuration address really go through it (dial-redirect.mjs, checked on a real child
 * process); without one, the steps that would fault such links are refused before the run, each named.
 */
import test from "ava";
import net from "node:net";
import { loadScenarioFile } from "../../sim/scenario/index.ts";
import type { ClusterProvider, NodeEndpoints, ProviderCapabilities } from "../../chaos/providers/provider.ts";
import { dialRedirectEnvironment } from "../../chaos/providers/local.ts";
import { joinerIds, linkPairs, stepsFaultingJoinerLinks } from "../../chaos/runner/joiners.ts";
import { runChaosScenario } from "../../chaos/runner/run.ts";
import { checkSupport, describeRefusal } from "../../chaos/runner/support.ts";
import { replyServer, runChild } from "./child-fixtures.ts";

const LOCAL_LIKE: ProviderCapabilities = { crash: true, restart: true, pause: true, postgres: true, corruptData: true, redirectDials: true, description: "test processes" };
const NO_REDIRECT: ProviderCapabilities = { ...LOCAL_LIKE, redirectDials: undefined, description: "test containers" };

test("the joiners are the add_node targets beyond the founders, once each", (t) => {
  t.deepEqual(joinerIds(loadScenarioFile("scenarios/learner-with-old-leader.yaml")), [4]);
  t.deepEqual(joinerIds(loadScenarioFile("scenarios/lagging-voter-old-configuration.yaml")), [4]);
  t.deepEqual(joinerIds(loadScenarioFile("scenarios/lost-quorum.yaml")), []);
});

test("with redirected dials every ordered pair has a proxy; without, only a joiner's links to the founders", (t) => {
  const withRedirect = linkPairs([1, 2, 3], [4], true);
  t.is(withRedirect.length, 12);
  t.true(withRedirect.some(([from, to]) => from === 2 && to === 4), "n2 -> n4 has its own proxy");
  const without = linkPairs([1, 2, 3], [4, 5], false);
  t.false(without.some(([, to]) => to === 4 || to === 5), "nothing into a joiner");
  t.false(without.some(([from, to]) => from === 4 && to === 5));
  t.true(without.some(([from, to]) => from === 4 && to === 1));
  t.is(without.length, 6 + 6);
});

test("without redirectDials, a partition naming the joiner is refused naming its line; with it, nothing is", (t) => {
  const scenario = loadScenarioFile("scenarios/learner-with-old-leader.yaml");
  t.deepEqual(checkSupport(scenario, LOCAL_LIKE).refusals, []);
  const refused = checkSupport(scenario, NO_REDIRECT).refusals;
  t.is(refused.length, 1);
  const partition = scenario.timeline.find((step) => step.action.verb === "partition")!;
  t.is(refused[0]!.line, partition.line);
  t.regex(describeRefusal(scenario.file, refused[0]!), /learner-with-old-leader\.yaml:\d+: partition: the provider cannot fault the links into n4 \(added at run time\)/);
  // isolate after the add touches the links into n4 whichever node it isolates; the one before does not.
  const lagging = loadScenarioFile("scenarios/lagging-voter-old-configuration.yaml");
  const lines = stepsFaultingJoinerLinks(lagging).map((step) => `${step.action.verb}@${step.atMs}`);
  t.deepEqual(lines, ["isolate@13500"]);
  // A scenario without add_node is untouched.
  t.deepEqual(checkSupport(loadScenarioFile("scenarios/one-way-cut.yaml"), NO_REDIRECT).refusals, []);
});


test("a node's dials to a redirected address reach the proxy's address (both net.connect forms); others go direct", async (t) => {
  const joiner = await replyServer("joiner");
  const proxy = await replyServer("proxy");
  const other = await replyServer("other");
  t.teardown(() => {
    for (const listener of [joiner, proxy, other]) listener.close();
  });
  const port = (listener: net.Server): number => (listener.address() as net.AddressInfo).port;
  const code = `
    import * as net from "node:net";
    const read = (socket) => new Promise((resolve) => { let text = ""; socket.on("data", (d) => (text += d)); socket.on("close", () => resolve(text)); socket.on("error", (e) => resolve("error " + e.message)); });
    const a = await read(net.connect({ host: "127.0.0.1", port: ${port(joiner)} }));
    const b = await read(net.createConnection(${port(joiner)}, "127.0.0.1"));
    const c = await read(net.connect({ host: "127.0.0.1", port: ${port(other)} }));
    process.stdout.write([a, b, c].join(","));`;
  const environment = dialRedirectEnvironment({ [`127.0.0.1:${port(joiner)}`]: `127.0.0.1:${port(proxy)}` });
  const redirected = await runChild(code, environment);
  t.is(redirected.stdout, "proxy,proxy,other", redirected.stderr);
  // Without the redirect the same dials reach the joiner itself: the test can tell the two apart.
  const direct = await runChild(code, {});
  t.is(direct.stdout, "joiner,joiner,other", direct.stderr);
  t.deepEqual(dialRedirectEnvironment({}), {});
});

test("a malformed redirect map stops the node at once, saying what is wrong", async (t) => {
  const environment = dialRedirectEnvironment({ "127.0.0.1:1": "127.0.0.1:2" });
  const bad = await runChild("process.stdout.write('ran')", { ...environment, PGRAFT_CHAOS_DIAL_REDIRECTS: JSON.stringify({ "127.0.0.1:1": "nowhere" }) });
  t.is(bad.status, 2);
  t.is(bad.stdout, "");
  t.regex(bad.stderr, /Cannot read PGRAFT_CHAOS_DIAL_REDIRECTS: "nowhere" is not "host:port"/);
});

/** A provider that records each start (with its redirects) and whose nodes exit at once, ending set-up. */
function recordingProvider(redirectDials: boolean) {
  const starts: { id: number; settings: readonly string[]; dialRedirects: Readonly<Record<string, string>> | undefined }[] = [];
  const endpoints = (id: number): NodeEndpoints => ({ id, name: `n${id}`, host: "127.0.0.1", peerPort: 1000 + id, clientPort: 1, clientUrl: "http://127.0.0.1:1", metricsPort: 3, metricsUrl: "http://127.0.0.1:3/metrics", postgresPort: 4, postgresUrl: undefined });
  const provider: ClusterProvider = {
    name: "recording",
    capabilities: { ...LOCAL_LIKE, postgres: false, redirectDials },
    cleanStale: async () => ({ killed: [], removed: [] }),
    reserveNode: async (id) => endpoints(id),
    endpoints,
    startNode: async (spec) => void starts.push({ id: spec.id, settings: spec.settings, dialRedirects: spec.dialRedirects }),
    crashNode: async () => undefined,
    restartNode: async () => undefined,
    pauseNode: async () => undefined,
    resumeNode: async () => undefined,
    corruptNodeData: async () => undefined,
    nodeState: () => "exited",
    sql: async () => ({ rows: [] }),
    logTail: () => "",
    destroy: async () => undefined,
  };
  return { provider, starts };
}

test("set-up starts the node the timeline adds, waiting to be added, and points every member's dials to it at its own proxy", async (t) => {
  const { provider, starts } = recordingProvider(true);
  const result = await runChaosScenario({ scenario: loadScenarioFile("scenarios/learner-with-old-leader.yaml"), provider, seed: 1, postgres: false });
  t.is(result.status, "error"); // the fake nodes exit: set-up stops there, after every start
  t.deepEqual(starts.map((start) => start.id), [1, 2, 3, 4]);
  const joiner = starts[3]!;
  t.true(joiner.settings.includes("pgraft.initial_cluster_state=existing"));
  t.is(joiner.dialRedirects, undefined, "n4 dials the founders through its pgraft.initial_cluster");
  const proxies = new Set<string>();
  for (const founder of starts.slice(0, 3)) {
    const redirects = founder.dialRedirects ?? {};
    t.deepEqual(Object.keys(redirects), ["127.0.0.1:1004"], `n${founder.id} reaches n4's configuration address through a proxy`);
    proxies.add(redirects["127.0.0.1:1004"]!);
  }
  t.is(proxies.size, 3, "each founder has a proxy of its own into n4");
  // Without the capability nothing is redirected, and the scenario is refused before set-up.
  const without = recordingProvider(false);
  const refused = await runChaosScenario({ scenario: loadScenarioFile("scenarios/learner-with-old-leader.yaml"), provider: without.provider, seed: 1, postgres: false });
  t.is(refused.status, "simulator-only");
  t.deepEqual(without.starts, []);
});
