/**
 * Hostile messages on the real `customer_data` / `inventory_data` topics against the real consumer
 * (Kafka, Redis, the analytics mock): a sample of the generated cases of the unit test, plus a
 * near-1 MiB poison value. Each poison message becomes one DLQ entry with its stage, reason and raw
 * payload (its head when it is too large to keep), the valid messages among them are applied, and
 * good records produced after all of it are delivered.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import fc from 'fast-check'
import { rawPayload } from '../../src/domain/decode.ts'
import type { EntityName } from '../../src/domain/records.ts'
import { createProducer, type KafkaProducer, publish } from '../../src/kafka/producer.ts'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { heldViews, type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { readDlq } from '../helpers/dlq.ts'
import { type HostileMessage, hostileMessage } from '../helpers/hostile-messages.ts'
import { metricValue } from '../helpers/metrics.ts'
import { customer, product, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const SAMPLE = 80

let fixture: PipelineFixture
let consumer: ConsumerService
let producer: KafkaProducer

before(async () => {
  fixture = await pipelineFixture()
  consumer = await fixture.startConsumer()
  producer = createProducer(fixture.config, 'test-hostile')
})
after(async () => {
  await producer?.close()
  await fixture?.close()
})

test(`${SAMPLE} generated hostile messages and a near-1 MiB poison: each poison dead-lettered with stage, reason and payload; good records after them delivered`, async () => {
  const { config } = fixture
  const topicOf = (entity: EntityName) =>
    entity === 'customer' ? config.TOPIC_CUSTOMERS : config.TOPIC_PRODUCTS
  // Distinct ids per message, so a valid one and a tombstone never meet by chance.
  const cases: HostileMessage[] = Array.from({ length: SAMPLE }, (_, i) => {
    const entity: EntityName = i % 2 === 0 ? 'customer' : 'product'
    const [sample] = fc.sample(hostileMessage(entity, `hm${i}`), 1)
    assert.ok(sample)
    // A compacted topic refuses a key-less message outright; an empty key is what can reach a consumer.
    return sample.key === null ? { ...sample, key: '' } : sample
  })
  const huge: HostileMessage = {
    kind: 'near-1 MiB poison',
    entity: 'customer',
    key: 'hm-huge',
    // Control characters: 900 KiB on the topic, 5.4 MB once escaped in a JSON DLQ record.
    value: Buffer.from(`{"schemaVersion":1,"truncated":"${String.fromCharCode(1).repeat(900 * 1024)}`),
    headers: {},
    expect: { kind: 'poison', stage: 'deserialize', reason: /^value is not JSON: / },
  }
  cases.push(huge)

  const deliveries = await publish(
    producer,
    cases.map((m) => ({ topic: topicOf(m.entity), key: m.key ?? '', value: m.value, headers: m.headers })),
  )
  const at = new Map(
    deliveries.map((d, i) => [`${d.topic}:${d.partition}:${d.offset}`, cases[i] as HostileMessage]),
  )
  const sources = sourceWriter(config)
  try {
    await sources.write(
      { product: product('after-p', { stock: 2 }) },
      { customer: customer('after-c', ['after-p']) },
    )
  } finally {
    await sources.close()
  }

  const views = await waitFor('the good records after the hostile ones are delivered', async () => {
    const held = await heldViews(fixture.mock)
    return held['customer:after-c'] && held['product:after-p'] ? held : undefined
  })
  assert.deepEqual(
    (views['customer:after-c'] as { customer: unknown }).customer,
    customer('after-c', ['after-p']),
  )

  const poison = cases.filter((m) => m.expect.kind === 'poison')
  const dlq = await readDlq(config, { count: poison.length })
  assert.equal(dlq.length, poison.length, 'one DLQ entry per poison message, none for the valid ones')
  const kinds = new Map<string, number>()
  for (const { entry, headers } of dlq) {
    const where = `${entry.origin.topic}:${entry.origin.partition}:${entry.origin.offset}`
    const m = at.get(where)
    assert.ok(m, `the entry at ${where} is one of ours`)
    assert.equal(m.expect.kind, 'poison', `${m.kind} was dead-lettered`)
    if (m.expect.kind !== 'poison') continue
    kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1)
    assert.equal(entry.stage, m.expect.stage, m.kind)
    assert.equal(headers['dlq-stage'], m.expect.stage)
    assert.match(entry.error.message, m.expect.reason, m.kind)
    const raw = rawPayload(m.value)
    if (entry.truncated?.payload === undefined) assert.equal(entry.payload, raw, `${m.kind}: the raw payload`)
    else {
      assert.ok(
        raw?.startsWith(String(entry.payload).replace(/…$/, '')),
        `${m.kind}: the head of the payload`,
      )
      assert.match(entry.truncated.payload, /bytes of JSON, over 262144/)
    }
  }
  assert.ok((kinds.get('near-1 MiB poison') ?? 0) === 1, 'the near-1 MiB poison was dead-lettered')
  assert.ok(kinds.size >= 6, `poison kinds seen: ${[...kinds.keys()].join(', ')}`)

  const counted =
    (await metricValue(consumer.metrics.dlqMessages, { stage: 'deserialize' })) +
    (await metricValue(consumer.metrics.dlqMessages, { stage: 'validate' }))
  assert.equal(counted, poison.length)

  // The valid upserts among the hostile messages were applied and delivered too.
  const upserts = cases.filter((m) => m.expect.kind === 'upsert')
  await waitFor('the valid hostile-sample records delivered', async () => {
    const held = await heldViews(fixture.mock)
    return upserts.every((m) => m.expect.kind === 'upsert' && held[`${m.entity}:${m.expect.id}`])
  })
})
