import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cut, redactUrl, toDlqMessage } from '../../src/dlq/entry.ts'

const base = {
  stage: 'source' as const,
  error: { class: 'ValidationError', message: 'price: expected number' },
  attempts: 1,
  firstFailedAt: '2026-01-01T00:00:00.000Z',
  failedAt: '2026-01-01T00:00:00.000Z',
}

test('a source-stage entry carries its reason, payload and redacted URL, keyed by record id', () => {
  const message = toDlqMessage({
    ...base,
    origin: { url: 'http://user:secret@crm.test/customers?page=2&token=abc', key: '7' },
    payload: { id: 7, price: 'x' },
  })
  assert.equal(message.key, '7')
  const value = JSON.parse(message.value)
  assert.equal(value.stage, 'source')
  assert.equal(value.error.message, 'price: expected number')
  assert.deepEqual(value.payload, { id: 7, price: 'x' })
  assert.equal(value.origin.url, 'http://crm.test/customers?page=2&token=REDACTED')
  assert.ok(!message.value.includes('secret') && !message.value.includes('abc'))
  assert.equal(message.headers['dlq-stage'], 'source')
  assert.equal(message.headers['dlq-error-class'], 'ValidationError')
})

test('deliver-stage headers name origin, status and idempotency key; bodies are cut to 1 KiB', () => {
  const message = toDlqMessage({
    ...base,
    stage: 'deliver',
    error: { class: 'HttpError', message: 'rejected', status: 400, body: 'x'.repeat(5000) },
    origin: { topic: 't', partition: 2, offset: '41' },
    view: { type: 'customer', id: '1' },
    idempotencyKey: 'customer:1:abc',
  })
  assert.equal(message.headers['dlq-http-status'], '400')
  assert.equal(message.headers['dlq-origin-offset'], '41')
  assert.equal(message.headers['idempotency-key'], 'customer:1:abc')
  assert.equal(message.key, 'customer:1:abc')
  assert.ok(JSON.parse(message.value).error.body.length <= 1025)
})

test('cutting never splits a multi-byte character', () => {
  const text = 'é'.repeat(600)
  const result = cut(text, 1023)
  assert.ok(Buffer.byteLength(result) <= 1023 + 3)
  assert.ok(!result.includes('\uFFFD'))
  assert.equal(redactUrl('not a url'), '(unparseable URL)')
})
