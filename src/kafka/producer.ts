/**
 * The pipeline's producer: idempotent, acks=all, string or Buffer keys and values, and a `publish` that
 * tells where each message landed. The client reports one base offset per partition of a send, not one
 * offset per message, so `publish` picks every message's partition itself and counts from that base.
 */
import { ProduceAcks, type ProduceResult, Producer, type Serializer } from '@platformatic/kafka'
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
   * A send holds at most about this many bytes for any one partition, so no partition's batch
   * reaches the broker's `max.message.bytes` (1 MiB by default); more go in further sends, in
   * order. Default 768 KiB.
   */
  readonly maxBatchBytes?: number
}

const toBytes = (data?: string | Buffer | null): Buffer | undefined =>
  data === undefined || data === null
    ? undefined
    : typeof data === 'string'
      ? Buffer.from(data, 'utf8')
      : data

/**
 * Encodes header names and short header values once: every message of a source carries the same
 * few (`source`, `schema-version`, …), and encoding them per message was a measurable share of a
 * full sync. Bounded, so unusual traffic cannot grow it without limit; what does not fit is
 * encoded per call as before.
 */
function cachedBytes(
  maxEntries: number,
  maxLength: number,
): (data?: string | Buffer | null) => Buffer | undefined {
  const cache = new Map<string, Buffer>()
  return (data) => {
    if (typeof data !== 'string' || data.length > maxLength) return toBytes(data)
    let bytes = cache.get(data)
    if (bytes === undefined) {
      bytes = Buffer.from(data, 'utf8')
      if (cache.size < maxEntries) cache.set(data, bytes)
    }
    return bytes
  }
}

const serializers = {
  key: toBytes,
  // `undefined` from a serializer is written as a null value: a real tombstone, not an empty payload.
  value: toBytes,
  headerKey: cachedBytes(256, 64) as Serializer<string>,
  // Hashes and timestamps are longer than this and differ per message: not worth a cache entry.
  headerValue: cachedBytes(256, 16),
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

/**
 * The murmur2 hash of Kafka's Java client (`Utils.murmur2`), as a signed 32-bit integer. In 32-bit
 * integer arithmetic: the client library's own version computes it with BigInts, several times slower.
 */
export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995
  const length = data.length
  let h = 0x9747b28c ^ length
  const whole = length & ~3
  for (let i = 0; i < whole; i += 4) {
    let k = data.readInt32LE(i)
    k = Math.imul(k, m)
    k ^= k >>> 24
    k = Math.imul(k, m)
    h = Math.imul(h, m) ^ k
  }
  const tail = length & 3
  if (tail > 0) {
    if (tail === 3) h ^= (data[whole + 2] ?? 0) << 16
    if (tail >= 2) h ^= (data[whole + 1] ?? 0) << 8
    h ^= data[whole] ?? 0
    h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
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

/** A message as handed to the client: partition chosen, key already bytes (it was hashed as bytes). */
interface Prepared {
  readonly topic: string
  readonly partition: number
  readonly key?: Buffer | string
  readonly value?: string | Buffer
  readonly headers?: Readonly<Record<string, HeaderValue>>
  readonly timestamp?: bigint
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
 * Picks every message's partition (the report's offsets depend on knowing it) and cuts the list, in
 * order, into sends in which no partition gets more than `maxBytes`.
 */
function prepare(
  producer: KafkaProducer,
  messages: readonly OutgoingMessage[],
  counts: ReadonlyMap<string, number>,
  maxBytes: number,
): Prepared[][] {
  const sends: Prepared[][] = []
  let current: Prepared[] = []
  let bytes = new Map<string, number>()
  for (const m of messages) {
    const count = counts.get(m.topic) ?? 1
    let key: Buffer | string | undefined = m.key
    let partition: number
    if (m.partition !== undefined) {
      // The client takes a partition beyond the count modulo the count; doing it here keeps the report true.
      partition = m.partition % count
    } else if (key === undefined) {
      partition = nextRoundRobin(producer, m.topic, count)
    } else {
      if (typeof key === 'string') key = Buffer.from(key, 'utf8')
      partition = (murmur2(key) & 0x7fffffff) % count
    }
    const slot = `${m.topic}\0${partition}`
    const size = messageBytes(m)
    const filled = bytes.get(slot) ?? 0
    if (current.length > 0 && filled + size > maxBytes) {
      sends.push(current)
      current = []
      bytes = new Map()
    }
    bytes.set(slot, (bytes.get(slot) ?? 0) + size)
    const prepared: {
      topic: string
      partition: number
      key?: Buffer | string
      value?: string | Buffer
      headers?: Readonly<Record<string, HeaderValue>>
      timestamp?: bigint
    } = { topic: m.topic, partition }
    if (key !== undefined) prepared.key = key
    if (m.value !== undefined && m.value !== null) prepared.value = m.value
    if (m.headers !== undefined) prepared.headers = m.headers
    if (m.timestamp !== undefined) prepared.timestamp = m.timestamp
    current.push(prepared)
  }
  if (current.length > 0) sends.push(current)
  return sends
}

/**
 * Offsets of a send: the result holds one base offset per topic-partition (the offset of the first of
 * this send's messages to it, in input order), so the n-th message to a partition is at base + n.
 */
function deliveries(sent: readonly Prepared[], result: ProduceResult): Delivery[] {
  const next = new Map<string, bigint>()
  for (const { topic, partition, offset } of result.offsets ?? []) next.set(`${topic}\0${partition}`, offset)
  const out: Delivery[] = new Array(sent.length)
  for (let i = 0; i < sent.length; i++) {
    const { topic, partition } = sent[i] as Prepared
    const slot = `${topic}\0${partition}`
    const offset = next.get(slot)
    if (offset === undefined) throw new Error(`the broker reported no offset for ${topic}:${partition}`)
    next.set(slot, offset + 1n)
    out[i] = { topic, partition, offset }
  }
  return out
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
  const topicList = [...new Set(messages.map((m) => m.topic))]
  const topics = topicList.join(', ')
  const delivered: Delivery[] = []
  const run = async (): Promise<Delivery[]> => {
    try {
      const counts = await partitionCounts(producer, topicList)
      for (const part of prepare(producer, messages, counts, options.maxBatchBytes ?? 768 * 1024)) {
        const result = await producer.send({ messages: part })
        for (const delivery of deliveries(part, result)) delivered.push(delivery)
      }
    } catch (error) {
      throw new PipelineError(
        ErrorCodes.KAFKA_PUBLISH_FAILED,
        `Publishing ${messages.length} message(s) to ${topics} failed after ${delivered.length} were written: ${describeKafkaError(error)}`,
        { cause: error, details: { topics, delivered: delivered.length } },
      )
    }
    return delivered
  }
  return withDeadline(run(), options.timeoutMs ?? kafkaTimeouts.operationMs, `publish to ${topics}`)
}
