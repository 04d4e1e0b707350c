/** DLQ operations against a test pipeline: list and replay as the CLI does, and the CLI's environment. */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseFilter, type RawDlqFilter } from '../../src/dlq/filter.ts'
import type { DlqListRow } from '../../src/dlq/format.ts'
import { DlqOperations } from '../../src/dlq/operations.ts'
import type { ReplayReport } from '../../src/dlq/replay-plan.ts'
import { createProducer, publish } from '../../src/kafka/producer.ts'
import { createLogger } from '../../src/observability/logger.ts'
import { connectRedis } from '../../src/state/redis.ts'
import type { PipelineFixture } from './consumer.ts'
import { waitFor } from './wait.ts'

/** DLQ operations on the fixture's topics and Redis prefix, with their own connections. */
export interface DlqTool {
  readonly ops: DlqOperations
  list(filter?: RawDlqFilter): Promise<DlqListRow[]>
  replay(filter: RawDlqFilter, options?: { dryRun?: boolean }): Promise<ReplayReport>
  /** Waits until the DLQ holds at least `count` entries passing `filter`, and returns them. */
  waitForEntries(filter: RawDlqFilter, count?: number, timeoutMs?: number): Promise<DlqListRow[]>
  close(): Promise<void>
}

/** Opens a {@link DlqTool} for `fixture`. */
export async function dlqTool(fixture: PipelineFixture): Promise<DlqTool> {
  const logger = createLogger({ service: 'dlq-test', level: 'silent' })
  const redis = await connectRedis(fixture.config.REDIS_URL, logger)
  const producer = createProducer(fixture.config, 'dlq-test')
  const ops = new DlqOperations({
    config: fixture.config,
    redis,
    publisher: { send: (messages) => publish(producer, messages) },
    prefix: fixture.prefix,
  })
  const list = async (filter: RawDlqFilter = {}) => (await ops.list(parseFilter(filter))).rows
  return {
    ops,
    list,
    async replay(filter, options = {}) {
      const prepared = await ops.prepareReplay(parseFilter(filter))
      return ops.replay(prepared, { dryRun: options.dryRun ?? false })
    },
    waitForEntries: (filter, count = 1, timeoutMs = 20_000) =>
      waitFor(
        `${count} DLQ entries matching ${JSON.stringify(filter)}`,
        async () => {
          const rows = await list(filter)
          return rows.length >= count && rows
        },
        timeoutMs,
      ),
    async close() {
      await producer.close()
      await redis.close()
    },
  }
}

/** The environment a `pipeline` child process needs to work on the fixture's deployment. */
export function cliEnv(fixture: PipelineFixture, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { config } = fixture
  return {
    PATH: process.env.PATH,
    KAFKA_BROKERS: config.KAFKA_BROKERS.join(','),
    REDIS_URL: config.REDIS_URL,
    TOPIC_CUSTOMERS: config.TOPIC_CUSTOMERS,
    TOPIC_PRODUCTS: config.TOPIC_PRODUCTS,
    TOPIC_DLQ: config.TOPIC_DLQ,
    TOPIC_REFRESH: config.TOPIC_REFRESH,
    CONSUMER_GROUP: config.CONSUMER_GROUP,
    PIPELINE_REDIS_PREFIX: fixture.prefix,
    LOG_LEVEL: 'silent',
    ...extra,
  }
}

/** What a finished child process left. */
export interface CliRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `node src/cli.ts <args>` with `env`, stdin closed (not a terminal). */
export async function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
): Promise<CliRun> {
  const cli = join(import.meta.dirname, '..', '..', 'src', 'cli.ts')
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
      env,
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string }
    if (typeof failed.code !== 'number') throw error
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' }
  }
}
