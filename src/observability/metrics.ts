/**
 * The Prometheus registry of a service and the producer's metrics (names documented in the
 * README). Labels carry sources, topics, stages and outcomes — never record ids, so cardinality
 * stays bounded.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { DlqStage } from '../dlq/entry.ts'

/** A registry with Node's default process metrics and a `service` label on every series. */
export function createRegistry(service: string): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ service })
  collectDefaultMetrics({ register: registry })
  return registry
}

const DLQ_STAGES: readonly DlqStage[] = ['source', 'deserialize', 'validate', 'deliver']

/** Metrics of the DLQ writer, shared by producer and consumer. */
export function createDlqMetrics(registry: Registry) {
  const dlqMessages = new Counter({
    name: 'pipeline_dlq_messages_total',
    help: 'Records written to the dead letter topic, by stage',
    labelNames: ['stage'] as const,
    registers: [registry],
  })
  // Every stage exported from the start at 0: the first dead letter is then an increase() alerts see.
  for (const stage of DLQ_STAGES) dlqMessages.inc({ stage }, 0)
  return { dlqMessages }
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
    rescans: new Counter({
      name: 'pipeline_source_rescans_total',
      help: 'Listings read again in order because they changed while two scan threads read them',
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

/** The consumer's own metrics (the sink's come from {@link createSinkMetrics}). */
export function createConsumerMetrics(registry: Registry) {
  return {
    ...createDlqMetrics(registry),
    ...createPublishMetrics(registry),
    messages: new Counter({
      name: 'pipeline_consumer_messages_total',
      help: 'Consumed messages by topic and result: applied, duplicate, poison (source topics); refresh (internal topic)',
      labelNames: ['topic', 'result'] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'pipeline_consumer_duplicates_total',
      help: 'Source records skipped because the entity already had that content ("Skipping duplicate message")',
      labelNames: ['entity'] as const,
      registers: [registry],
    }),
    views: new Counter({
      name: 'pipeline_views_total',
      help: 'View evaluations by type and result: delivered, unchanged, rejected, retry_scheduled, dead_lettered; covered: a refresh request skipped because an earlier evaluation covered it; waiting: put off while an earlier delivery of the view may still land; overlap: another member delivered the view meanwhile, delivered again',
      labelNames: ['type', 'result'] as const,
      registers: [registry],
    }),
    refreshes: new Counter({
      name: 'pipeline_view_refreshes_total',
      help: 'View refresh requests published by stage 1 (and by the retry schedule)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    endToEnd: new Histogram({
      name: 'pipeline_end_to_end_latency_seconds',
      help: 'From the poll that saw a change to the 2xx of Analytics for a view it changed',
      labelNames: ['type'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
      registers: [registry],
    }),
    batchDuration: new Histogram({
      name: 'pipeline_consumer_batch_duration_seconds',
      help: 'Time to handle one batch, by stage',
      labelNames: ['stage'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    stalls: new Counter({
      name: 'pipeline_consumer_stalls_total',
      help: 'Consumer group members replaced because they went silent (no heartbeat answered, no fetch answered while they should have been reading, records left unread) or were handed records past some they never read',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
    paused: new Gauge({
      name: 'pipeline_consumer_paused',
      help: '1 while consumption is paused because the Analytics circuit is open',
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'pipeline_consumer_lag',
      help: 'Records a consumer group still has to read, per topic and partition (log end minus committed offset)',
      labelNames: ['group', 'topic', 'partition'] as const,
      registers: [registry],
    }),
    dlqDepth: new Gauge({
      name: 'pipeline_dlq_depth',
      help: 'Entries on the dead letter topic not yet replayed (retained entries minus those the replay ledger settled)',
      registers: [registry],
    }),
  }
}

/** The consumer's metric set. */
export type ConsumerMetrics = ReturnType<typeof createConsumerMetrics>
