/** High availability: a lease per source means one publisher per cycle, and a standby takes over. */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createLogger } from '../../src/observability/logger.ts'
import { startProducerService } from '../../src/services/producer/service.ts'
import { acquireLease, releaseLease } from '../../src/state/lease.ts'
import { connectRedis } from '../../src/state/redis.ts'
import { testInfra, uniqueName } from '../helpers/env.ts'
import { captureLogs, testConfig } from '../helpers/producer.ts'

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

test('a lease has one holder at a time, is renewable by its holder and expires when not renewed', async () => {
  const redis = await connectRedis(testInfra.redisUrl, createLogger({ service: 'test', level: 'silent' }))
  cleanups.push(() => redis.close())
  const key = uniqueName('lease')
  assert.equal(await acquireLease(redis, key, 'a', 400), true)
  assert.equal(await acquireLease(redis, key, 'b', 400), false)
  assert.equal(await acquireLease(redis, key, 'a', 400), true, 'the holder renews')
  await sleep(600)
  assert.equal(await acquireLease(redis, key, 'b', 400), true, 'an expired lease is free')
  await releaseLease(redis, key, 'a')
  assert.equal(await acquireLease(redis, key, 'a', 400), false, 'only the holder releases')
  await releaseLease(redis, key, 'b')
  assert.equal(await acquireLease(redis, key, 'a', 400), true)
})

const cyclesOf = (logs: ReturnType<typeof captureLogs>, source: string) =>
  logs.lines.filter((line) => line.source === source && /publish job completed|not modified/.test(line.msg))

test('two replicas: each source has one publisher per cycle, and the standby takes over', async () => {
  const prefix = uniqueName('ha')
  const config = testConfig({ POLL_INTERVAL_MS: '700', LEASE_TTL_MS: '3000' })
  const logsA = captureLogs('producer-a')
  const logsB = captureLogs('producer-b')
  const a = await startProducerService(config, logsA.logger, { prefix, owner: 'replica-a' })
  cleanups.push(() => a.close())
  await Promise.all(a.loops.map((loop) => loop.firstCycle))
  const b = await startProducerService(config, logsB.logger, { prefix, owner: 'replica-b' })
  let bClosed = false
  cleanups.push(() => (bClosed ? Promise.resolve() : b.close()))
  await sleep(2500)
  for (const source of ['crm', 'inventory']) {
    assert.ok(cyclesOf(logsA, source).length >= 2, `replica A polled ${source} on schedule`)
    assert.equal(cyclesOf(logsB, source).length, 0, `replica B never polled ${source} while A held the lease`)
  }
  const aCycles = cyclesOf(logsA, 'crm').length
  await a.close()
  const stoppedAt = Date.now()
  await Promise.race([Promise.all(b.loops.map((loop) => loop.firstCycle)), sleep(5000)])
  const takeoverMs = Date.now() - stoppedAt
  assert.ok(cyclesOf(logsB, 'crm').length >= 1, 'replica B took over crm')
  assert.ok(takeoverMs < 700 + 1500, `takeover within one interval (+ one tick), took ${takeoverMs} ms`)
  assert.equal(cyclesOf(logsA, 'crm').length, aCycles, 'A polls no more once stopped')
  await b.close()
  bClosed = true
})
