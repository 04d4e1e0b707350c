/**
 * The pipeline's consumer: a group member that never commits on its own. Offsets are committed by the
 * code that processed a message, once the message's effects are durable (design §5), so a crash
 * re-delivers what was not finished and never skips it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type Message, type MessagesStream } from '@platformatic/kafka'
import { subscribedRoundRobin } from './assignor.ts'
import { baseClientOptions, type KafkaConfig, withDeadline } from './connection.ts'

/** Key as text; `null` for a key-less record. */
export type ConsumedKey = string | null
/** Value as raw bytes (parsing is the caller's, so a poison record cannot break the stream); `null` is a tombstone. */
export type ConsumedValue = Buffer | null

/** The consumer {@link createConsumer} returns. */
export type KafkaConsumer = Consumer<ConsumedKey, ConsumedValue, string, string>
/** The stream {@link openStream} returns: a Node.js Readable of {@link KafkaMessage} (async-iterable). */
export type KafkaStream = MessagesStream<ConsumedKey, ConsumedValue, string, string>
/** One consumed record. `offset` is a bigint; `commit()` commits `offset + 1` for its partition. */
export type KafkaMessage = Message<ConsumedKey, ConsumedValue, string, string>

/** Options of {@link createConsumer}. */
export interface ConsumerOptions {
  readonly groupId: string
  /** Client id suffix, e.g. `consumer-stage1`. */
  readonly role: string
  /** A member silent this long is dropped and its partitions move; default 30 s. */
  readonly sessionTimeoutMs?: number
  /** Default 3 s (a tenth of the session timeout). */
  readonly heartbeatIntervalMs?: number
  /** How long members get to rejoin during a rebalance; default 60 s. */
  readonly rebalanceTimeoutMs?: number
  /**
   * Longest a fetch waits for new records. Short, because closing a stream waits for the fetch in
   * flight; default 1 s.
   */
  readonly maxWaitTimeMs?: number
  /** Records buffered ahead of the reader (per stream); default 256. */
  readonly highWaterMark?: number
  /**
   * Most bytes one fetch brings, all partitions together; default {@link DEFAULT_FETCH_MAX_BYTES}.
   * Everything a fetch brings is pushed into the stream at once, whatever `highWaterMark` says.
   */
  readonly fetchMaxBytes?: number
}

/**
 * Default bound of one fetch: 2 MiB. The client's own default, 50 MB per fetch and per partition,
 * reads a whole backlog of small records in one go, and each record then lives as JS objects several
 * times its size (110k source records: over 1 GB of consumer RSS). 2 MiB still carries thousands of
 * typical records, more than a batch.
 */
export const DEFAULT_FETCH_MAX_BYTES = 2 * 1024 * 1024

// The client passes `undefined` to a deserializer for a null key or value: keep that as an explicit null.
const deserializers = {
  key: (data?: Buffer): ConsumedKey => (data === undefined ? null : data.toString('utf8')),
  value: (data?: Buffer): ConsumedValue => data ?? null,
  headerKey: (data?: Buffer): string => data?.toString('utf8') ?? '',
  headerValue: (data?: Buffer): string => data?.toString('utf8') ?? '',
}

/**
 * Creates a group consumer with autocommit off. It joins the group on {@link openStream}.
 * Close it with `consumer.close(true)` (or close its streams first): without `force` the client refuses
 * to leave the group while a stream is open.
 */
export function createConsumer(config: KafkaConfig, options: ConsumerOptions): KafkaConsumer {
  return new Consumer<ConsumedKey, ConsumedValue, string, string>({
    ...baseClientOptions(config, options.role),
    groupId: options.groupId,
    autocommit: false,
    deserializers,
    sessionTimeout: options.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: options.heartbeatIntervalMs ?? 3_000,
    rebalanceTimeout: options.rebalanceTimeoutMs ?? 60_000,
    maxWaitTime: options.maxWaitTimeMs ?? 1_000,
    highWaterMark: options.highWaterMark ?? 256,
    maxBytes: options.fetchMaxBytes ?? DEFAULT_FETCH_MAX_BYTES,
    // Partitions go to members that read them: a lingering member without a stream must not get any.
    // The assignor is an eager one: it ignores owned partitions, so the protocol is pinned to the
    // classic eager round robin (the client would also hand a cooperative protocol to it).
    protocols: [{ name: 'roundrobin', version: 1 }],
    partitionAssigner: subscribedRoundRobin,
  })
}

/** Options of {@link closeMember}. */
export interface CloseMemberOptions {
  /** How long the caller waits for the member to leave before it goes on without it. */
  readonly deadlineMs: number
  /** Pause between two tries of a close that failed. */
  readonly retryMs: number
  /** Tries in all, the first included. */
  readonly attempts: number
  /** Once aborted (the service is stopping), a failed close is not tried again. */
  readonly signal?: AbortSignal
  /** Told of each failed try; `last` when no further one follows. */
  readonly onFailure: (error: unknown, attempt: number, last: boolean) => void
}

/**
 * Closes a group member (leaving the group) and resolves once its first try ended, or after
 * `deadlineMs`, whichever comes first; never rejects. A try that fails is repeated in the background
 * (not once `signal` aborted), so the caller joins again at once: the client's close can fail closing
 * the member's streams or connections, before it stops heartbeats, and such a member lingers in the
 * group with no stream, answering heartbeats, until its client is closed.
 */
export async function closeMember(consumer: KafkaConsumer, options: CloseMemberOptions): Promise<void> {
  const failed = (error: unknown, attempt: number): void => {
    const last = attempt >= options.attempts || options.signal?.aborted === true
    options.onFailure(error, attempt, last)
    if (!last) void again(attempt + 1)
  }
  const again = async (attempt: number): Promise<void> => {
    // Unref'd: the pause alone does not keep a process alive.
    await sleep(options.retryMs, undefined, { ref: false })
    await consumer.close(true).catch((error: unknown) => failed(error, attempt))
  }
  const first = consumer.close(true).catch((error: unknown) => failed(error, 1))
  await withDeadline(first, options.deadlineMs, 'closing a consumer group member').catch((error: unknown) =>
    options.onFailure(error, 0, false),
  )
}

/** Where a stream starts reading a partition. */
export type StartFrom =
  /** The group's committed offset; the earliest retained record where the group has none (the default). */
  | 'committed'
  /** The earliest retained record, ignoring commits (replays, tools). */
  | 'earliest'
  /** Only records produced from now on, ignoring commits. */
  | 'latest'

/** Options of {@link openStream}. */
export interface OpenStreamOptions {
  readonly topics: readonly string[]
  /** Default `committed`. */
  readonly from?: StartFrom
}

/**
 * Joins the group (resolving once partitions are assigned) and returns the stream of its records with
 * manual commits: call {@link commitMessage} after a record's effects are durable.
 * `stream.pause()` stops new fetches (records already buffered, or arriving from the fetch in flight
 * within maxWaitTime, are still delivered) and `stream.resume()` restarts them; group membership and
 * heartbeats carry on meanwhile.
 */
export async function openStream(consumer: KafkaConsumer, options: OpenStreamOptions): Promise<KafkaStream> {
  const from = options.from ?? 'committed'
  return consumer.consume({
    topics: [...options.topics],
    autocommit: false,
    // The client's default is `latest`, which ignores the group's commits: `committed` is what resumes.
    mode: from,
    // Where a partition has no commit yet (a new group or a new partition), start at the beginning: a
    // table read from `latest` would miss every key that has not changed since.
    fallbackMode: 'earliest',
  })
}

/**
 * Commits `message.offset + 1` for its partition (the next record to read) and resolves once the broker
 * has it. Never moves the group backwards: a record at or below what `stream` already committed for its
 * partition is skipped (the client merges only commits that are in flight together, and a later commit
 * of a lower offset would otherwise rewind the group).
 */
export async function commitMessage(stream: KafkaStream, message: KafkaMessage): Promise<void> {
  const committed = stream.offsetsCommitted.get(`${message.topic}:${message.partition}`)
  if (committed !== undefined && committed > message.offset) return
  await message.commit()
}

/**
 * Reads `stream` one record at a time: runs `handle`, then commits the record, so a record is committed
 * only after its handler finished. Stops when the stream ends (closed) or when `signal` aborts, and
 * rethrows what `handle` or a commit throws (the record is then not committed).
 */
export async function processEach(
  stream: KafkaStream,
  handle: (message: KafkaMessage) => Promise<void> | void,
  signal?: AbortSignal,
): Promise<void> {
  const stop = (): void => void stream.close().catch(() => {})
  signal?.addEventListener('abort', stop, { once: true })
  try {
    if (signal?.aborted) return stop()
    for await (const message of stream) {
      if (signal?.aborted) break
      await handle(message)
      await commitMessage(stream, message)
    }
  } finally {
    signal?.removeEventListener('abort', stop)
  }
}
