/**
 * The Prometheus registry of a service and the producer's metrics (names documented in the
 * README). Labels carry sources, topics, stages and outcomes — never record ids, so cardinality
 * stays bounded.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** A registry with Node's default process metrics and a `service` label on every series. */
export function createRegistry(service: string): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ service })
  collectDefaultMetrics({ register: registry })
  return registry
}

/** Metrics of the DLQ writer, shared by producer and consumer. */
export function createDlqMetrics(registry: Registry) {
  return {
    dlqMessages: new Counter({
      name: 'pipeline_dlq_messages_total',
      help: 'Records written to the dead letter topic, by stage',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
  }
}

/** Metrics of Kafka publishing. */
export function createPublishMetrics(registry: Registry) {
  return {
    publishes: new Counter({
      name: 'pipeline_kafka_publish_total',
      help: 'Messages sent to Kafka, by topic and outcome (acknowledged or error)',
      labelNames: ['topic', 'outcome'] as const,
      registers: [registry],
    }),
  }
}

/** The producer's metrics. */
export function createProducerMetrics(registry: Registry) {
  return {
    ...createDlqMetrics(registry),
    ...createPublishMetrics(registry),
    polls: new Counter({
      name: 'pipeline_source_polls_total',
      help: 'Poll cycles per source by outcome: success, not_modified, failed, skipped_overlap',
      labelNames: ['source', 'outcome'] as const,
      registers: [registry],
    }),
    records: new Counter({
      name: 'pipeline_source_records_total',
      help: 'Source records per cycle result: published, unchanged, invalid, deleted',
      labelNames: ['source', 'result'] as const,
      registers: [registry],
    }),
    pollDuration: new Histogram({
      name: 'pipeline_source_poll_duration_seconds',
      help: 'Duration of a complete poll cycle (fetch, validate, publish)',
      labelNames: ['source'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    httpRetries: new Counter({
      name: 'pipeline_source_http_retries_total',
      help: 'Retried source requests (network errors, timeouts, 408, 429, 5xx)',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    consecutiveFailures: new Gauge({
      name: 'pipeline_source_consecutive_failures',
      help: 'Failed cycles in a row per source (0 after a success)',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    deletionsRefused: new Counter({
      name: 'pipeline_source_deletions_refused_total',
      help: 'Deletions the mass-deletion guard refused (MAX_DELETE_RATIO)',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    leaseHeld: new Gauge({
      name: 'pipeline_source_lease_held',
      help: '1 while this replica holds the polling lease of the source',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    lastSuccess: new Gauge({
      name: 'pipeline_source_last_success_timestamp_seconds',
      help: 'Unix time of the last successful cycle per source',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
  }
}

/** The producer's metric set. */
export type ProducerMetrics = ReturnType<typeof createProducerMetrics>

/** Metrics of the Analytics sink (HTTP delivery of views, retries and circuit breaker). */
export function createSinkMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'pipeline_sink_requests_total',
      help: 'HTTP requests to Analytics (deliveries and probes) by status class: 2xx, 3xx, 4xx, 5xx, network, timeout',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'pipeline_sink_request_duration_seconds',
      help: 'Duration of one HTTP request to Analytics, answered or not',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'pipeline_sink_retries_total',
      help: 'Delivery attempts after the first (one per retry)',
      registers: [registry],
    }),
    circuitState: new Gauge({
      name: 'pipeline_sink_circuit_state',
      help: 'Circuit breaker of the Analytics sink: 0 closed, 1 half-open, 2 open',
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'pipeline_sink_deliveries_total',
      help: 'Finished deliveries by outcome: delivered, rejected, exhausted, circuit_open, aborted',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    probes: new Counter({
      name: 'pipeline_sink_probes_total',
      help: 'Health probes of Analytics by result: healthy, unhealthy',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  }
}

/** The Analytics sink's metric set. */
export type SinkMetrics = ReturnType<typeof createSinkMetrics>
