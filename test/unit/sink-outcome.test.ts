import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ErrorCodes } from '../../src/errors.ts'
import {
  type AttemptResult,
  assertIdempotencyKey,
  dlqErrorOf,
  failureError,
  judge,
  nextStep,
  retryDelay,
  statusLabel,
} from '../../src/sinks/outcome.ts'

const answered = (status: number, body = '', retryAfter?: string): AttemptResult => ({
  kind: 'answered',
  status,
  body,
  retryAfter,
  durationMs: 1,
})
const timeout: AttemptResult = { kind: 'timeout', message: 'no answer within 100 ms', durationMs: 100 }
const network: AttemptResult = { kind: 'network', message: 'ECONNREFUSED: connect', durationMs: 1 }

test('2xx succeed, 408/429/5xx and network failures retry, other answers are permanent', () => {
  assert.deepEqual(judge(answered(200)), { verdict: 'success', status: 200 })
  assert.deepEqual(judge(answered(204)), { verdict: 'success', status: 204 })
  for (const status of [408, 429, 500, 502, 503, 504])
    assert.equal(judge(answered(status)).verdict, 'retryable')
  for (const status of [301, 304, 400, 401, 403, 404, 409, 413, 422]) {
    assert.equal(judge(answered(status)).verdict, 'permanent', `status ${status}`)
  }
  assert.equal(judge(timeout).verdict, 'retryable')
  assert.equal(judge(network).verdict, 'retryable')
  assert.deepEqual(judge({ kind: 'aborted', durationMs: 0 }), { verdict: 'aborted' })
})

test('a permanent answer carries its body cut to 1 KiB', () => {
  const judged = judge(answered(400, 'x'.repeat(5000)))
  assert.equal(judged.verdict, 'permanent')
  assert.ok(judged.verdict === 'permanent' && Buffer.byteLength(judged.body) <= 1024 + 3)
  assert.deepEqual(judge(answered(422, '{"error":"bad"}')), {
    verdict: 'permanent',
    status: 422,
    body: '{"error":"bad"}',
  })
})

test('request metrics label answers by status class and failures by kind', () => {
  assert.equal(
    statusLabel({ kind: 'answered', status: 201, body: '', retryAfter: undefined, durationMs: 1 }),
    '2xx',
  )
  assert.equal(
    statusLabel({ kind: 'answered', status: 429, body: '', retryAfter: undefined, durationMs: 1 }),
    '4xx',
  )
  assert.equal(
    statusLabel({ kind: 'answered', status: 503, body: '', retryAfter: undefined, durationMs: 1 }),
    '5xx',
  )
  assert.equal(statusLabel({ kind: 'timeout', message: '', durationMs: 1 }), 'timeout')
  assert.equal(statusLabel({ kind: 'network', message: '', durationMs: 1 }), 'network')
})

test('the retry delay honours a sane Retry-After (capped) and otherwise backs off with jitter', () => {
  const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 5000 }
  const now = Date.now()
  const failure = (result: AttemptResult) => {
    const judged = judge(result)
    assert.equal(judged.verdict, 'retryable')
    if (judged.verdict !== 'retryable') throw new Error('unreachable')
    return judged.failure
  }
  assert.equal(retryDelay(failure(answered(429, '', '2')), 1, policy, now, 0.5), 2000)
  assert.equal(retryDelay(failure(answered(429, '', '3600')), 1, policy, now, 0.5), 5000)
  assert.equal(retryDelay(failure(answered(503, '', 'soon')), 3, policy, now, 0.5), 200)
  assert.equal(retryDelay(failure(answered(500)), 1, policy, now, 0.999), 99)
  assert.equal(retryDelay(failure(timeout), 2, policy, now, 0), 0)
})

test('the budget ends in exhausted only when Analytics answered well meanwhile', () => {
  assert.equal(nextStep(1, 3, false), 'retry')
  assert.equal(nextStep(2, 3, true), 'retry')
  assert.equal(nextStep(3, 3, true), 'exhausted')
  assert.equal(nextStep(3, 3, false), 'confirm-health')
  assert.equal(nextStep(1, 1, false), 'confirm-health')
})

test('failures become DLQ errors with a code as class, status and cut body; the URL is redacted', () => {
  const url = 'http://user:pw@sink.example/analytics/data?token=abc'
  const status = failureError(
    { kind: 'answered', status: 503, body: 'y'.repeat(3000), retryAfter: undefined, durationMs: 1 },
    url,
  )
  assert.equal(status.class, ErrorCodes.SINK_HTTP_STATUS)
  assert.equal(status.status, 503)
  assert.match(status.message, /answered HTTP 503/)
  assert.ok(Buffer.byteLength(status.body ?? '') <= 1024 + 3)
  assert.doesNotMatch(status.message, /pw|abc/)
  assert.deepEqual(
    failureError({ kind: 'timeout', message: 'no answer within 100 ms', durationMs: 1 }, url),
    {
      class: ErrorCodes.SINK_TIMEOUT,
      message: 'POST http://sink.example/analytics/data?token=REDACTED: no answer within 100 ms',
    },
  )
  assert.equal(
    failureError({ kind: 'network', message: 'ECONNRESET', durationMs: 1 }, url).class,
    ErrorCodes.SINK_NETWORK,
  )
})

test('dlqErrorOf gives a rejection its own class and passes an exhausted error through', () => {
  assert.deepEqual(dlqErrorOf({ kind: 'rejected', status: 400, body: '{"error":"no"}', attempts: 1 }), {
    class: ErrorCodes.SINK_REJECTED,
    message: 'Analytics rejected the delivery with HTTP 400',
    status: 400,
    body: '{"error":"no"}',
  })
  const error = { class: ErrorCodes.SINK_TIMEOUT, message: 'late' }
  assert.equal(dlqErrorOf({ kind: 'exhausted', error, attempts: 5 }), error)
})

test('idempotency keys must be printable ASCII without surrounding spaces', () => {
  assertIdempotencyKey('customer:1:9f86d081884c7d65')
  assertIdempotencyKey('product:a b:1')
  assertIdempotencyKey('x')
  for (const bad of ['', ' customer:1:h', 'customer:1:h ', 'customer:1:h\r\nx: y', 'customer:é:h', 'a\tb']) {
    assert.throws(() => assertIdempotencyKey(bad), TypeError, JSON.stringify(bad))
  }
})
