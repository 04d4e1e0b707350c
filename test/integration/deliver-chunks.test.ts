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
  const watchedSink = withMethod(
    analytics.sink,
    'deliverBatch',
    async (items: readonly BatchDeliveryRequest[]) => {
      const view = items[0]?.key.split(':').slice(0, 2).join(':') as ViewId
      steps.push({ step: 'post', chunk: chunkOf.get(view) ?? -1 })
      return post(items)
    },
  )
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
  const received = analytics.mock.store.stats().received
  await assert.rejects(s.deliverAll(), /DLQ unreachable/)

  assert.equal(analytics.mock.store.stats().received, received, 'nothing reached the sink')
  assert.ok(
    s.steps.some((step) => step.step === 'evaluate' && step.chunk === 1),
    'the next chunk was evaluated meanwhile',
  )
  assert.ok(
    !s.steps.some((step) => step.chunk > 0 && step.step !== 'evaluate'),
    'and nothing else of it done',
  )
  const later = s.views.filter((view) => (s.chunkOf.get(view) ?? 0) > 0)
  assert.equal((await s.ctx.deliveries.read(later)).size, 0, 'no delivery record for the later chunks')
})

test('an evaluation that waited past its shelf life for its turn is computed again from current state', async () => {
  const s = await setUp('chunks-stale', 600, {
    postDelayMs: 400,
    context: { evaluationShelfLifeMs: 100 },
  })
  // While the first chunk is sent, a customer of the second (already evaluated) changes; its own
  // refresh request would come later.
  let target: ViewId | undefined
  const watch = setInterval(() => {
    const sending = s.steps.some((step) => step.step === 'post' && step.chunk === 0)
    const evaluated = s.steps.some((step) => step.step === 'evaluate' && step.chunk === 1)
    if (target !== undefined || !sending || !evaluated) return
    target = s.views.find((view) => s.chunkOf.get(view) === 1) as ViewId
    const id = target.slice('customer:'.length)
    void s.entities.upsertCustomer(stored({ ...customerRecord(id, []), name: 'Renamed meanwhile' }))
  }, 5)
  try {
    await s.deliverAll()
  } finally {
    clearInterval(watch)
  }
  assert.ok(target !== undefined, 'the change was made while the first chunk was sent')
  assert.equal(s.evaluations.get(target), 2, 'the second chunk was evaluated twice')
  const held = analytics.mock.store.views().get(target)?.record as
    | { customer?: { name?: string } }
    | undefined
  assert.equal(held?.customer?.name, 'Renamed meanwhile', 'and sent as it stood after the wait')
})
