/**
 * How a consumer group shares partitions, against a real broker. A member that subscribes to nothing
 * (what a member left over after a failed close looks like: no stream, still in the group) must not
 * starve the others, even as the group's leader; and a member the group gives no partition (more
 * members than partitions) is not taken for a stalled one. The first was the CI chaos failure after a
 * broker restart: every partition of the refresh topic unassigned for minutes.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../../src/config/env.ts'
import { createConsumer } from '../../src/kafka/consumer.ts'
import { type Stage, startStage } from '../../src/services/consumer/stage-runner.ts'
import { createSourceTopics } from '../helpers/consumer-process.ts'
import { uniqueName } from '../helpers/env.ts'
import { captureLogs, testConfig } from '../helpers/producer.ts'
import { sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const stages: Stage[] = []
after(async () => {
  await Promise.all(stages.map((stage) => stage.stop()))
})

/** The stages of this file: members of `groupId` reading the customer topic, noting each record's key and each stall. */
function readers(config: Config, groupId: string) {
  const { logger, lines } = captureLogs()
  /** Warnings and errors logged so far, to tell whether a stage was replaced. */
  const warnings = () => lines.filter((line) => Number(line.level) >= 40).map((line) => line.msg)
  const handled = new Set<string>()
  let stalls = 0
  const join = async (): Promise<Stage> => {
    const stage = startStage({
      name: 'test-stage',
      config,
      groupId,
      topics: [config.TOPIC_CUSTOMERS],
      maxBatch: 10,
      logger,
      handle: async (batch) => {
        for (const message of batch) handled.add(message.key ?? '')
      },
      onStall: () => {
        stalls++
      },
    })
    stages.push(stage)
    await stage.firstJoin
    return stage
  }
  return { join, handled, warnings, stalls: () => stalls }
}

test('a member that reads nothing, leading the group, does not keep the partitions from the members that read them', {
  timeout: 180_000,
}, async () => {
  const config = testConfig({ KAFKA_SESSION_TIMEOUT_MS: '6000' })
  await createSourceTopics(config)
  const groupId = uniqueName('assign')
  // Joins first, so the broker makes it the leader; it subscribes to no topic.
  const idle = createConsumer(config, {
    groupId,
    role: 'idle',
    sessionTimeoutMs: 6000,
    heartbeatIntervalMs: 500,
  })
  // Whether it led the generations the reading member joined: the test means nothing otherwise.
  const led: boolean[] = []
  idle.on('consumer:group:join', (event: { isLeader?: boolean }) => led.push(event.isLeader === true))
  const writer = sourceWriter(config)
  try {
    await idle.joinGroup({})
    const { join, handled } = readers(config, groupId)
    await join()
    const keys = Array.from({ length: 12 }, (_, i) => `c${i}`)
    for (const key of keys) await writer.writeRaw(config.TOPIC_CUSTOMERS, key, 'x')
    await waitFor(
      'every record to be handled by the reading member',
      () => handled.size === keys.length,
      60_000,
    )
    assert.deepEqual([...handled].sort(), [...keys].sort())
    assert.ok(
      led.length >= 2 && led.every(Boolean),
      `the idle member led every generation (${led.join(', ')})`,
    )
  } finally {
    await writer.close()
    await idle.close(true).catch(() => undefined)
  }
})

test('a member given no partition (more members than partitions) is not replaced as stalled', {
  timeout: 180_000,
}, async () => {
  const silenceMs = 1500
  const config = testConfig({
    TOPIC_PARTITIONS: '1',
    CONSUMER_STALL_TIMEOUT_MS: String(silenceMs),
    KAFKA_SESSION_TIMEOUT_MS: '6000',
  })
  await createSourceTopics(config)
  const { join, handled, warnings, stalls } = readers(config, uniqueName('assign-idle'))
  await join()
  await join()
  // Several windows with one member holding the only partition and the other none.
  await sleep(silenceMs * 4)
  assert.equal(stalls(), 0, `no member replaced; warnings: ${warnings().join(' | ')}`)
  const writer = sourceWriter(config)
  try {
    await writer.writeRaw(config.TOPIC_CUSTOMERS, 'k', 'x')
    await waitFor('the record to be handled', () => handled.has('k'), 30_000)
  } finally {
    await writer.close()
  }
  assert.equal(stalls(), 0, `still no member replaced; warnings: ${warnings().join(' | ')}`)
  const standby = warnings().filter((w) => w.includes('no partition assigned to this member'))
  assert.equal(standby.length, 1, `the standby said so once; warnings: ${warnings().join(' | ')}`)
})
