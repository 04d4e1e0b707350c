/** Refresh requests between the consumer's stages, and stage 2's memory of what it covered. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ViewCoverage } from '../../src/services/consumer/coverage.ts'
import { parseRefresh, refreshMessage } from '../../src/services/consumer/refresh.ts'

const roundTrip = (options: Parameters<typeof refreshMessage>[3]) => {
  const message = refreshMessage('t', 'customer:1', '2024-05-01T10:00:00.000Z', options)
  return parseRefresh(message.key ?? null, Buffer.from(message.value as string))
}

test('a refresh request carries its view, poll time, retry flag and clock stamp', () => {
  assert.deepEqual(roundTrip({ seq: 42 }), {
    view: 'customer:1',
    polledAt: '2024-05-01T10:00:00.000Z',
    retry: false,
    seq: 42,
  })
  assert.deepEqual(roundTrip({ retry: true }), {
    view: 'customer:1',
    polledAt: '2024-05-01T10:00:00.000Z',
    retry: true,
    seq: undefined,
  })
})

test('a stamp that is not a positive whole number counts as none (evaluated, never wrongly skipped)', () => {
  for (const seq of ['7', -1, 0, 1.5, null, 2 ** 60])
    assert.equal(parseRefresh('customer:1', Buffer.from(JSON.stringify({ seq })))?.seq, undefined)
  assert.equal(parseRefresh('customer:1', Buffer.from('not json'))?.seq, undefined)
  assert.equal(parseRefresh('not-a-view', Buffer.from('{}')), undefined)
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
