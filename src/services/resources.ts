/**
 * What a service opened and must close: closed in reverse order of opening (clients before the
 * things they use), each failure swallowed so one stuck client never keeps the others open.
 */
import type { Config } from '../config/env.ts'
import { createAdmin } from '../kafka/admin.ts'
import { ensureTopics, pipelineTopicSpecs, type TopicSpec } from '../kafka/topics.ts'
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

/**
 * Creates the pipeline's topics (and `extra` ones) when missing, logging what differs from the
 * configuration; the admin client is closed again right away.
 */
export async function ensureServiceTopics(
  config: Config,
  logger: Logger,
  role: string,
  extra: readonly TopicSpec[] = [],
): Promise<void> {
  const admin = createAdmin(config, `${role}-admin`)
  try {
    const topics = await ensureTopics(admin, [...pipelineTopicSpecs(config), ...extra])
    for (const warning of topics.warnings)
      logger.warn({ warning }, `Kafka topic ${warning.topic}: ${warning.kind}`)
    if (topics.created.length > 0)
      logger.info({ topics: topics.created }, `created topics ${topics.created.join(', ')}`)
  } finally {
    await admin.close().catch(() => undefined)
  }
}
