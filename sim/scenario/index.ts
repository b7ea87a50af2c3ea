/**
 * Scenario files (scenarios/README.md): parse and check them, run them on the simulator, write them
 * back. The chaos runner reads the same files through `parseScenario` / `loadScenarioFile` and the
 * types in scenario.ts; only run-scenario.ts and what it uses are the simulator's.
 */
export {
  CHECKS,
  describeNodeSet,
  describeSelector,
  formatDuration,
  NETWORK_DEFAULTS,
  nodeName,
  stepTimes,
  VERBS,
  WORKLOAD_DEFAULTS,
  type Action,
  type Check,
  type CheckName,
  type Expectation,
  type NetworkConditions,
  type NodeSelector,
  type NodeSet,
  type Scenario,
  type ScenarioTiming,
  type ScenarioWorkload,
  type SettingEntry,
  type Step,
  type Verb,
  type Window,
} from "./scenario.ts";
export { formatScenarioIssues, ScenarioError, type ScenarioIssue, type ScenarioIssueCode, type ScenarioParseResult } from "./scenario-issue.ts";
export { loadScenarioFile, loadScenarioPath, parseScenario, SCENARIO_SETTINGS } from "./parse-scenario.ts";
export { writeScenario } from "./write-scenario.ts";
export { clusterOptions, describeScenario, runScenario, type FailureSignature, type ScenarioRunOptions, type ScenarioRunResult } from "./run-scenario.ts";
export { describeCheck, describeWindow } from "./expectations.ts";
