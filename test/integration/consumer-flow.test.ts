/**
 * The brief's flow end to end: Prism → producer → Kafka → consumer → analytics mock. Analytics ends
 * up holding the two customer views with their products and the two product views; records polled
 * again cause "Skipping duplicate message" and no POST.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { runCycle } from '../../src/services/producer/cycle.ts'
import { createProducerRuntime } from '../../src/services/producer/service.ts'
import { heldViews, type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { uniqueName } from '../helpers/env.ts'
import { captureLogs } from '../helpers/producer.ts'
import { waitFor } from '../helpers/wait.ts'

let fixture: PipelineFixture
let consumer: ConsumerService
const consumerLogs = captureLogs('consumer')

before(async () => {
  fixture = await pipelineFixture()
  consumer = await fixture.startConsumer(consumerLogs)
})
after(() => fixture.close())

async function pollOnce(prefix: string): Promise<number> {
  const runtime = await createProducerRuntime(fixture.config, captureLogs('producer').logger, { prefix })
  try {
    let published = 0
    for (const source of runtime.sources) published += (await runCycle(runtime.context, source)).published
    return published
  } finally {
    await runtime.close()
  }
}

test('Analytics holds the customer views with their products and the product views', async () => {
  assert.equal(await pollOnce(fixture.prefix), 4)
  const views = await waitFor('four views at Analytics', async () => {
    const held = await heldViews(fixture.mock)
    return Object.keys(held).length >= 4 && held['customer:1'] && held['customer:2'] ? held : undefined
  })
  assert.deepEqual(Object.keys(views).sort(), ['customer:1', 'customer:2', 'product:100', 'product:200'])
  const customer1 = views['customer:1'] as {
    products: Array<{ id: string }>
    missingProductIds: string[]
    summary: { productCount: number }
  }
  assert.deepEqual(
    customer1.products.map((p) => p.id),
    ['100', '200'],
  )
  assert.deepEqual(customer1.missingProductIds, [])
  assert.equal(customer1.summary.productCount, 2)
  const product200 = views['product:200'] as { customerCount: number; customerIds: string[] }
  assert.equal(product200.customerCount, 2)
  assert.deepEqual(product200.customerIds, ['1', '2'])
})

test('the same records polled again are skipped as duplicates and cause no POST', async () => {
  const before = fixture.mock.store.stats()
  // A producer with no memory republishes everything, as the brief's producer did every minute.
  assert.equal(await pollOnce(uniqueName('forgetful')), 4)
  await waitFor('four duplicates skipped', () =>
    consumer.metrics.duplicates.get().then((m) => m.values.reduce((n, v) => n + v.value, 0) >= 4),
  )
  assert.ok(consumerLogs.messages().filter((m) => m === 'Skipping duplicate message').length >= 4)
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.equal(fixture.mock.store.stats().received, before.received, 'no POST for unchanged records')
})
