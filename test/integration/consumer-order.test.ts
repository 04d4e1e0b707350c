/**
 * Design §4 must 1 against arrival order, and must 4 (replay): whatever order customers and products
 * arrive in, Analytics ends up holding the join of the latest source records, checked against the
 * test-side reference model (test/helpers/expected-views.ts); a new consumer group reading every
 * topic from the earliest offset afterwards POSTs nothing.
 *
 * One in-process consumer and one mock serve every scenario; each scenario uses its own ids and
 * compares only its views.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Product } from '../../src/domain/records.ts'
import { type ConsumerService, startConsumerService } from '../../src/services/consumer/service.ts'
import { viewIdentityOf } from '../../src/services/mock-analytics/store.ts'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { uniqueName } from '../helpers/env.ts'
import { applyChanges, emptyState, expectedViews } from '../helpers/expected-views.ts'
import { readTopic } from '../helpers/kafka.ts'
import { type KeyLedger, watchKeys } from '../helpers/key-ledger.ts'
import { metricValue } from '../helpers/metrics.ts'
import { captureLogs } from '../helpers/producer.ts'
import { waitForJoin } from '../helpers/sink-views.ts'
import { customer, product, type SourceChange, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

let fixture: PipelineFixture
let consumer: ConsumerService
let writer: ReturnType<typeof sourceWriter>
let ledger: KeyLedger
/** The source state every change of this file leaves, as the reference model sees it. */
const state = emptyState()
let produced = 0

before(async () => {
  fixture = await pipelineFixture()
  ledger = watchKeys(fixture.mock.store)
  consumer = await fixture.startConsumer()
  writer = sourceWriter(fixture.config)
})
after(async () => {
  await writer?.close()
  await fixture?.close()
})

async function write(...changes: SourceChange[]): Promise<void> {
  applyChanges(state, changes)
  await writer.write(...changes)
  produced += changes.length
}

/**
 * Waits until the views of `scenario` (ids starting `<scenario>-`; every view when undefined) are
 * exactly the expected join, and returns what the mock holds.
 */
async function settled(scenario?: string): Promise<Record<string, Record<string, unknown>>> {
  const mine = (viewId: string) =>
    scenario === undefined || viewId.split(':')[1]?.startsWith(`${scenario}-`) === true
  return waitForJoin(fixture.mock, expectedViews(state), { only: mine })
}

/** The accepted records of `viewId`, in arrival order. */
function accepted(viewId: string): Array<Record<string, unknown>> {
  return fixture.mock.store
    .records()
    .filter((stored) => viewIdentityOf(stored.key) === viewId)
    .map((stored) => stored.record as Record<string, unknown>)
}

const ids = (products: unknown) => (products as Product[]).map((p) => p.id)

test('product before customer: the customer view has the product, the product view counts the customer', async () => {
  await write({ product: product('a-p1', { price: 2.5, stock: 4 }) })
  await settled('a')
  await write({ customer: customer('a-c1', ['a-p1']) })
  const held = await settled('a')
  assert.deepEqual(ids(held['customer:a-c1']?.products), ['a-p1'])
  assert.deepEqual(held['customer:a-c1']?.missingProductIds, [])
  assert.deepEqual(held['product:a-p1']?.customerIds, ['a-c1'])
  assert.equal(accepted('product:a-p1').length, 2, 'the product view: once alone, once with its customer')
})

test('customer before product: the view first lists it as missing, then carries it', async () => {
  await write({ customer: customer('b-c1', ['b-p1', 'b-p2']) })
  let held = await settled('b')
  assert.deepEqual(held['customer:b-c1']?.missingProductIds, ['b-p1', 'b-p2'])
  assert.equal(held['product:b-p1'], undefined, 'a product never published has no view')

  await write({ product: product('b-p2', { stock: 50 }) })
  held = await settled('b')
  assert.deepEqual(held['customer:b-c1']?.missingProductIds, ['b-p1'])
  assert.deepEqual(ids(held['customer:b-c1']?.products), ['b-p2'])
  assert.deepEqual(held['product:b-p2']?.customerIds, ['b-c1'])

  const history = accepted('customer:b-c1').map((view) => view.missingProductIds)
  assert.deepEqual(history, [['b-p1', 'b-p2'], ['b-p1']], 'missing first, then with the product')
})

test('a product changed after both arrived re-delivers its view and its customers’ views, nothing else', async () => {
  await write(
    { customer: customer('c-c1', ['c-p1', 'c-p2']) },
    { customer: customer('c-c2', ['c-p1']) },
    { product: product('c-p1', { price: 10, stock: 20 }) },
    { product: product('c-p2', { price: 3, stock: 3 }) },
  )
  await settled('c')
  const before = { p2: accepted('product:c-p2').length, c1: accepted('customer:c-c1').length }

  await write({ product: product('c-p1', { price: 12.25, stock: 2, name: 'Renamed' }) })
  const held = await settled('c')
  const summary = held['customer:c-c1']?.summary as Record<string, number>
  assert.equal(summary.totalStockValue, 12.25 * 2 + 3 * 3)
  assert.equal(summary.lowStockCount, 2)
  assert.equal((held['product:c-p1']?.product as Product | undefined)?.name, 'Renamed')
  assert.equal(accepted('customer:c-c1').length, before.c1 + 1, 'the customer view once more')
  assert.equal(accepted('product:c-p2').length, before.p2, 'an untouched product view: no POST')
})

test("a customer's productIds changed: the views of the products added and removed follow", async () => {
  await write(
    { product: product('d-p1') },
    { product: product('d-p2') },
    { product: product('d-p3') },
    { customer: customer('d-c1', ['d-p1', 'd-p2']) },
    { customer: customer('d-c2', ['d-p2']) },
  )
  await settled('d')
  const keptBefore = accepted('product:d-p2').length

  await write({ customer: customer('d-c1', ['d-p2', 'd-p3']) })
  const held = await settled('d')
  assert.equal(held['product:d-p1']?.customerCount, 0, 'removed')
  assert.deepEqual(held['product:d-p3']?.customerIds, ['d-c1'], 'added')
  assert.deepEqual(held['product:d-p2']?.customerIds, ['d-c1', 'd-c2'])
  assert.equal(accepted('product:d-p2').length, keptBefore, 'a product kept: its view unchanged, no POST')
})

test('both sides and successive versions in one produce call, interleaved: the latest of each wins', async () => {
  await write(
    { customer: customer('e-c1', ['e-p1']) },
    { product: product('e-p1', { stock: 1 }) },
    { customer: customer('e-c1', ['e-p1', 'e-p2'], { name: 'Second' }) },
    { product: product('e-p2') },
    { product: product('e-p1', { stock: 100 }) },
    { deleteProduct: 'e-p2' },
    { customer: customer('e-c2', ['e-p1']) },
    { deleteCustomer: 'e-c2' },
  )
  const held = await settled('e')
  assert.deepEqual(held['customer:e-c1']?.missingProductIds, ['e-p2'])
  assert.equal(held['customer:e-c2'], undefined)
  assert.equal(held['product:e-p1']?.customerCount, 1)
})

test('replay: a new consumer group reading every topic from the earliest offset POSTs nothing', async () => {
  await settled()
  assert.deepEqual(ledger.conflicts, [], 'no key ever carried two contents')
  await consumer.close()
  const before = fixture.mock.store.stats()

  const replay = await startConsumerService(
    { ...fixture.config, CONSUMER_GROUP: uniqueName('replay'), CONSUMER_BATCH_SIZE: 1 },
    captureLogs('replay').logger,
    { prefix: fixture.prefix, retryPollMs: 100 },
  )
  try {
    await replay.ready
    const sourceTopics = [fixture.config.TOPIC_CUSTOMERS, fixture.config.TOPIC_PRODUCTS]
    await waitFor('the replay to read every source message', async () => {
      let read = 0
      for (const topic of sourceTopics) read += await metricValue(replay.metrics.messages, { topic })
      return read >= produced
    })
    // Every refresh message ever published (the first consumer's and the replay's own) read by the replay.
    await waitFor('the replay to read every refresh message', async () => {
      const published = (await readTopic(fixture.config.TOPIC_REFRESH, { idleMs: 500 })).length
      const read = await metricValue(replay.metrics.messages, { topic: fixture.config.TOPIC_REFRESH })
      return read >= published
    })
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const afterReplay = fixture.mock.store.stats()
    assert.equal(afterReplay.received, before.received, 'no POST during the replay')
    assert.ok((await metricValue(replay.metrics.duplicates)) > 0, 'the replay skipped duplicates')
    await settled()
  } finally {
    await replay.close()
  }
})
