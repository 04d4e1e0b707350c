/**
 * The composition root of `pipeline consumer`: stage 1 (apply source changes, request refreshes),
 * stage 2 (compute and deliver views), the off-path retry pump, the Analytics sink with its
 * breaker (consumption pauses while it is open), metrics and health on :9000.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Registry } from 'prom-client'
import type { Config } from '../../config/env.ts'
import { dlqAdminRoutes } from '../../dlq/admin-api.ts'
import { DlqOperations } from '../../dlq/operations.ts'
import { SETTLED_OUTCOMES } from '../../dlq/replay-plan.ts'
import { createDlqWriter } from '../../dlq/writer.ts'
import type { ViewId } from '../../domain/views.ts'
import { createAdmin } from '../../kafka/admin.ts'
import type { KafkaMessage } from '../../kafka/consumer.ts'
import type { MessagePublisher } from '../../kafka/ports.ts'
import { createProducer } from '../../kafka/producer.ts'
import { meteredPublisher } from '../../kafka/publisher.ts'
import { topicSpec } from '../../kafka/topics.ts'
import { startHealthServer } from '../../observability/health-server.ts'
import type { Logger } from '../../observability/logger.ts'
import {
  type ConsumerMetrics,
  createConsumerMetrics,
  createRegistry,
  createSinkMetrics,
} from '../../observability/metrics.ts'
import { AnalyticsSink, deliveryWindowMs, sinkOptionsFromConfig } from '../../sinks/delivery.ts'
import { AppliedStore } from '../../state/applied-store.ts'
import { DeliveryStore } from '../../state/delivery-store.ts'
import { EntityStore } from '../../state/entity-store.ts'
import { connectRedis } from '../../state/redis.ts'
import { ReplayLedger } from '../../state/replay-ledger.ts'
import { RetrySchedule } from '../../state/retry-schedule.ts'
import { ViewClock } from '../../state/view-clock.ts'
import { ensureServiceTopics, Resources } from '../resources.ts'
import type { RunningService } from '../run-service.ts'
import { type ApplyContext, applySourceBatch } from './apply-stage.ts'
import { ViewCoverage } from './coverage.ts'
import { type DeliverContext, deliverRefreshBatch } from './deliver-stage.ts'
import { type LagMonitor, startLagMonitor } from './lag-monitor.ts'
import { parseRefresh, refreshMessages } from './refresh.ts'
import { type Stage, startStage } from './stage-runner.ts'

/** Default of the consumer's metrics port: the brief's 9000. */
export const CONSUMER_METRICS_PORT = 9000

/** Refresh requests are work items, not state: a day covers any outage worth waiting for. */
const REFRESH_RETENTION_MS = 24 * 60 * 60 * 1000

/**
 * Refresh messages stage 2 takes at once. Each packs up to 1000 views (a stage-1 batch of 1000 source
 * messages becomes about one per shard), so this bounds a batch to a few stage-1 batches' views:
 * enough to coalesce a view requested by several of them, small enough to hold in memory.
 */
const REFRESH_MESSAGES_PER_BATCH = 128

/** Knobs tests turn; production takes the defaults. */
export interface ConsumerOverrides {
  /** Redis key prefix (separates deployments and tests); default `PIPELINE_REDIS_PREFIX`. */
  readonly prefix?: string
  /** How often the retry pump looks for due views. */
  readonly retryPollMs?: number
  /** How often consumer lag and DLQ depth are refreshed; default 5 s. */
  readonly lagIntervalMs?: number
}

/** A running consumer. */
export interface ConsumerService extends RunningService {
  readonly metricsUrl: string
  readonly metrics: ConsumerMetrics
  readonly registry: Registry
  readonly sink: AnalyticsSink
  readonly stages: { readonly apply: Stage; readonly deliver: Stage }
  /** Resolves once both stages joined their groups. */
  readonly ready: Promise<void>
  /** Keeps `pipeline_consumer_lag` and `pipeline_dlq_depth` current. */
  readonly lag: LagMonitor
}

/**
 * Starts the consumer. `stopping` ends the waits for Redis and Kafka: what was opened is closed, and
 * this rejects.
 */
export async function startConsumerService(
  config: Config,
  logger: Logger,
  overrides: ConsumerOverrides = {},
  stopping?: AbortSignal,
): Promise<ConsumerService> {
  const prefix = overrides.prefix ?? config.PIPELINE_REDIS_PREFIX
  const registry = createRegistry('consumer')
  const metrics = createConsumerMetrics(registry)
  const sinkMetrics = createSinkMetrics(registry)
  // Live, not latched: /readyz turns false while Redis is unreachable.
  let redisReady = (): boolean => false
  let stages: { apply: Stage; deliver: Stage } | undefined
  // The DLQ admin API (design §6) is served only when ADMIN_TOKEN is set; it answers 503 until started.
  let dlqOperations: DlqOperations | undefined
  const adminToken = config.ADMIN_TOKEN
  const health = await startHealthServer({
    host: config.METRICS_HOST,
    port: config.METRICS_PORT ?? CONSUMER_METRICS_PORT,
    registry,
    checks: {
      redis: () => redisReady(),
      kafka: () => (stages?.apply.joined() ?? false) && (stages?.deliver.joined() ?? false),
    },
    ...(adminToken === undefined
      ? {}
      : { routes: dlqAdminRoutes({ token: adminToken, operations: () => dlqOperations, logger }) }),
  })
  const resources = new Resources()
  resources.add(() => health.close())
  const closeAll = () => resources.closeAll()
  try {
    const redis = await connectRedis(config.REDIS_URL, logger, {
      signal: stopping,
      waitMs: config.REDIS_STARTUP_TIMEOUT_MS,
    })
    resources.add(() => redis.close())
    redisReady = () => redis.isReady

    await ensureServiceTopics(
      config,
      logger,
      'consumer',
      [
        topicSpec(config.TOPIC_REFRESH, config.TOPIC_PARTITIONS, 'delete', {
          retentionMs: REFRESH_RETENTION_MS,
        }),
      ],
      stopping,
    )

    const producer = createProducer(config, 'consumer')
    resources.add(() => producer.close())
    const publisher = meteredPublisher(producer, metrics.publishes)
    const dlq = createDlqWriter(publisher, config.TOPIC_DLQ)
    dlqOperations = new DlqOperations({ config, redis, publisher, prefix, logger })
    const sink = new AnalyticsSink(sinkOptionsFromConfig(config, sinkMetrics))
    resources.add(() => sink.close())
    const entities = new EntityStore(redis, prefix)
    const retries = new RetrySchedule(redis, prefix)
    const clock = new ViewClock(redis, prefix)

    const applyContext: ApplyContext = {
      entities,
      applied: new AppliedStore(redis, prefix),
      clock,
      publisher,
      dlq,
      metrics,
      logger,
      topics: {
        customers: config.TOPIC_CUSTOMERS,
        products: config.TOPIC_PRODUCTS,
        refresh: config.TOPIC_REFRESH,
      },
    }
    const apply = startStage({
      name: 'consumer-apply',
      config,
      groupId: `${config.CONSUMER_GROUP}.state`,
      topics: [config.TOPIC_CUSTOMERS, config.TOPIC_PRODUCTS],
      maxBatch: config.CONSUMER_BATCH_SIZE,
      logger,
      handle: (batch) => applySourceBatch(applyContext, batch),
      onBatch: (seconds) => metrics.batchDuration.observe({ stage: 'apply' }, seconds),
      onStall: () => metrics.stalls.inc({ stage: 'apply' }),
    })
    const deliverContext: DeliverContext = {
      entities,
      deliveries: new DeliveryStore(redis, prefix),
      retries,
      clock,
      coverage: new ViewCoverage(),
      sink,
      dlq,
      metrics,
      logger,
      viewOptions: { lowStockThreshold: config.LOW_STOCK_THRESHOLD, customerIdsCap: 100 },
      retryRounds: config.DELIVERY_RETRY_ROUNDS,
      retryDelayMs: config.DELIVERY_RETRY_DELAY_MS,
      inFlightMs: deliveryWindowMs(config),
      lateMs: config.SINK_LATE_ARRIVAL_MS,
      batchSize: config.SINK_BATCH_SIZE,
    }
    const deliverStage = startStage({
      name: 'consumer-deliver',
      config,
      groupId: `${config.CONSUMER_GROUP}.deliver`,
      topics: [config.TOPIC_REFRESH],
      maxBatch: REFRESH_MESSAGES_PER_BATCH,
      // Refresh requests are published without transactions to a topic that is never compacted.
      contiguous: true,
      logger,
      // The stage's stop signal ends a wait for Analytics, leaving the batch uncommitted.
      handle: (batch, signal) => deliverRefreshBatch({ ...deliverContext, signal }, batch),
      onBatch: (seconds) => metrics.batchDuration.observe({ stage: 'deliver' }, seconds),
      onStall: () => metrics.stalls.inc({ stage: 'deliver' }),
      // Another member may have delivered these views meanwhile, and a delivery of ours computed
      // earlier may have landed after its newer one: the owner now evaluates them once more.
      onRebalanced: (batch) => rerequestViews(publisher, config.TOPIC_REFRESH, batch, metrics, logger),
    })
    stages = { apply, deliver: deliverStage }
    resources.add(async () => {
      await Promise.all([apply.stop(), deliverStage.stop()])
    })

    // While Analytics is down, stop fetching: lag grows, and nothing is dead-lettered for the outage.
    sink.onStateChange((state) => {
      if (state === 'open') {
        apply.pause()
        deliverStage.pause()
        metrics.paused.set(1)
        logger.warn('Analytics circuit open: consumption paused')
      } else if (state === 'closed') {
        apply.resume()
        deliverStage.resume()
        metrics.paused.set(0)
        logger.info('Analytics circuit closed: consumption resumed')
      }
    })

    const pumpStop = new AbortController()
    const pump = runRetryPump(retries, publisher, config.TOPIC_REFRESH, metrics, logger, {
      intervalMs: overrides.retryPollMs ?? 500,
      signal: pumpStop.signal,
    })
    resources.add(async () => {
      pumpStop.abort()
      await pump
    })

    // Lag of both stages and DLQ depth as gauges; every instance reports the group-wide numbers.
    const admin = createAdmin(config, 'consumer-lag')
    resources.add(() => admin.close())
    const ledger = new ReplayLedger(redis, prefix)
    const lag = startLagMonitor({
      admin,
      groups: [
        {
          groupId: `${config.CONSUMER_GROUP}.state`,
          topics: [config.TOPIC_CUSTOMERS, config.TOPIC_PRODUCTS],
        },
        { groupId: `${config.CONSUMER_GROUP}.deliver`, topics: [config.TOPIC_REFRESH] },
      ],
      dlqTopic: config.TOPIC_DLQ,
      replayed: (topic, earliest) => ledger.countSettled(topic, earliest, SETTLED_OUTCOMES),
      metrics,
      logger,
      ...(overrides.lagIntervalMs === undefined ? {} : { intervalMs: overrides.lagIntervalMs }),
    })
    resources.add(() => lag.stop())

    logger.info(
      { metrics: health.url, analytics: config.ANALYTICS_URL },
      `consumer started: ${config.TOPIC_CUSTOMERS} + ${config.TOPIC_PRODUCTS} → ${config.ANALYTICS_URL}; metrics on ${health.url}/metrics`,
    )
    return {
      metricsUrl: health.url,
      metrics,
      registry,
      sink,
      stages,
      ready: Promise.all([apply.firstJoin, deliverStage.firstJoin]).then(() => undefined),
      lag,
      close: closeAll,
    }
  } catch (error) {
    await closeAll()
    throw error
  }
}

/**
 * Re-requests the views of a stage-2 batch whose handling spanned a rebalance, unstamped so the
 * view clock never counts them as covered. A refresh is ordered after everything this member did
 * for its view, so the partition's owner evaluates the view from current state once more and
 * delivers it if what the sink last got (perhaps our late, older delivery) differs.
 */
async function rerequestViews(
  publisher: MessagePublisher,
  topic: string,
  batch: readonly KafkaMessage[],
  metrics: ConsumerMetrics,
  logger: Logger,
): Promise<void> {
  const views = new Map<ViewId, string | undefined>()
  for (const message of batch) {
    for (const { view, polledAt } of parseRefresh(message.key, message.value)?.requests ?? [])
      views.set(view, polledAt)
  }
  if (views.size === 0) return
  await publisher.send(refreshMessages(topic, views))
  metrics.refreshes.inc({ reason: 'rebalance' }, views.size)
  logger.info(
    { views: views.size },
    `consumer-deliver: the group rebalanced while a batch was delivered; ${views.size} view(s) re-requested for their current owner`,
  )
}

/** Re-requests views whose off-path retry round is due; each due view is claimed by one consumer. */
async function runRetryPump(
  retries: RetrySchedule,
  publisher: MessagePublisher,
  topic: string,
  metrics: ConsumerMetrics,
  logger: Logger,
  options: { intervalMs: number; signal: AbortSignal },
): Promise<void> {
  while (!options.signal.aborted) {
    try {
      const due = await retries.claimDue(500)
      if (due.views.length > 0) {
        try {
          await publisher.send(
            refreshMessages(
              topic,
              due.views.map((view) => [view, undefined] as const),
              { retry: true },
            ),
          )
        } catch (error) {
          await retries.unclaim(due)
          throw error
        }
        // Only now: a consumer dying before this leaves the views due again when the claim ends.
        await retries.ack(due)
        metrics.refreshes.inc({ reason: 'retry' }, due.views.length)
      }
    } catch (error) {
      logger.warn(
        { err: { message: (error as Error).message } },
        `retry schedule: ${(error as Error).message}`,
      )
    }
    await sleep(options.intervalMs, undefined, { signal: options.signal }).catch(() => undefined)
  }
}

/** `pipeline consumer`: the service started from the environment. */
export const runConsumerService = (
  config: Config,
  logger: Logger,
  stopping: AbortSignal,
): Promise<RunningService> => startConsumerService(config, logger, {}, stopping)
