/** Building a producer against the test infrastructure, with its own topics, Redis prefix and logs. */
import { Writable } from 'node:stream'
import { type Config, loadConfig } from '../../src/config/env.ts'
import { createLogger, type Logger } from '../../src/observability/logger.ts'
import { testInfra, uniqueName } from './env.ts'

/** Log lines a test can search. */
export interface CapturedLogs {
  readonly logger: Logger
  readonly lines: Array<Record<string, unknown> & { msg: string }>
  messages(): string[]
}

/** A logger whose JSON lines are kept in memory. */
export function captureLogs(service = 'test'): CapturedLogs {
  const lines: CapturedLogs['lines'] = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    },
  })
  const logger = createLogger({ service, level: 'debug', pretty: false, destination })
  return { logger, lines, messages: () => lines.map((line) => line.msg) }
}

/** A validated configuration pointing at the test infrastructure with unique topics. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    KAFKA_BROKERS: testInfra.kafkaBrokers.join(','),
    REDIS_URL: testInfra.redisUrl,
    CRM_BASE_URL: testInfra.prismUrl,
    INVENTORY_BASE_URL: testInfra.prismUrl,
    TOPIC_CUSTOMERS: uniqueName('customers'),
    TOPIC_PRODUCTS: uniqueName('products'),
    TOPIC_DLQ: uniqueName('dlq'),
    TOPIC_PARTITIONS: '3',
    METRICS_PORT: '0',
    RETRY_BASE_DELAY_MS: '20',
    RETRY_MAX_DELAY_MS: '200',
    SOURCE_TIMEOUT_MS: '2000',
    LOG_LEVEL: 'debug',
    ...env,
  })
}
