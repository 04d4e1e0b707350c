/**
 * The pipeline's producer: idempotent, acks=all, string or Buffer keys and values, and a `publish` that
 * tells where each message landed. The client reports one base offset per partition of a send, not one
 * offset per message, so `publish` picks every message's partition itself and counts from that base.
 */
import { murmur2, ProduceAcks, type ProduceResult, Producer, type Serializer } from '@platformatic/kafka'
import { ErrorCodes, PipelineError } from '../errors.ts'
import {
  baseClientOptions,
  describeKafkaError,
  type KafkaConfig,
  kafkaTimeouts,
  withDeadline,
} from './connection.ts'

/** A message key: the entity or view id. */
export type MessageKey = string | Buffer
/** A message value; `null` (or a missing value) is a tombstone, the deletion of the key in a table. */
export type MessageValue = string | Buffer | null
/** A header value. */
export type HeaderValue = string | Buffer

/** The producer {@link createProducer} returns. */
export type KafkaProducer = Producer<MessageKey, MessageValue, string, HeaderValue>

/** One message to {@link publish}. */
export interface OutgoingMessage {
  readonly topic: string
  readonly key?: MessageKey | undefined
  /** `null` or absent: a tombstone. */
  readonly value?: MessageValue | undefined
  readonly headers?: Readonly<Record<string, HeaderValue>> | undefined
  /** Forces the partition; by default keyed messages go where the Java client would put them. */
  readonly partition?: number | undefined
  readonly timestamp?: bigint | undefined
}

/** Where one published message landed. */
export interface Delivery {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
}

/** Options of {@link publish}. */
export interface PublishOptions {
  /** Bound of the whole call; default {@link kafkaTimeouts}.operationMs. */
  readonly timeoutMs?: number
  /**
   * Messages are sent in sends of about this many bytes at most, in order, so no partition's batch
   * reaches the broker's `max.message.bytes` (1 MiB by default). Default 512 KiB.
   */
  readonly maxBatchBytes?: number
}

const toBytes = (data?: string | Buffer | null): Buffer | undefined =>
  data === undefined || data === null
    ? undefined
    : typeof data === 'string'
      ? Buffer.from(data, 'utf8')
      : data

const serializers = {
  key: toBytes,
  // `undefined` from a serializer is written as a null value: a real tombstone, not an empty payload.
  value: toBytes,
  headerKey: toBytes as Serializer<string>,
  headerValue: toBytes,
}

/**
 * Creates an idempotent producer (`acks=all`: a message is acknowledged once every in-sync replica has
 * it, and retries never write it twice) with the connection settings of `config`.
 *
 * @param role - client id suffix, e.g. `producer` or `dlq`
 */
export function createProducer(config: KafkaConfig, role: string): KafkaProducer {
  return new Producer<MessageKey, MessageValue, string, HeaderValue>({
    ...baseClientOptions(config, role),
    idempotent: true,
    acks: ProduceAcks.ALL,
    serializers,
  })
}

/**
 * A message whose value is `value` as JSON; `null` or `undefined` make a tombstone.
 *
 * @param topic - destination topic
 * @param key - the entity or view id
 */
export function jsonMessage(
  topic: string,
  key: MessageKey,
  value: unknown,
  headers?: Readonly<Record<string, HeaderValue>>,
): OutgoingMessage {
  return {
    topic,
    key,
    value: value === null || value === undefined ? null : JSON.stringify(value),
    ...(headers === undefined ? {} : { headers }),
  }
}

/**
 * Kafka's default partitioning of the Java client (murmur2 of the key bytes, made positive, modulo the
 * partition count), so a key lands on the same partition whoever produced it. The client's own default
 * makes the hash positive differently and disagrees for about half of the keys.
 */
export function partitionForKey(key: MessageKey, partitions: number): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
  return (murmur2(bytes) & 0x7fffffff) % partitions
}

/** Per producer and topic, where the next key-less message goes (spreads them like the client would). */
const roundRobin = new WeakMap<KafkaProducer, Map<string, number>>()

function nextRoundRobin(producer: KafkaProducer, topic: string, partitions: number): number {
  let counters = roundRobin.get(producer)
  if (counters === undefined) {
    counters = new Map()
    roundRobin.set(producer, counters)
  }
  const next = counters.get(topic) ?? 0
  counters.set(topic, next + 1)
  return next % partitions
}

// Measured without encoding: the client encodes every field itself, and encoding twice cost a few
// percent of a full sync.
const byteLength = (data?: string | Buffer | null): number =>
  data === undefined || data === null ? 0 : typeof data === 'string' ? Buffer.byteLength(data) : data.length

const messageBytes = (m: OutgoingMessage): number => {
  // 64 bytes stand for the record's own framing (lengths, varints, timestamps).
  let bytes = 64 + byteLength(m.key) + byteLength(m.value)
  if (m.headers) for (const name in m.headers) bytes += Buffer.byteLength(name) + byteLength(m.headers[name])
  return bytes
}

function chunk(messages: readonly OutgoingMessage[], maxBytes: number): OutgoingMessage[][] {
  const chunks: OutgoingMessage[][] = []
  let current: OutgoingMessage[] = []
  let size = 0
  for (const message of messages) {
    const bytes = messageBytes(message)
    if (current.length > 0 && size + bytes > maxBytes) {
      chunks.push(current)
      current = []
      size = 0
    }
    current.push(message)
    size += bytes
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}

async function partitionCounts(producer: KafkaProducer, topics: string[]): Promise<Map<string, number>> {
  const metadata = await producer.metadata({ topics })
  const counts = new Map<string, number>()
  for (const topic of topics) {
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0
    if (count < 1) throw new Error(`topic ${topic} has no partitions in the cluster metadata`)
    counts.set(topic, count)
  }
  return counts
}

/**
 * Offsets of a send: the result holds one base offset per topic-partition (the offset of the first of
 * this send's messages to it, in input order), so the n-th message to a partition is at base + n.
 */
function deliveries(
  sent: readonly { topic: string; partition: number }[],
  result: ProduceResult,
): Delivery[] {
  const base = new Map<string, bigint>()
  for (const { topic, partition, offset } of result.offsets ?? []) base.set(`${topic}:${partition}`, offset)
  const seen = new Map<string, bigint>()
  return sent.map(({ topic, partition }) => {
    const key = `${topic}:${partition}`
    const first = base.get(key)
    if (first === undefined) throw new Error(`the broker reported no offset for ${key}`)
    const index = seen.get(key) ?? 0n
    seen.set(key, index + 1n)
    return { topic, partition, offset: first + index }
  })
}

async function sendChunk(producer: KafkaProducer, messages: readonly OutgoingMessage[]): Promise<Delivery[]> {
  const counts = await partitionCounts(producer, [...new Set(messages.map((m) => m.topic))])
  const prepared = messages.map((m) => {
    const count = counts.get(m.topic) ?? 1
    // The client takes a partition beyond the count modulo the count; doing it here keeps the report true.
    const partition =
      m.partition === undefined
        ? m.key === undefined
          ? nextRoundRobin(producer, m.topic, count)
          : partitionForKey(m.key, count)
        : m.partition % count
    return {
      topic: m.topic,
      partition,
      ...(m.key === undefined ? {} : { key: m.key }),
      ...(m.value === undefined || m.value === null ? {} : { value: m.value }),
      ...(m.headers === undefined ? {} : { headers: { ...m.headers } }),
      ...(m.timestamp === undefined ? {} : { timestamp: m.timestamp }),
    }
  })
  return deliveries(prepared, await producer.send({ messages: prepared }))
}

/**
 * Publishes `messages` in order and returns, in the same order, the partition and offset of each.
 * Keyed messages go to Kafka's default partition of their key (as the Java client computes it), key-less
 * ones round-robin; `partition` on a message overrides both.
 *
 * @throws {PipelineError} `PIPELINE_KAFKA_PUBLISH_FAILED` when the client gives up (details.delivered
 *   counts the leading messages that are known to be written), or `PIPELINE_KAFKA_TIMEOUT` after
 *   `timeoutMs`, when the outcome is unknown. Republishing after either is safe for tables (same key,
 *   same value) but can duplicate log entries.
 */
export async function publish(
  producer: KafkaProducer,
  messages: readonly OutgoingMessage[],
  options: PublishOptions = {},
): Promise<Delivery[]> {
  if (messages.length === 0) return []
  const topics = [...new Set(messages.map((m) => m.topic))].join(', ')
  const delivered: Delivery[] = []
  const run = async (): Promise<Delivery[]> => {
    for (const part of chunk(messages, options.maxBatchBytes ?? 512 * 1024)) {
      try {
        delivered.push(...(await sendChunk(producer, part)))
      } catch (error) {
        throw new PipelineError(
          ErrorCodes.KAFKA_PUBLISH_FAILED,
          `Publishing ${messages.length} message(s) to ${topics} failed after ${delivered.length} were written: ${describeKafkaError(error)}`,
          { cause: error, details: { topics, delivered: delivered.length } },
        )
      }
    }
    return delivered
  }
  return withDeadline(run(), options.timeoutMs ?? kafkaTimeouts.operationMs, `publish to ${topics}`)
}
