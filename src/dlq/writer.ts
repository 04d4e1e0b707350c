/** Writes dead-letter entries to the DLQ topic, acknowledged by Kafka before the caller moves on. */
import type { DeadLetterWriter, MessagePublisher } from '../kafka/ports.ts'
import { toDlqMessage } from './entry.ts'

/** A {@link DeadLetterWriter} producing to `topic` through `publisher`. */
export function createDlqWriter(publisher: MessagePublisher, topic: string): DeadLetterWriter {
  return {
    async write(entries) {
      if (entries.length === 0) return
      await publisher.send(
        entries.map((entry) => {
          const message = toDlqMessage(entry)
          return { topic, key: message.key, value: message.value, headers: message.headers }
        }),
      )
    },
  }
}
