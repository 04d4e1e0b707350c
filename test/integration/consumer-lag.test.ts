/**
 * Consumer lag and DLQ depth as gauges (design §8): `pipeline_consumer_lag{group,topic,partition}`
 * counts what a group has not read yet, per partition of each topic it reads, and drains to 0 once the
 * consumer caught up; `pipeline_dlq_depth` counts the entries on the DLQ minus those the replay ledger
 * settled (a claim in progress still counts); a refresh that fails keeps the last values and logs once.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { SETTLED_OUTCOMES } from '../../src/dlq/replay-plan.ts'
import { createAdmin } from '../../src/kafka/admin.ts'
import { createConsumerMetrics, createRegistry } from '../../src/observability/metrics.ts'
import { startLagMonitor } from '../../src/services/consumer/lag-monitor.ts'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { ensureServiceTopics } from '../../src/services/resources.ts'
import { ReplayLedger } from '../../src/state/replay-ledger.ts'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { readTopic } from '../helpers/kafka.ts'
import { metricValue } from '../helpers/metrics.ts'
import { captureLogs } from '../helpers/producer.ts'
import { useTestRedis } from '../helpers/redis.ts'
import { customer, product, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const testRedis = useTestRedis()
let fixture: PipelineFixture
let sources: ReturnType<typeof sourceWriter>
let consumer: ConsumerService

before(async () => {
  fixture = await pipelineFixture()
  // The consumer is started later: the source topics are created here, as a service would.
  await ensureServiceTopics(fixture.config, captureLogs().logger, 'test')
  sources = sourceWriter(fixture.config)
})
after(async () => {
  await sources.close()
  await fixture.close()
})

/** The lag gauge as `group topic partition → lag`. */
async function lagSeries(metric: ConsumerService['metrics']['lag']): Promise<Map<string, number>> {
  const { values } = await metric.get()
  return new Map(
    values.map((v) => {
      const l = v.labels as Record<string, string>
      return [`${l.group} ${l.topic} ${l.partition}`, v.value] as const
    }),
  )
}

test('the lag of a group that has read nothing is every record, per topic and partition', async () => {
  const { config } = fixture
  await sources.write(...['1', '2', '3', '4', '5'].map((id) => ({ customer: customer(id, []) })), {
    product: product('9'),
  })
  const metrics = createConsumerMetrics(createRegistry('test'))
  const admin = createAdmin(config, 'test-lag')
  const monitor = startLagMonitor({
    admin,
    groups: [{ groupId: 'never-joined', topics: [config.TOPIC_CUSTOMERS, config.TOPIC_PRODUCTS] }],
    dlqTopic: config.TOPIC_DLQ,
    metrics,
    logger: captureLogs().logger,
    intervalMs: 60_000,
  })
  try {
    assert.equal(await monitor.refresh(), true)
    const lag = await lagSeries(metrics.lag)
    assert.deepEqual(
      [...lag.keys()].sort(),
      [config.TOPIC_CUSTOMERS, config.TOPIC_PRODUCTS].flatMap((t) =>
        [0, 1, 2].map((p) => `never-joined ${t} ${p}`),
      ),
      'one series per partition of each topic (3 partitions in tests)',
    )
    const sum = (topic: string) =>
      [...lag].filter(([key]) => key.includes(` ${topic} `)).reduce((n, [, v]) => n + v, 0)
    assert.equal(sum(config.TOPIC_CUSTOMERS), 5)
    assert.equal(sum(config.TOPIC_PRODUCTS), 1)
    assert.equal(await metricValue(metrics.dlqDepth), 0, 'an empty DLQ')
  } finally {
    await monitor.stop()
    await admin.close()
  }
})

test('the consumer reports both groups’ lag, drained to 0 once it caught up', async () => {
  const { config } = fixture
  consumer = await fixture.startConsumer()
  await waitFor('the views of the five customers', () => fixture.mock.store.stats().accepted >= 6)
  const lag = await waitFor('both groups caught up', async () => {
    await consumer.lag.refresh()
    const series = await lagSeries(consumer.metrics.lag)
    return series.size === 9 && [...series.values()].every((v) => v === 0) ? series : undefined
  })
  const groups = new Set([...lag.keys()].map((key) => key.split(' ').slice(0, 2).join(' ')))
  assert.deepEqual(
    [...groups].sort(),
    [
      `${config.CONSUMER_GROUP}.deliver ${config.TOPIC_REFRESH}`,
      `${config.CONSUMER_GROUP}.state ${config.TOPIC_CUSTOMERS}`,
      `${config.CONSUMER_GROUP}.state ${config.TOPIC_PRODUCTS}`,
    ].sort(),
  )
  const text = await (await fetch(`${consumer.metricsUrl}/metrics`)).text()
  assert.match(
    text,
    new RegExp(
      `pipeline_consumer_lag\\{group="${config.CONSUMER_GROUP}\\.state",topic="${config.TOPIC_CUSTOMERS}",partition="0",service="consumer"\\} 0`,
    ),
  )
})

test('DLQ depth: entries on the topic minus those the replay ledger settled', async () => {
  const { config } = fixture
  for (const value of ['not-json', '{}', '[1]']) await sources.writeRaw(config.TOPIC_CUSTOMERS, 'x', value)
  await waitFor('depth 3', async () => {
    await consumer.lag.refresh()
    return (await metricValue(consumer.metrics.dlqDepth)) === 3
  })

  const ledger = new ReplayLedger(testRedis.redis, fixture.prefix)
  const [first, second, third] = (await readDlqOffsets(config.TOPIC_DLQ)).slice(0, 3)
  assert.ok(first && second && third)
  await ledger.settle(config.TOPIC_DLQ, [{ ...first, outcome: 'published' }])
  await ledger.settle(config.TOPIC_DLQ, [{ ...second, outcome: 'still-failing' }])
  assert.equal(await ledger.claim(config.TOPIC_DLQ, third.offset, third.failedAt), undefined)
  await consumer.lag.refresh()
  assert.equal(
    await metricValue(consumer.metrics.dlqDepth),
    2,
    'the published entry is replayed; still-failing and claimed ones still wait',
  )
  assert.equal(await ledger.countSettled(config.TOPIC_DLQ, 0n, SETTLED_OUTCOMES), 1)
})

/** Offsets and failedAt of the DLQ entries, in order, as the replay ledger keys them. */
async function readDlqOffsets(topic: string): Promise<Array<{ offset: string; failedAt: string }>> {
  const messages = await readTopic(topic, { count: 3 })
  return messages.map((m) => ({
    offset: String(m.offset),
    failedAt: (JSON.parse(m.value ?? '{}') as { failedAt: string }).failedAt,
  }))
}

test('a failed refresh keeps the last values and is logged once, not thrown', async () => {
  const { config } = fixture
  const metrics = createConsumerMetrics(createRegistry('test'))
  metrics.dlqDepth.set(7)
  metrics.lag.set({ group: 'g', topic: 't', partition: '0' }, 4)
  const admin = createAdmin(config, 'test-lag-closed')
  await admin.close()
  const logs = captureLogs()
  const monitor = startLagMonitor({
    admin,
    groups: [{ groupId: 'g', topics: [config.TOPIC_CUSTOMERS] }],
    dlqTopic: config.TOPIC_DLQ,
    metrics,
    logger: logs.logger,
    intervalMs: 60_000,
  })
  try {
    assert.equal(await monitor.refresh(), false)
    assert.equal(await monitor.refresh(), false)
    assert.equal(await metricValue(metrics.dlqDepth), 7)
    assert.equal(await metricValue(metrics.lag, { group: 'g' }), 4)
    const warnings = logs.lines.filter((line) =>
      line.msg.startsWith('consumer lag and DLQ depth not refreshed'),
    )
    assert.equal(warnings.length, 1, 'one line per failure streak')
    assert.equal(warnings[0]?.service, 'test')
  } finally {
    await monitor.stop()
  }
})
