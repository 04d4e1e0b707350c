/** Messages as a stage reads them, for handler tests that feed a stage without a broker. */
import type { KafkaMessage } from '../../src/kafka/consumer.ts'
import type { OutgoingMessage } from '../../src/kafka/ports.ts'

/**
 * A function turning messages as published into messages as read from partition 0 of `topic`, at
 * offsets counting up from 1 across its calls.
 */
export function messageReader(topic: string): (message: OutgoingMessage) => KafkaMessage {
  let offset = 0n
  return (message) => {
    offset += 1n
    return {
      topic,
      partition: 0,
      offset,
      timestamp: BigInt(Date.now()),
      key: message.key,
      value: message.value === null ? null : Buffer.from(message.value as string),
      headers: new Map(),
      commit: async () => undefined,
    } as unknown as KafkaMessage
  }
}
