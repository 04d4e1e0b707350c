/**
 * Runs one consumer stage for as long as the service lives: join the group, handle batches, commit;
 * when the stream breaks (a failed commit during a rebalance destroys it, a broker goes away, a
 * handler throws), close the member and join again after a pause. Nothing is committed for a batch
 * that did not finish, so it is read again: every handler is idempotent.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../../config/env.ts'
import { describeError, ErrorCodes, PipelineError } from '../../errors.ts'
import { type BatchProgress, OffsetContinuity, processBatches } from '../../kafka/batches.ts'
import {
  closeMember,
  createConsumer,
  type KafkaConsumer,
  type KafkaMessage,
  type KafkaStream,
  openStream,
} from '../../kafka/consumer.ts'
import { ActedOffsets, type PartitionPosition, watchFetchLoop } from '../../kafka/fetch-watchdog.ts'
import type { Logger } from '../../observability/logger.ts'

/** How long closing a group member may take before the stage goes on without it. */
const CLOSE_DEADLINE_MS = 20_000
/** A close that failed is tried again this often, this many times in all (a minute and a half). */
const CLOSE_RETRY_MS = 5_000
const CLOSE_ATTEMPTS = 18

/** Options of {@link startStage}. */
export interface StageOptions {
  readonly name: string
  readonly config: Config
  readonly groupId: string
  readonly topics: readonly string[]
  readonly maxBatch: number
  readonly logger: Logger
  /** Handles one batch; `signal` aborts when the stage stops. */
  readonly handle: (batch: readonly KafkaMessage[], signal: AbortSignal) => Promise<void>
  /** Observes each batch's duration. */
  readonly onBatch?: (seconds: number) => void
  /**
   * Called before the commit of a batch whose handling spanned a group rebalance: its partitions may
   * have moved to another member meanwhile, which then handled the same records alongside this one.
   */
  readonly onRebalanced?: (batch: readonly KafkaMessage[]) => Promise<void>
  /** Called when the member went silent (see `fetch-watchdog.ts`) and is replaced by a new one. */
  readonly onStall?: () => void
  /**
   * The topics' offsets have no gaps (no compaction, no transactions): a member handed a record past
   * one it never read is replaced before the batch is handled, so nothing is committed over the gap.
   */
  readonly contiguous?: boolean
}

/** A running stage. */
export interface Stage {
  /** True while a group member is joined and reading. */
  joined(): boolean
  /** Resolves the first time the stage joined its group. */
  readonly firstJoin: Promise<void>
  pause(): void
  resume(): void
  /** Stops reading; the batch in hand finishes or, if it waits on Analytics, is abandoned uncommitted. */
  stop(): Promise<void>
}

/** Per partition assigned to this member: the offset its stream fetches next, and the partition's end. */
async function assignedPositions(consumer: KafkaConsumer, stream: KafkaStream): Promise<PartitionPosition[]> {
  const assigned = consumer.assignments ?? []
  if (assigned.length === 0) return []
  const [ends, commits] = await Promise.all([
    consumer.listOffsets({ topics: assigned.map((a) => a.topic) }),
    // The group's offsets as the broker holds them. Unknown when the coordinator does not answer:
    // the fetch positions are still worth a look.
    consumer.listCommittedOffsets({ topics: assigned }).catch(() => undefined),
  ])
  const positions: PartitionPosition[] = []
  for (const { topic, partitions } of assigned) {
    for (const partition of partitions) {
      const key = `${topic}:${partition}`
      const position = stream.offsetsToFetch.get(key)
      const end = ends.get(topic)?.[partition]
      if (position === undefined || end === undefined) continue
      // -1: nothing committed yet (the stream starts from the topic's start or end, not known here).
      const stored = commits?.get(topic)?.[partition]
      // The higher of the broker's and the stream's own: a stream that found its offset out of range
      // (retention passed it) moves on without committing, and that is no stall.
      const local = stream.offsetsCommitted.get(key)
      const committed =
        stored === undefined || stored < 0n
          ? undefined
          : local !== undefined && local > stored
            ? local
            : stored
      positions.push({ key, position, end, committed })
    }
  }
  return positions
}

/** Starts the stage loop. */
export function startStage(options: StageOptions): Stage {
  const stopping = new AbortController()
  const acted = new ActedOffsets()
  let stream: KafkaStream | undefined
  let paused = false
  let markJoined: () => void = () => undefined
  const firstJoin = new Promise<void>((resolve) => {
    markJoined = resolve
  })
  const run = async () => {
    let failures = 0
    while (!stopping.signal.aborted) {
      const consumer = createConsumer(options.config, {
        groupId: options.groupId,
        role: options.name,
        sessionTimeoutMs: options.config.KAFKA_SESSION_TIMEOUT_MS,
        heartbeatIntervalMs: Math.round(options.config.KAFKA_SESSION_TIMEOUT_MS / 10),
        // A batch is what is buffered when the last one ends: buffer up to a whole batch.
        highWaterMark: options.maxBatch,
      })
      let mine: KafkaStream | undefined
      // Set once this member is being closed: a close may still be retried in the background, and
      // what its client reports then is about a member the stage already left behind.
      let retired = false
      // The client reports a failed background rejoin (after a heartbeat error) as an 'error' event:
      // unheard, it kills the process (seen when Redis and Kafka restarted). The member is unusable
      // then, so its stream is closed and the loop joins again with a fresh one.
      consumer.on('error', (error: unknown) => {
        // Kept listening even when retired: an 'error' event nobody hears kills the process.
        if (retired) return
        options.logger.warn(
          { stage: options.name, group: options.groupId },
          `${options.name}: group membership failed (${describeError(error)}); rejoining`,
        )
        void mine?.close().catch(() => undefined)
      })
      // A member that fails silently (no heartbeat answered, or fetches no longer answered while it
      // should be reading) would hold its partitions for ever with lag growing: replace it.
      const stalled = (what: string, starved: readonly PartitionPosition[] = []): void => {
        if (retired) return
        acted.remember(starved)
        options.logger.warn(
          { stage: options.name, group: options.groupId, code: ErrorCodes.KAFKA_CONSUMER_STALLED },
          `${options.name}: ${what}; rejoining with a new member`,
        )
        options.onStall?.()
        void mine?.close().catch(() => undefined)
      }
      consumer.on('consumer:heartbeat:stalled', (event: { stalledFor?: number; lastError?: unknown }) => {
        const cause = event.lastError === undefined ? '' : ` (last error: ${describeError(event.lastError)})`
        stalled(`no heartbeat answered for ${Math.round((event.stalledFor ?? 0) / 1000)} s${cause}`)
      })
      try {
        stream = await openStream(consumer, { topics: options.topics })
        mine = stream
        if (paused) stream.pause()
        const watched = stream
        const progress: BatchProgress = { inHand: false, finished: 0 }
        const continuity = options.contiguous ? new OffsetContinuity() : undefined
        watchFetchLoop(watched, {
          silenceMs: options.config.CONSUMER_STALL_TIMEOUT_MS,
          paused: () => paused,
          // An array once the group answered, empty when it gave this member nothing; null before,
          // which is judged as usual.
          unassigned: () => consumer.assignments?.every((a) => a.partitions.length === 0) ?? false,
          onUnassigned: () =>
            options.logger.warn(
              { stage: options.name, group: options.groupId },
              `${options.name}: no partition assigned to this member for ${Math.round(options.config.CONSUMER_STALL_TIMEOUT_MS / 1000)} s; it waits as a standby (more members than partitions). If every member of ${options.groupId} says so, the group's leader assigns nothing: restart the consumers`,
            ),
          positions: async () => acted.unjudged(await assignedPositions(consumer, watched)),
          activity: () => ({ ...progress }),
          onStall: stalled,
        })
        markJoined()
        failures = 0
        options.logger.info(
          { stage: options.name, group: options.groupId, topics: options.topics },
          `${options.name}: joined ${options.groupId}`,
        )
        await processBatches(
          stream,
          async (batch) => {
            const started = performance.now()
            const generation = consumer.generationId
            const skipped = continuity?.check(batch, generation)
            if (skipped !== undefined) {
              options.onStall?.()
              throw new PipelineError(
                ErrorCodes.KAFKA_RECORDS_SKIPPED,
                `${options.name}: ${skipped.partition} handed offset ${skipped.read} after ${skipped.expected - 1n}; records were skipped on the way (or another member read them between two rebalances), so nothing past them is committed and a new member reads on from the group's offset`,
              )
            }
            await options.handle(batch, stopping.signal)
            if (consumer.generationId !== generation) await options.onRebalanced?.(batch)
            options.onBatch?.((performance.now() - started) / 1000)
          },
          { maxBatch: options.maxBatch, signal: stopping.signal, progress },
        )
      } catch (error) {
        if (!stopping.signal.aborted) {
          failures++
          options.logger.error(
            { stage: options.name, group: options.groupId, topics: options.topics, failures },
            `${options.name}: ${describeError(error)}; rejoining (the unfinished batch will be read again)`,
          )
        }
      } finally {
        stream = undefined
        retired = true
        // Bounded: a member whose broker went away may never finish leaving, and a stage waiting on it
        // would never join again (chaos runs ended with consumers silent after a broker restart).
        await closeMember(consumer, {
          deadlineMs: CLOSE_DEADLINE_MS,
          retryMs: CLOSE_RETRY_MS,
          attempts: CLOSE_ATTEMPTS,
          signal: stopping.signal,
          onFailure: (error, attempt, last) => {
            const next = last
              ? 'given up: it may stay in the group, with no partition (see assignor.ts), until the process ends'
              : attempt === 0
                ? stopping.signal.aborted
                  ? 'the stage stops without it'
                  : 'joining again with a new member while it closes'
                : `trying again in ${CLOSE_RETRY_MS / 1000} s`
            options.logger.warn(
              { stage: options.name, group: options.groupId, attempt },
              `${options.name}: closing the old group member: ${describeError(error)}; ${next}`,
            )
          },
        })
      }
      if (!stopping.signal.aborted) {
        await sleep(Math.min(250 * 2 ** failures, 10_000), undefined, { signal: stopping.signal }).catch(
          () => undefined,
        )
      }
    }
  }
  const running = run()
  return {
    joined: () => stream !== undefined,
    firstJoin,
    pause() {
      paused = true
      stream?.pause()
    },
    resume() {
      paused = false
      stream?.resume()
    },
    async stop() {
      stopping.abort()
      await running
    },
  }
}
