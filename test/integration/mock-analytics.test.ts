import assert from 'node:assert/strict'
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { after, before, beforeEach, describe, test } from 'node:test'
import { Agent, type Dispatcher, request } from 'undici'
import { loadConfig } from '../../src/config/env.ts'
import { createLogger } from '../../src/observability/logger.ts'
import { type MockAnalytics, startMockAnalytics } from '../../src/services/mock-analytics/server.ts'
import { runMockAnalyticsService } from '../../src/services/mock-analytics/service.ts'
import { MockAnalyticsStore } from '../../src/services/mock-analytics/store.ts'

interface Answer {
  readonly status: number
  readonly headers: Dispatcher.ResponseData['headers']
  readonly body: unknown
}

const agent = new Agent({ keepAliveTimeout: 10_000 })
after(() => agent.close())

async function call(
  base: string,
  method: Dispatcher.HttpMethod,
  path: string,
  options: { body?: string | Readable; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const response = await request(`${base}${path}`, {
    method,
    dispatcher: agent,
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body }),
  })
  const text = await response.body.text()
  return {
    status: response.statusCode,
    headers: response.headers,
    body: text === '' ? undefined : JSON.parse(text),
  }
}

function deliver(
  base: string,
  key: string | undefined,
  record: unknown,
  headers: Record<string, string> = {},
) {
  return call(base, 'POST', '/analytics/data', {
    body: typeof record === 'string' ? record : JSON.stringify(record),
    headers: {
      'content-type': 'application/json',
      ...(key === undefined ? {} : { 'idempotency-key': key }),
      ...headers,
    },
  })
}

const addFault = (base: string, rule: unknown) =>
  call(base, 'POST', '/control/faults', { body: JSON.stringify(rule) })

describe('mock Analytics over HTTP', () => {
  let mock: MockAnalytics
  before(async () => {
    mock = await startMockAnalytics({ port: 0, bodyLimitBytes: 1024 })
  })
  after(() => mock.close())
  beforeEach(() => mock.store.reset())

  test('listens on the URL it reports and answers /healthz', async () => {
    assert.match(mock.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.equal(mock.url, `http://127.0.0.1:${mock.port}`)
    const health = await call(mock.url, 'GET', '/healthz')
    assert.equal(health.status, 200)
    assert.deepEqual(health.body, { status: 'ok' })
    assert.equal(health.headers['content-type'], 'application/json; charset=utf-8')
  })

  test('a delivered record shows as the latest of its view', async () => {
    const before = Date.now()
    const answer = await deliver(mock.url, 'customer:1:aaa', { customer: { id: '1' } })
    assert.equal(answer.status, 200)
    assert.deepEqual(answer.body, { status: 'accepted' })
    await deliver(mock.url, 'customer:1:bbb', { customer: { id: '1', name: 'new' } })
    const { body } = await call(mock.url, 'GET', '/analytics/views')
    const views = (body as { views: Record<string, { key: string; record: unknown; receivedAt: number }> })
      .views
    assert.deepEqual(Object.keys(views), ['customer:1'])
    assert.equal(views['customer:1']?.key, 'customer:1:bbb')
    assert.deepEqual(views['customer:1']?.record, { customer: { id: '1', name: 'new' } })
    assert.ok((views['customer:1']?.receivedAt ?? 0) >= before)
  })

  test('a repeated key answers 200, counts a replay and is stored once', async () => {
    const first = await deliver(mock.url, 'product:100:h1', { product: { id: '100' } })
    const again = await deliver(mock.url, 'product:100:h1', { product: { id: '100' } })
    assert.equal(first.status, 200)
    assert.equal(again.status, 200)
    assert.deepEqual(again.body, { status: 'replay' })
    const stats = await call(mock.url, 'GET', '/analytics/stats')
    assert.deepEqual(stats.body, {
      received: 2,
      accepted: 1,
      replays: 1,
      rejected: 0,
      distinctKeys: 1,
      views: 1,
      batches: 0,
    })
    const records = await call(mock.url, 'GET', '/analytics/records')
    assert.equal((records.body as { total: number }).total, 1)
  })

  test('a deletion removes the view', async () => {
    await deliver(mock.url, 'product:7:h1', { product: { id: '7' } })
    assert.equal((await deliver(mock.url, 'product:7:h2', { deleted: true })).status, 200)
    assert.deepEqual((await call(mock.url, 'GET', '/analytics/views')).body, { views: {} })
  })

  test('records come in arrival order, paged by limit and offset', async () => {
    for (let i = 0; i < 4; i++) await deliver(mock.url, `product:${i}:h`, { i })
    const page = await call(mock.url, 'GET', '/analytics/records?limit=2&offset=1')
    const body = page.body as { total: number; offset: number; limit: number; records: { key: string }[] }
    assert.equal(body.total, 4)
    assert.deepEqual(
      body.records.map((stored) => stored.key),
      ['product:1:h', 'product:2:h'],
    )
    const bad = await call(mock.url, 'GET', '/analytics/records?limit=-3')
    assert.equal(bad.status, 400)
    assert.match((bad.body as { error: string }).error, /limit/)
  })

  test('a missing Idempotency-Key answers 400 with a JSON error', async () => {
    const answer = await deliver(mock.url, undefined, { a: 1 })
    assert.equal(answer.status, 400)
    assert.match((answer.body as { error: string }).error, /missing Idempotency-Key/)
    assert.equal(mock.store.stats().rejected, 1)
    assert.equal(mock.store.recordCount, 0)
  })

  test('invalid JSON answers 400 naming the problem', async () => {
    const answer = await deliver(mock.url, 'customer:1:h', '{"customer": ')
    assert.equal(answer.status, 400)
    assert.match((answer.body as { error: string }).error, /^invalid JSON body: .+/)
    assert.equal(mock.store.recordCount, 0)
  })

  test('a body over the limit answers 413, declared or streamed', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(2000) })
    const declared = await deliver(mock.url, 'customer:1:h', big)
    assert.equal(declared.status, 413)
    assert.match((declared.body as { error: string }).error, /larger than 1024 bytes/)
    const streamed = await call(mock.url, 'POST', '/analytics/data', {
      body: Readable.from([Buffer.from(big.slice(0, 900)), Buffer.from(big.slice(900))]),
      headers: { 'idempotency-key': 'customer:1:h' },
    })
    assert.equal(streamed.status, 413)
    const batch = await call(mock.url, 'POST', '/analytics/data/batch', { body: big })
    assert.equal(batch.status, 413)
    assert.deepEqual(mock.store.stats(), {
      received: 3,
      accepted: 0,
      replays: 0,
      rejected: 3,
      distinctKeys: 0,
      views: 0,
      batches: 0,
    })
    assert.equal((await deliver(mock.url, 'customer:1:h', { small: true })).status, 200)
  })

  test('a status rule with count 3 fails the next three deliveries, then lets them through', async () => {
    assert.equal((await addFault(mock.url, { status: 500, count: 3 })).status, 201)
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await deliver(mock.url, 'customer:1:h', { i })).status)
    assert.deepEqual(statuses, [500, 500, 500, 200])
    assert.equal(mock.store.recordCount, 1)
    assert.equal(mock.store.stats().rejected, 3)
    assert.deepEqual((await call(mock.url, 'GET', '/control/faults')).body, { rules: [] })
  })

  test('a status rule sends Retry-After and a JSON error body', async () => {
    await addFault(mock.url, { status: 429, retryAfter: 2, count: 1 })
    const answer = await deliver(mock.url, 'customer:1:h', {})
    assert.equal(answer.status, 429)
    assert.equal(answer.headers['retry-after'], '2')
    assert.match((answer.body as { error: string }).error, /injected fault/)
  })

  test('a drop rule destroys the connection without an answer and stores nothing', async () => {
    await addFault(mock.url, { drop: true, count: 1 })
    await assert.rejects(deliver(mock.url, 'customer:1:h', {}), (error: Error) => {
      assert.match(`${error.name} ${(error as { code?: string }).code}`, /Socket|ECONNRESET/)
      return true
    })
    assert.equal(mock.store.recordCount, 0)
    assert.equal((await deliver(mock.url, 'customer:1:h', {})).status, 200)
  })

  test('a delay-only rule delays the answer, then stores normally', async () => {
    await addFault(mock.url, { delayMs: 150, count: 1 })
    const started = performance.now()
    const answer = await deliver(mock.url, 'customer:1:h', { slow: true })
    assert.ok(performance.now() - started >= 140, 'answered before the delay')
    assert.equal(answer.status, 200)
    assert.equal(mock.store.hasKey('customer:1:h'), true)
  })

  test('a match rule only touches keys with its prefix', async () => {
    await addFault(mock.url, { status: 503, match: 'product:' })
    assert.equal((await deliver(mock.url, 'product:1:h', {})).status, 503)
    assert.equal((await deliver(mock.url, 'customer:1:h', {})).status, 200)
    assert.equal((await deliver(mock.url, 'product:2:h', {})).status, 503)
    assert.deepEqual([...mock.store.views().keys()], ['customer:1'])
  })

  test('control endpoints list, clear and validate rules; reset clears everything', async () => {
    await addFault(mock.url, { status: 500, match: 'a:' })
    const listed = (await call(mock.url, 'GET', '/control/faults')).body as { rules: { rule: unknown }[] }
    assert.deepEqual(
      listed.rules.map((installed) => installed.rule),
      [{ status: 500, match: 'a:' }],
    )
    assert.deepEqual((await call(mock.url, 'DELETE', '/control/faults')).body, { cleared: 1 })
    const invalid = await addFault(mock.url, { status: 'soon', count: 2 })
    assert.equal(invalid.status, 400)
    assert.match((invalid.body as { error: string }).error, /status/)
    const notJson = await call(mock.url, 'POST', '/control/faults', { body: '{' })
    assert.equal(notJson.status, 400)
    await deliver(mock.url, 'customer:1:h', {})
    await addFault(mock.url, { status: 500 })
    assert.deepEqual((await call(mock.url, 'POST', '/control/reset')).body, { reset: true })
    assert.deepEqual((await call(mock.url, 'GET', '/analytics/stats')).body, new MockAnalyticsStore().stats())
    assert.deepEqual((await call(mock.url, 'GET', '/control/faults')).body, { rules: [] })
    assert.deepEqual((await deliver(mock.url, 'customer:1:h', {})).body, { status: 'accepted' })
  })

  test('the batch endpoint dedupes per item', async () => {
    await deliver(mock.url, 'customer:1:h', {})
    const items = [
      { idempotencyKey: 'customer:1:h', record: {} },
      { idempotencyKey: 'product:2:h', record: { p: 2 } },
      { idempotencyKey: 'product:2:h', record: { p: 2 } },
    ]
    const answer = await call(mock.url, 'POST', '/analytics/data/batch', { body: JSON.stringify({ items }) })
    assert.equal(answer.status, 200)
    assert.deepEqual(answer.body, {
      results: [
        { idempotencyKey: 'customer:1:h', status: 'replay' },
        { idempotencyKey: 'product:2:h', status: 'accepted' },
        { idempotencyKey: 'product:2:h', status: 'replay' },
      ],
    })
    assert.deepEqual(mock.store.stats(), {
      received: 4,
      accepted: 2,
      replays: 2,
      rejected: 0,
      distinctKeys: 2,
      views: 2,
      batches: 1,
    })
  })

  test('the batch endpoint rejects a malformed batch whole and obeys fault rules', async () => {
    const bad = await call(mock.url, 'POST', '/analytics/data/batch', {
      body: JSON.stringify({
        items: [
          { idempotencyKey: 'customer:1:h', record: {} },
          { idempotencyKey: 'nope', record: {} },
        ],
      }),
    })
    assert.equal(bad.status, 400)
    assert.match((bad.body as { error: string }).error, /items\.1\.idempotencyKey/)
    assert.equal(mock.store.recordCount, 0)
    await addFault(mock.url, { status: 500, count: 1, match: 'product:' })
    const body = JSON.stringify({ items: [{ idempotencyKey: 'product:1:h', record: {} }] })
    assert.equal((await call(mock.url, 'POST', '/analytics/data/batch', { body })).status, 500)
    assert.equal((await call(mock.url, 'POST', '/analytics/data/batch', { body })).status, 200)
    assert.equal(mock.store.recordCount, 1)
  })

  test('unknown paths answer 404 and wrong methods 405 with Allow', async () => {
    assert.equal((await call(mock.url, 'GET', '/nope')).status, 404)
    const wrong = await call(mock.url, 'GET', '/analytics/data')
    assert.equal(wrong.status, 405)
    assert.equal(wrong.headers.allow, 'POST')
  })
})

describe('mock Analytics with a bearer token', () => {
  let mock: MockAnalytics
  before(async () => {
    mock = await startMockAnalytics({ port: 0, token: 'sesame-sesame-42' })
  })
  after(() => mock.close())

  test('requests without the token get 401, control endpoints included; /healthz stays open', async () => {
    const missing = await deliver(mock.url, 'customer:1:h', {})
    assert.equal(missing.status, 401)
    assert.match((missing.body as { error: string }).error, /bearer token/)
    assert.equal((await deliver(mock.url, 'customer:1:h', {}, { authorization: 'Bearer wrong' })).status, 401)
    assert.equal((await call(mock.url, 'POST', '/control/reset')).status, 401)
    assert.equal((await call(mock.url, 'GET', '/control/faults')).status, 401)
    assert.equal((await call(mock.url, 'GET', '/analytics/views')).status, 401)
    assert.equal((await call(mock.url, 'GET', '/healthz')).status, 200)
    assert.equal(mock.store.recordCount, 0)
  })

  test('requests with the token go through', async () => {
    const authorization = 'Bearer sesame-sesame-42'
    assert.equal((await deliver(mock.url, 'customer:1:h', {}, { authorization })).status, 200)
    const views = await call(mock.url, 'GET', '/analytics/views', { headers: { authorization } })
    assert.equal(views.status, 200)
  })
})

describe('mock Analytics life cycle', () => {
  test('close() ends keep-alive connections and pending delays promptly', async () => {
    const mock = await startMockAnalytics({ port: 0 })
    assert.equal((await deliver(mock.url, 'customer:1:h', {})).status, 200)
    mock.store.faults.add({ delayMs: 60_000 })
    const pending = deliver(mock.url, 'customer:2:h', {}).catch((error: unknown) => error)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const started = performance.now()
    await mock.close()
    assert.ok(performance.now() - started < 1000, 'close() waited for connections')
    assert.ok((await pending) instanceof Error, 'the delayed request was not cut off')
    await assert.rejects(call(mock.url, 'GET', '/healthz'))
  })

  test('a busy port fails with PIPELINE_INFRA_PORT_BUSY', async () => {
    const first = await startMockAnalytics({ port: 0 })
    try {
      await assert.rejects(startMockAnalytics({ port: first.port }), { code: 'PIPELINE_INFRA_PORT_BUSY' })
    } finally {
      await first.close()
    }
  })

  test('runMockAnalyticsService starts from the config and logs its URL once', async () => {
    const lines: string[] = []
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk))
        done()
      },
    })
    const logger = createLogger({ service: 'mock-analytics', destination, pretty: false })
    const config = loadConfig({ MOCK_ANALYTICS_HOST: '127.0.0.1', MOCK_ANALYTICS_PORT: '0' })
    const service = await runMockAnalyticsService(config, logger)
    try {
      assert.equal(lines.length, 1)
      const line = JSON.parse(lines[0] ?? '{}') as { level: number; url: string; msg: string }
      assert.equal(line.level, 30)
      assert.match(line.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.ok(line.msg.includes(line.url))
      assert.equal((await call(line.url, 'GET', '/healthz')).status, 200)
    } finally {
      await service.close()
    }
  })

  test('with a state file it holds what it accepted across a restart, and a reset empties it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mock-analytics-'))
    const stateFile = join(dir, 'state', 'mock-analytics.jsonl')
    try {
      const first = await startMockAnalytics({ port: 0, stateFile })
      assert.deepEqual(first.restored, { records: 0, unreadable: 0 })
      await deliver(first.url, 'customer:1:a', { customer: { id: '1' } })
      await deliver(first.url, 'customer:1:b', { customer: { id: '1', name: 'new' } })
      await deliver(first.url, 'product:7:a', { product: { id: '7' } })
      await deliver(first.url, 'product:7:b', { type: 'product', id: '7', deleted: true })
      await deliver(first.url, 'customer:1:b', { customer: { id: '1', name: 'new' } })
      const before = (await call(first.url, 'GET', '/analytics/views')).body
      await first.close()
      // A crash cut the last line short.
      appendFileSync(stateFile, '{"key":"customer:2:a","rec')

      const second = await startMockAnalytics({ port: 0, stateFile })
      try {
        assert.deepEqual(second.restored, { records: 4, unreadable: 1 })
        assert.deepEqual((await call(second.url, 'GET', '/analytics/views')).body, before)
        const replay = await deliver(second.url, 'customer:1:a', { customer: { id: '1' } })
        assert.deepEqual(replay.body, { status: 'replay' }, 'keys accepted before the restart are known')
        await deliver(second.url, 'customer:3:a', { customer: { id: '3' } })
      } finally {
        await second.close()
      }
      const third = await startMockAnalytics({ port: 0, stateFile })
      try {
        assert.equal(third.restored.records, 5, 'what the second run accepted was kept too')
        assert.equal((await call(third.url, 'POST', '/control/reset')).status, 200)
      } finally {
        await third.close()
      }
      const fourth = await startMockAnalytics({ port: 0, stateFile })
      await fourth.close()
      assert.deepEqual(fourth.restored, { records: 0, unreadable: 0 }, 'a reset empties the file')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
