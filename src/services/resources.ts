/**
 * What a service opened and must close: closed in reverse order of opening (clients before the
 * things they use), each failure swallowed so one stuck client never keeps the others open.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Admin } from '@platformatic/kafka'
import type { Config } from '../config/env.ts'
import { describeError, ErrorCodes } from '../errors.ts'
import { createAdmin } from '../kafka/admin.ts'
import { isKafkaUnreachable, withDeadline } from '../kafka/connection.ts'
import { type EnsureTopicsResult, ensureTopics, pipelineTopicSpecs, type TopicSpec } from '../kafka/topics.ts'
import type { Logger } from '../observability/logger.ts'

/** A stack of close functions. */
export class Resources {
  readonly #closers: Array<() => Promise<unknown>> = []

  /** Registers `close`, to run when {@link closeAll} reaches it. */
  add(close: () => Promise<unknown>): void {
    this.#closers.push(close)
  }

  /** Closes everything registered, last first. */
  async closeAll(): Promise<void> {
    while (this.#closers.length > 0)
      await this.#closers
        .pop()?.()
        .catch(() => undefined)
  }
}

/** Longest pause between two start-up attempts to reach Kafka. */
const STARTUP_RETRY_MAX_MS = 10_000

/**
 * Creates the pipeline's topics (and `extra` ones) when missing, logging what differs from the
 * configuration; the admin client is closed again right away. The first thing a service asks of
 * Kafka: while the broker cannot be reached it tries again, with a warning each time, for up to
 * `KAFKA_STARTUP_TIMEOUT_MS` (a service started with or before its broker, or during a broker
 * restart, comes up once the broker does instead of exiting).
 *
 * @throws what {@link ensureTopics} throws, at once when the broker answered and refused, or once
 *   the wait is over; an AbortError once `signal` aborts (the service is stopping)
 */
export async function ensureServiceTopics(
  config: Config,
  logger: Logger,
  role: string,
  extra: readonly TopicSpec[] = [],
  signal?: AbortSignal,
): Promise<void> {
  const giveUpAt = Date.now() + config.KAFKA_STARTUP_TIMEOUT_MS
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted()
    const admin = createAdmin(config, `${role}-admin`)
    let topics: EnsureTopicsResult
    try {
      topics = await ensureTopics(admin, [...pipelineTopicSpecs(config), ...extra])
    } catch (error) {
      await closeAdmin(admin)
      const delayMs = Math.min(STARTUP_RETRY_MAX_MS, 500 * 2 ** (attempt - 1))
      if (!isKafkaUnreachable(error) || Date.now() + delayMs > giveUpAt) throw error
      logger.warn(
        { attempt, delayMs, code: ErrorCodes.KAFKA_UNREACHABLE },
        `Kafka not reachable yet at ${config.KAFKA_BROKERS} (${describeError(error)}); trying again in ${delayMs / 1000} s, for up to ${Math.round(config.KAFKA_STARTUP_TIMEOUT_MS / 1000)} s from start-up (KAFKA_STARTUP_TIMEOUT_MS)`,
      )
      await sleep(delayMs, undefined, signal ? { signal } : {})
      continue
    }
    await closeAdmin(admin)
    for (const warning of topics.warnings)
      logger.warn({ warning }, `Kafka topic ${warning.topic}: ${warning.kind}`)
    if (topics.created.length > 0)
      logger.info({ topics: topics.created }, `created topics ${topics.created.join(', ')}`)
    if (attempt > 1) logger.info({ attempt }, `Kafka reached at ${config.KAFKA_BROKERS}`)
    return
  }
}

/** Closes an admin client, giving up on one that does not close in time (its broker went away). */
async function closeAdmin(admin: Admin): Promise<void> {
  await withDeadline(admin.close(), ADMIN_CLOSE_MS, 'closing the Kafka admin client').catch(() => undefined)
}

/** How long closing an admin client may take. */
const ADMIN_CLOSE_MS = 5000
