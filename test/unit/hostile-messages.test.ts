/**
 * Hostile messages on the source topics (generated) through the consumer's decoding: each ends as
 * poison at its expected stage with its expected reason (or, for the valid ones among them, as the
 * upsert or deletion it is), and the DLQ record built from it stays parseable, one line of reason,
 * and small enough for Kafka, whatever the payload. Sampled through the real consumer in
 * test/integration/hostile-consumer.test.ts.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { type DlqEntry, MAX_STORED_BYTES, toDlqMessage } from '../../src/dlq/entry.ts'
import { decodeSourceMessage, rawPayload } from '../../src/domain/decode.ts'
import { hostileMessageCase } from '../helpers/hostile-messages.ts'
import { deepArray } from '../helpers/hostile-source.ts'

const RUNS = 600
/** The broker's default largest message, which a DLQ record must stay well under. */
const KAFKA_MAX_MESSAGE = 1024 * 1024

function poisonEntry(
  stage: 'deserialize' | 'validate',
  reason: string,
  key: string | null,
  value: Buffer | null,
): DlqEntry {
  const at = new Date().toISOString()
  return {
    stage,
    error: { class: 'ValidationError', message: reason },
    attempts: 1,
    firstFailedAt: at,
    failedAt: at,
    origin: { topic: 'customer_data', partition: 0, offset: '1', ...(key === null ? {} : { key }) },
    payload: rawPayload(value),
  }
}

test(`${RUNS} generated hostile Kafka messages each decode to their expected stage and reason`, () => {
  const kinds = new Map<string, number>()
  fc.assert(
    fc.property(hostileMessageCase, (m) => {
      kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1)
      const decoded = decodeSourceMessage(m.entity, m.key, m.value)
      if (m.expect.kind !== 'poison') {
        assert.deepEqual(
          decoded.kind === 'poison' ? decoded : { kind: decoded.kind, id: decoded.id },
          m.expect,
        )
        return
      }
      assert.equal(decoded.kind, 'poison')
      if (decoded.kind !== 'poison') return
      assert.equal(decoded.stage, m.expect.stage)
      assert.match(decoded.reason, m.expect.reason)
      assert.doesNotMatch(decoded.reason, /\n/, 'one line')
      assert.ok(decoded.reason.length < 1000, `a bounded reason (${decoded.reason.length} characters)`)

      const message = toDlqMessage(poisonEntry(decoded.stage, decoded.reason, m.key, m.value))
      assert.ok(Buffer.byteLength(message.value) < KAFKA_MAX_MESSAGE / 2)
      const stored = JSON.parse(message.value) as DlqEntry
      assert.equal(stored.stage, m.expect.stage)
      const raw = rawPayload(m.value)
      if (stored.truncated?.payload === undefined) assert.equal(stored.payload, raw, 'the raw payload, whole')
      else {
        // Over MAX_STORED_BYTES as JSON (a 100k-deep value, say): its head, marked.
        assert.ok(raw?.startsWith(String(stored.payload).replace(/…$/, '')), 'the head of the raw payload')
        assert.ok(Buffer.byteLength(JSON.stringify(raw)) > MAX_STORED_BYTES)
      }
    }),
    { numRuns: RUNS },
  )
  assert.ok(kinds.size >= 9, `families drawn: ${[...kinds.keys()].join(', ')}`)
})

test('a DLQ record of a huge poison payload keeps its head, says so, and fits a Kafka message', () => {
  const value = Buffer.from(`not json ${String.fromCharCode(1).repeat(900 * 1024)}`)
  const message = toDlqMessage(poisonEntry('deserialize', 'value is not JSON', 'k'.repeat(500_000), value))
  assert.ok(Buffer.byteLength(message.value) < MAX_STORED_BYTES, `${Buffer.byteLength(message.value)} bytes`)
  const stored = JSON.parse(message.value) as DlqEntry
  assert.match(String(stored.payload), /^not json \p{Cc}+…$/u)
  assert.match(stored.truncated?.payload ?? '', /^\d+ bytes of JSON, over 262144: its first 32768 kept$/)
  assert.ok((message.key ?? '').length <= 1025, 'the key is cut too')
  assert.equal(stored.origin.key, message.key)
})

test('a source-stage DLQ record of a 100k-deep raw record is written without it, saying why', () => {
  const at = new Date().toISOString()
  const raw = { id: '1', name: deepArray(100_000) }
  const message = toDlqMessage({
    stage: 'source',
    error: { class: 'ValidationError', message: 'name: Invalid input' },
    attempts: 1,
    firstFailedAt: at,
    failedAt: at,
    origin: { url: 'http://source.test/customers', key: '1' },
    payload: raw,
  })
  const stored = JSON.parse(message.value) as DlqEntry
  assert.equal(stored.payload, null)
  assert.match(stored.truncated?.payload ?? '', /^not serializable: Maximum call stack size exceeded/)
  assert.equal(stored.error.message, 'name: Invalid input')
})

test('a DLQ record of a small payload is stored whole and unmarked', () => {
  const message = toDlqMessage(poisonEntry('deserialize', 'x', '1', Buffer.from('not-json')))
  const stored = JSON.parse(message.value) as DlqEntry
  assert.equal(stored.payload, 'not-json')
  assert.equal(stored.truncated, undefined)
})
