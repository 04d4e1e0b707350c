/**
 * The admin client, and the consumer lag the consumer's metrics and readiness report.
 */
import { Admin, ListOffsetTimestamps } from '@platformatic/kafka'
import { baseClientOptions, type KafkaConfig, kafkaTimeouts, withDeadline } from './connection.ts'

/** Creates an admin client (topic creation, configs, offsets, groups). */
export function createAdmin(config: KafkaConfig, role = 'admin'): Admin {
  return new Admin(baseClientOptions(config, role))
}

/** Lag of one partition for one consumer group. */
export interface PartitionLag {
  readonly topic: string
  readonly partition: number
  /** The offset the next produced record will get (the high watermark). */
  readonly logEndOffset: bigint
  /** The earliest retained offset. */
  readonly logStartOffset: bigint
  /** The group's committed offset (the next record it will read); `null` when it never committed. */
  readonly committedOffset: bigint | null
  /**
   * Records the group still has to read: log end − committed; where it never committed, log end − log
   * start (it starts at the earliest record). A number: lag is far below 2^53.
   */
  readonly lag: number
}

/**
 * The offset of every partition of `partitions` (topic → partition count) at `timestamp`:
 * `ListOffsetTimestamps.LATEST` (the log end) or `EARLIEST` (the log start), keyed `topic:partition`.
 */
export async function offsetsAt(
  admin: Admin,
  partitions: ReadonlyMap<string, number>,
  timestamp: bigint,
): Promise<Map<string, bigint>> {
  const listed = await admin.listOffsets({
    topics: [...partitions].map(([name, count]) => ({
      name,
      partitions: Array.from({ length: count }, (_, partitionIndex) => ({ partitionIndex, timestamp })),
    })),
  })
  const offsets = new Map<string, bigint>()
  for (const topic of listed) {
    for (const p of topic.partitions) offsets.set(`${topic.name}:${p.partitionIndex}`, p.offset)
  }
  return offsets
}

async function lagOf(admin: Admin, groupId: string, topics: readonly string[]): Promise<PartitionLag[]> {
  const metadata = await admin.metadata({ topics: [...topics] })
  const counts = new Map(topics.map((t) => [t, metadata.topics.get(t)?.partitionsCount ?? 0] as const))
  const [ends, starts, groups] = await Promise.all([
    offsetsAt(admin, counts, ListOffsetTimestamps.LATEST),
    offsetsAt(admin, counts, ListOffsetTimestamps.EARLIEST),
    admin.listConsumerGroupOffsets({
      groups: [
        { groupId, topics: topics.map((name) => ({ name, partitionIndexes: range(counts.get(name) ?? 0) })) },
      ],
    }),
  ])
  const committed = new Map<string, bigint>()
  for (const topic of groups.find((g) => g.groupId === groupId)?.topics ?? []) {
    // The broker answers -1 for a partition the group has no offset for.
    for (const p of topic.partitions)
      if (p.committedOffset >= 0n) committed.set(`${topic.name}:${p.partitionIndex}`, p.committedOffset)
  }
  const lags: PartitionLag[] = []
  for (const [topic, count] of counts) {
    for (const partition of range(count)) {
      const key = `${topic}:${partition}`
      const logEndOffset = ends.get(key) ?? 0n
      const logStartOffset = starts.get(key) ?? 0n
      const committedOffset = committed.get(key) ?? null
      const from = committedOffset ?? logStartOffset
      const lag = logEndOffset > from ? Number(logEndOffset - from) : 0
      lags.push({ topic, partition, logEndOffset, logStartOffset, committedOffset, lag })
    }
  }
  return lags
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

/**
 * Per-partition lag of `groupId` on `topics` (every partition of each topic, in topic then partition
 * order), from the log offsets and the group's committed offsets as the broker has them.
 *
 * @throws {PipelineError} `PIPELINE_KAFKA_TIMEOUT` when the broker does not answer within `timeoutMs`.
 */
export async function consumerLag(
  admin: Admin,
  groupId: string,
  topics: readonly string[],
  timeoutMs: number = kafkaTimeouts.operationMs,
): Promise<PartitionLag[]> {
  return withDeadline(lagOf(admin, groupId, topics), timeoutMs, `consumerLag(${groupId})`)
}
