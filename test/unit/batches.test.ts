/** Micro-batches over a consumer stream: what they commit and what they tell a watchdog. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type BatchProgress, processBatches } from '../../src/kafka/batches.ts'
import type { KafkaMessage, KafkaStream } from '../../src/kafka/consumer.ts'

/** A stream handing out `count` records of one partition, recording what is committed. */
function fakeStream(count: number) {
  const committed: bigint[] = []
  const messages = Array.from({ length: count }, (_, i) => ({
    topic: 't',
    partition: 0,
    offset: BigInt(i),
    commit: async () => {
      committed.push(BigInt(i))
    },
  }))
  let next = 0
  const stream = {
    offsetsCommitted: new Map<string, bigint>(),
    get readableLength() {
      return Math.min(2, messages.length - next)
    },
    close: async () => undefined,
    [Symbol.asyncIterator]: () => ({
      next: async () =>
        next < messages.length ? { done: false, value: messages[next++] } : { done: true, value: undefined },
    }),
  }
  return { stream: stream as unknown as KafkaStream, committed }
}

test('progress shows a batch in hand from its first record until it is committed, and counts batches', async () => {
  const { stream, committed } = fakeStream(5)
  const progress: BatchProgress = { inHand: false, finished: 0 }
  const seen: Array<{ size: number; inHand: boolean; finished: number }> = []
  await processBatches(
    stream,
    async (batch: readonly KafkaMessage[]) => {
      seen.push({ size: batch.length, inHand: progress.inHand, finished: progress.finished })
    },
    { maxBatch: 3, progress },
  )
  assert.deepEqual(seen, [
    { size: 3, inHand: true, finished: 0 },
    { size: 2, inHand: true, finished: 1 },
  ])
  assert.deepEqual(committed, [2n, 4n], 'the last record of each batch')
  assert.deepEqual(progress, { inHand: false, finished: 2 })
})
