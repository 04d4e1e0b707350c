/**
 * One poll cycle of one source: scan the listing, dead-letter invalid records, publish what is new
 * or changed (and tombstones for what vanished), and remember each version only once Kafka
 * acknowledged it, so a crash mid-cycle republishes and never skips.
 */

import type { DlqEntry } from '../../dlq/entry.ts'
import { envelopeMessage, tombstoneMessage } from '../../domain/envelope.ts'
import { ErrorCodes, PipelineError } from '../../errors.ts'
import type { DeadLetterWriter, MessagePublisher, OutgoingMessage } from '../../kafka/ports.ts'
import type { Logger } from '../../observability/logger.ts'
import type { ProducerMetrics } from '../../observability/metrics.ts'
import type { SourceSpec } from '../../sources/catalog.ts'
import { planChanges } from '../../sources/change-detection.ts'
import { splitRepeatedInvalid } from '../../sources/repeated-invalid.ts'
import type { InvalidRecord, ScanOptions } from '../../sources/scan.ts'
import { scanSource } from '../../sources/scan.ts'
import type { SourceState } from '../../state/source-state.ts'

/** The planned hash of an id whose first publish is unacknowledged: equal to no content hash. */
const UNACKNOWLEDGED = ''

/** What a cycle works with. */
export interface CycleContext {
  readonly state: SourceState
  readonly publisher: MessagePublisher
  readonly dlq: DeadLetterWriter
  readonly metrics: ProducerMetrics
  readonly logger: Logger
  readonly scan: Omit<ScanOptions, 'etag' | 'onRetry' | 'signal' | 'polledAt'>
  readonly maxDeleteRatio: number
  /** Messages per Kafka send. */
  readonly batchSize?: number
  /** Sends in flight at once (ids are unique within a cycle, so their order does not matter). */
  readonly concurrency?: number
  /** Above this many changes, per-record delivery reports go to debug, not info. */
  readonly reportThreshold?: number
}

/** The summary of a cycle, logged and returned. */
export interface CycleSummary {
  readonly source: string
  readonly outcome: 'success' | 'not_modified'
  readonly fetched: number
  readonly published: number
  readonly unchanged: number
  readonly invalid: number
  readonly deleted: number
  readonly refusedDeletions: number
  readonly pages: number
  /** From the start until the whole listing was read, validated and hashed. */
  readonly scanMs: number
  readonly durationMs: number
}

function invalidEntry(source: SourceSpec, item: InvalidRecord, at: string): DlqEntry {
  return {
    stage: 'source',
    error: { class: 'ValidationError', message: item.reason },
    attempts: 1,
    firstFailedAt: at,
    failedAt: at,
    origin: { url: item.url, ...(item.id === undefined ? {} : { key: item.id }), topic: source.topic },
    payload: item.raw,
  }
}

/**
 * Dead-letters the invalid records of a complete listing that an earlier poll did not already
 * dead-letter, then remembers the listing's fingerprints (after the DLQ write: a crash in between
 * dead-letters them again, never loses them).
 */
async function deadLetterInvalid(
  ctx: CycleContext,
  source: SourceSpec,
  invalid: readonly InvalidRecord[],
  polledAt: string,
): Promise<void> {
  const previous = await ctx.state.deadLettered(source.name)
  if (invalid.length === 0 && previous.size === 0) return
  const split = splitRepeatedInvalid(invalid, previous)
  const labels = { source: source.name }
  ctx.metrics.records.inc({ ...labels, result: 'invalid' }, invalid.length)
  if (split.fresh.length > 0) {
    await ctx.dlq.write(split.fresh.map((item) => invalidEntry(source, item, polledAt)))
    ctx.metrics.dlqMessages.inc({ stage: 'source' }, split.fresh.length)
    for (const item of split.fresh.slice(0, 20)) {
      ctx.logger.warn(
        { source: source.name, id: item.id },
        `${source.label} ${item.id ?? '(no id)'} is invalid and was dead-lettered: ${item.reason}`,
      )
    }
  }
  if (split.repeated > 0) {
    ctx.logger.info(
      { source: source.name, repeated: split.repeated },
      `${source.name}: ${split.repeated} invalid records are listed unchanged and were dead-lettered before; not dead-lettered again`,
    )
  }
  await ctx.state.setDeadLettered(source.name, split.fingerprints)
}

/** Runs `work` over `items` in slices of `size`, at most `concurrency` slices at a time. */
async function inSlices<T>(
  items: readonly T[],
  size: number,
  concurrency: number,
  work: (slice: readonly T[]) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const slice = items.slice(next, next + size)
      next += size
      await work(slice)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.ceil(items.length / size)) }, worker))
}

/**
 * Runs one cycle of `source`.
 *
 * @throws {PipelineError} when the listing cannot be read completely, or Kafka does not acknowledge;
 *   what was acknowledged before stays recorded, the rest is published by the next cycle
 */
export async function runCycle(
  ctx: CycleContext,
  source: SourceSpec,
  signal?: AbortSignal,
): Promise<CycleSummary> {
  const started = Date.now()
  const polledAt = new Date(started).toISOString()
  const labels = { source: source.name }
  // Read while the listing is fetched; only compared once the scan is complete.
  const knownHashes = ctx.state.knownHashes(source.name)
  const pendingIds = ctx.state.pendingIds(source.name)
  knownHashes.catch(() => undefined)
  pendingIds.catch(() => undefined)
  const scan = await scanSource(source, {
    ...ctx.scan,
    etag: await ctx.state.etag(source.name),
    polledAt,
    signal,
    onRescan: (reason) => {
      ctx.metrics.rescans.inc(labels)
      ctx.logger.info(
        { source: source.name, reason },
        `${source.name}: the listing changed while two threads read it (${reason}); reading it again in order`,
      )
    },
    onRetry: (info) => {
      ctx.metrics.httpRetries.inc(labels)
      ctx.logger.warn(
        { source: source.name, attempt: info.attempt, delayMs: info.delayMs },
        `${source.name}: ${info.reason}; retrying in ${info.delayMs} ms`,
      )
    },
  })
  const scanMs = Date.now() - started
  // A scan on a worker thread can finish after the service began to stop: a stopping replica
  // neither plans nor publishes (its successor reads the listing again).
  const stopIfAborted = () => {
    if (signal?.aborted)
      throw new PipelineError(ErrorCodes.SOURCE_ABORTED, `${source.name}: cycle stopped before publishing`)
  }
  stopIfAborted()
  if (scan.kind === 'not-modified') {
    const summary = { ...emptySummary(source.name, started), outcome: 'not_modified' as const, pages: 1 }
    ctx.logger.info(
      { ...summary, topic: source.topic },
      `${source.name}: not modified since the last poll (ETag)`,
    )
    return summary
  }

  await deadLetterInvalid(ctx, source, scan.invalid, polledAt)

  const known = await knownHashes
  // A first publish whose acknowledgement was never recorded (a crash in between) may be downstream:
  // planned as known with a hash no record has, it is republished if listed and tombstoned if not.
  for (const id of await pendingIds) {
    if (!known.has(id)) known.set(id, UNACKNOWLEDGED)
  }
  const held = new Set<string>()
  for (const item of scan.invalid) if (item.listedId !== undefined) held.add(item.listedId)
  const plan = planChanges(scan.records, known, { complete: true, maxDeleteRatio: ctx.maxDeleteRatio, held })
  if (plan.held > 0) {
    ctx.logger.warn(
      { source: source.name, held: plan.held },
      `${source.name}: ${plan.held} known records are listed invalid; their last valid versions stay in place (not deleted)`,
    )
  }
  ctx.metrics.records.inc({ ...labels, result: 'unchanged' }, plan.unchanged)
  if (plan.refusedDeletions > 0) {
    ctx.metrics.deletionsRefused.inc(labels, plan.refusedDeletions)
    ctx.logger.error(
      { source: source.name, refused: plan.refusedDeletions, known: known.size },
      `${source.name}: refusing to delete ${plan.refusedDeletions} of ${known.size} known records in one cycle (over MAX_DELETE_RATIO=${ctx.maxDeleteRatio}); check the source`,
    )
  }

  const verbose = plan.upserts.length + plan.deletions.length <= (ctx.reportThreshold ?? 100)
  const level = verbose ? 'info' : 'debug'
  // A 100k-record sync must not be bound by building lines nobody will see.
  const reporting = ctx.logger.isLevelEnabled(level)
  const report = (id: string, what: string, partition: number, offset: bigint) => {
    if (!reporting) return
    const line = `${source.label} ${id} ${what} to partition=${partition} offset=${offset}`
    ctx.logger[level]({ source: source.name, id, topic: source.topic }, line)
  }
  const send = async (messages: readonly OutgoingMessage<string | Buffer>[]) => {
    stopIfAborted()
    return ctx.publisher.send(messages)
  }

  const batch = ctx.batchSize ?? 1000
  const concurrency = ctx.concurrency ?? 4
  await inSlices(plan.upserts, batch, concurrency, async (slice) => {
    const fresh = slice.filter((item) => !known.has(item.id)).map((item) => item.id)
    if (fresh.length > 0) await ctx.state.markPending(source.name, fresh)
    const reports = await send(slice.map((item) => envelopeMessage(source, item.id, item.hash, item.record)))
    await ctx.state.markPublished(
      source.name,
      slice.map((item) => [item.id, item.hash] as const),
    )
    ctx.metrics.records.inc({ ...labels, result: 'published' }, slice.length)
    slice.forEach((item, i) => {
      const where = reports[i]
      if (where) report(item.id, 'delivered successfully', where.partition, where.offset)
    })
  })
  await inSlices(plan.deletions, batch, concurrency, async (slice) => {
    const reports = await send(slice.map((id) => tombstoneMessage(source, id, polledAt)))
    await ctx.state.markDeleted(source.name, slice)
    ctx.metrics.records.inc({ ...labels, result: 'deleted' }, slice.length)
    slice.forEach((id, i) => {
      const where = reports[i]
      if (where) report(id, 'deleted (tombstone) successfully', where.partition, where.offset)
    })
  })
  // Only a fully applied listing may make the next poll conditional.
  await ctx.state.setEtag(source.name, plan.refusedDeletions === 0 ? scan.etag : undefined)

  const summary: CycleSummary = {
    source: source.name,
    outcome: 'success',
    fetched: scan.fetched,
    published: plan.upserts.length,
    unchanged: plan.unchanged,
    invalid: scan.invalid.length,
    deleted: plan.deletions.length,
    refusedDeletions: plan.refusedDeletions,
    pages: scan.pages,
    scanMs,
    durationMs: Date.now() - started,
  }
  ctx.logger.info(
    { ...summary, topic: source.topic },
    `${source.name}: publish job completed: fetched ${summary.fetched}, published ${summary.published}, unchanged ${summary.unchanged}, invalid ${summary.invalid}, deleted ${summary.deleted} in ${summary.durationMs} ms`,
  )
  return summary
}

function emptySummary(source: string, started: number): Omit<CycleSummary, 'outcome'> {
  return {
    source,
    fetched: 0,
    published: 0,
    unchanged: 0,
    invalid: 0,
    deleted: 0,
    refusedDeletions: 0,
    pages: 0,
    scanMs: Date.now() - started,
    durationMs: Date.now() - started,
  }
}
