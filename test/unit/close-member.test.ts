/** Closing a group member: bounded for the caller, tried again in the background when it fails. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { closeMember, type KafkaConsumer } from '../../src/kafka/consumer.ts'

/** A member whose close takes `delayMs`, then fails its first `failures` tries and succeeds after. */
function member(failures: number, delayMs = 0) {
  let calls = 0
  let closed = false
  const consumer = {
    close: async () => {
      calls++
      const call = calls
      await sleep(delayMs)
      if (call <= failures) throw new Error(`Closing streams failed (${call})`)
      closed = true
    },
  } as unknown as KafkaConsumer
  return { consumer, calls: () => calls, closed: () => closed }
}

/** Closes `m` with the given options, recording each failure as [attempt, last]. */
async function close(
  m: ReturnType<typeof member>,
  options: { deadlineMs: number; attempts: number; signal?: AbortSignal },
) {
  const failures: Array<[number, boolean]> = []
  const started = performance.now()
  await closeMember(m.consumer, {
    retryMs: 10,
    ...options,
    onFailure: (_error, attempt, last) => failures.push([attempt, last]),
  })
  return { failures, tookMs: performance.now() - started }
}

test('a failed close lets the caller go on at once and is tried again until it succeeds', async () => {
  const m = member(2)
  const { failures, tookMs } = await close(m, { deadlineMs: 5000, attempts: 5 })
  assert.ok(tookMs < 100, `the caller waited for the first try only (${tookMs} ms)`)
  assert.equal(m.closed(), false)
  await sleep(200)
  assert.equal(m.closed(), true, 'closed in the background')
  assert.equal(m.calls(), 3)
  assert.deepEqual(failures, [
    [1, false],
    [2, false],
  ])
})

test('tries stop after the last attempt, which says so', async () => {
  const m = member(10)
  const { failures } = await close(m, { deadlineMs: 5000, attempts: 4 })
  await sleep(200)
  assert.equal(m.calls(), 4)
  assert.deepEqual(failures.at(-1), [4, true])
})

test('a close slower than the deadline: the caller goes on at the deadline, the close finishes on its own', async () => {
  const m = member(0, 300)
  const { failures, tookMs } = await close(m, { deadlineMs: 50, attempts: 4 })
  assert.ok(tookMs < 250, `bounded by the deadline (${tookMs} ms)`)
  assert.deepEqual(failures, [[0, false]], 'the deadline is reported')
  await sleep(400)
  assert.equal(m.closed(), true)
  assert.equal(m.calls(), 1)
})

test('once the service is stopping, a failed close is not tried again', async () => {
  const m = member(10)
  const stopping = new AbortController()
  stopping.abort()
  const { failures } = await close(m, { deadlineMs: 1000, attempts: 5, signal: stopping.signal })
  await sleep(100)
  assert.equal(m.calls(), 1)
  assert.deepEqual(failures, [[1, true]])
})
