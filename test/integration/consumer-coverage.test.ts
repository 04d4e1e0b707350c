/**
 * Stage 2 skips refresh requests an earlier evaluation covered (the view clock, see
 * src/state/view-clock.ts): a request stamped no later than the clock a settled evaluation read is
 * skipped, one stamped later is evaluated, an unstamped one always is. Real Redis and a real
 * Analytics mock over HTTP; the stage's handler is fed refresh requests as stage 1 would publish
 * them. To make a skip observable, state is changed *before* a stale request arrives: evaluating it
 * would POST the new content, skipping it does not (the later request carrying the change does).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ViewId } from '../../src/domain/views.ts'
import { createConsumerMetrics, createRegistry } from '../../src/observability/metrics.ts'
import { type DeliverContext, deliverRefreshBatch } from '../../src/services/consumer/deliver-stage.ts'
import { refreshMessage } from '../../src/services/consumer/refresh.ts'
import { EntityStore } from '../../src/state/entity-store.ts'
import { ViewClock } from '../../src/state/view-clock.ts'
import { deliverContext, useMockAnalytics, withMethod } from '../helpers/deliver-stage.ts'
import { customerRecord, stored } from '../helpers/entities.ts'
import { metricValue } from '../helpers/metrics.ts'
import { messageReader } from '../helpers/read-messages.ts'
import { useTestRedis } from '../helpers/redis.ts'

const testRedis = useTestRedis()

const analytics = useMockAnalytics(5000, 2)

/** A stage 2 of its own Redis prefix; `restart()` gives one that shares the state but not the memory. */
function stage() {
  const prefix = testRedis.newPrefix('coverage')
  const redis = testRedis.redis
  const metrics = createConsumerMetrics(createRegistry('consumer'))
  const make = (): DeliverContext =>
    deliverContext(
      { redis, prefix, sink: analytics.sink, metrics },
      { dlq: { write: async () => assert.fail('nothing is dead-lettered here') } },
    )
  let ctx = make()
  const read = messageReader('refresh')
  return {
    get ctx() {
      return ctx
    },
    clock: new ViewClock(redis, prefix),
    entities: new EntityStore(redis, prefix),
    restart() {
      ctx = { ...make(), metrics }
    },
    /** Hands the stage one batch of refresh requests, as read from the refresh topic. */
    async deliver(
      requests: ReadonlyArray<{ view: ViewId; seq?: number }>,
      override: Partial<DeliverContext> = {},
    ) {
      const batch = requests.map(({ view, seq }) =>
        read(refreshMessage('refresh', view, undefined, seq === undefined ? {} : { seq })),
      )
      await deliverRefreshBatch({ ...ctx, ...override }, batch)
    },
    covered: () => metricValue(metrics.views, { result: 'covered' }),
  }
}

/** Writes customer `id` named `name` and ticks the clock, as stage 1 does; returns the stamp. */
async function writeCustomer(s: ReturnType<typeof stage>, id: string, name: string): Promise<number> {
  await s.entities.upsertCustomer(stored({ ...customerRecord(id, []), name }))
  return s.clock.tick()
}

const heldName = (view: string) =>
  (analytics.mock.store.views().get(view)?.record as { customer?: { name?: string } } | undefined)?.customer
    ?.name

test('a refresh stamped no later than a settled evaluation is skipped; a later one is evaluated', async () => {
  const s = stage()
  const view: ViewId = 'customer:cov-1'
  const first = await writeCustomer(s, 'cov-1', 'First')
  await s.deliver([{ view, seq: first }])
  assert.equal(heldName(view), 'First')
  const received = analytics.mock.store.stats().received

  const second = await writeCustomer(s, 'cov-1', 'Second')
  await s.deliver([{ view, seq: first }])
  assert.equal(
    analytics.mock.store.stats().received,
    received,
    'the stale request was skipped, nothing POSTed',
  )
  assert.equal(await s.covered(), 1)
  assert.equal(heldName(view), 'First')

  await s.deliver([{ view, seq: second }])
  assert.equal(heldName(view), 'Second', 'the request carrying the change is evaluated')
  assert.equal(analytics.mock.store.stats().received, received + 1)
})

test('a restarted stage skips from the delivery record in Redis; an unstamped request is always evaluated', async () => {
  const s = stage()
  const view: ViewId = 'customer:cov-2'
  const first = await writeCustomer(s, 'cov-2', 'First')
  await s.deliver([{ view, seq: first }])
  s.restart()
  await writeCustomer(s, 'cov-2', 'Second')
  const received = analytics.mock.store.stats().received

  await s.deliver([{ view, seq: first }])
  assert.equal(analytics.mock.store.stats().received, received, 'covered by the record of the delivery')
  assert.equal(await s.covered(), 1)

  await s.deliver([{ view }])
  assert.equal(heldName(view), 'Second', 'a retry round or a DLQ replay is evaluated whatever the clock')
})

test('an evaluation that found the view unchanged covers later stale requests too', async () => {
  const s = stage()
  const view: ViewId = 'customer:cov-3'
  const first = await writeCustomer(s, 'cov-3', 'First')
  await s.deliver([{ view, seq: first }])
  // The clock moves (another entity changed), the view is evaluated again and found unchanged.
  const later = await s.clock.tick()
  await s.deliver([{ view, seq: later }])
  const received = analytics.mock.store.stats().received
  assert.equal(await s.covered(), 0)

  await writeCustomer(s, 'cov-3', 'Second')
  await s.deliver([{ view, seq: later }])
  assert.equal(analytics.mock.store.stats().received, received, 'covered by the unchanged evaluation')
  assert.equal(await s.covered(), 1)
})

test('requests of one view in one batch: the highest stamp decides, an unstamped one forces', async () => {
  const s = stage()
  const view: ViewId = 'customer:cov-4'
  const first = await writeCustomer(s, 'cov-4', 'First')
  await s.deliver([{ view, seq: first }])

  const second = await writeCustomer(s, 'cov-4', 'Second')
  await s.deliver([
    { view, seq: first },
    { view, seq: second },
    { view, seq: first },
  ])
  assert.equal(heldName(view), 'Second', 'one request in the batch is newer than the evaluation')

  await writeCustomer(s, 'cov-4', 'Third')
  await s.deliver([{ view, seq: first }, { view }])
  assert.equal(heldName(view), 'Third', 'an unstamped request is evaluated, stale company or not')
})

test('a batch that fails while another delivery is on its way fails only once that one landed', async () => {
  const s = stage()
  await writeCustomer(s, 'cov-fails', 'A')
  await writeCustomer(s, 'cov-slow', 'B')
  // One view's POST is slow; the other's exhausts its attempts at once, and recording that fails.
  analytics.mock.store.faults.add({ status: 503, match: 'customer:cov-fails:' })
  analytics.mock.store.faults.add({ delayMs: 1500, match: 'customer:cov-slow:' })
  const retries = withMethod(s.ctx.retries, 'recordFailure', async () => {
    throw new Error('Redis went away')
  })
  try {
    await assert.rejects(
      s.deliver([{ view: 'customer:cov-fails' }, { view: 'customer:cov-slow' }], { retries }),
      /Redis went away/,
    )
    // Had the batch failed while a delivery was on its way, a rejoined stage could deliver the view
    // anew and see this older one land after it: the slow one has landed by the time it fails.
    assert.equal(heldName('customer:cov-slow'), 'B', 'the delivery in flight landed before the batch failed')
    // Both outcomes are recorded all the same: a request that outlived its claim must leave its doubt.
    const records = await s.ctx.deliveries.read(['customer:cov-slow', 'customer:cov-fails'])
    assert.equal(records.get('customer:cov-slow')?.confirmed, true, 'the delivered view is settled')
    const failed = records.get('customer:cov-fails')
    assert.ok(
      failed?.confirmed === false && failed.mayLandUntil !== undefined,
      'the failed one waits out its window',
    )
  } finally {
    analytics.mock.store.faults.clear()
  }
})
