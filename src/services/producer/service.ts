/**
 * The composition root of `pipeline producer`: configuration in, one polling loop per source out,
 * with Redis state, an idempotent Kafka producer, the DLQ, metrics and health on :9001.
 */
import { hostname } from 'node:os'
import type { Registry } from 'prom-client'
import type { Config } from '../../config/env.ts'
import { createDlqWriter } from '../../dlq/writer.ts'
import { createProducer } from '../../kafka/producer.ts'
import { meteredPublisher } from '../../kafka/publisher.ts'
import { startHealthServer } from '../../observability/health-server.ts'
import type { Logger } from '../../observability/logger.ts'
import { createProducerMetrics, createRegistry, type ProducerMetrics } from '../../observability/metrics.ts'
import { type SourceSpec, sourcesFromConfig } from '../../sources/catalog.ts'
import { sourceAgent } from '../../sources/http-page.ts'
import { createScanner } from '../../sources/scan-pool.ts'
import { connectRedis, type Redis } from '../../state/redis.ts'
import { SourceState } from '../../state/source-state.ts'
import { ensureServiceTopics, Resources } from '../resources.ts'
import type { RunningService } from '../run-service.ts'
import { type CycleContext, runCycle } from './cycle.ts'
import { type SourceLoop, startSourceLoop } from './scheduler.ts'

/** Defaults of the producer's metrics port (design §2). */
export const PRODUCER_METRICS_PORT = 9001

/** Knobs tests and benchmarks turn; production takes the defaults. */
export interface ProducerOverrides {
  /** Redis key prefix (separates deployments and tests); default `PIPELINE_REDIS_PREFIX`. */
  readonly prefix?: string
  readonly sources?: readonly SourceSpec[]
  /** Identity of this replica for leases; defaults to host and pid. */
  readonly owner?: string
}

/** Everything a cycle needs, connected; what the service runs its loops on. */
export interface ProducerRuntime {
  readonly context: CycleContext
  readonly sources: readonly SourceSpec[]
  readonly redis: Redis
  readonly state: SourceState
  readonly metrics: ProducerMetrics
  readonly registry: Registry
  readonly metricsUrl: string
  /** Closes the clients and the health server, in reverse order of creation. */
  close(): Promise<void>
}

/**
 * Connects Redis and Kafka, creates the topics, and serves metrics and health: a producer that is
 * ready to run cycles. Tests run cycles on it directly; the service runs them on a schedule.
 * `stopping` ends the waits for Redis and Kafka: the runtime is then not made, what was opened is
 * closed, and this rejects.
 */
export async function createProducerRuntime(
  config: Config,
  logger: Logger,
  overrides: ProducerOverrides = {},
  stopping?: AbortSignal,
): Promise<ProducerRuntime> {
  const registry = createRegistry('producer')
  const metrics = createProducerMetrics(registry)
  // Redis is checked live (false while it is unreachable); Kafka once the topics are there.
  let redisReady = (): boolean => false
  let kafkaReady = false
  const health = await startHealthServer({
    host: config.METRICS_HOST,
    port: config.METRICS_PORT ?? PRODUCER_METRICS_PORT,
    registry,
    checks: { redis: () => redisReady(), kafka: () => kafkaReady },
  })
  const resources = new Resources()
  resources.add(() => health.close())
  const close = () => resources.closeAll()
  try {
    const redis = await connectRedis(config.REDIS_URL, logger, {
      signal: stopping,
      waitMs: config.REDIS_STARTUP_TIMEOUT_MS,
    })
    resources.add(() => redis.close())
    redisReady = () => redis.isReady

    await ensureServiceTopics(config, logger, 'producer', [], stopping)

    const producer = createProducer(config, 'producer')
    resources.add(() => producer.close())
    const publisher = meteredPublisher(producer, metrics.publishes)
    kafkaReady = true

    const dispatcher = sourceAgent(config.SOURCE_TIMEOUT_MS)
    resources.add(() => dispatcher.close())
    const scanner = createScanner(config.SOURCE_SCAN_THREADS, dispatcher)
    resources.add(() => scanner.close())
    // The workers load their code now rather than during the first poll.
    await scanner.ready()

    const state = new SourceState(redis, overrides.prefix ?? config.PIPELINE_REDIS_PREFIX)
    const context: CycleContext = {
      state,
      publisher,
      dlq: createDlqWriter(publisher, config.TOPIC_DLQ),
      metrics,
      logger,
      maxDeleteRatio: config.MAX_DELETE_RATIO,
      scan: {
        dispatcher,
        timeoutMs: config.SOURCE_TIMEOUT_MS,
        deadlineMs: config.SOURCE_REQUEST_DEADLINE_MS,
        maxBytes: config.SOURCE_MAX_RESPONSE_BYTES,
        maxPages: config.SOURCE_MAX_PAGES,
        maxInvalid: config.SOURCE_MAX_INVALID_RECORDS,
        scanner,
        retry: {
          maxAttempts: config.RETRY_MAX_ATTEMPTS,
          baseDelayMs: config.RETRY_BASE_DELAY_MS,
          maxDelayMs: config.RETRY_MAX_DELAY_MS,
        },
      },
    }
    const sources = overrides.sources ?? sourcesFromConfig(config)
    return { context, sources, redis, state, metrics, registry, metricsUrl: health.url, close }
  } catch (error) {
    await close()
    throw error
  }
}

/** A running producer. */
export interface ProducerService extends RunningService {
  readonly runtime: ProducerRuntime
  readonly loops: readonly SourceLoop[]
}

/** Starts the producer: the runtime (see `stopping` there) plus one polling loop per source. */
export async function startProducerService(
  config: Config,
  logger: Logger,
  overrides: ProducerOverrides = {},
  stopping?: AbortSignal,
): Promise<ProducerService> {
  const runtime = await createProducerRuntime(config, logger, overrides, stopping)
  const owner = overrides.owner ?? `${hostname()}:${process.pid}`
  const loops = runtime.sources.map((source) =>
    startSourceLoop({
      source,
      redis: runtime.redis,
      state: runtime.state,
      metrics: runtime.metrics,
      logger,
      intervalMs: config.POLL_INTERVAL_MS,
      leaseTtlMs: config.LEASE_TTL_MS,
      owner,
      prefix: overrides.prefix ?? config.PIPELINE_REDIS_PREFIX,
      runCycle: (spec, signal) => runCycle(runtime.context, spec, signal),
    }),
  )
  logger.info(
    { sources: runtime.sources.map((s) => ({ name: s.name, topic: s.topic })), metrics: runtime.metricsUrl },
    `producer started: polling ${runtime.sources.map((s) => s.name).join(', ')} every ${config.POLL_INTERVAL_MS} ms; metrics on ${runtime.metricsUrl}/metrics`,
  )
  return {
    runtime,
    loops,
    async close() {
      // Loops first (they use everything else), then the clients.
      await Promise.all(loops.map((loop) => loop.stop()))
      await runtime.close()
    },
  }
}

/** `pipeline producer`: the service started from the environment. */
export const runProducerService = (
  config: Config,
  logger: Logger,
  stopping: AbortSignal,
): Promise<RunningService> => startProducerService(config, logger, {}, stopping)
