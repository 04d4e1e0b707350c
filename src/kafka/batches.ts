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
