/** Micro-batches over a consumer stream: what they commit and what they tell a watchdog. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type BatchProgress, OffsetContinuity, processBatches } from '../../src/kafka/batches.ts'
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

test('offset continuity: a record past one never read is reported; re-reads and other partitions are not', () => {
  const continuity = new OffsetContinuity()
  const at = (partition: number, offset: number) =>
    ({ topic: 'refresh', partition, offset: BigInt(offset) }) as unknown as KafkaMessage
  assert.equal(
    continuity.check([at(0, 10), at(0, 11), at(1, 500)], 1),
    undefined,
    'first records: nothing to compare',
  )
  assert.equal(continuity.check([at(0, 11), at(0, 12), at(1, 501)], 1), undefined, 're-read 11, then on')
  assert.deepEqual(continuity.check([at(1, 502), at(0, 14)], 1), {
    partition: 'refresh:0',
    expected: 13n,
    read: 14n,
  })
})

test('offset continuity: a rebalance forgets what was read (the partition may have moved on elsewhere)', () => {
  const continuity = new OffsetContinuity()
  const at = (offset: number) =>
    ({ topic: 'refresh', partition: 3, offset: BigInt(offset) }) as unknown as KafkaMessage
  continuity.check([at(100)], 7)
  assert.equal(continuity.check([at(151)], 8), undefined)
  assert.deepEqual(continuity.check([at(153)], 8), { partition: 'refresh:3', expected: 152n, read: 153n })
})
