/**
 * Reading the DLQ topic (I/O): every retained entry, from the earliest offset up to the log end taken
 * when the read starts (entries written meanwhile are left for the next read). A throw-away group
 * that never commits does the reading, so nothing about the DLQ's consumers changes.
 */
import { randomBytes } from 'node:crypto'
import { ListOffsetTimestamps } from '@platformatic/kafka'
import type { Config } from '../config/env.ts'
import { ErrorCodes, PipelineError } from '../errors.ts'
import { createAdmin, offsetsAt } from '../kafka/admin.ts'
import { type KafkaConfig, kafkaTimeouts, withDeadline } from '../kafka/connection.ts'
import { createConsumer, type KafkaMessage, openStream } from '../kafka/consumer.ts'
import { DLQ_PARTITIONS } from '../kafka/topics.ts'
import { type DlqItem, parseDlqValue } from './item.ts'

/** What {@link readDlq} needs from the configuration. */
export type DlqReaderConfig = KafkaConfig & Pick<Config, 'TOPIC_DLQ' | 'CONSUMER_GROUP'>

/** The offsets of the DLQ's partition. */
export interface DlqBounds {
  readonly topic: string
  /** The earliest retained offset. */
  readonly earliest: bigint
  /** The offset the next entry will get. */
  readonly end: bigint
  /** False when the topic does not exist (nothing was ever dead-lettered). */
  readonly exists: boolean
}

/** Options of {@link readDlq}. */
export interface ReadDlqOptions {
  /** Stop once this offset was read (`pipeline dlq show`); default the end taken at the start. */
  readonly upTo?: bigint
  /** Bound of the whole read; default 120 s. */
  readonly timeoutMs?: number
}

/** The DLQ's entries and where its log starts and ends. */
export interface DlqRead extends DlqBounds {
  readonly items: DlqItem[]
}

/** The DLQ topic's earliest and end offsets (one partition: {@link DLQ_PARTITIONS}). */
export async function dlqBounds(config: DlqReaderConfig): Promise<DlqBounds> {
  const topic = config.TOPIC_DLQ
  const admin = createAdmin(config, 'dlq-reader')
  try {
    return await withDeadline(
      (async () => {
        if (!(await admin.listTopics()).includes(topic))
          return { topic, earliest: 0n, end: 0n, exists: false }
        const partitions = new Map([[topic, DLQ_PARTITIONS]])
        const [ends, starts] = await Promise.all([
          offsetsAt(admin, partitions, ListOffsetTimestamps.LATEST),
          offsetsAt(admin, partitions, ListOffsetTimestamps.EARLIEST),
        ])
        return {
          topic,
          earliest: starts.get(`${topic}:0`) ?? 0n,
          end: ends.get(`${topic}:0`) ?? 0n,
          exists: true,
        }
      })(),
      kafkaTimeouts.operationMs,
      `reading the offsets of ${topic}`,
    )
  } finally {
    await admin.close()
  }
}

/** The item of one consumed DLQ record. */
export function toItem(message: KafkaMessage): DlqItem {
  const headers: Record<string, string> = {}
  for (const [name, value] of message.headers) headers[name] = value
  const parsed = parseDlqValue(message.value === null ? null : message.value.toString('utf8'))
  const timestamp = Number(message.timestamp)
  return {
    topic: message.topic,
    offset: String(message.offset),
    timestamp: Number.isFinite(timestamp) ? new Date(timestamp).toISOString() : String(message.timestamp),
    key: message.key,
    headers,
    ...('entry' in parsed ? { entry: parsed.entry } : { entry: undefined, problem: parsed.problem }),
  }
}

/**
 * Reads the DLQ from its earliest retained entry to the end taken at the start (or to `upTo`).
 *
 * @throws {PipelineError} `PIPELINE_KAFKA_TIMEOUT` when the read does not finish within the timeout
 */
export async function readDlq(config: DlqReaderConfig, options: ReadDlqOptions = {}): Promise<DlqRead> {
  const bounds = await dlqBounds(config)
  const last = options.upTo !== undefined && options.upTo < bounds.end ? options.upTo : bounds.end - 1n
  if (!bounds.exists || bounds.end <= bounds.earliest || last < bounds.earliest)
    return { ...bounds, items: [] }
  const consumer = createConsumer(config, {
    groupId: `${config.CONSUMER_GROUP}.dlq-reader.${randomBytes(6).toString('hex')}`,
    role: 'dlq-reader',
    maxWaitTimeMs: 500,
    // Nothing to rebalance: a short session lets the broker forget the member soon after a crash.
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1_000,
  })
  const items: DlqItem[] = []
  const timeoutMs = options.timeoutMs ?? 120_000
  let timer: NodeJS.Timeout | undefined
  let timedOut = false
  try {
    const stream = await withDeadline(
      openStream(consumer, { topics: [bounds.topic], from: 'earliest' }),
      kafkaTimeouts.operationMs,
      `joining a reader group for ${bounds.topic}`,
    )
    timer = setTimeout(() => {
      timedOut = true
      void stream.close().catch(() => {})
    }, timeoutMs)
    for await (const message of stream) {
      if (message.offset > last) break
      items.push(toItem(message))
      if (message.offset >= last) break
    }
    await stream.close().catch(() => {})
  } finally {
    clearTimeout(timer)
    await consumer.close(true).catch(() => {})
  }
  if (timedOut) {
    throw new PipelineError(
      ErrorCodes.KAFKA_TIMEOUT,
      `Reading ${bounds.topic} did not reach offset ${last} within ${timeoutMs} ms (read ${items.length} entries; is the broker reachable?)`,
      { details: { topic: bounds.topic, read: items.length } },
    )
  }
  return { ...bounds, items }
}
