/**
 * Reading a consumer stream in micro-batches: as many records as are already buffered (up to a
 * cap), handled together, then committed — the highest record per partition — once the handler
 * finished. Under load batches fill up, which makes Redis and HTTP work cheap per record; when idle
 * a single record is handled at once, which keeps latency low.
 */
import { commitMessage, type KafkaMessage, type KafkaStream } from './consumer.ts'

/** Options of {@link processBatches}. */
export interface BatchOptions {
  readonly maxBatch: number
  readonly signal?: AbortSignal
  /** Kept up to date while batches are read, for a watchdog to tell an idle reader from a busy one. */
  readonly progress?: BatchProgress
}

/** Whether a batch is in hand (from its first record until it is committed), and how many were done. */
export interface BatchProgress {
  inHand: boolean
  finished: number
}

/** The last record of each partition in `batch`: what committing the batch means. */
export function lastPerPartition(batch: readonly KafkaMessage[]): KafkaMessage[] {
  const last = new Map<string, KafkaMessage>()
  for (const message of batch) {
    const key = `${message.topic}:${message.partition}`
    const seen = last.get(key)
    if (seen === undefined || seen.offset < message.offset) last.set(key, message)
  }
  return [...last.values()]
}

/**
 * Handles `stream` batch by batch until it ends or `signal` aborts. A batch is committed only after
 * `handle` resolved; what `handle` or a commit throws is rethrown, uncommitted (a re-read is safe:
 * every handler of the pipeline is idempotent).
 */
export async function processBatches(
  stream: KafkaStream,
  handle: (batch: readonly KafkaMessage[]) => Promise<void>,
  options: BatchOptions,
): Promise<void> {
  const stop = (): void => void stream.close().catch(() => undefined)
  options.signal?.addEventListener('abort', stop, { once: true })
  // One iterator for the whole run: leaving a `for await` would destroy the stream.
  const iterator = stream[Symbol.asyncIterator]()
  try {
    while (!options.signal?.aborted) {
      const first = await iterator.next()
      if (first.done) return
      if (options.progress) options.progress.inHand = true
      const batch: KafkaMessage[] = [first.value]
      while (batch.length < options.maxBatch && stream.readableLength > 0) {
        const next = await iterator.next()
        if (next.done) break
        batch.push(next.value)
      }
      await handle(batch)
      await Promise.all(lastPerPartition(batch).map((message) => commitMessage(stream, message)))
      if (options.progress) {
        options.progress.inHand = false
        options.progress.finished++
      }
    }
  } finally {
    options.signal?.removeEventListener('abort', stop)
  }
}

/**
 * Watches one group member's records for offsets that were skipped: on a topic whose offsets have no
 * gaps (no compaction, no transactions: the refresh topic), the next record of a partition a member
 * reads is the one after the last it read, or an earlier one again (a re-read). A later one means
 * records were lost on the way, and committing it would pass over them for good. A rebalance
 * (another generation) forgets what was read: the partition may have moved on under another member.
 */
export class OffsetContinuity {
  #generation: number | undefined
  readonly #last = new Map<string, bigint>()

  /**
   * @returns the first skipped record of `batch` (its partition, the offset expected and the one
   *   read), or undefined when there is none
   */
  check(
    batch: readonly KafkaMessage[],
    generation: number,
  ): { readonly partition: string; readonly expected: bigint; readonly read: bigint } | undefined {
    if (generation !== this.#generation) {
      this.#last.clear()
      this.#generation = generation
    }
    for (const { topic, partition, offset } of batch) {
      const key = `${topic}:${partition}`
      const last = this.#last.get(key)
      if (last !== undefined && offset > last + 1n)
        return { partition: key, expected: last + 1n, read: offset }
      if (last === undefined || offset > last) this.#last.set(key, offset)
    }
    return undefined
  }
}
