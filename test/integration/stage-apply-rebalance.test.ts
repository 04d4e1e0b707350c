/**
 * Stage 1 across a rebalance, against a real Redis and Kafka: a member that read a batch before its
 * partition moved, and writes it after the new owner applied later messages of the same entity, must
 * not set that entity back (found by the chaos run: a customer's older version overwrote the newer
 * one, and its views stayed stale).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { createDlqWriter } from '../../src/dlq/writer.ts'
import { upsertMessage } from '../../src/domain/envelope.ts'
import type { SourcePosition } from '../../src/domain/fanout.ts'
import type { KafkaMessage } from '../../src/kafka/consumer.ts'
import { createProducer } from '../../src/kafka/producer.ts'
import { meteredPublisher } from '../../src/kafka/publisher.ts'
import { topicSpec } from '../../src/kafka/topics.ts'
import { createLogger } from '../../src/observability/logger.ts'
import { createConsumerMetrics } from '../../src/observability/metrics.ts'
import { type ApplyContext, applySourceBatch } from '../../src/services/consumer/apply-stage.ts'
import { ensureServiceTopics } from '../../src/services/resources.ts'
import { AppliedStore } from '../../src/state/applied-store.ts'
import { EntityStore } from '../../src/state/entity-store.ts'
import { ViewClock } from '../../src/state/view-clock.ts'
import { createSourceTopics } from '../helpers/consumer-process.ts'
import { testConfig } from '../helpers/producer.ts'
import { useTestRedis } from '../helpers/redis.ts'
import { customer } from '../helpers/sources.ts'

const testRedis = useTestRedis()

test('a member writing a batch after its partition moved cannot set back what the new owner applied', async (t) => {
  const config = testConfig()
  await createSourceTopics(config)
  const logger = createLogger({ service: 'test', level: 'silent' })
  await ensureServiceTopics(config, logger, 'test', [
    topicSpec(config.TOPIC_REFRESH, config.TOPIC_PARTITIONS, 'delete'),
  ])
  const prefix = testRedis.newPrefix('apply-rebalance')
  const producer = createProducer(config, 'test-apply')
  t.after(() => producer.close())
  const metrics = createConsumerMetrics(new Registry())
  const publisher = meteredPublisher(producer, metrics.publishes)
  const entities = new EntityStore(testRedis.redis, prefix)
  const applied = new AppliedStore(testRedis.redis, prefix)
  const context: ApplyContext = {
    entities,
    applied,
    clock: new ViewClock(testRedis.redis, prefix),
    publisher,
    dlq: createDlqWriter(publisher, config.TOPIC_DLQ),
    metrics,
    logger,
    topics: {
      customers: config.TOPIC_CUSTOMERS,
      products: config.TOPIC_PRODUCTS,
      refresh: config.TOPIC_REFRESH,
    },
  }

  // Two versions of customer X, as read from partition 0 of the customer topic.
  const origin = { name: 'crm', entity: 'customer' as const, topic: config.TOPIC_CUSTOMERS }
  const message = (offset: number, productIds: string[]): KafkaMessage => {
    const out = upsertMessage(origin, customer('X', productIds), new Date().toISOString())
    return {
      topic: config.TOPIC_CUSTOMERS,
      partition: 0,
      offset: BigInt(offset),
      timestamp: BigInt(1_700_000_000_000 + offset),
      key: 'X',
      value: Buffer.from(out.value as string),
      headers: new Map(),
    } as unknown as KafkaMessage
  }
  const older = message(482, ['p-old'])
  const newer = message(491, ['p-new'])

  // Member A reads what it needs for its batch [482]; then, before it writes, the partition moves to
  // member B, which applies 482 and 491 completely.
  const memberA: ApplyContext = {
    ...context,
    // The real store, with B's whole batch slipped in after A's reads.
    applied: {
      read: (entity, ids) => applied.read(entity, ids),
      writeIfCurrent: (entity, entries) => applied.writeIfCurrent(entity, entries),
      readPositions: async (entity, ids) => {
        const positions = await applied.readPositions(entity, ids)
        await applySourceBatch(context, [older, newer])
        return positions
      },
    } satisfies Pick<AppliedStore, 'read' | 'writeIfCurrent' | 'readPositions'> as unknown as AppliedStore,
  }
  await applySourceBatch(memberA, [older])

  const state = (await entities.getCustomers(['X'])).get('X')
  assert.deepEqual(state?.data.productIds, ['p-new'], 'the newer version stays')
  const referencing: string[] = []
  for await (const page of entities.customersOf('p-old')) referencing.push(...page)
  assert.deepEqual(referencing, [], 'the reverse index follows the newer version')
  assert.deepEqual((await applied.read('customer', ['X'])).get('X')?.productIds, ['p-new'])
  const at = (await applied.readPositions('customer', ['X'])).get('X') as SourcePosition
  assert.equal(at.offset, '491')
})
