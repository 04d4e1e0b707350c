/**
 * Stage 1 of the consumer: read the source topics, keep the latest entity state in Redis, and
 * publish a refresh request for every view a change touches (design §4).
 *
 * Per batch, in this order (each step's reason is the crash or race it rules out):
 * 1. read the last *applied* snapshots — the skip and the diff are against what was fully applied,
 *    so a message reprocessed after a crash between steps 2 and 4 republishes the same refreshes —
 *    and where the last applied message was read: an older one (a replay) is skipped, see
 *    `isSuperseded`;
 * 2. write customer state and reverse index, then product state, each with its source position and
 *    skipped when a later message of the entity was written meanwhile (a member that lost the
 *    partition in a rebalance must not set back what the new owner applied) — then read the reverse
 *    index for changed products: of a concurrent customer/product pair, whichever reads second sees
 *    the other;
 * 3. tick the view clock and publish the refresh requests stamped with it (acknowledged by Kafka):
 *    an evaluation that read the clock at that value or later saw this batch's writes;
 * 4. write the applied snapshots, each only while its entity's stored position is still this
 *    batch's; the caller then commits the offsets.
 */

import { cut, type DlqEntry, messageOrigin } from '../../dlq/entry.ts'
import { decodeSourceMessage, rawPayload } from '../../domain/decode.ts'
import {
  type AppliedSnapshot,
  customerFanout,
  isDuplicate,
  isSuperseded,
  productFanout,
  type SourcePosition,
} from '../../domain/fanout.ts'
import type { Customer, EntityName, Product } from '../../domain/records.ts'
import type { StoredEntity, ViewId } from '../../domain/views.ts'
import type { KafkaMessage } from '../../kafka/consumer.ts'
import type { DeadLetterWriter, MessagePublisher } from '../../kafka/ports.ts'
import type { Logger } from '../../observability/logger.ts'
import type { ConsumerMetrics } from '../../observability/metrics.ts'
import type { AppliedStore } from '../../state/applied-store.ts'
import type { CustomerWrite, EntityStore, ProductWrite } from '../../state/entity-store.ts'
import type { ViewClock } from '../../state/view-clock.ts'
import { refreshMessages } from './refresh.ts'

/** What stage 1 works with. */
export interface ApplyContext {
  readonly entities: EntityStore
  readonly applied: AppliedStore
  /** Ticked after the batch's state writes; stamps its refresh requests. */
  readonly clock: ViewClock
  readonly publisher: MessagePublisher
  readonly dlq: DeadLetterWriter
  readonly metrics: ConsumerMetrics
  readonly logger: Logger
  readonly topics: { readonly customers: string; readonly products: string; readonly refresh: string }
  /** Above this many duplicates in a batch, "Skipping duplicate message" goes to debug. */
  readonly logThreshold?: number
}

interface Change<T> {
  readonly id: string
  readonly stored: StoredEntity<T> | null
  readonly message: KafkaMessage
}

function positionOf(message: KafkaMessage): SourcePosition {
  return {
    topic: message.topic,
    partition: message.partition,
    offset: String(message.offset),
    timestamp: String(message.timestamp),
  }
}

function poisonEntry(message: KafkaMessage, stage: 'deserialize' | 'validate', reason: string): DlqEntry {
  const now = new Date().toISOString()
  return {
    stage,
    error: { class: stage === 'deserialize' ? 'DeserializationError' : 'ValidationError', message: reason },
    attempts: 1,
    firstFailedAt: now,
    failedAt: now,
    origin: messageOrigin(message),
    payload: rawPayload(message.value),
  }
}

/** Collects refresh requests, keeping the earliest poll time per view (the latency's start). */
class RefreshSet {
  readonly #views = new Map<ViewId, string>()
  add(views: readonly ViewId[], polledAt: string): void {
    for (const view of views) {
      const known = this.#views.get(view)
      if (known === undefined || polledAt < known) this.#views.set(view, polledAt)
    }
  }
  get size(): number {
    return this.#views.size
  }
  entries(): IterableIterator<[ViewId, string]> {
    return this.#views.entries()
  }
}

/** What a batch leaves of an entity: the snapshot to record and the position its state was written from. */
interface Next {
  readonly snapshot: AppliedSnapshot | undefined
  readonly at: SourcePosition
}

/** The entries {@link AppliedStore.writeIfCurrent} takes. */
const snapshotEntries = (next: ReadonlyMap<string, Next>) =>
  [...next].map(([id, { snapshot, at }]) => [id, snapshot, at] as const)

/**
 * Writes skipped because a later message of the entity was applied meanwhile: this member read the
 * batch before a rebalance handed its partition to another, which moved on. Nothing is lost (the
 * later version stays), so a line says it and the batch goes on.
 */
function logStale(ctx: ApplyContext, entity: EntityName, ids: readonly string[]): void {
  if (ids.length === 0) return
  ctx.logger.info(
    { entity, count: ids.length, ids: ids.slice(0, 10) },
    `${ids.length} ${entity} writes skipped: a later message was applied by another member (rebalance)`,
  )
}

/** Handles one batch of source-topic messages; resolves once every effect is durable. */
export async function applySourceBatch(ctx: ApplyContext, batch: readonly KafkaMessage[]): Promise<void> {
  const customers: Change<Customer>[] = []
  const products: Change<Product>[] = []
  const poison: DlqEntry[] = []
  for (const message of batch) {
    const entity: EntityName = message.topic === ctx.topics.customers ? 'customer' : 'product'
    const decoded = decodeSourceMessage(entity, message.key, message.value)
    if (decoded.kind === 'poison') {
      poison.push(poisonEntry(message, decoded.stage, decoded.reason))
      ctx.metrics.messages.inc({ topic: message.topic, result: 'poison' })
      ctx.logger.warn(
        {
          topic: message.topic,
          partition: message.partition,
          offset: String(message.offset),
          // A key can be as large as a message: the log keeps its head (the DLQ entry keeps 1 KiB).
          key: message.key === null ? null : cut(message.key, 256),
        },
        `poison message on ${message.topic} (${decoded.stage}): ${decoded.reason}; dead-lettered`,
      )
      continue
    }
    const stored = decoded.kind === 'upsert' ? decoded.stored : null
    if (entity === 'customer')
      customers.push({ id: decoded.id, stored: stored as StoredEntity<Customer> | null, message })
    else products.push({ id: decoded.id, stored: stored as StoredEntity<Product> | null, message })
  }
  if (poison.length > 0) {
    await ctx.dlq.write(poison)
    ctx.metrics.dlqMessages.inc({ stage: 'validate' }, poison.filter((p) => p.stage === 'validate').length)
    ctx.metrics.dlqMessages.inc(
      { stage: 'deserialize' },
      poison.filter((p) => p.stage === 'deserialize').length,
    )
  }

  const refreshes = new RefreshSet()
  const customerIds = customers.map((c) => c.id)
  const productIds = products.map((p) => p.id)
  const [customerApplied, productApplied, customerAt, productAt] = await Promise.all([
    ctx.applied.read('customer', customerIds),
    ctx.applied.read('product', productIds),
    ctx.applied.readPositions('customer', customerIds),
    ctx.applied.readPositions('product', productIds),
  ])
  const verbose = batch.length <= (ctx.logThreshold ?? 100)
  const skip = (change: Change<unknown>, entity: EntityName) => {
    ctx.metrics.duplicates.inc({ entity })
    ctx.metrics.messages.inc({ topic: change.message.topic, result: 'duplicate' })
    const fields = { topic: change.message.topic, id: change.id, offset: String(change.message.offset) }
    if (verbose) ctx.logger.info(fields, 'Skipping duplicate message')
    else ctx.logger.debug(fields, 'Skipping duplicate message')
  }

  // Customers: state and reverse index first (step 2), fan-out from the applied chain.
  const customerWrites: CustomerWrite[] = []
  const customerNext = new Map<string, Next>()
  for (const change of customers) {
    const next = customerNext.get(change.id)
    const applied = next ? next.snapshot : customerApplied.get(change.id)
    const at = positionOf(change.message)
    const incoming = change.stored && {
      contentHash: change.stored.contentHash,
      productIds: change.stored.data.productIds,
    }
    const fanout = customerFanout(change.id, applied, incoming)
    if (fanout.kind === 'duplicate' || isSuperseded(customerAt.get(change.id), at)) {
      skip(change, 'customer')
      continue
    }
    customerWrites.push({ id: change.id, stored: change.stored, at })
    customerNext.set(change.id, { snapshot: fanout.applied, at })
    refreshes.add(fanout.views, change.stored?.polledAt ?? new Date().toISOString())
    ctx.metrics.messages.inc({ topic: change.message.topic, result: 'applied' })
  }
  logStale(ctx, 'customer', await ctx.entities.writeCustomers(customerWrites))

  // Products: state first, then the reverse index is read (see the module comment).
  const productWrites: ProductWrite[] = []
  const productChanges: Array<{ change: Change<Product>; applied: AppliedSnapshot | undefined }> = []
  const productNext = new Map<string, Next>()
  for (const change of products) {
    const next = productNext.get(change.id)
    const applied = next ? next.snapshot : productApplied.get(change.id)
    const at = positionOf(change.message)
    const incoming = change.stored && { contentHash: change.stored.contentHash }
    if (isDuplicate(applied, incoming) || isSuperseded(productAt.get(change.id), at)) {
      skip(change, 'product')
      continue
    }
    productWrites.push({ id: change.id, stored: change.stored, at })
    productNext.set(change.id, { snapshot: incoming ? { hash: incoming.contentHash } : undefined, at })
    productChanges.push({ change, applied })
    ctx.metrics.messages.inc({ topic: change.message.topic, result: 'applied' })
  }
  logStale(ctx, 'product', await ctx.entities.writeProducts(productWrites))
  const referencing = new Map<string, string[]>()
  await Promise.all(
    [...new Set(productChanges.map(({ change }) => change.id))].map(async (id) => {
      const ids: string[] = []
      for await (const page of ctx.entities.customersOf(id)) ids.push(...page)
      referencing.set(id, ids)
    }),
  )
  for (const { change, applied } of productChanges) {
    const incoming = change.stored && { contentHash: change.stored.contentHash }
    const fanout = productFanout(change.id, applied, incoming, referencing.get(change.id) ?? [])
    if (fanout.kind === 'refresh')
      refreshes.add(fanout.views, change.stored?.polledAt ?? new Date().toISOString())
  }

  // Step 3: refresh requests, acknowledged; step 4: the applied snapshots.
  if (refreshes.size > 0) {
    const seq = await ctx.clock.tick()
    await ctx.publisher.send(refreshMessages(ctx.topics.refresh, refreshes.entries(), { seq }))
    ctx.metrics.refreshes.inc({ reason: 'change' }, refreshes.size)
  }
  await Promise.all([
    ctx.applied.writeIfCurrent('customer', snapshotEntries(customerNext)),
    ctx.applied.writeIfCurrent('product', snapshotEntries(productNext)),
  ])
}
