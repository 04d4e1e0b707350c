/**
 * Deliveries of one view that overlap, against a real Redis and a real Analytics mock over HTTP:
 * two stage-2 members across a rebalance (the one that lost the partition still POSTing while the
 * new owner delivers), and a request the client gave up on that Analytics stores late. Found by the
 * chaos run in CI: customer views kept a deleted product because an older delivery landed after the
 * newer one and the delivery record said the newer one was there. In each test the sink must end
 * holding the latest state.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ViewId } from '../../src/domain/views.ts'
import { createConsumerMetrics, createRegistry } from '../../src/observability/metrics.ts'
import { type DeliverContext, deliverRefreshBatch } from '../../src/services/consumer/deliver-stage.ts'
import { refreshMessages } from '../../src/services/consumer/refresh.ts'
import type { DeliveryStore } from '../../src/state/delivery-store.ts'
import { EntityStore } from '../../src/state/entity-store.ts'
import { RetrySchedule } from '../../src/state/retry-schedule.ts'
import { ViewClock } from '../../src/state/view-clock.ts'
import { deliverContext, testSink, useMockAnalytics, withMethod } from '../helpers/deliver-stage.ts'
import { customerRecord, stored } from '../helpers/entities.ts'
import { metricValue } from '../helpers/metrics.ts'
import { messageReader } from '../helpers/read-messages.ts'
import { useTestRedis } from '../helpers/redis.ts'
import { waitFor } from '../helpers/wait.ts'

const testRedis = useTestRedis()

const TIMEOUT_MS = 400

const analytics = useMockAnalytics(TIMEOUT_MS, 1)

/** Stage-2 members sharing one deployment's Redis state; each has its own memory. */
function deployment(lateMs: number) {
  const prefix = testRedis.newPrefix('overlap')
  const redis = testRedis.redis
  const metrics = createConsumerMetrics(createRegistry('consumer'))
  const retries = new RetrySchedule(redis, prefix)
  const member = (): DeliverContext =>
    deliverContext(
      { redis, prefix, sink: analytics.sink, metrics },
      { retries, retryRounds: 5, retryDelayMs: 50, inFlightMs: 5000, lateMs },
    )
  const read = messageReader('refresh')
  const batch = (views: ReadonlyArray<readonly [ViewId, number | undefined]>, retry = false) => {
    const stamps = new Set(views.map(([, seq]) => seq))
    return [...stamps].flatMap((seq) =>
      refreshMessages(
        'refresh',
        views.filter(([, s]) => s === seq).map(([view]) => [view, undefined] as const),
        { ...(seq === undefined ? {} : { seq }), retry },
      ).map(read),
    )
  }
  const entities = new EntityStore(redis, prefix)
  const clock = new ViewClock(redis, prefix)
  return {
    member,
    metrics,
    retries,
    /** Hands `ctx` one batch of refresh requests (view, stamp), as read from the refresh topic. */
    deliver: (ctx: DeliverContext, views: ReadonlyArray<readonly [ViewId, number | undefined]>) =>
      deliverRefreshBatch(ctx, batch(views)),
    /** Deletes customer `id` and ticks the clock, as stage 1 does; returns the stamp. */
    async deleteCustomer(id: string): Promise<number> {
      await entities.deleteCustomer(id)
      return clock.tick()
    },
    /** Writes customer `id` named `name` and ticks the clock, as stage 1 does; returns the stamp. */
    async write(id: string, name: string): Promise<number> {
      await entities.upsertCustomer(stored({ ...customerRecord(id, []), name }))
      return clock.tick()
    },
    /** Plays the retry pump until no view waits any more: each due view is requested again. */
    async drain(ctx: DeliverContext): Promise<void> {
      await waitFor(
        'every waiting view to be delivered',
        async () => {
          const due = await retries.claimDue(100)
          if (due.views.length > 0) {
            await deliverRefreshBatch(
              ctx,
              batch(
                due.views.map((view) => [view, undefined] as const),
                true,
              ),
            )
            await retries.ack(due)
          }
          return (await retries.pending()) === 0
        },
        30_000,
      )
    },
  }
}

const heldName = (view: string) =>
  (analytics.mock.store.views().get(view)?.record as { customer?: { name?: string } } | undefined)?.customer
    ?.name

test('a member still POSTing after a rebalance cannot leave its older view at the sink', async () => {
  const d = deployment(1000)
  const [x, y] = [d.member(), d.member()]
  const view: ViewId = 'customer:ovl-1'
  const s1 = await d.write('ovl-1', 'Old')
  // X (the member losing the partition) POSTs "Old" slowly; Y (the new owner) meanwhile delivers
  // "New", and also a slow view of another customer, so Y records its batch after X recorded its.
  analytics.mock.store.faults.add({ delayMs: 300, match: 'customer:ovl-1:', count: 1 })
  analytics.mock.store.faults.add({ delayMs: 800, match: 'customer:ovl-slow:', count: 1 })
  const received = analytics.mock.store.stats().received
  const xDone = d.deliver(x, [[view, s1]])
  await waitFor('X to have sent "Old"', () => analytics.mock.store.stats().received > received, 5000)
  const s2 = await d.write('ovl-1', 'New')
  await d.write('ovl-slow', 'Slow')
  const yDone = d.deliver(y, [
    [view, s2],
    ['customer:ovl-slow', s2 + 1],
  ])
  await Promise.all([xDone, yDone])
  // X saw the rebalance and re-requests what it handled, unstamped, for the new owner.
  await d.deliver(y, [[view, undefined]])
  await d.drain(y)
  assert.equal(heldName(view), 'New', 'the sink holds the latest state')
  assert.equal(heldName('customer:ovl-slow'), 'Slow')
  assert.ok((await metricValue(d.metrics.views, { result: 'waiting' })) >= 1, 'Y waited for X')
})

test('a request given up on that lands late is never followed by other content it could overwrite', async () => {
  const d = deployment(2500)
  const x = d.member()
  const view: ViewId = 'customer:ovl-2'
  const s1 = await d.write('ovl-2', 'Old')
  // Stored by the sink 1.5 s after the client gave up on it (SINK_LATE_ARRIVAL_MS here: 2.5 s).
  analytics.mock.store.faults.add({ delayMs: TIMEOUT_MS + 1500, match: 'customer:ovl-2:', count: 1 })
  await d.deliver(x, [[view, s1]])
  assert.equal(landed('customer:ovl-2:', 'Old'), false, 'given up on, not stored yet')
  const s2 = await d.write('ovl-2', 'New')
  await d.deliver(x, [[view, s2]])
  await waitFor('the request given up on to land', () => landed('customer:ovl-2:', 'Old'), 10_000)
  await d.drain(x)
  assert.equal(heldName(view), 'New', 'the late "Old" landed before "New" was sent')
  assert.ok((await metricValue(d.metrics.views, { result: 'waiting' })) >= 1)
})

/** True when the sink accepted a delivery of a view whose key starts with `prefix`, named `name`. */
const landed = (prefix: string, name: string) =>
  analytics.mock.store
    .records()
    .some(
      (r) =>
        r.key.startsWith(prefix) && (r.record as { customer?: { name?: string } }).customer?.name === name,
    )

test('a member that settles after its claim expired puts the view in doubt: delivered again, fresh key', async () => {
  const d = deployment(200)
  // X's claims last 300 ms; its POST takes 2.5 s. Y delivers "New" once X's claim expired.
  const x = { ...d.member(), inFlightMs: 300 }
  const y = d.member()
  const view: ViewId = 'customer:ovl-3'
  const s1 = await d.write('ovl-3', 'Old')
  analytics.mock.store.faults.add({ delayMs: 2500, match: 'customer:ovl-3:', count: 1 })
  const received = analytics.mock.store.stats().received
  const patient = testSink(analytics.mock.url, 5000, 1)
  const xDone = d.deliver({ ...x, sink: patient }, [[view, s1]]).finally(() => patient.close())
  await waitFor('X to have sent "Old"', () => analytics.mock.store.stats().received > received, 5000)
  await new Promise((resolve) => setTimeout(resolve, 350))
  const s2 = await d.write('ovl-3', 'New')
  await d.deliver(y, [[view, s2]])
  assert.equal(heldName(view), 'New')
  await xDone
  assert.equal(heldName(view), 'Old', 'X landed last')
  await d.drain(y)
  assert.equal(heldName(view), 'New', 'delivered again under a fresh key')
  assert.ok((await metricValue(d.metrics.views, { result: 'overlap' })) >= 1)
})

test('a member whose evaluation is older than another that skipped the view cannot send it', async () => {
  const d = deployment(1000)
  const [x, y] = [d.member(), d.member()]
  const view: ViewId = 'customer:ovl-4'
  const s1 = await d.write('ovl-4', 'Gone soon')
  // X evaluated the customer and is about to claim it when the customer is deleted; Y, the new
  // owner, evaluates the deletion first and finds nothing to send (never delivered). No rebalance
  // re-request follows here (as when X's batch fails): only the claim stands in X's way.
  let release: () => void = () => undefined
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let claiming: () => void = () => undefined
  const atClaim = new Promise<void>((resolve) => {
    claiming = resolve
  })
  const deliveries = withMethod(
    x.deliveries,
    'claim',
    async (...args: Parameters<DeliveryStore['claim']>) => {
      claiming()
      await released
      return x.deliveries.claim(...args)
    },
  )
  const xDone = d.deliver({ ...x, deliveries }, [[view, s1]])
  await atClaim
  await d.deleteCustomer('ovl-4')
  await d.deliver(y, [[view, s1 + 1]])
  release()
  await xDone
  await d.drain(y)
  assert.equal(landed('customer:ovl-4:', 'Gone soon'), false, 'the deleted customer never reached the sink')
  assert.equal(analytics.mock.store.views().has(view), false)
})
