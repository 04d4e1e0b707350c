/**
 * Stage 2's memory of what it sent to Analytics: per view, the last attempted delivery (idempotency
 * key and content hash) and whether the sink acknowledged it. {@link decideDelivery} reads it to
 * skip unchanged views, re-send an attempt of unknown outcome under its own key, and chain the key of
 * the next one.
 *
 * Per batch the caller does: (1) {@link DeliveryStore.read}; (2) decide each view; (3)
 * {@link DeliveryStore.markAttempted} for the views to send; (4) POST; (5) {@link DeliveryStore.markConfirmed}
 * for those answered 2xx. Step 3 must complete before step 4 starts: it is what lets a view that
 * changes back after a crash be delivered again (see {@link decideDelivery}). It assumes one deliverer
 * per view at a time, which the refresh topic's partitioning provides.
 *
 * Key: `<prefix>:consumer:delivered`, a hash view id → JSON {@link DeliveryRecord}. Records of deleted
 * views stay: the next key of a view that comes back chains on them.
 */
import type { DeliveryRecord, ViewId } from '../domain/views.ts'
import { hGetJsonMany, hSetJsonMany } from './bulk.ts'
import type { Redis } from './redis.ts'

/** A delivery about to be made, or made: which view, under which key, with which content hash. */
export interface DeliveryAttempt {
  readonly viewId: ViewId
  readonly key: string
  readonly hash: string
  /** Confirmations only: the view clock read before the state the content was computed from. */
  readonly seq?: number
}

/** Redis-backed delivery records of one deployment (`prefix` separates deployments and tests). */
export class DeliveryStore {
  readonly #redis: Redis
  readonly #key: string

  constructor(redis: Redis, prefix = 'pipeline') {
    this.#redis = redis
    this.#key = `${prefix}:consumer:delivered`
  }

  /** The records of those of `viewIds` that have one. */
  read(viewIds: Iterable<ViewId>): Promise<Map<ViewId, DeliveryRecord>> {
    return hGetJsonMany<ViewId, DeliveryRecord>(this.#redis, this.#key, viewIds)
  }

  /** Records that these deliveries are about to be POSTed, their outcome unknown. */
  markAttempted(attempts: Iterable<DeliveryAttempt>): Promise<void> {
    return this.#write(attempts, false)
  }

  /**
   * Records that these deliveries are settled: the sink answered 2xx, or they were dead-lettered.
   * With `seq`, refresh requests stamped no higher are skipped from then on (see `isCovered`).
   */
  markConfirmed(attempts: Iterable<DeliveryAttempt>): Promise<void> {
    return this.#write(attempts, true)
  }

  #write(attempts: Iterable<DeliveryAttempt>, confirmed: boolean): Promise<void> {
    const entries: [ViewId, DeliveryRecord][] = []
    for (const { viewId, key, hash, seq } of attempts)
      entries.push([
        viewId,
        confirmed && seq !== undefined ? { key, hash, confirmed, seq } : { key, hash, confirmed },
      ])
    return hSetJsonMany(this.#redis, this.#key, entries)
  }
}
