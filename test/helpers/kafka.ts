/** Reading what landed on a topic, for assertions: every message from the earliest offset. */
import { type BaseOptions, Consumer, stringDeserializers } from '@platformatic/kafka'
import { baseClientOptions, type KafkaConfig } from '../../src/kafka/connection.ts'
import { testInfra, uniqueName } from './env.ts'

/** A message as a test sees it. */
export interface ReadMessage {
  readonly key: string
  readonly value: string | null
  readonly partition: number
  readonly offset: bigint
  readonly headers: Record<string, string>
}

/**
 * Reads `topic` from the earliest offset with a fresh group until `count` messages arrived (then
 * waits `settleMs` more, to catch extras), or until nothing came for `idleMs`.
 */
export function readTopic(topic: string, options: ReadOptions = {}): Promise<ReadMessage[]> {
  return readTopicFrom(testInfra.kafkaBrokers, topic, options)
}

/** What {@link readTopic} waits for. */
export interface ReadOptions {
  readonly count?: number
  readonly idleMs?: number
  readonly settleMs?: number
}

/** {@link readTopic} on a given broker (tests that run their own). */
export function readTopicFrom(
  brokers: string[],
  topic: string,
  options: ReadOptions = {},
): Promise<ReadMessage[]> {
  return readWith({ clientId: 'test-reader', bootstrapBrokers: brokers }, topic, options)
}

/** {@link readTopic} connecting as the pipeline does with `config` (its brokers, TLS and SASL). */
export function readTopicAs(
  config: KafkaConfig,
  topic: string,
  options: ReadOptions = {},
): Promise<ReadMessage[]> {
  return readWith(baseClientOptions(config, 'test-reader'), topic, options)
}

async function readWith(
  connection: BaseOptions,
  topic: string,
  options: ReadOptions,
): Promise<ReadMessage[]> {
  const consumer = new Consumer({
    ...connection,
    groupId: uniqueName('test-reader'),
    deserializers: stringDeserializers,
    maxWaitTime: 200,
  })
  const messages: ReadMessage[] = []
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
    const idleMs = options.idleMs ?? 3000
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout
      const arm = (ms: number) => {
        clearTimeout(timer)
        timer = setTimeout(resolve, ms)
      }
      arm(idleMs)
      stream.on('error', reject)
      stream.on('data', (message) => {
        const headers: Record<string, string> = {}
        for (const [name, value] of message.headers) headers[String(name)] = String(value)
        messages.push({
          key: String(message.key),
          value:
            message.value === undefined || message.value === null || message.value === ''
              ? null
              : String(message.value),
          partition: message.partition,
          offset: message.offset,
          headers,
        })
        const reached = options.count !== undefined && messages.length >= options.count
        arm(reached ? (options.settleMs ?? 500) : idleMs)
      })
    })
    await stream.close()
  } finally {
    await consumer.close(true)
  }
  return messages
}
