import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Registry } from 'prom-client'
import { ErrorCodes } from '../../src/errors.ts'
import { createSinkMetrics, type SinkMetrics } from '../../src/observability/metrics.ts'
import { type MockAnalytics, startMockAnalytics } from '../../src/services/mock-analytics/server.ts'
import type { CircuitStateName } from '../../src/sinks/breaker.ts'
import { AnalyticsSink, type AnalyticsSinkOptions } from '../../src/sinks/delivery.ts'
import type { DeliveryOutcome } from '../../src/sinks/outcome.ts'
import { metricValue } from '../helpers/metrics.ts'

interface Harness {
  readonly sink: AnalyticsSink
  readonly metrics: SinkMetrics
  readonly states: CircuitStateName[]
}

const sinks: AnalyticsSink[] = []
const mocks: MockAnalytics[] = []

async function startMock(options: { port?: number; token?: string } = {}): Promise<MockAnalytics> {
  const mock = await startMockAnalytics({ port: options.port ?? 0, token: options.token })
  mocks.push(mock)
  return mock
}

/** A sink on `mock` with small delays, its metrics and every state it went through. */
function sinkFor(mock: MockAnalytics, overrides: Partial<AnalyticsSinkOptions> = {}): Harness {
  const metrics = createSinkMetrics(new Registry())
  const sink = new AnalyticsSink({
    url: `${mock.url}/analytics/data`,
    timeoutMs: 1000,
    concurrency: 16,
    retry: { maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 100 },
    breaker: { failureThreshold: 10, halfOpenAfterMs: 150 },
    metrics,
    ...overrides,
  })
  sinks.push(sink)
  const states: CircuitStateName[] = []
  sink.onStateChange((state) => states.push(state))
  return { sink, metrics, states }
}

function assertKind<K extends DeliveryOutcome['kind']>(
  outcome: DeliveryOutcome,
  kind: K,
): Extract<DeliveryOutcome, { kind: K }> {
  assert.equal(outcome.kind, kind, `expected ${kind}, got ${JSON.stringify(outcome)}`)
  return outcome as Extract<DeliveryOutcome, { kind: K }>
}

const view = (id: string) => ({ type: 'customer', id, name: `Customer ${id}` })

afterEach(async () => {
  await Promise.all(sinks.splice(0).map((sink) => sink.close()))
  await Promise.all(mocks.splice(0).map((mock) => mock.close()))
})

describe('Analytics sink against the mock', () => {
  let mock: MockAnalytics
  beforeEach(async () => {
    mock = await startMock()
  })

  test('delivers on the first try with the Idempotency-Key and the JSON body', async () => {
    const { sink, metrics } = sinkFor(mock)
    const outcome = assertKind(await sink.deliver({ key: 'customer:1:h1', payload: view('1') }), 'delivered')
    assert.equal(outcome.status, 200)
    assert.equal(outcome.attempts, 1)
    assert.ok(outcome.latencyMs > 0)
    assert.deepEqual(mock.store.views().get('customer:1')?.record, view('1'))
    assert.equal(mock.store.views().get('customer:1')?.key, 'customer:1:h1')
    assert.equal(await metricValue(metrics.requests, { status: '2xx' }), 1)
    assert.equal(await metricValue(metrics.deliveries, { outcome: 'delivered' }), 1)
    assert.equal(await metricValue(metrics.retries), 0)
    assert.equal(await metricValue(metrics.circuitState), 0)
    const { values } = await metrics.requestDuration.get()
    assert.equal(values.find((v) => v.metricName?.endsWith('_count'))?.value, 1)
  })

  test('500, 500, 500 then 200: delivered with 4 attempts, 3 retries, stored once', async () => {
    const { sink, metrics } = sinkFor(mock)
    mock.store.faults.add({ status: 500, count: 3 })
    const outcome = assertKind(await sink.deliver({ key: 'customer:2:h1', payload: view('2') }), 'delivered')
    assert.equal(outcome.attempts, 4)
    assert.equal(await metricValue(metrics.retries), 3)
    assert.equal(await metricValue(metrics.requests, { status: '5xx' }), 3)
    assert.equal(await metricValue(metrics.requests, { status: '2xx' }), 1)
    assert.deepEqual(mock.store.stats(), {
      received: 4,
      accepted: 1,
      replays: 0,
      rejected: 3,
      distinctKeys: 1,
      views: 1,
      batches: 0,
    })
  })

  test('400 is rejected at once with status and body: one request, no retry', async () => {
    const { sink, metrics } = sinkFor(mock)
    const outcome = assertKind(await sink.deliver({ key: 'customer:3:h1', payload: [1, 2, 3] }), 'rejected')
    assert.equal(outcome.status, 400)
    assert.equal(outcome.attempts, 1)
    assert.match(outcome.body, /"error"/)
    assert.equal(mock.store.stats().received, 1)
    assert.equal(await metricValue(metrics.retries), 0)
    assert.equal(await metricValue(metrics.deliveries, { outcome: 'rejected' }), 1)
    assert.equal(sink.state(), 'closed')
  })

  test('a long error body is cut to 1 KiB', async () => {
    const { sink } = sinkFor(mock)
    mock.store.faults.add({ status: 422, count: 1 })
    const big = { text: 'z'.repeat(200) }
    const outcome = assertKind(await sink.deliver({ key: 'customer:4:h1', payload: big }), 'rejected')
    assert.equal(outcome.status, 422)
    assert.ok(Buffer.byteLength(outcome.body) <= 1024 + 3)
  })

  test('429 with Retry-After: 1 waits about a second', async () => {
    const { sink } = sinkFor(mock, { retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 5000 } })
    mock.store.faults.add({ status: 429, count: 1, retryAfter: 1 })
    const started = performance.now()
    const outcome = assertKind(await sink.deliver({ key: 'customer:5:h1', payload: view('5') }), 'delivered')
    const elapsed = performance.now() - started
    assert.equal(outcome.attempts, 2)
    assert.ok(elapsed >= 900, `waited ${elapsed} ms`)
    assert.ok(elapsed < 3000, `waited ${elapsed} ms`)
  })

  test('an absurd Retry-After is capped by the maximum delay', async () => {
    const { sink } = sinkFor(mock, { retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 150 } })
    mock.store.faults.add({ status: 429, count: 1, retryAfter: 3600 })
    const started = performance.now()
    const outcome = assertKind(await sink.deliver({ key: 'customer:6:h1', payload: view('6') }), 'delivered')
    const elapsed = performance.now() - started
    assert.equal(outcome.attempts, 2)
    assert.ok(elapsed >= 140, `waited ${elapsed} ms`)
    assert.ok(elapsed < 1000, `waited ${elapsed} ms`)
  })

  test('a dropped connection is retried', async () => {
    const { sink, metrics } = sinkFor(mock)
    mock.store.faults.add({ drop: true, count: 1 })
    const outcome = assertKind(await sink.deliver({ key: 'customer:7:h1', payload: view('7') }), 'delivered')
    assert.equal(outcome.attempts, 2)
    assert.equal(await metricValue(metrics.requests, { status: 'network' }), 1)
    assert.equal(mock.store.stats().accepted, 1)
  })

  test('a timeout is retried, and the late original is a replay at the sink', async () => {
    // undici checks its headers timeout on a coarse (~0.5 s) clock, hence a delay well above it.
    const { sink, metrics } = sinkFor(mock, { timeoutMs: 200 })
    mock.store.faults.add({ delayMs: 1500, count: 1 })
    const started = performance.now()
    const outcome = assertKind(await sink.deliver({ key: 'customer:8:h1', payload: view('8') }), 'delivered')
    assert.equal(outcome.attempts, 2)
    assert.ok(performance.now() - started < 1400, 'gave up on the slow attempt before it answered')
    assert.equal(await metricValue(metrics.requests, { status: 'timeout' }), 1)
    assert.equal(mock.store.stats().accepted, 1)
    await sleep(1500 - (performance.now() - started) + 50)
    const stats = mock.store.stats()
    assert.equal(stats.accepted, 1)
    assert.equal(stats.distinctKeys, 1)
    assert.equal(stats.replays, 1, 'the timed-out request was processed later and deduped')
  })

  test('the same key sent twice is a replay at the sink', async () => {
    const { sink } = sinkFor(mock)
    assertKind(await sink.deliver({ key: 'product:100:h1', payload: { id: '100' } }), 'delivered')
    assertKind(await sink.deliver({ key: 'product:100:h1', payload: { id: '100' } }), 'delivered')
    const stats = mock.store.stats()
    assert.equal(stats.accepted, 1)
    assert.equal(stats.replays, 1)
  })

  test('concurrent deliveries are bounded by the concurrency', async () => {
    const { sink } = sinkFor(mock, { concurrency: 4 })
    mock.store.faults.add({ delayMs: 40 })
    const started = performance.now()
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        sink.deliver({ key: `customer:${i}:h`, payload: view(String(i)) }),
      ),
    )
    const elapsed = performance.now() - started
    for (const outcome of outcomes) assertKind(outcome, 'delivered')
    assert.equal(mock.store.stats().accepted, 40)
    // 40 requests of 40 ms, at most 4 at a time, take at least 10 rounds.
    assert.ok(elapsed >= 380, `took ${elapsed} ms`)
  })

  test('the caller can abort a delivery waiting for its retry', async () => {
    const { sink } = sinkFor(mock, { retry: { maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 5000 } })
    mock.store.faults.add({ status: 503, count: 1, retryAfter: 5 })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)
    const started = performance.now()
    const outcome = await sink.deliver({
      key: 'customer:9:h1',
      payload: view('9'),
      signal: controller.signal,
    })
    assert.deepEqual(outcome, { kind: 'aborted', attempts: 1 })
    assert.ok(performance.now() - started < 1000)
  })

  test('one view failing 503 for ever while others succeed: exhausted, circuit stays closed', async () => {
    const { sink, metrics, states } = sinkFor(mock, {
      breaker: { failureThreshold: 3, halfOpenAfterMs: 150 },
    })
    mock.store.faults.add({ status: 503, match: 'customer:poison:' })
    const poison = sink.deliver({ key: 'customer:poison:h1', payload: view('poison') })
    const others: Promise<DeliveryOutcome>[] = []
    for (let i = 0; i < 20; i++) {
      others.push(sink.deliver({ key: `customer:${i}:h1`, payload: view(String(i)) }))
      await sleep(5)
    }
    const outcome = assertKind(await poison, 'exhausted')
    assert.equal(outcome.attempts, 5)
    assert.equal(outcome.error.class, ErrorCodes.SINK_HTTP_STATUS)
    assert.equal(outcome.error.status, 503)
    assert.match(outcome.error.body ?? '', /injected fault/)
    for (const other of await Promise.all(others)) assertKind(other, 'delivered')
    assert.deepEqual(states, [])
    assert.equal(sink.state(), 'closed')
    assert.equal(await metricValue(metrics.deliveries, { outcome: 'exhausted' }), 1)
    assert.equal(mock.store.stats().accepted, 20)
  })

  test('poison views alone in a quiet moment: a probe proves Analytics healthy, they are exhausted', async () => {
    const { sink, metrics, states } = sinkFor(mock, {
      breaker: { failureThreshold: 3, halfOpenAfterMs: 150 },
    })
    assertKind(await sink.deliver({ key: 'customer:ok:h1', payload: view('ok') }), 'delivered')
    mock.store.faults.add({ status: 503, match: 'customer:poison' })
    const outcomes = await Promise.all(
      ['a', 'b', 'c'].map((id) => sink.deliver({ key: `customer:poison-${id}:h1`, payload: view(id) })),
    )
    for (const outcome of outcomes) assert.equal(assertKind(outcome, 'exhausted').attempts, 5)
    assert.deepEqual(states, [])
    assert.ok((await metricValue(metrics.probes, { result: 'healthy' })) >= 1)
    assert.equal(await metricValue(metrics.probes, { result: 'unhealthy' }), 0)
    assert.equal(mock.store.stats().replays, await metricValue(metrics.probes, { result: 'healthy' }))
  })

  test('a poison view before anything was delivered: the liveness probe decides, exhausted', async () => {
    const { sink, metrics, states } = sinkFor(mock)
    mock.store.faults.add({ status: 500, match: 'customer:poison' })
    const outcome = assertKind(
      await sink.deliver({ key: 'customer:poison:h1', payload: view('p') }),
      'exhausted',
    )
    assert.equal(outcome.attempts, 5)
    assert.deepEqual(states, [])
    assert.equal(await metricValue(metrics.probes, { result: 'healthy' }), 1)
    assert.equal(await metricValue(metrics.requests, { status: '4xx' }), 1, 'GET / answered 404: alive')
  })

  test('Analytics failing for everything opens the circuit; no delivery is exhausted; recovery closes it', async () => {
    const { sink, metrics, states } = sinkFor(mock, {
      breaker: { failureThreshold: 5, halfOpenAfterMs: 150 },
    })
    assertKind(await sink.deliver({ key: 'customer:0:h1', payload: view('0') }), 'delivered')
    mock.store.faults.add({ status: 503 })
    const during = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        sink.deliver({ key: `customer:${i + 1}:h1`, payload: view(String(i)) }),
      ),
    )
    for (const outcome of during) assertKind(outcome, 'circuit-open')
    assert.equal(sink.state(), 'open')
    assert.equal(await metricValue(metrics.circuitState), 2)

    const started = performance.now()
    const quick = await sink.deliver({ key: 'customer:11:h1', payload: view('11') })
    assert.deepEqual(quick, { kind: 'circuit-open', attempts: 0 })
    assert.ok(performance.now() - started < 50, 'an open circuit answers at once')

    await sleep(400) // recovery probes keep failing while the outage lasts
    assert.ok(states.filter((s) => s === 'open').length >= 2, `states: ${states.join(', ')}`)
    assert.equal(sink.state() === 'closed', false)

    mock.store.faults.clear()
    await sink.waitUntilClosed(AbortSignal.timeout(3000))
    assert.equal(sink.state(), 'closed')
    assert.deepEqual(states.slice(-2), ['half-open', 'closed'])
    assert.equal(await metricValue(metrics.circuitState), 0)
    assert.equal(await metricValue(metrics.deliveries, { outcome: 'exhausted' }), 0)

    const after = await Promise.all(
      Array.from({ length: 11 }, (_, i) =>
        sink.deliver({ key: `customer:${i + 1}:h1`, payload: view(String(i)) }),
      ),
    )
    for (const outcome of after) assertKind(outcome, 'delivered')
    assert.equal(mock.store.stats().accepted, 12)
  })

  test('a lone delivery in an outage is never exhausted, even below the failure threshold', async () => {
    const { sink, metrics } = sinkFor(mock, {
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
      breaker: { failureThreshold: 100, halfOpenAfterMs: 5000 },
    })
    assertKind(await sink.deliver({ key: 'customer:0:h1', payload: view('0') }), 'delivered')
    mock.store.faults.add({ status: 502 })
    const outcome = await sink.deliver({ key: 'customer:1:h1', payload: view('1') })
    assert.deepEqual(outcome, { kind: 'circuit-open', attempts: 3 })
    assert.equal(sink.state(), 'open')
    assert.equal(await metricValue(metrics.probes, { result: 'unhealthy' }), 1)
  })

  test('an outage that begins while a delivery retries does not make it exhausted', async () => {
    const { sink } = sinkFor(mock, {
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 2000 },
      breaker: { failureThreshold: 100, halfOpenAfterMs: 5000 },
    })
    mock.store.faults.add({ status: 503, match: 'customer:x:', count: 1, retryAfter: 1 })
    const pending = sink.deliver({ key: 'customer:x:h1', payload: view('x') })
    await sleep(100)
    // Analytics works for another view while the first waits, then fails for everyone.
    assertKind(await sink.deliver({ key: 'customer:y:h1', payload: view('y') }), 'delivered')
    mock.store.faults.add({ status: 503 })
    assert.deepEqual(await pending, { kind: 'circuit-open', attempts: 3 })
    assert.equal(sink.state(), 'open')
  })

  test('Analytics gone (connection refused) opens the circuit; it closes when Analytics is back', async () => {
    const { sink, states } = sinkFor(mock, { breaker: { failureThreshold: 3, halfOpenAfterMs: 100 } })
    assertKind(await sink.deliver({ key: 'product:1:h1', payload: { id: '1' } }), 'delivered')
    const port = mock.port
    await mock.close()
    const outcome = await sink.deliver({ key: 'product:2:h1', payload: { id: '2' } })
    assert.equal(outcome.kind, 'circuit-open')
    assert.equal(sink.state(), 'open')
    await sleep(250)
    assert.notEqual(sink.state(), 'closed')

    const revived = await startMock({ port })
    await sink.waitUntilClosed(AbortSignal.timeout(3000))
    assert.equal(states.at(-1), 'closed')
    assertKind(await sink.deliver({ key: 'product:2:h1', payload: { id: '2' } }), 'delivered')
    assert.ok(revived.store.hasKey('product:2:h1'))
  })
})

describe('Analytics sink authentication', () => {
  const token = 'sink-test-token-0123456789'

  test('sends the bearer token when configured', async () => {
    const mock = await startMock({ token })
    const { sink } = sinkFor(mock, { token })
    assertKind(await sink.deliver({ key: 'customer:1:h1', payload: view('1') }), 'delivered')
    assert.ok(mock.store.hasKey('customer:1:h1'))
  })

  test('without the token the sink answers 401: rejected, no retry', async () => {
    const mock = await startMock({ token })
    const { sink } = sinkFor(mock)
    const outcome = assertKind(await sink.deliver({ key: 'customer:1:h1', payload: view('1') }), 'rejected')
    assert.equal(outcome.status, 401)
    assert.equal(outcome.attempts, 1)
    assert.match(outcome.body, /bearer token/)
  })
})

describe('Analytics sink misuse', () => {
  test('a bad key or a payload JSON cannot encode is a bug: it throws, nothing is sent', async () => {
    const mock = await startMock()
    const { sink } = sinkFor(mock)
    await assert.rejects(sink.deliver({ key: 'customer:1:h\r\nx', payload: {} }), TypeError)
    await assert.rejects(sink.deliver({ key: 'customer:1:h', payload: { n: 1n } }), TypeError)
    await assert.rejects(sink.deliver({ key: 'customer:1:h', payload: undefined }), TypeError)
    assert.equal(mock.store.stats().received, 0)
    await sink.close()
    await assert.rejects(sink.deliver({ key: 'customer:1:h', payload: {} }), /after close/)
  })
})
