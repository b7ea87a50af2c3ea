// The second phase of `npm test`: the chaos scenarios whose expectations time failovers on real
// PostgreSQL nodes run alone, after the rest of the suite, so no other test file competes for the CPU
// (on a 2-core machine a concurrent simulator test stretched a restart past its expectation).
// Run it by itself with `npx ava --config ava.timed.config.js`.
export default {
  extensions: { ts: "module" },
  nodeArguments: ["--import=tsx"],
  files: ["test/chaos/ci-scenarios.test.ts"],
  timeout: "5m",
  concurrency: 1,
  workerThreads: false,
};
