/**
 * A consumer stage whose fetches stop being answered is replaced by a new group member (the silent
 * stall the chaos runs hinted at: joined, idle, lag growing, nothing logged). The broker here is the
 * test's own, frozen with SIGSTOP so that a fetch in flight is never answered, which is what the
 * watchdog looks for; it must fire before the client's own request timeout (15 s) would. An idle but
 * healthy stage, and a paused one, must not be taken for stalled.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type LocalKafka, startKafka } from '../../src/infra/kafka.ts'
import { freePort } from '../../src/infra/ports.ts'
import { createLogger } from '../../src/observability/logger.ts'
import { type Stage, startStage } from '../../src/services/consumer/stage-runner.ts'
import { createSourceTopics } from '../helpers/consumer-process.ts'
import { uniqueName } from '../helpers/env.ts'
import { testConfig } from '../helpers/producer.ts'
import { sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const SILENCE_MS = 3000

let kafka: LocalKafka
const dataDir = mkdtempSync(join(tmpdir(), 'pipeline-stall-'))
before(async () => {
  kafka = await startKafka({ dataDir, port: await freePort(), readyTimeoutMs: 120_000 })
})
after(async () => {
  const pid = kafka?.child.pid
  if (pid !== undefined) process.kill(pid, 'SIGCONT')
  await kafka?.stop()
  rmSync(dataDir, { recursive: true, force: true })
})

test('a stage whose fetches go unanswered rejoins with a warning and a count; idle or paused it does not', {
  timeout: 300_000,
}, async () => {
  const config = testConfig({
    KAFKA_BROKERS: kafka.brokers.join(','),
    CONSUMER_STALL_TIMEOUT_MS: String(SILENCE_MS),
    KAFKA_SESSION_TIMEOUT_MS: '6000',
  })
  await createSourceTopics(config)
  const writer = sourceWriter(config)
  const lines: Array<{ msg: string; code?: string }> = []
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as { msg: string; code?: string })
      done()
    },
  })
  const logger = createLogger({ service: 'test', destination, pretty: false, level: 'info' })
  const handled: string[] = []
  let stalls = 0
  const stage: Stage = startStage({
    name: 'test-stage',
    config,
    groupId: uniqueName('stall'),
    topics: [config.TOPIC_CUSTOMERS],
    maxBatch: 10,
    logger,
    handle: async (batch) => void handled.push(...batch.map((m) => m.key ?? '')),
    onStall: () => stalls++,
  })
  try {
    await stage.firstJoin
    await writer.writeRaw(config.TOPIC_CUSTOMERS, 'before', 'x')
    await waitFor('the first record to be handled', () => handled.includes('before'), 60_000)

    // Idle and healthy (empty fetches answered every second), then paused: neither is a stall.
    await sleep(2 * SILENCE_MS)
    stage.pause()
    await sleep(2 * SILENCE_MS)
    stage.resume()
    await sleep(SILENCE_MS / 2)
    assert.equal(stalls, 0, 'an idle or paused stage is not stalled')

    // Frozen broker: the fetch in flight is never answered.
    process.kill(kafka.child.pid as number, 'SIGSTOP')
    try {
      await waitFor('the watchdog to replace the member', () => stalls > 0, 12_000)
    } finally {
      process.kill(kafka.child.pid as number, 'SIGCONT')
    }
    const warning = lines.find((line) => line.code === 'PIPELINE_KAFKA_CONSUMER_STALLED')
    assert.ok(warning, `a warning with its code:\n${lines.map((l) => l.msg).join('\n')}`)
    assert.match(warning.msg, /^test-stage: no fetch answered for \d+ s; rejoining with a new member$/)

    // The new member reads on.
    await writer.writeRaw(config.TOPIC_CUSTOMERS, 'after', 'x')
    await waitFor('a record produced after the stall to be handled', () => handled.includes('after'), 120_000)
  } finally {
    await stage.stop()
    await writer.close()
  }
})
