// The second phase of `npm test`: the chaos scenarios whose expectations time failovers on real
// PostgreSQL nodes run alone, after the rest of the suite, so no other test file competes for the CPU
// (on a 2-core machine a concurrent simulator test stretched a restart past its expectation).
// Files: the CI scenarios on the local provider, membership steps through SQL (add-node, remove-node),
// lost-quorum with the testcontainers provider (which sets up the Docker engine and the image first
// when they are missing: minutes on a clean machine), and Patroni's failover on pgraft.
// Run it by itself with `npx ava --config ava.timed.config.js`.
export default {
  extensions: { ts: "module" },
  nodeArguments: ["--import=tsx"],
  files: [
    "test/chaos/ci-scenarios.test.ts",
    "test/chaos/ci-membership-sql.test.ts",
    "test/chaos/ci-containers.test.ts",
    "test/compat/patroni.test.ts",
  ],
  timeout: "5m",
  concurrency: 1,
  workerThreads: false,
};
