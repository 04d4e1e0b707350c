import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { DlqEntry } from '../../src/dlq/entry.ts'
import { isEmptyFilter, keyMatcher, parseFilter, parseTimeFilter, selectItems } from '../../src/dlq/filter.ts'
import { type DlqItem, parseDlqValue } from '../../src/dlq/item.ts'
import { isPipelineError } from '../../src/errors.ts'

const NOW = Date.parse('2026-02-10T12:00:00Z')

function item(offset: number, entry: Partial<DlqEntry> & Pick<DlqEntry, 'stage'>): DlqItem {
  const full: DlqEntry = {
    error: { class: 'ValidationError', message: 'price: expected number' },
    attempts: 1,
    firstFailedAt: '2026-02-10T10:00:00.000Z',
    failedAt: '2026-02-10T10:00:00.000Z',
    origin: {},
    ...entry,
  }
  return {
    topic: 'dlq',
    offset: String(offset),
    timestamp: full.failedAt,
    key: null,
    headers: {},
    entry: full,
  }
}

const items: DlqItem[] = [
  item(0, {
    stage: 'source',
    origin: { key: '7', topic: 'customer_data' },
    failedAt: '2026-02-01T00:00:00Z',
  }),
  item(1, { stage: 'deserialize', error: { class: 'DeserializationError', message: 'value is not JSON' } }),
  item(2, {
    stage: 'deliver',
    origin: { key: 'customer:22' },
    error: { class: 'PIPELINE_SINK_REJECTED', message: 'Analytics rejected the view', status: 400 },
    failedAt: '2026-02-10T11:30:00Z',
  }),
  item(3, {
    stage: 'deliver',
    origin: { key: 'product:5' },
    error: { class: 'PIPELINE_SINK_HTTP_STATUS', message: 'HTTP 503 after 5 attempts', status: 503 },
    failedAt: '2026-02-10T11:59:00Z',
  }),
  {
    topic: 'dlq',
    offset: '4',
    timestamp: '2026-02-10T11:00:00Z',
    key: 'x',
    headers: {},
    entry: undefined,
    problem: 'value is not JSON',
  },
]

const offsets = (raw: Parameters<typeof parseFilter>[0]) =>
  selectItems(items, parseFilter(raw, NOW)).map((i) => Number(i.offset))

test('an empty filter selects everything, unreadable records included', () => {
  assert.ok(isEmptyFilter(parseFilter({}, NOW)))
  assert.deepEqual(offsets({}), [0, 1, 2, 3, 4])
})

test('--stage selects exactly the named stages, one or comma-separated or repeated', () => {
  assert.deepEqual(offsets({ stage: 'deliver' }), [2, 3])
  assert.deepEqual(offsets({ stage: 'source,deserialize' }), [0, 1])
  assert.deepEqual(offsets({ stage: ['validate', 'source'] }), [0])
})

test('--key matches the origin key exactly, or with * as a wildcard', () => {
  assert.deepEqual(offsets({ key: 'customer:22' }), [2])
  assert.deepEqual(offsets({ key: 'customer:2' }), [])
  assert.deepEqual(offsets({ key: 'customer:*' }), [2])
  assert.deepEqual(offsets({ key: '*:*' }), [2, 3])
  assert.ok(keyMatcher('a.b*')('a.bc'))
  assert.ok(!keyMatcher('a.b*')('axbc'), 'regex characters are literal')
})

test('--error matches the class or message (case-insensitive) or the exact HTTP status', () => {
  assert.deepEqual(offsets({ error: '400' }), [2])
  assert.deepEqual(offsets({ error: 'sink_' }), [2, 3])
  assert.deepEqual(offsets({ error: 'not json' }), [1])
  assert.deepEqual(offsets({ error: '503' }), [3])
  assert.deepEqual(offsets({ error: '40' }), [], 'a status matches whole, not as a substring')
})

test('--since/--until take ISO times or ages and compare with failedAt (since inclusive, until exclusive)', () => {
  assert.deepEqual(offsets({ since: '1h' }), [2, 3])
  assert.deepEqual(offsets({ since: '2026-02-10T11:30:00Z' }), [2, 3])
  assert.deepEqual(offsets({ until: '2026-02-10T11:30:00Z' }), [0, 1])
  assert.deepEqual(offsets({ since: '2026-02-05', until: '15m' }), [1, 2])
  assert.equal(parseTimeFilter('2d', NOW), NOW - 2 * 86_400_000)
  assert.equal(parseTimeFilter('90s', NOW), NOW - 90_000)
})

test('filters combine with AND', () => {
  assert.deepEqual(offsets({ stage: 'deliver', error: '503' }), [3])
  assert.deepEqual(offsets({ stage: 'deliver', key: 'customer:*', since: '10m' }), [])
})

test('bad filters are one line with PIPELINE_DLQ_BAD_FILTER', () => {
  for (const raw of [
    { stage: 'delivered' },
    { since: 'yesterday' },
    { until: '2026-13-45' },
    { since: '1h', until: '2h' },
  ]) {
    assert.throws(
      () => parseFilter(raw, NOW),
      (error: unknown) => isPipelineError(error, 'PIPELINE_DLQ_BAD_FILTER') && !error.message.includes('\n'),
      JSON.stringify(raw),
    )
  }
})

test('a DLQ value parses into an entry, or a reason', () => {
  const ok = parseDlqValue(
    JSON.stringify({ stage: 'deliver', error: { class: 'X', message: 'm' }, failedAt: 't' }),
  )
  assert.ok('entry' in ok)
  assert.equal(ok.entry.attempts, 1)
  assert.deepEqual(ok.entry.origin, {})
  assert.match((parseDlqValue('nope') as { problem: string }).problem, /not JSON/)
  assert.match((parseDlqValue('{"stage":"x"}') as { problem: string }).problem, /unknown stage/)
  assert.match((parseDlqValue(null) as { problem: string }).problem, /tombstone/)
})
