/**
 * A batch whose handling spans a group rebalance is reported to the stage before its commit (found
 * by the chaos run: a consumer kept delivering a batch whose partition had moved to another member,
 * and its older view landed after the new owner's newer one; stage 2 now re-requests such views).
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { KafkaMessage } from '../../src/kafka/consumer.ts'
import { createLogger } from '../../src/observability/logger.ts'
import { type Stage, startStage } from '../../src/services/consumer/stage-runner.ts'
import { createSourceTopics } from '../helpers/consumer-process.ts'
import { uniqueName } from '../helpers/env.ts'
import { testConfig } from '../helpers/producer.ts'
import { sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const stages: Stage[] = []
after(async () => {
  await Promise.all(stages.map((stage) => stage.stop()))
})

test('a batch handled across a rebalance is reported before its commit; batches without one are not', async () => {
  const config = testConfig({ KAFKA_SESSION_TIMEOUT_MS: '6000' })
  await createSourceTopics(config)
  const writer = sourceWriter(config)
  const logger = createLogger({ service: 'test', level: 'silent' })
  const groupId = uniqueName('rebalance')
  const handled: string[] = []
  const reported: string[][] = []
  let second: Stage | undefined
  const base = { name: 'test-stage', config, groupId, topics: [config.TOPIC_CUSTOMERS], maxBatch: 10, logger }
  const first = startStage({
    ...base,
    async handle(batch) {
      handled.push(...batch.map((m) => m.key ?? ''))
      if (batch.some((m) => m.key === 'during')) {
        // A second member joins while this batch is in hand: the group rebalances under it.
        second = startStage({ ...base, handle: async (b) => void handled.push(...b.map((m) => m.key ?? '')) })
        stages.push(second)
        await waitFor('the second member to join', () => second?.joined(), 60_000)
      }
    },
    onRebalanced: async (batch: readonly KafkaMessage[]) => void reported.push(batch.map((m) => m.key ?? '')),
  })
  stages.push(first)
  try {
    await first.firstJoin
    await writer.writeRaw(config.TOPIC_CUSTOMERS, 'before', 'x')
    await waitFor('the first record to be handled', () => handled.includes('before'), 30_000)
    assert.deepEqual(reported, [], 'no rebalance, no report')
    await writer.writeRaw(config.TOPIC_CUSTOMERS, 'during', 'x')
    await waitFor('the batch spanning the rebalance to be reported', () => reported.length > 0, 90_000)
    assert.deepEqual(reported, [['during']])
    await writer.writeRaw(config.TOPIC_CUSTOMERS, 'after', 'x')
    await waitFor('the last record to be handled', () => handled.includes('after'), 60_000)
    assert.deepEqual(reported, [['during']], 'a steady group reports nothing more')
  } finally {
    await writer.close()
  }
})
