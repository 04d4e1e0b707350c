/**
 * `AnalyticsSink.deliverBatch` against the mock's batch endpoint (and, for malformed answers, a bare
 * server): per-item outcomes from the answer, the whole batch retried on 5xx with the retries metric,
 * every item rejected on a 4xx, large batches split by bytes, and nothing sent for a bad key.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { afterEach, test } from 'node:test'
import { Registry } from 'prom-client'
import { createSinkMetrics } from '../../src/observability/metrics.ts'
import { type MockAnalytics, startMockAnalytics } from '../../src/services/mock-analytics/server.ts'
import { AnalyticsSink, defaultBatchUrl, MAX_BATCH_BYTES } from '../../src/sinks/delivery.ts'
import { metricValue } from '../helpers/metrics.ts'

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function startMock(): Promise<MockAnalytics> {
  const mock = await startMockAnalytics({ port: 0 })
  closers.push(() => mock.close())
  return mock
}

function batchSink(url: string) {
  const metrics = createSinkMetrics(new Registry())
  const sink = new AnalyticsSink({
    url,
    timeoutMs: 1000,
    concurrency: 4,
    retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50 },
    breaker: { failureThreshold: 10, halfOpenAfterMs: 150 },
    metrics,
  })
  closers.push(() => sink.close())
  return { sink, metrics }
}

const views = (...ids: string[]) => ids.map((id) => ({ key: `customer:${id}:h${id}`, payload: { id } }))

test('the batch URL defaults to ANALYTICS_URL + /batch', () => {
  assert.equal(defaultBatchUrl('http://a:1/analytics/data'), 'http://a:1/analytics/data/batch')
  assert.equal(defaultBatchUrl('http://a:1/in/?x=1'), 'http://a:1/in/batch?x=1')
})

test('one request for the batch; each item delivered under its own key, again a replay', async () => {
  const mock = await startMock()
  const { sink } = batchSink(`${mock.url}/analytics/data`)
  const outcomes = await sink.deliverBatch(views('1', '2', '3'))
  assert.deepEqual(
    outcomes.map((o) => [o.kind, o.attempts]),
    [
      ['delivered', 1],
      ['delivered', 1],
      ['delivered', 1],
    ],
  )
  assert.deepEqual([...mock.store.views().keys()].sort(), ['customer:1', 'customer:2', 'customer:3'])
  assert.equal(mock.store.views().get('customer:2')?.key, 'customer:2:h2')
  assert.equal((await sink.deliverBatch(views('1', '2')))[1]?.kind, 'delivered')
  const stats = mock.store.stats()
  assert.equal(stats.batches, 2)
  assert.equal(stats.replays, 2)
  assert.deepEqual(await sink.deliverBatch([]), [])
})

test('500 twice, then 200: the whole batch retried, delivered once, retries +2', async () => {
  const mock = await startMock()
  const { sink, metrics } = batchSink(`${mock.url}/analytics/data`)
  mock.store.faults.add({ status: 500, count: 2 })
  const outcomes = await sink.deliverBatch(views('1', '2'))
  assert.deepEqual(
    outcomes.map((o) => [o.kind, o.attempts]),
    [
      ['delivered', 3],
      ['delivered', 3],
    ],
  )
  assert.equal(await metricValue(metrics.retries), 2)
  assert.equal(await metricValue(metrics.deliveries, { outcome: 'delivered' }), 2)
  assert.equal(mock.store.stats().accepted, 2)
})

test('a 400 on the batch rejects every item, without retry', async () => {
  const mock = await startMock()
  const { sink, metrics } = batchSink(`${mock.url}/analytics/data`)
  mock.store.faults.add({ status: 400, count: 1 })
  const outcomes = await sink.deliverBatch(views('1', '2'))
  for (const outcome of outcomes) {
    assert.equal(outcome.kind, 'rejected')
    assert.equal(outcome.kind === 'rejected' && outcome.status, 400)
    assert.equal(outcome.attempts, 1)
  }
  assert.equal(await metricValue(metrics.retries), 0)
  assert.equal(mock.store.stats().accepted, 0)
})

test(`items beyond ${MAX_BATCH_BYTES} bytes go in further requests`, async () => {
  const mock = await startMock()
  const { sink } = batchSink(`${mock.url}/analytics/data`)
  const filler = 'x'.repeat(MAX_BATCH_BYTES / 2)
  const big = ['1', '2', '3'].map((id) => ({ key: `product:${id}:h`, payload: { id, filler } }))
  const outcomes = await sink.deliverBatch(big)
  assert.deepEqual(
    outcomes.map((o) => o.kind),
    ['delivered', 'delivered', 'delivered'],
  )
  assert.equal(mock.store.stats().batches, 3)
})

test('a 2xx answer without an item, or with another status for it, rejects that item alone', async () => {
  // An Analytics that accepts the first item, refuses the second and forgets the third.
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const { items } = JSON.parse(Buffer.concat(chunks).toString()) as {
        items: { idempotencyKey: string }[]
      }
      const results = [
        { idempotencyKey: items[0]?.idempotencyKey, status: 'accepted' },
        { idempotencyKey: items[1]?.idempotencyKey, status: 'invalid', error: 'no name' },
      ]
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise((resolve) => server.close(() => resolve())))
  const { port } = server.address() as { port: number }
  const { sink } = batchSink(`http://127.0.0.1:${port}/analytics/data`)
  const [first, second, third] = await sink.deliverBatch(views('1', '2', '3'))
  assert.equal(first?.kind, 'delivered')
  assert.equal(second?.kind, 'rejected')
  assert.match(second?.kind === 'rejected' ? second.body : '', /"status":"invalid","error":"no name"/)
  assert.equal(third?.kind, 'rejected')
  assert.match(third?.kind === 'rejected' ? third.body : '', /no result for customer:3:h3/)
})

test('a bad key throws before anything is sent', async () => {
  const mock = await startMock()
  const { sink } = batchSink(`${mock.url}/analytics/data`)
  await assert.rejects(sink.deliverBatch([...views('1'), { key: 'customer:é:h', payload: {} }]), TypeError)
  assert.equal(mock.store.stats().received, 0)
})
