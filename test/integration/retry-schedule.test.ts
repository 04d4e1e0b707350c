/** The off-path retry schedule against a real Redis: waits, leases and acknowledgements. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RetrySchedule } from '../../src/state/retry-schedule.ts'
import { useTestRedis } from '../helpers/redis.ts'

const testRedis = useTestRedis()
const newSchedule = () => new RetrySchedule(testRedis.redis, testRedis.newPrefix('retry-schedule'))

test('a claim of due views is exclusive, and a claimant that dies before publishing loses nothing', async () => {
  const schedule = newSchedule()
  await schedule.defer(['customer:1', 'customer:2'], 1000)
  assert.deepEqual((await schedule.claimDue(10, 999)).views, [], 'not due yet')
  const first = await schedule.claimDue(10, 1000, 5000)
  assert.deepEqual([...first.views].sort(), ['customer:1', 'customer:2'])
  assert.deepEqual((await schedule.claimDue(10, 2000)).views, [], 'claimed by one caller only')
  // The claimant died without acknowledging: the views are due again when its lease ends.
  assert.deepEqual([...(await schedule.claimDue(10, 6000, 5000)).views].sort(), ['customer:1', 'customer:2'])
})

test('an acknowledgement forgets only the views still at their lease: a wait scheduled since stays', async () => {
  const schedule = newSchedule()
  await schedule.defer(['customer:1', 'customer:2'], 1000)
  const claim = await schedule.claimDue(10, 1000, 5000)
  await schedule.defer(['customer:2'], 3000)
  await schedule.ack(claim)
  assert.equal(await schedule.pending(), 1)
  assert.deepEqual((await schedule.claimDue(10, 3000)).views, ['customer:2'])
})

test('a wait never postpones an earlier due time, and clearing failures leaves due entries alone', async () => {
  const schedule = newSchedule()
  await schedule.defer(['customer:1'], 1000)
  await schedule.defer(['customer:1'], 9000)
  assert.deepEqual((await schedule.claimDue(10, 1000)).views, ['customer:1'])
  await schedule.defer(['customer:3'], 500)
  await schedule.clear(['customer:3'])
  assert.deepEqual((await schedule.claimDue(10, 600)).views, ['customer:3'])
})

test('exhausted rounds: due after a doubling delay, given up after the last with their attempts and first failure', async () => {
  const schedule = newSchedule()
  const options = { maxRounds: 2, baseDelayMs: 1000 }
  const first = await schedule.recordFailure('customer:1', 3, { ...options, now: 10_000 })
  assert.deepEqual(first, { kind: 'scheduled', round: 1, dueAt: 11_000 })
  assert.deepEqual((await schedule.claimDue(10, 10_999)).views, [], 'not due before its delay')
  const second = await schedule.recordFailure('customer:1', 3, { ...options, now: 20_000 })
  assert.deepEqual(second, { kind: 'scheduled', round: 2, dueAt: 22_000 })
  const last = await schedule.recordFailure('customer:1', 3, { ...options, now: 30_000 })
  assert.deepEqual(last, {
    kind: 'give-up',
    record: { rounds: 3, attempts: 9, firstFailedAt: new Date(10_000).toISOString() },
  })
  const again = await schedule.recordFailure('customer:1', 1, { ...options, now: 40_000 })
  assert.deepEqual(again, { kind: 'scheduled', round: 1, dueAt: 41_000 }, 'forgotten once given up')
})

test('rounds failed at once by several members are each counted', async () => {
  const prefix = testRedis.newPrefix('retry-schedule')
  // Two consumers sharing the schedule, failing one view concurrently (across a rebalance).
  const members = [new RetrySchedule(testRedis.redis, prefix), new RetrySchedule(testRedis.redis, prefix)]
  const options = { maxRounds: 100, baseDelayMs: 1000, now: 0 }
  const decisions = await Promise.all(
    Array.from({ length: 10 }, (_, i) => members[i % 2]?.recordFailure('product:7', 2, options)),
  )
  const rounds = decisions.map((d) => (d?.kind === 'scheduled' ? d.round : 0)).sort((a, b) => a - b)
  assert.deepEqual(rounds, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
})
