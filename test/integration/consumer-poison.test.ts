/**
 * Unusual messages on the source topics. Poison (not JSON, not an envelope, a record failing the
 * schema, no key) goes to the DLQ with its stage and raw payload and never blocks its partition
 * (design §6); tombstones delete state and deliver deletions, re-delivering the views they touch
 * (design §4, docs/views.md).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { canonicalJson } from '../../src/domain/canonical.ts'
import { upsertMessage } from '../../src/domain/envelope.ts'
import type { EntityRecord } from '../../src/domain/records.ts'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { heldViews, type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { readDlq } from '../helpers/dlq.ts'
import { readTopic } from '../helpers/kafka.ts'
import { metricValue } from '../helpers/metrics.ts'
import { customer, product, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

let fixture: PipelineFixture
let consumer: ConsumerService
let sources: ReturnType<typeof sourceWriter>

before(async () => {
  fixture = await pipelineFixture()
  consumer = await fixture.startConsumer()
  sources = sourceWriter(fixture.config)
})
after(async () => {
  await sources.close()
  await fixture.close()
})

/** The JSON value the producer would write for `record` on the customer topic, unvalidated. */
function customerEnvelope(record: EntityRecord): string {
  const origin = { name: 'crm', entity: 'customer' as const, topic: fixture.config.TOPIC_CUSTOMERS }
  return String(upsertMessage(origin, record, new Date().toISOString()).value)
}

interface CustomerViewShape {
  customer: { id: string }
  products: Array<{ id: string }>
  missingProductIds: string[]
  summary: { productCount: number; foundCount: number; totalStockValue: number }
}

interface ProductViewShape {
  customerCount: number
  customerIds: string[]
}

test('poison on customer_data is dead-lettered with stage and raw payload; a valid record after it is delivered', async () => {
  const topic = fixture.config.TOPIC_CUSTOMERS
  const { email: _email, ...noEmail } = customer('44', [])
  const schemaFailure = customerEnvelope(noEmail as EntityRecord)
  const keyless = customerEnvelope(customer('45', []))
  await sources.writeRaw(topic, '44', 'not-json')
  await sources.writeRaw(topic, '44', '{}')
  await sources.writeRaw(topic, '44', schemaFailure)
  // A compacted topic refuses a message without a key outright (INVALID_RECORD), so the key-less
  // message that can reach the consumer is one with an empty key.
  await assert.rejects(sources.writeRaw(topic, undefined, keyless), /INVALID_RECORD/)
  await sources.writeRaw(topic, '', keyless)
  const valid = customer('44', ['440'])
  await sources.write({ customer: valid })

  const held = await waitFor(
    'customer:44 at Analytics',
    async () => (await heldViews(fixture.mock))['customer:44'],
  )
  assert.deepEqual((held as unknown as CustomerViewShape).customer, valid)
  assert.deepEqual((held as unknown as CustomerViewShape).missingProductIds, ['440'])

  const poisonCount = async () =>
    (await metricValue(consumer.metrics.dlqMessages, { stage: 'deserialize' })) +
    (await metricValue(consumer.metrics.dlqMessages, { stage: 'validate' }))
  await waitFor('four poison messages counted', async () => (await poisonCount()) >= 4)
  assert.equal(await metricValue(consumer.metrics.messages, { topic, result: 'poison' }), 4)
  const dlq = await readDlq(fixture.config, { count: 4 })
  assert.equal(dlq.length, 4)
  const byPayload = new Map(dlq.map((record) => [record.entry.payload, record]))

  const expected = [
    { payload: 'not-json', stage: 'deserialize', errorClass: 'DeserializationError', reason: /not JSON/ },
    { payload: '{}', stage: 'validate', errorClass: 'ValidationError', reason: /not a pipeline envelope/ },
    { payload: schemaFailure, stage: 'validate', errorClass: 'ValidationError', reason: /email/ },
    { payload: keyless, stage: 'validate', errorClass: 'ValidationError', reason: /no key/ },
  ]
  for (const { payload, stage, errorClass, reason } of expected) {
    const record = byPayload.get(payload)
    assert.ok(record, `a DLQ entry with the raw payload ${payload.slice(0, 40)}`)
    const { entry, headers } = record
    assert.equal(entry.stage, stage)
    assert.equal(headers['dlq-stage'], stage)
    assert.equal(entry.error.class, errorClass)
    assert.match(entry.error.message, reason)
    assert.equal(entry.origin.topic, topic)
    assert.equal(headers['dlq-origin-topic'], topic)
    assert.equal(typeof entry.origin.partition, 'number')
    assert.match(entry.origin.offset ?? '', /^\d+$/)
    assert.equal(entry.origin.key, payload === keyless ? '' : '44')
    assert.equal(entry.attempts, 1)
    assert.equal(entry.view, undefined)
    assert.equal(entry.idempotencyKey, undefined)
  }

  // The valid record sits behind the three keyed poison messages on their partition.
  const keyed = dlq.filter((record) => record.entry.origin.key === '44').map((record) => record.entry.origin)
  const partitions = new Set(keyed.map((origin) => origin.partition))
  assert.equal(partitions.size, 1, 'the keyed poison shares a partition')
  const onTopic = await readTopic(topic, { count: 5 })
  const validMessage = onTopic.find((m) => m.key === '44' && carries(m.value, valid))
  assert.ok(validMessage, 'the valid record is on the topic')
  assert.equal(validMessage.partition, keyed[0]?.partition)
  for (const origin of keyed) assert.ok(validMessage.offset > BigInt(origin.offset ?? 'x'))
  assert.equal(
    fixture.mock.store.views().has('customer:45'),
    false,
    'the record without a key was not applied',
  )
})

/** True when `value` is an envelope whose data is exactly `record`. */
function carries(value: string | null, record: EntityRecord): boolean {
  try {
    // Canonically: the producer writes `data` with its keys sorted, not in the record's order.
    return canonicalJson(JSON.parse(value ?? '').data) === canonicalJson(record)
  } catch {
    return false
  }
}

test('deleting a customer delivers its deletion and re-delivers its products with fewer customers', async () => {
  await sources.write(
    { product: product('600', { price: 2, stock: 50 }) },
    { product: product('601', { price: 3, stock: 4 }) },
    { customer: customer('60', ['600', '601']) },
    { customer: customer('61', ['600']) },
  )
  await waitFor('the four views', async () => {
    const views = await heldViews(fixture.mock)
    const p600 = views['product:600'] as unknown as ProductViewShape | undefined
    const p601 = views['product:601'] as unknown as ProductViewShape | undefined
    return (
      views['customer:60'] && views['customer:61'] && p600?.customerCount === 2 && p601?.customerCount === 1
    )
  })

  await sources.write({ deleteCustomer: '60' })
  const views = await waitFor('customer:60 gone and its products re-delivered', async () => {
    const held = await heldViews(fixture.mock)
    const p601 = held['product:601'] as unknown as ProductViewShape | undefined
    return !held['customer:60'] && p601?.customerCount === 0 ? held : undefined
  })
  const customer60 = fixture.mock.store.records().filter((r) => r.key.startsWith('customer:60:'))
  assert.deepEqual(customer60.at(-1)?.record, { type: 'customer', id: '60', deleted: true })
  assert.equal(customer60.filter((r) => 'deleted' in (r.record as object)).length, 1, 'one deletion')
  const p600 = views['product:600'] as unknown as ProductViewShape
  const p601 = views['product:601'] as unknown as ProductViewShape
  assert.deepEqual({ count: p600.customerCount, ids: p600.customerIds }, { count: 1, ids: ['61'] })
  assert.deepEqual({ count: p601.customerCount, ids: p601.customerIds }, { count: 0, ids: [] })
  assert.ok(views['customer:61'], 'the other customer keeps its view')
})

test('deleting a product re-delivers the customers listing it with the product missing', async () => {
  const before = fixture.mock.store.records().length
  await sources.write({ deleteProduct: '600' })
  const views = await waitFor('customer:61 re-delivered without product 600', async () => {
    const held = await heldViews(fixture.mock)
    const c61 = held['customer:61'] as unknown as CustomerViewShape | undefined
    return c61?.missingProductIds.includes('600') && !held['product:600'] ? held : undefined
  })
  const c61 = views['customer:61'] as unknown as CustomerViewShape
  assert.deepEqual(c61.products, [])
  assert.deepEqual(c61.missingProductIds, ['600'])
  assert.deepEqual(
    {
      productCount: c61.summary.productCount,
      foundCount: c61.summary.foundCount,
      value: c61.summary.totalStockValue,
    },
    { productCount: 1, foundCount: 0, value: 0 },
  )
  const since = fixture.mock.store.records().slice(before)
  assert.deepEqual(since.find((r) => r.key.startsWith('product:600:'))?.record, {
    type: 'product',
    id: '600',
    deleted: true,
  })
  assert.deepEqual(
    since.map((r) => r.key.slice(0, r.key.lastIndexOf(':'))).sort(),
    ['customer:61', 'product:600'],
    'the product deletion and the one customer listing it, nothing else (customer 60 is gone)',
  )
})

test('a tombstone for an id never seen is skipped and causes no POST', async () => {
  const before = fixture.mock.store.records().length
  const duplicatesBefore = await metricValue(consumer.metrics.duplicates)
  await sources.write({ deleteCustomer: '999' }, { deleteProduct: '998' }, { customer: customer('997', []) })
  await waitFor('customer:997 at Analytics', () => fixture.mock.store.views().get('customer:997'))
  await waitFor(
    'both tombstones skipped',
    async () => (await metricValue(consumer.metrics.duplicates)) - duplicatesBefore === 2,
  )
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepEqual(
    fixture.mock.store
      .records()
      .slice(before)
      .map((r) => r.key.slice(0, r.key.lastIndexOf(':'))),
    ['customer:997'],
    'only the upsert was delivered',
  )
})
