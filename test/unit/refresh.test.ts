/** Refresh requests between the consumer's stages, and stage 2's memory of what it covered. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ViewId } from '../../src/domain/views.ts'
import type { OutgoingMessage } from '../../src/kafka/ports.ts'
import { ViewCoverage } from '../../src/services/consumer/coverage.ts'
import {
  MAX_VIEWS_PER_MESSAGE,
  parseRefresh,
  REFRESH_SHARDS,
  refreshMessage,
  refreshMessages,
  refreshShard,
} from '../../src/services/consumer/refresh.ts'

const parse = (message: OutgoingMessage) =>
  parseRefresh(message.key ?? null, message.value === null ? null : Buffer.from(message.value))

const roundTrip = (options: Parameters<typeof refreshMessage>[3]) =>
  parse(refreshMessage('t', 'customer:1', '2024-05-01T10:00:00.000Z', options))

test('a refresh request carries its view, poll time, retry flag and clock stamp', () => {
  assert.deepEqual(roundTrip({ seq: 42 }), {
    requests: [{ view: 'customer:1', polledAt: '2024-05-01T10:00:00.000Z', retry: false, seq: 42 }],
    invalid: [],
  })
  assert.deepEqual(roundTrip({ retry: true }), {
    requests: [{ view: 'customer:1', polledAt: '2024-05-01T10:00:00.000Z', retry: true, seq: undefined }],
    invalid: [],
  })
})

test('requests are packed one message per shard, keyed by the shard, and every view comes back once', () => {
  const views = new Map<ViewId, string | undefined>()
  for (let i = 0; i < 5000; i++)
    views.set(i % 2 ? `customer:${i}` : `product:${i}`, i % 3 ? undefined : `t${i}`)
  const messages = refreshMessages('t', views, { seq: 9 })
  const shardsUsed = new Set([...views.keys()].map(refreshShard))
  assert.ok(messages.length >= shardsUsed.size && messages.length <= REFRESH_SHARDS * 2)
  const back = new Map<ViewId, string | undefined>()
  for (const message of messages) {
    const parsed = parse(message)
    assert.ok(parsed)
    assert.ok(parsed.requests.length <= MAX_VIEWS_PER_MESSAGE)
    for (const request of parsed.requests) {
      assert.equal(back.has(request.view), false, `${request.view} once`)
      // Every view of a message belongs to the message's shard: its refreshes share one partition.
      assert.equal(message.key, `views#${refreshShard(request.view)}`)
      assert.equal(request.seq, 9)
      back.set(request.view, request.polledAt)
    }
  }
  assert.deepEqual(back, views)
})

test('a shard holding more than a message carries is split into several messages', () => {
  const views = new Map<ViewId, undefined>()
  for (let i = 0; views.size < MAX_VIEWS_PER_MESSAGE * 2 + 1; i++) {
    const view: ViewId = `customer:${i}`
    if (refreshShard(view) === 0) views.set(view, undefined)
  }
  const messages = refreshMessages('t', views)
  assert.deepEqual(
    messages.map((m) => parse(m)?.requests.length),
    [MAX_VIEWS_PER_MESSAGE, MAX_VIEWS_PER_MESSAGE, 1],
  )
})

test('a stamp that is not a positive whole number counts as none (evaluated, never wrongly skipped)', () => {
  for (const seq of ['7', -1, 0, 1.5, null, 2 ** 60]) {
    assert.equal(
      parseRefresh('customer:1', Buffer.from(JSON.stringify({ seq })))?.requests[0]?.seq,
      undefined,
    )
    const packed = parseRefresh(
      'views#3',
      Buffer.from(JSON.stringify({ seq, views: { 'customer:1': null } })),
    )
    assert.equal(packed?.requests[0]?.seq, undefined)
  }
  assert.equal(parseRefresh('customer:1', Buffer.from('not json'))?.requests[0]?.seq, undefined)
})

test('a message that is no refresh request is refused, and members that are not view ids are named', () => {
  assert.equal(parseRefresh('not-a-view', Buffer.from('{}')), undefined)
  assert.equal(parseRefresh('views#1', Buffer.from('not json')), undefined)
  assert.equal(parseRefresh('views#1', Buffer.from('{"views":"x"}')), undefined)
  assert.equal(parseRefresh(null, Buffer.from('{"views":{}}')), undefined)
  const value = { views: { '': ['customer:1', 'bogus', 7], t: ['product:2'], u: 'product:3' } }
  assert.deepEqual(parseRefresh('views#1', Buffer.from(JSON.stringify(value))), {
    requests: [
      { view: 'customer:1', polledAt: undefined, retry: false, seq: undefined },
      { view: 'product:2', polledAt: 't', retry: false, seq: undefined },
    ],
    invalid: ['bogus', '7', 'u'],
  })
})

test('ViewCoverage keeps the highest value per view and forgets the least recently noted first', () => {
  const coverage = new ViewCoverage(2)
  coverage.note('customer:1', 5)
  coverage.note('customer:1', 3)
  assert.equal(coverage.get('customer:1'), 5, 'never goes back')
  coverage.note('customer:2', 1)
  coverage.note('customer:1', 6)
  coverage.note('customer:3', 1)
  assert.equal(coverage.size, 2)
  assert.equal(coverage.get('customer:2'), undefined, 'the least recently noted went')
  assert.equal(coverage.get('customer:1'), 6)
})
