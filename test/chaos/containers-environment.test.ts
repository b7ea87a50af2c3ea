/**
 * Dial redirects with the testcontainers provider, without a Docker engine: the environment a node's
 * container gets (dial-redirect.mjs preloaded from the image through NODE_OPTIONS, the map in
 * PGRAFT_CHAOS_DIAL_REDIRECTS), that the image holds that module at that path and is named by its
 * content (a change to it makes a new image), that the environment really redirects a node's dials
 * (run on the host, the checkout standing in for the image's /opt/pgraft), that malformed redirects
 * are refused before a container is made, and that scenarios faulting the links into a node added at
 * run time are no longer refused for containers.
 *
 * The containers themselves run in test/chaos/ci-containers.test.ts and in `npm run chaos --
 * --provider testcontainers` (learner-with-old-leader, leader-leaves-partitioned).
 */
import test from "ava";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadScenarioFile } from "../../sim/scenario/index.ts";
import { chaosImageName, DIAL_REDIRECT_MODULE_PATH, PROJECT_DIRECTORY_IN_IMAGE, PROJECT_PATHS_IN_IMAGE, projectFiles } from "../../chaos/containers/image.ts";
import { DIAL_REDIRECT_MODULE } from "../../chaos/providers/local.ts";
import { checkDialRedirects, CONTAINER_CAPABILITIES, containerEnvironment, DIAL_REDIRECT_MODULE_IN_IMAGE } from "../../chaos/providers/testcontainers.ts";
import { checkSupport } from "../../chaos/runner/support.ts";
import { replyServer, runChild } from "./child-fixtures.ts";

/** A container's environment holds only what the provider sets (and PATH, to find node). */
const CONTAINER_LIKE = { PATH: process.env.PATH ?? "" };

const checkoutRoot = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

test("a container without redirects gets only the log level; with them, the image's dial-redirect.mjs and the map", (t) => {
  t.deepEqual(containerEnvironment({}, "info"), { PGRAFT_LOG_LEVEL: "info" });
  const redirects = { "127.0.0.1:5001": "127.0.0.1:6001", "127.0.0.1:5002": "127.0.0.1:6002" };
  const environment = containerEnvironment(redirects, "debug");
  t.deepEqual(environment, {
    PGRAFT_LOG_LEVEL: "debug",
    NODE_OPTIONS: "--import=file:///opt/pgraft/chaos/runner/dial-redirect.mjs",
    PGRAFT_CHAOS_DIAL_REDIRECTS: JSON.stringify(redirects),
  });
  t.is(DIAL_REDIRECT_MODULE_IN_IMAGE, `${PROJECT_DIRECTORY_IN_IMAGE}/${DIAL_REDIRECT_MODULE_PATH}`);
});

test("the image holds dial-redirect.mjs (the local provider's module) where the environment names it", (t) => {
  // The module the local provider preloads is the one the image copies.
  t.is(join(checkoutRoot, DIAL_REDIRECT_MODULE_PATH), fileURLToPath(DIAL_REDIRECT_MODULE));
  const { files } = projectFiles(checkoutRoot);
  t.true(files.includes(DIAL_REDIRECT_MODULE_PATH), `the image's files: ${files.filter((file) => file.startsWith("chaos/")).join(", ")}`);
  t.true(files.includes("bin/pgraft.js"));
  t.true(files.some((file) => file.startsWith("src/")));
});

/** A copy of what the image is made of (PROJECT_PATHS_IN_IMAGE and the lock file), node_modules linked. */
function snapshotProject(): string {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-containers-environment-"));
  for (const name of [...PROJECT_PATHS_IN_IMAGE, "package-lock.json"]) {
    if (existsSync(join(checkoutRoot, name))) cpSync(join(checkoutRoot, name), join(directory, name), { recursive: true });
  }
  symlinkSync(join(checkoutRoot, "node_modules"), join(directory, "node_modules"));
  return directory;
}

test("a change to dial-redirect.mjs names a new image (so the image is rebuilt); a missing one is a clear error", (t) => {
  const project = snapshotProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  const rootKey = "0123456789abcdef";
  const before = chaosImageName(project, rootKey);
  t.regex(before, /^pgraft-chaos:[0-9a-f]{16}$/);
  t.is(chaosImageName(project, rootKey), before, "the same files name the same image");
  const module = join(project, DIAL_REDIRECT_MODULE_PATH);
  writeFileSync(module, `${readFileSync(module, "utf8")}\n// changed\n`);
  t.not(chaosImageName(project, rootKey), before);
  rmSync(module);
  t.throws(() => chaosImageName(project, rootKey), { message: /Cannot build the chaos image: .*chaos\/runner\/dial-redirect\.mjs is missing/ });
});


test("the container's environment sends a node's dials to the redirect target (checkout standing in for /opt/pgraft)", async (t) => {
  const joiner = await replyServer("joiner");
  const proxy = await replyServer("proxy");
  t.teardown(() => {
    joiner.close();
    proxy.close();
  });
  const port = (listener: net.Server): number => (listener.address() as net.AddressInfo).port;
  const code = `
    import * as net from "node:net";
    const socket = net.connect({ host: "127.0.0.1", port: ${port(joiner)} });
    let text = "";
    socket.on("data", (d) => (text += d));
    socket.on("close", () => process.stdout.write(text));
    socket.on("error", (e) => process.stdout.write("error " + e.message));`;
  const environment = containerEnvironment({ [`127.0.0.1:${port(joiner)}`]: `127.0.0.1:${port(proxy)}` }, "info");
  const onHost = { ...environment, NODE_OPTIONS: environment.NODE_OPTIONS!.replace(`file://${PROJECT_DIRECTORY_IN_IMAGE}/`, `file://${checkoutRoot}/`) };
  t.not(onHost.NODE_OPTIONS, environment.NODE_OPTIONS);
  const redirected = await runChild(code, onHost, CONTAINER_LIKE);
  t.is(redirected.stdout, "proxy", redirected.stderr);
  const direct = await runChild(code, containerEnvironment({}, "info"), CONTAINER_LIKE);
  t.is(direct.stdout, "joiner", direct.stderr);
});

test("malformed or non-loopback redirects are refused before a container is made, naming the node and the address", (t) => {
  t.notThrows(() => checkDialRedirects("n2", { "127.0.0.1:5001": "127.0.0.1:6001" }));
  t.notThrows(() => checkDialRedirects("n2", {}));
  t.throws(() => checkDialRedirects("n2", { "127.0.0.1:5001": "10.0.0.1:6001" }), { message: /^Cannot start n2: its dial redirect "127\.0\.0\.1:5001" -> "10\.0\.0\.1:6001" names "10\.0\.0\.1:6001", not a loopback/ });
  t.throws(() => checkDialRedirects("n3", { "127.0.0.1": "127.0.0.1:6001" }), { message: /^Cannot start n3: .*names "127\.0\.0\.1", not a loopback/ });
  t.throws(() => checkDialRedirects("n3", { "127.0.0.1:5001": "127.0.0.1:70000" }), { message: /names "127\.0\.0\.1:70000"/ });
  t.throws(() => checkDialRedirects("n3", { "127.0.0.1:5001": 6001 }), { message: /names 6001/ });
});

test("containers can fault the links into a node added at run time: those scenarios are not refused", (t) => {
  t.true(CONTAINER_CAPABILITIES.redirectDials);
  for (const file of ["scenarios/learner-with-old-leader.yaml", "scenarios/leader-leaves-partitioned.yaml"]) {
    t.deepEqual(checkSupport(loadScenarioFile(join(checkoutRoot, file)), CONTAINER_CAPABILITIES).refusals, [], file);
  }
  // Without the capability the same scenario is refused: the check above can fail.
  t.not(checkSupport(loadScenarioFile(join(checkoutRoot, "scenarios/learner-with-old-leader.yaml")), { ...CONTAINER_CAPABILITIES, redirectDials: false }).refusals.length, 0);
});
