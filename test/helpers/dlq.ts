/** Reading the dead-letter topic in assertions: every entry parsed, with its key and headers. */
import type { Config } from '../../src/config/env.ts'
import type { DlqEntry } from '../../src/dlq/entry.ts'
import { type ReadOptions, readTopic } from './kafka.ts'

/** One message of the DLQ topic as a test sees it. */
export interface DlqRecord {
  readonly key: string
  readonly headers: Record<string, string>
  readonly entry: DlqEntry
}

/** Every entry of `config.TOPIC_DLQ` from the earliest offset (see {@link readTopic} for `options`). */
export async function readDlq(config: Config, options: ReadOptions = {}): Promise<DlqRecord[]> {
  const messages = await readTopic(config.TOPIC_DLQ, options)
  return messages.map((message) => ({
    key: message.key,
    headers: message.headers,
    entry: JSON.parse(message.value ?? 'null') as DlqEntry,
  }))
}
