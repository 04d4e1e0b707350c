/** A consumer against the test infrastructure and an in-process analytics mock. */
import type { Config } from '../../src/config/env.ts'
import { type ConsumerService, startConsumerService } from '../../src/services/consumer/service.ts'
import { type MockAnalytics, startMockAnalytics } from '../../src/services/mock-analytics/server.ts'
import { uniqueName } from './env.ts'
import { type CapturedLogs, captureLogs, testConfig } from './producer.ts'

/** A pipeline under test: its config (shared by producer and consumer) and the analytics mock. */
export interface PipelineFixture {
  readonly config: Config
  readonly mock: MockAnalytics
  readonly prefix: string
  startConsumer(logs?: CapturedLogs): Promise<ConsumerService>
  close(): Promise<void>
}

/** Starts the analytics mock and builds a config with unique topics, groups and Redis prefix. */
export async function pipelineFixture(env: Record<string, string> = {}): Promise<PipelineFixture> {
  const mock = await startMockAnalytics({ port: 0 })
  const prefix = uniqueName('pipeline')
  const config = testConfig({
    ANALYTICS_URL: `${mock.url}/analytics/data`,
    TOPIC_REFRESH: uniqueName('refresh'),
    CONSUMER_GROUP: uniqueName('group'),
    CONSUMER_BATCH_SIZE: '500',
    SINK_TIMEOUT_MS: '2000',
    BREAKER_HALF_OPEN_AFTER_MS: '500',
    DELIVERY_RETRY_DELAY_MS: '200',
    ...env,
  })
  const consumers: ConsumerService[] = []
  return {
    config,
    mock,
    prefix,
    async startConsumer(logs = captureLogs('consumer')) {
      const consumer = await startConsumerService(config, logs.logger, { prefix, retryPollMs: 100 })
      consumers.push(consumer)
      await consumer.ready
      return consumer
    },
    async close() {
      for (const consumer of consumers) await consumer.close()
      await mock.close()
    },
  }
}

/** The views the mock holds, by view id. */
export async function heldViews(mock: MockAnalytics): Promise<Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, unknown>> = {}
  for (const [id, stored] of mock.store.views()) out[id] = stored.record as Record<string, unknown>
  return out
}
