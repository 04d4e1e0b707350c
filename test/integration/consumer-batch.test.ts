/**
 * The consumer in opt-in batch delivery mode (`SINK_BATCH_SIZE` > 1): views go to the mock's batch
 * endpoint, each item under its own idempotency key. The brief's records are delivered in full with
 * no replay; a batch answered 500 is retried whole, then delivered once; a batch answered 400
 * dead-letters every view it carried.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Metric } from 'prom-client'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { heldViews, type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { readDlq } from '../helpers/dlq.ts'
import { metricValue } from '../helpers/metrics.ts'
import { customer, product, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

let fixture: PipelineFixture
let consumer: ConsumerService
let sources: ReturnType<typeof sourceWriter>

before(async () => {
  fixture = await pipelineFixture({
    SINK_BATCH_SIZE: '50',
    RETRY_BASE_DELAY_MS: '20',
    RETRY_MAX_DELAY_MS: '100',
  })
  consumer = await fixture.startConsumer()
  sources = sourceWriter(fixture.config)
})
after(async () => {
  await sources.close()
  await fixture.close()
})

function metric(name: string): Metric {
  const found = consumer.registry.getSingleMetric(name)
  assert.ok(found, `metric ${name} is registered`)
  return found
}

const deliverDlqCount = () => metricValue(consumer.metrics.dlqMessages, { stage: 'deliver' })

test('the brief flow in batches: every view delivered through the batch endpoint, nothing replayed', async () => {
  await sources.write(
    { product: product('100', { price: 2, stock: 3 }) },
    { product: product('200', { price: 5, stock: 50 }) },
    { customer: customer('1', ['100', '200']) },
    { customer: customer('2', ['200']) },
  )
  const views = await waitFor('the four views, with their products', async () => {
    const held = await heldViews(fixture.mock)
    const customer1 = held['customer:1'] as { products?: unknown[] } | undefined
    const product200 = held['product:200'] as { customerCount?: number } | undefined
    return Object.keys(held).length === 4 &&
      customer1?.products?.length === 2 &&
      product200?.customerCount === 2
      ? held
      : undefined
  })
  assert.deepEqual(Object.keys(views).sort(), ['customer:1', 'customer:2', 'product:100', 'product:200'])
  const customer1 = views['customer:1'] as { products: Array<{ id: string }>; missingProductIds: string[] }
  assert.deepEqual(
    customer1.products.map((p) => p.id),
    ['100', '200'],
  )
  assert.deepEqual(customer1.missingProductIds, [])
  assert.deepEqual((views['product:200'] as { customerIds: string[] }).customerIds, ['1', '2'])

  // The same records again: duplicates, no request at all.
  const settled = fixture.mock.store.stats()
  await sources.write({ customer: customer('1', ['100', '200']) }, { customer: customer('2', ['200']) })
  await waitFor('two duplicates skipped', async () => (await metricValue(consumer.metrics.duplicates)) >= 2)
  await new Promise((resolve) => setTimeout(resolve, 500))

  const stats = fixture.mock.store.stats()
  assert.equal(stats.received, settled.received, 'no POST for unchanged records')
  assert.equal(stats.replays, 0, 'no idempotency key sent twice')
  assert.equal(stats.rejected, 0)
  assert.ok(stats.batches >= 1, 'the batch endpoint was used')
  // Every request the sink made went to the batch endpoint: as many 2xx as batches at the mock.
  assert.equal(await metricValue(metric('pipeline_sink_requests_total'), { status: '2xx' }), stats.batches)
})

test('a batch answered 500 is retried whole and then delivered once, nothing dead-lettered', async () => {
  const retriesBefore = await metricValue(metric('pipeline_sink_retries_total'))
  const dlqBefore = await deliverDlqCount()
  const before = fixture.mock.store.stats()
  // One request fails: the batch holding the first of these customers' views.
  fixture.mock.store.faults.add({ status: 500, count: 1, match: 'customer:3' })

  await sources.write(
    { customer: customer('31', []) },
    { customer: customer('32', []) },
    { customer: customer('33', []) },
  )
  await waitFor('the three views delivered', () => {
    const held = fixture.mock.store.views()
    return ['customer:31', 'customer:32', 'customer:33'].every((view) => held.has(view))
  })

  const stats = fixture.mock.store.stats()
  assert.equal(stats.accepted - before.accepted, 3, 'each view stored once')
  assert.equal(stats.replays, before.replays, 'the failed batch stored nothing, so no replay')
  assert.ok(stats.rejected - before.rejected >= 1, 'the 500 turned the batch away')
  assert.equal(await metricValue(metric('pipeline_sink_retries_total')), retriesBefore + 1, 'one retry')
  assert.equal(await deliverDlqCount(), dlqBefore)
  assert.equal(fixture.mock.store.faults.list().length, 0, 'the fault rule was used up')
})

test('a batch answered 400 dead-letters every view it carried, without retry', async () => {
  const retriesBefore = await metricValue(metric('pipeline_sink_retries_total'))
  const dlqBefore = await deliverDlqCount()
  // Every request carrying one of these views is refused, however the stage groups them.
  fixture.mock.store.faults.add({ status: 400, match: 'customer:4' })

  await sources.write({ customer: customer('41', []) }, { customer: customer('42', []) })
  await waitFor('two deliver-stage DLQ entries', async () => (await deliverDlqCount()) >= dlqBefore + 2)
  fixture.mock.store.faults.clear()

  const entries = (await readDlq(fixture.config, { count: dlqBefore + 2 })).filter((record) =>
    ['customer:41', 'customer:42'].includes(record.key),
  )
  assert.deepEqual(entries.map((record) => record.key).sort(), ['customer:41', 'customer:42'])
  for (const { entry } of entries) {
    assert.equal(entry.stage, 'deliver')
    assert.equal(entry.error.status, 400)
    assert.equal(entry.attempts, 1)
  }
  assert.equal(await metricValue(metric('pipeline_sink_retries_total')), retriesBefore, 'no retry')
  assert.equal(fixture.mock.store.views().has('customer:41'), false)
})
