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
