/** The public surface of pgraft's Prometheus metrics. */
export {
  createMetricsRoute,
  DROPPED_DEFAULT_METRICS,
  FSYNC_BUCKETS_SECONDS,
  LATENCY_BUCKETS_SECONDS,
  NodeMetrics,
  type NodeMetricsOptions,
  type ProposalOutcome,
  type RequestOutcome,
  type TransportView,
} from "./metrics.ts";
