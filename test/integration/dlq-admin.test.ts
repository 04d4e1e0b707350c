/**
 * The consumer's DLQ admin endpoint (design §6): with ADMIN_TOKEN set, `GET /admin/dlq` lists and
 * `POST /admin/dlq/replay` replays with the CLI's semantics; a missing or wrong token gets 401 and
 * nothing is read or replayed.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DlqListing } from '../../src/dlq/operations.ts'
import type { ReplayReport } from '../../src/dlq/replay-plan.ts'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { type DlqTool, dlqTool } from '../helpers/dlq-ops.ts'
import { customer, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const TOKEN = 'admin-token-for-tests-0123456789'

let fixture: PipelineFixture
let consumer: ConsumerService
let sources: ReturnType<typeof sourceWriter>
let tool: DlqTool

before(async () => {
  fixture = await pipelineFixture({ ADMIN_TOKEN: TOKEN })
  consumer = await fixture.startConsumer()
  sources = sourceWriter(fixture.config)
  tool = await dlqTool(fixture)
  // One view Analytics rejects, then accepts again: a DLQ entry waiting for a replay.
  fixture.mock.store.faults.add({ status: 400, match: 'customer:81:' })
  await sources.write({ customer: customer('81', []) })
  await tool.waitForEntries({ key: 'customer:81' })
  fixture.mock.store.faults.clear()
})
after(async () => {
  await tool.close()
  await sources.close()
  await fixture.close()
})

async function call(
  method: 'GET' | 'POST',
  path: string,
  options: { token?: string; authorization?: string; body?: unknown } = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.authorization !== undefined) headers.authorization = options.authorization
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(`${consumer.metricsUrl}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  })
  const text = await response.text()
  return {
    status: response.status,
    body: text === '' ? undefined : JSON.parse(text),
    headers: response.headers,
  }
}

test('a missing or wrong admin token gets 401, and nothing is replayed', async () => {
  const received = fixture.mock.store.stats().received
  const attempts = [
    call('GET', '/admin/dlq'),
    call('GET', '/admin/dlq', { token: 'wrong-token-of-the-same-sort-123' }),
    call('GET', '/admin/dlq', { authorization: TOKEN }),
    call('GET', '/admin/dlq/0', { token: `${TOKEN}x` }),
    call('POST', '/admin/dlq/replay', { body: { key: 'customer:81' } }),
    call('POST', '/admin/dlq/replay', { token: 'nope', body: { key: 'customer:81' } }),
    call('POST', '/admin/dlq/replay', { token: TOKEN.slice(0, -1), body: { key: 'customer:81' } }),
  ]
  for (const answer of await Promise.all(attempts)) {
    assert.equal(answer.status, 401)
    assert.equal(answer.headers.get('www-authenticate'), 'Bearer')
    assert.match(JSON.stringify(answer.body), /unauthorized/)
  }
  await sleep(1500)
  assert.equal(fixture.mock.store.stats().received, received, 'no delivery')
  assert.equal(fixture.mock.store.views().get('customer:81'), undefined)
  const [row] = await tool.list({ key: 'customer:81' })
  assert.equal(row?.replayed, null, 'nothing recorded as replayed')
})

test('GET /admin/dlq lists with the CLI filters; GET /admin/dlq/<offset> shows one entry', async () => {
  const listed = await call('GET', '/admin/dlq?stage=deliver&key=customer:8*&error=400', { token: TOKEN })
  assert.equal(listed.status, 200)
  const listing = listed.body as DlqListing
  assert.deepEqual(
    listing.rows.map((r) => [r.key, r.stage, r.status, r.replayed]),
    [['customer:81', 'deliver', 400, null]],
  )
  assert.deepEqual(listing.summary.byErrorClass, { PIPELINE_SINK_REJECTED: 1 })
  const none = await call('GET', '/admin/dlq?stage=validate', { token: TOKEN })
  assert.deepEqual((none.body as DlqListing).rows, [])
  const bad = await call('GET', '/admin/dlq?since=yesterday', { token: TOKEN })
  assert.equal(bad.status, 400)
  assert.match(JSON.stringify(bad.body), /PIPELINE_DLQ_BAD_FILTER/)

  const offset = listing.rows[0]?.offset
  const shown = await call('GET', `/admin/dlq/${offset}`, { token: TOKEN })
  assert.equal(shown.status, 200)
  const { item } = shown.body as { item: { entry: { stage: string; idempotencyKey: string } } }
  assert.equal(item.entry.stage, 'deliver')
  assert.match(item.entry.idempotencyKey, /^customer:81:/)
  assert.equal((await call('GET', '/admin/dlq/999999', { token: TOKEN })).status, 404)
  assert.equal((await call('GET', '/admin/dlq/replay', { token: TOKEN })).status, 405)
})

test('POST /admin/dlq/replay: a dry run changes nothing; the replay delivers once; again does nothing', async () => {
  const received = fixture.mock.store.stats().received
  const dry = await call('POST', '/admin/dlq/replay', {
    token: TOKEN,
    body: { key: 'customer:81', dryRun: true },
  })
  assert.equal(dry.status, 200)
  assert.equal((dry.body as ReplayReport).dryRun, true)
  assert.deepEqual((dry.body as ReplayReport).counts, { requested: 1 })
  await sleep(1000)
  assert.equal(fixture.mock.store.stats().received, received, 'the dry run sent nothing')

  const replay = await call('POST', '/admin/dlq/replay', {
    token: TOKEN,
    body: { key: 'customer:81', rate: '10/s' },
  })
  assert.equal(replay.status, 200)
  assert.deepEqual((replay.body as ReplayReport).counts, { requested: 1 })
  await waitFor('customer:81 at Analytics', () => fixture.mock.store.views().get('customer:81'))
  await sleep(1000)
  assert.equal(fixture.mock.store.stats().received - received, 1, 'delivered with one POST')

  const again = await call('POST', '/admin/dlq/replay', { token: TOKEN, body: { key: 'customer:81' } })
  assert.deepEqual((again.body as ReplayReport).counts, { 'already-replayed': 1 })
  await sleep(1000)
  assert.equal(fixture.mock.store.stats().received - received, 1, 'no further POST')

  const badBody = await fetch(`${consumer.metricsUrl}/admin/dlq/replay`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}` },
    body: '{not json',
  })
  assert.equal(badBody.status, 400)
  await badBody.text()
})

test('the rest of the health server is untouched by the admin routes', async () => {
  const metrics = await fetch(`${consumer.metricsUrl}/metrics`)
  assert.equal(metrics.status, 200)
  await metrics.text()
  const post = await fetch(`${consumer.metricsUrl}/healthz`, { method: 'POST' })
  assert.equal(post.status, 405)
  await post.text()
})
