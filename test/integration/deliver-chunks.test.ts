/**
 * Stage 2 evaluates a batch's views in chunks of 500, the next chunk while the last one is sent, and
 * claims nothing of a chunk before the chunk before it is settled. Real Redis and a real Analytics
 * mock over HTTP; the stage's handler is fed refresh requests as stage 1 publishes them, and its
 * stores and sink are watched (not replaced) to see in which order the chunks' steps ran.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ViewId } from '../../src/domain/views.ts'
import { createConsumerMetrics, createRegistry } from '../../src/observability/metrics.ts'
import { type DeliverContext, deliverRefreshBatch } from '../../src/services/consumer/deliver-stage.ts'
import { refreshMessages } from '../../src/services/consumer/refresh.ts'
import type { BatchDeliveryRequest } from '../../src/sinks/delivery.ts'
import type { DeliveryOutcome } from '../../src/sinks/outcome.ts'
import { EntityStore } from '../../src/state/entity-store.ts'
import { deliverContext, useMockAnalytics, withMethod } from '../helpers/deliver-stage.ts'
import { customerRecord, stored } from '../helpers/entities.ts'
import { messageReader } from '../helpers/read-messages.ts'
import { useTestRedis } from '../helpers/redis.ts'

const testRedis = useTestRedis()

const analytics = useMockAnalytics(5000, 2)

/** What the stage did, in order: each step with the chunk (0, 1, …) it belonged to. */
interface Step {
  readonly step: 'evaluate' | 'claim' | 'post' | 'settled'
  readonly chunk: number
}

/**
 * `count` customers under a prefix of their own, and a stage 2 over them whose views are POSTed in
 * batches of 250 through `post` (default: the real sink after `postDelayMs`), recording its steps.
 */
async function setUp(
  name: string,
  count: number,
  options: {
    readonly postDelayMs?: number
    readonly post?: (items: readonly BatchDeliveryRequest[]) => Promise<DeliveryOutcome[]>
    /** Replaces the sink's wait for a closed circuit. */
    readonly waitUntilClosed?: () => Promise<void>
    /** Reading the inputs of this chunk fails. */
    readonly failChunk?: number
    readonly context?: Partial<DeliverContext>
  } = {},
) {
  const prefix = testRedis.newPrefix(name)
  const redis = testRedis.redis
  const entities = new EntityStore(redis, prefix)
  const ids = Array.from({ length: count }, (_, i) => `${name}-${i}`)
  await entities.writeCustomers(ids.map((id) => ({ id, stored: stored(customerRecord(id, [])) })))
  const views = ids.map((id): ViewId => `customer:${id}`)

  const steps: Step[] = []
  const chunkOf = new Map<ViewId, number>()
  let chunks = 0
  const base = deliverContext({
    redis,
    prefix,
    sink: analytics.sink,
    metrics: createConsumerMetrics(createRegistry('consumer')),
  })
  const evaluations = new Map<ViewId, number>()
  const watchedEntities = withMethod(base.entities, 'loadViewInputs', (viewIds: ViewId[], o: unknown) => {
    const known = viewIds.find((view) => chunkOf.has(view))
    const chunk = known === undefined ? chunks++ : (chunkOf.get(known) ?? -1)
    for (const view of viewIds) {
      chunkOf.set(view, chunk)
      evaluations.set(view, (evaluations.get(view) ?? 0) + 1)
    }
    steps.push({ step: 'evaluate', chunk })
    if (chunk === options.failChunk) return Promise.reject(new Error('reading the inputs failed'))
    return base.entities.loadViewInputs(viewIds, o as never)
  })
  const watchedDeliveries = withMethod(
    withMethod(base.deliveries, 'claim', (claims: Array<{ viewId: ViewId }>, seq: number) => {
      steps.push({ step: 'claim', chunk: chunkOf.get(claims[0]?.viewId ?? 'customer:') ?? -1 })
      return base.deliveries.claim(claims as never, seq)
    }),
    'settle',
    async (settlements: Array<{ viewId: ViewId }>) => {
      const moved = await base.deliveries.settle(settlements as never)
      steps.push({ step: 'settled', chunk: chunkOf.get(settlements[0]?.viewId ?? 'customer:') ?? -1 })
      return moved
    },
  )
  const post =
    options.post ??
    (async (items: readonly BatchDeliveryRequest[]) => {
      await sleep(options.postDelayMs ?? 0)
      return analytics.sink.deliverBatch(items)
    })
  const posting = withMethod(
    analytics.sink,
    'deliverBatch',
    async (items: readonly BatchDeliveryRequest[]) => {
      const view = items[0]?.key.split(':').slice(0, 2).join(':') as ViewId
      steps.push({ step: 'post', chunk: chunkOf.get(view) ?? -1 })
      return post(items)
    },
  )
  const watchedSink =
    options.waitUntilClosed === undefined
      ? posting
      : withMethod(posting, 'waitUntilClosed', options.waitUntilClosed)
  const ctx: DeliverContext = {
    ...base,
    entities: watchedEntities,
    deliveries: watchedDeliveries,
    sink: watchedSink,
    batchSize: 250,
    ...options.context,
  }
  const read = messageReader('refresh')
  return {
    ctx,
    entities,
    views,
    steps,
    chunkOf,
    evaluations,
    deliverAll: () =>
      deliverRefreshBatch(
        ctx,
        refreshMessages(
          'refresh',
          views.map((view) => [view, undefined] as const),
          {},
        ).map(read),
      ),
  }
}

/** Index of the first step `step` of `chunk` in `steps`, or of the last with `last`. */
function at(steps: readonly Step[], step: Step['step'], chunk: number, last = false): number {
  const match = (s: Step) => s.step === step && s.chunk === chunk
  const i = last ? steps.findLastIndex(match) : steps.findIndex(match)
  assert.ok(i >= 0, `no ${step} of chunk ${chunk} in ${JSON.stringify(steps)}`)
  return i
}

test('the next chunk is evaluated while the last is sent, claimed only once it is settled; every view once', async () => {
  const s = await setUp('chunks-overlap', 1200, { postDelayMs: 300 })
  const received = analytics.mock.store.stats().received
  await s.deliverAll()

  assert.equal(analytics.mock.store.stats().received - received, 1200, 'each view POSTed once')
  for (const view of s.views) assert.ok(analytics.mock.store.views().has(view), `${view} at the sink`)
  assert.deepEqual(new Set(s.chunkOf.values()), new Set([0, 1, 2]), 'three chunks: 500, 500, 200')
  for (const chunk of [0, 1]) {
    const next = chunk + 1
    assert.ok(
      at(s.steps, 'evaluate', next) < at(s.steps, 'settled', chunk, true),
      `chunk ${next} evaluated while chunk ${chunk} was being sent`,
    )
    assert.ok(
      at(s.steps, 'claim', next) > at(s.steps, 'settled', chunk, true),
      `chunk ${next} claimed only after chunk ${chunk} was settled`,
    )
  }
  assert.ok(
    [...s.evaluations.values()].every((n) => n === 1),
    'each view evaluated once',
  )
})

test('a chunk whose sending fails ends the batch with its error; the chunk after it is never claimed', async () => {
  const s = await setUp('chunks-failure', 1200, {
    // Analytics refuses the first chunk's views for good; their dead letters cannot be written.
    post: async (items) =>
      items.map((): DeliveryOutcome => ({ kind: 'rejected', status: 400, body: 'no', attempts: 1 })),
    context: {
      dlq: {
        write: async () => {
          await sleep(200)
          throw new Error('DLQ unreachable')
        },
      },
    },
  })
  await assert.rejects(s.deliverAll(), /DLQ unreachable/)

  assert.ok(
    s.steps.some((step) => step.step === 'evaluate' && step.chunk === 1),
    'the next chunk was evaluated meanwhile',
  )
  assert.ok(
    !s.steps.some((step) => step.chunk > 0 && step.step !== 'evaluate'),
    'and nothing else of it done',
  )
  const later = s.views.filter((view) => s.chunkOf.get(view) !== 0)
  assert.equal(later.length, 700)
  assert.equal((await s.ctx.deliveries.read(later)).size, 0, 'no delivery record for the later chunks')
})

test('an evaluation failing while the chunk before is sent fails the batch once that chunk is delivered', async () => {
  const s = await setUp('chunks-eval-failure', 1200, { postDelayMs: 300, failChunk: 1 })
  const received = analytics.mock.store.stats().received
  await assert.rejects(s.deliverAll(), /reading the inputs failed/)

  const first = s.views.filter((view) => s.chunkOf.get(view) === 0)
  assert.equal(first.length, 500)
  assert.equal(analytics.mock.store.stats().received - received, 500, 'the chunk on its way was sent first')
  const records = await s.ctx.deliveries.read(first)
  assert.ok(
    first.every((view) => records.get(view)?.confirmed === true),
    'and settled before the batch failed',
  )
  assert.ok(!s.steps.some((step) => step.chunk > 1), 'nothing after the failed chunk was started')
})

test('after the chunk before waited for Analytics, the next chunk is computed again from current state', async () => {
  let closed = false
  let target: ViewId | undefined
  let s: Awaited<ReturnType<typeof setUp>> | undefined
  s = await setUp('chunks-outage', 600, {
    // The circuit is open when the first chunk is sent; it closes once a customer of the second
    // chunk (already evaluated) has changed, whose own refresh request would come later.
    post: async (items) =>
      closed
        ? analytics.sink.deliverBatch(items)
        : items.map((): DeliveryOutcome => ({ kind: 'circuit-open', attempts: 0 })),
    waitUntilClosed: async () => {
      const stage = s as NonNullable<typeof s>
      while (!stage.steps.some((step) => step.step === 'evaluate' && step.chunk === 1)) await sleep(5)
      await sleep(100)
      target = stage.views.find((view) => stage.chunkOf.get(view) === 1) as ViewId
      const id = target.slice('customer:'.length)
      await stage.entities.upsertCustomer(stored({ ...customerRecord(id, []), name: 'Renamed meanwhile' }))
      closed = true
    },
  })
  await s.deliverAll()

  assert.ok(target !== undefined, 'the first chunk waited for Analytics')
  assert.equal(s.evaluations.get(target), 2, 'the second chunk was evaluated again after the wait')
  const held = analytics.mock.store.views().get(target)?.record as
    | { customer?: { name?: string } }
    | undefined
  assert.equal(held?.customer?.name, 'Renamed meanwhile', 'and sent as it stood after the outage')
  for (const view of s.views) assert.ok(analytics.mock.store.views().has(view), `${view} at the sink`)
})
