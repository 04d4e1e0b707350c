/** Closing a group member: bounded for the caller, tried again in the background when it fails. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { closeMember, type KafkaConsumer } from '../../src/kafka/consumer.ts'

/** A member whose close fails `failures` times, then succeeds after `delayMs`. */
function member(failures: number, delayMs = 0) {
  let calls = 0
  let closed = false
  const consumer = {
    close: async () => {
      calls++
      if (calls <= failures) throw new Error(`LeaveGroup failed (${calls})`)
      await sleep(delayMs)
      closed = true
    },
  } as unknown as KafkaConsumer
  return { consumer, calls: () => calls, closed: () => closed }
}

test('a close that fails is tried again until it succeeds, each failure reported', async () => {
  const m = member(2)
  const failures: Array<[number, boolean]> = []
  await closeMember(m.consumer, {
    deadlineMs: 5000,
    retryMs: 10,
    attempts: 5,
    onFailure: (_error, attempt, last) => failures.push([attempt, last]),
  })
  assert.equal(m.closed(), true)
  assert.equal(m.calls(), 3)
  assert.deepEqual(failures, [
    [1, false],
    [2, false],
  ])
})

test('the caller goes on at the deadline while the close keeps being tried, and the last failure says so', async () => {
  const m = member(10)
  const failures: Array<[number, boolean]> = []
  const started = performance.now()
  await closeMember(m.consumer, {
    deadlineMs: 50,
    retryMs: 20,
    attempts: 4,
    onFailure: (_error, attempt, last) => failures.push([attempt, last]),
  })
  assert.ok(performance.now() - started < 1000, 'bounded by the deadline')
  assert.ok(
    failures.some(([attempt]) => attempt === 0),
    'the deadline is reported',
  )
  await sleep(200)
  assert.equal(m.calls(), 4, 'tried again in the background, up to the attempts')
  assert.deepEqual(failures.at(-1), [4, true])
})

test('once the service is stopping, a failed close is not tried again', async () => {
  const m = member(10)
  const stopping = new AbortController()
  stopping.abort()
  const failures: Array<[number, boolean]> = []
  await closeMember(m.consumer, {
    deadlineMs: 1000,
    retryMs: 10,
    attempts: 5,
    signal: stopping.signal,
    onFailure: (_error, attempt, last) => failures.push([attempt, last]),
  })
  await sleep(100)
  assert.equal(m.calls(), 1)
  assert.deepEqual(failures, [[1, true]])
})
