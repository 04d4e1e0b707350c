import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type DlqListRow,
  formatItem,
  formatSummary,
  formatTable,
  shorten,
  summarize,
  toListRow,
} from '../../src/dlq/format.ts'
import type { DlqItem } from '../../src/dlq/item.ts'

const deliver: DlqItem = {
  topic: 'analytics_DLQ',
  offset: '12',
  timestamp: '2026-02-10T11:30:00.100Z',
  key: 'customer:22',
  headers: { 'dlq-stage': 'deliver', 'dlq-http-status': '400' },
  entry: {
    stage: 'deliver',
    error: {
      class: 'PIPELINE_SINK_REJECTED',
      message: 'Analytics rejected customer:22\nwith HTTP 400',
      status: 400,
    },
    attempts: 1,
    firstFailedAt: '2026-02-10T11:30:00.000Z',
    failedAt: '2026-02-10T11:30:00.000Z',
    origin: { topic: 'refresh', partition: 1, offset: '7', key: 'customer:22' },
    view: { type: 'customer', id: '22' },
    idempotencyKey: 'customer:22:abc',
  },
}

const poison: DlqItem = {
  topic: 'analytics_DLQ',
  offset: '13',
  timestamp: '2026-02-10T11:31:00.000Z',
  key: '44',
  headers: {},
  entry: {
    stage: 'validate',
    error: { class: 'ValidationError', message: 'invalid customer: email: expected string' },
    attempts: 1,
    firstFailedAt: '2026-02-10T11:31:00.000Z',
    failedAt: '2026-02-10T11:31:00.000Z',
    origin: { topic: 'customer_data', partition: 0, offset: '3', key: '44' },
    payload: '{"id":"44","data":{"id":"44"}}',
  },
}

const unreadable: DlqItem = {
  topic: 'analytics_DLQ',
  offset: '14',
  timestamp: '2026-02-10T11:32:00.000Z',
  key: null,
  headers: {},
  entry: undefined,
  problem: 'value is not JSON',
}

test('a row carries offset, time, stage, key, error and attempts; replay status when known', () => {
  const row = toListRow(deliver, null)
  assert.deepEqual(row, {
    offset: '12',
    failedAt: '2026-02-10T11:30:00.000Z',
    stage: 'deliver',
    key: 'customer:22',
    errorClass: 'PIPELINE_SINK_REJECTED',
    status: 400,
    message: 'Analytics rejected customer:22\nwith HTTP 400',
    attempts: 1,
    replayed: null,
  })
  assert.equal('replayed' in toListRow(deliver), false, 'unknown status is left out')
  const bad = toListRow(unreadable)
  assert.equal(bad.stage, 'unreadable')
  assert.equal(bad.message, 'value is not JSON')
})

test('the table has a header and one line per entry, messages on one line and cut to the width', () => {
  const rows = [
    toListRow(deliver, null),
    toListRow(poison, { at: '2026-02-10T12:00:00Z', outcome: 'published' }),
  ]
  const table = formatTable(rows, { width: 160 }).split('\n')
  assert.equal(table.length, 3)
  assert.match(table[0] ?? '', /^OFFSET\s+FAILED AT \(UTC\)\s+STAGE\s+KEY\s+ATT\s+REPLAYED\s+ERROR$/)
  assert.match(
    table[1] ?? '',
    /^12\s+2026-02-10 11:30:00\s+deliver\s+customer:22\s+1\s+-\s+PIPELINE_SINK_REJECTED 400: Analytics rejected customer:22 with HTTP 400/,
  )
  assert.match(table[2] ?? '', /validate\s+44\s+1\s+published\s+ValidationError: invalid customer/)
  for (const line of formatTable(rows, { width: 100 }).split('\n'))
    assert.ok(line.length <= 100, `fits: ${line}`)
  const narrow = formatTable(rows, { width: 60 }).split('\n')
  assert.match(narrow[1] ?? '', /…$/)
  assert.ok(!formatTable([toListRow(deliver)]).includes('REPLAYED'), 'no column when no row knows')
})

test('the summary counts by stage and by error class', () => {
  const rows: DlqListRow[] = [
    toListRow(deliver),
    toListRow(deliver),
    toListRow(poison),
    toListRow(unreadable),
  ]
  const summary = summarize(rows)
  assert.equal(summary.total, 4)
  assert.deepEqual(summary.byStage, { deliver: 2, validate: 1, unreadable: 1 })
  assert.deepEqual(summary.byErrorClass, {
    PIPELINE_SINK_REJECTED: 2,
    ValidationError: 1,
    UnreadableEntry: 1,
  })
  assert.deepEqual(summary.groups[0], { stage: 'deliver', errorClass: 'PIPELINE_SINK_REJECTED', count: 2 })
  const text = formatSummary(summary, 'analytics_DLQ')
  assert.match(text, /^4 entries in analytics_DLQ\n/)
  assert.match(text, /deliver\s+PIPELINE_SINK_REJECTED\s+2/)
  assert.equal(formatSummary(summarize([]), 'analytics_DLQ'), 'no entries in analytics_DLQ match')
})

test('show prints where the entry sits, its headers and the whole entry; JSON payload text is parsed', () => {
  const text = formatItem(poison, null)
  assert.match(text, /^offset {5}13 \(analytics_DLQ\)$/m)
  assert.match(text, /^replayed {3}no$/m)
  const json = JSON.parse(text.slice(text.indexOf('{'))) as { payload: unknown; error: { message: string } }
  assert.deepEqual(json.payload, { id: '44', data: { id: '44' } })
  assert.equal(json.error.message, 'invalid customer: email: expected string')
  const shown = formatItem(deliver)
  assert.match(shown, /dlq-http-status: 400/)
  assert.ok(!shown.includes('replayed'), 'no replay line when unknown')
  assert.match(formatItem(unreadable), /unreadable value is not JSON/)
})

test('shorten keeps short text and cuts long text with an ellipsis', () => {
  assert.equal(shorten('a  b\nc', 10), 'a b c')
  assert.equal(shorten('abcdefghij', 5), 'abcd…')
})
