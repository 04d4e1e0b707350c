/**
 * A broker that stops during a cycle: the cycle fails with a clear error in bounded time, nothing
 * is marked published, and once the broker is back the next cycle publishes everything.
 * This test runs its own broker, so stopping it disturbs no other test.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { describeError } from '../../src/errors.ts'
import { startKafka } from '../../src/infra/kafka.ts'
import { cacheDir } from '../../src/infra/paths.ts'
import { freePort } from '../../src/infra/ports.ts'
import { runCycle } from '../../src/services/producer/cycle.ts'
import { createProducerRuntime } from '../../src/services/producer/service.ts'
import { uniqueName } from '../helpers/env.ts'
import { readTopicFrom } from '../helpers/kafka.ts'
import { captureLogs, testConfig } from '../helpers/producer.ts'

const dataDir = mkdtempSync(join(cacheDir, 'test-runs', 'outage-'))
const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined)
  rmSync(dataDir, { recursive: true, force: true })
})

test('a stopped broker fails the cycle with an error; after restart nothing is lost', {
  timeout: 180_000,
}, async () => {
  const port = await freePort()
  let kafka = await startKafka({ dataDir, port })
  cleanups.push(() => kafka.stop())
  const config = testConfig({ KAFKA_BROKERS: kafka.brokers.join(',') })
  const logs = captureLogs('producer')
  const runtime = await createProducerRuntime(config, logs.logger, { prefix: uniqueName('outage') })
  cleanups.push(() => runtime.close())
  const crm = runtime.sources.find((s) => s.name === 'crm')
  assert.ok(crm)

  await kafka.stop()
  const started = Date.now()
  await assert.rejects(runCycle(runtime.context, crm), (error: unknown) => {
    assert.match(describeError(error), /PIPELINE_KAFKA_(PUBLISH_FAILED|TIMEOUT)/)
    return true
  })
  assert.ok(Date.now() - started < 60_000, 'the failure comes in bounded time')
  assert.equal((await runtime.state.knownHashes('crm')).size, 0, 'nothing is marked published')

  kafka = await startKafka({ dataDir, port })
  const summary = await runCycle(runtime.context, crm)
  assert.equal(summary.published, 2)
  const messages = await readTopicFrom(kafka.brokers, config.TOPIC_CUSTOMERS, { count: 2 })
  assert.deepEqual(messages.map((m) => m.key).sort(), ['1', '2'])
})
