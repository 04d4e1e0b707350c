import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffDelay, classifyStatus, parseRetryAfter } from '../../src/domain/retry-policy.ts'

test('408, 429 and 5xx are retryable; other 4xx are permanent', () => {
  assert.equal(classifyStatus(200), 'success')
  assert.equal(classifyStatus(304), 'not-modified')
  for (const status of [408, 429, 500, 502, 503, 504]) assert.equal(classifyStatus(status), 'retryable')
  for (const status of [400, 401, 403, 404, 409, 413, 422]) assert.equal(classifyStatus(status), 'permanent')
})

test('backoff grows exponentially with full jitter and is capped', () => {
  const policy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000 }
  assert.equal(backoffDelay(policy, 1, 0.999), 99)
  assert.equal(backoffDelay(policy, 3, 0.5), 200)
  assert.equal(backoffDelay(policy, 8, 0.999), 999)
  assert.equal(backoffDelay(policy, 2, 0), 0)
})

test('Retry-After takes seconds or a date, caps it, and ignores absurd values', () => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  assert.equal(parseRetryAfter('2', now, 60_000), 2000)
  assert.equal(parseRetryAfter('3600', now, 60_000), 60_000)
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now, 60_000), 5000)
  assert.equal(parseRetryAfter('-5', now, 60_000), undefined)
  assert.equal(parseRetryAfter('soon', now, 60_000), undefined)
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now, 60_000), undefined)
  assert.equal(parseRetryAfter(undefined, now, 60_000), undefined)
})
