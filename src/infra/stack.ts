/**
 * The local infrastructure as one unit: Kafka, Redis and the Prism mock, used by `npm start`, by
 * the integration-test set-up and by the benchmarks. A `KAFKA_BROKERS` or `REDIS_URL` already in the
 * environment wins: then that part is used as it is and nothing is launched for it.
 */
import { join } from 'node:path'
import { describeError } from '../errors.ts'
import { ensureKafkaJars, startKafka } from './kafka.ts'
import type { KafkaSaslOptions } from './kafka-sasl.ts'
import { freePort } from './ports.ts'
import { startPrism } from './prism.ts'
import { startRedis } from './redis.ts'

/** Options of {@link startLocalInfra}. */
export interface InfraOptions {
  /** Root of the parts' data and logs (kafka/, redis/, prism.log). */
  readonly dataDir: string
  /** Fixed ports; `0` picks a free one (tests), undefined takes the standard one. */
  readonly ports?: { readonly kafka?: number; readonly redis?: number; readonly prism?: number }
  /** When set, a launched broker's client listener requires SASL/PLAIN with these users. */
  readonly kafkaSasl?: KafkaSaslOptions
  /** When true, a launched broker's client listener speaks TLS (self-signed; see `startKafka`). */
  readonly kafkaTls?: boolean
  /** Whether to start Prism (tests and `npm start` do; benchmarks need not). */
  readonly prism?: boolean
  /** Where `KAFKA_BROKERS` / `REDIS_URL` are looked up; defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv
  /** Progress lines for a person watching. */
  readonly log?: (line: string) => void
}

/** The running infrastructure, and the environment that points services at it. */
export interface LocalInfra {
  readonly kafkaBrokers: string[]
  readonly redisUrl: string
  readonly prismUrl: string | undefined
  /**
   * `KAFKA_BROKERS`, `REDIS_URL`, `PRISM_URL`, `CRM_BASE_URL`, `INVENTORY_BASE_URL` for children, and
   * `KAFKA_TLS_CA_FILE` when a TLS broker was launched.
   */
  readonly env: Readonly<Record<string, string>>
  /** Stops what this call launched (never a broker or Redis it was pointed at). */
  stop(): Promise<void>
}

const pick = async (port: number | undefined, standard: number): Promise<number> =>
  port === 0 ? freePort() : (port ?? standard)

/**
 * Starts whatever of Kafka, Redis and Prism is not provided by the environment, in parallel, and
 * resolves once all answer. If one fails, the others are stopped before the error is rethrown.
 */
export async function startLocalInfra(options: InfraOptions): Promise<LocalInfra> {
  const env = options.env ?? process.env
  const log = options.log ?? (() => undefined)
  const stops: Array<() => Promise<void>> = []
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined)
    stops.length = 0
  }
  let caFile: string | undefined
  const kafkaTask = async (): Promise<string[]> => {
    if (env.KAFKA_BROKERS) return env.KAFKA_BROKERS.split(',')
    const port = await pick(options.ports?.kafka, 9092)
    const security = [options.kafkaTls ? 'TLS' : '', options.kafkaSasl ? 'SASL/PLAIN required' : '']
    const note = security.filter(Boolean).join(', ')
    log(`starting Kafka on 127.0.0.1:${port}${note ? ` (${note})` : ''}`)
    const kafka = await startKafka({
      dataDir: join(options.dataDir, 'kafka'),
      port,
      ...(options.kafkaSasl === undefined ? {} : { sasl: options.kafkaSasl }),
      ...(options.kafkaTls ? { tls: true } : {}),
    })
    if (kafka.caFile !== undefined) caFile = kafka.caFile
    stops.push(kafka.stop)
    return kafka.brokers
  }
  const redisTask = async (): Promise<string> => {
    if (env.REDIS_URL) return env.REDIS_URL
    const port = await pick(options.ports?.redis, 6379)
    log(`starting Redis on 127.0.0.1:${port}`)
    const redis = await startRedis({ dataDir: join(options.dataDir, 'redis'), port })
    stops.push(redis.stop)
    return redis.url
  }
  const prismTask = async (): Promise<string | undefined> => {
    if (options.prism === false) return undefined
    const port = await pick(options.ports?.prism, 4010)
    log(`starting Prism (mock CRM + Inventory) on 127.0.0.1:${port}`)
    const prism = await startPrism({ logDir: options.dataDir, port })
    stops.push(prism.stop)
    return prism.url
  }
  // The first run downloads the broker jars with Maven, synchronously: done before any part starts,
  // or the download's minutes would count against the readiness deadlines of the others (a fresh
  // clone in CI once failed so, Redis "not ready within 20 s" while Maven held the event loop).
  if (!env.KAFKA_BROKERS) ensureKafkaJars()
  const results = await Promise.allSettled([kafkaTask(), redisTask(), prismTask()])
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) {
    await stopAll()
    throw failed.reason
  }
  const [kafka, redis, prism] = results as [
    PromiseFulfilledResult<string[]>,
    PromiseFulfilledResult<string>,
    PromiseFulfilledResult<string | undefined>,
  ]
  const childEnv: Record<string, string> = { KAFKA_BROKERS: kafka.value.join(','), REDIS_URL: redis.value }
  // The launched TLS broker's certificate is what its clients must trust.
  if (caFile !== undefined) childEnv.KAFKA_TLS_CA_FILE = caFile
  if (prism.value) {
    childEnv.PRISM_URL = prism.value
    childEnv.CRM_BASE_URL = prism.value
    childEnv.INVENTORY_BASE_URL = prism.value
  }
  return {
    kafkaBrokers: kafka.value,
    redisUrl: redis.value,
    prismUrl: prism.value,
    env: childEnv,
    stop: async () => {
      log('stopping local infrastructure')
      await stopAll().catch((error: unknown) => log(`stop failed: ${describeError(error)}`))
    },
  }
}
