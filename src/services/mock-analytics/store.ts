/**
 * The state of the mock Analytics service, kept apart from HTTP so tests can drive and inspect it
 * directly: accepted idempotency keys, the latest record of every view, the arrival log, counters and
 * the fault rules. Every delivery costs O(1).
 */
import { FaultRules } from './faults.ts'

/** One accepted delivery: its idempotency key, the JSON record and when it arrived (epoch ms). */
export interface StoredRecord {
  readonly key: string
  readonly record: unknown
  readonly receivedAt: number
}

/** What the store did with a delivery: stored it, or recognised its key and stored nothing. */
export type DeliveryOutcome = 'accepted' | 'replay'

/**
 * The counters, as served by `GET /analytics/stats`. `received` counts every delivery (a batch counts
 * its items), so `received === accepted + replays + rejected` once no request is in flight.
 */
export interface MockAnalyticsStats {
  readonly received: number
  readonly accepted: number
  readonly replays: number
  readonly rejected: number
  readonly distinctKeys: number
  readonly views: number
  /** Well-formed requests to the batch endpoint (their items are in `received`). */
  readonly batches: number
}

/**
 * The view identity (`<viewType>:<id>`) of an idempotency key `<viewType>:<id>:<contentHash>`: all
 * before the last ':', so ids that contain ':' still work.
 *
 * @returns the identity, or `undefined` when the key does not have that form.
 */
export function viewIdentityOf(key: string): string | undefined {
  const first = key.indexOf(':')
  const last = key.lastIndexOf(':')
  if (first <= 0 || last <= first + 1 || last === key.length - 1) return undefined
  return key.slice(0, last)
}

/** True when a record announces the deletion of its view (`"deleted": true`). */
export function isDeletion(record: unknown): boolean {
  return typeof record === 'object' && record !== null && (record as { deleted?: unknown }).deleted === true
}

/** What a store tells about changes to what it holds. */
export interface StoreListener {
  accepted(stored: StoredRecord): void
  reset(): void
}

/**
 * The sink's memory. A key is stored at most once, however often it is delivered: that is what
 * makes the pipeline's at-least-once delivery exactly-once in effect.
 */
export class MockAnalyticsStore {
  /** Fault rules the HTTP server consults before storing a delivery. */
  readonly faults = new FaultRules()
  /** Told of every accepted delivery and of every reset (a journal on disk). */
  #listener: StoreListener | undefined
  #keys = new Set<string>()
  #log: StoredRecord[] = []
  #views = new Map<string, StoredRecord>()
  #received = 0
  #replays = 0
  #rejected = 0
  #batches = 0

  /** Tells `listener` of every delivery accepted and every reset from now on (e.g. to keep them on disk). */
  listen(listener: StoreListener): void {
    this.#listener = listener
  }

  /** Counts a well-formed batch request (its items are counted by {@link countReceived}). */
  countBatch(): void {
    this.#batches += 1
  }

  /** Counts deliveries as they arrive, before anything can reject them. */
  countReceived(deliveries = 1): void {
    this.#received += deliveries
  }

  /** Counts deliveries turned away by validation or by an injected fault. */
  countRejected(deliveries = 1): void {
    this.#rejected += deliveries
  }

  /**
   * Stores a delivery unless its key was seen before. An accepted record replaces the view's earlier
   * one, or removes the view when it is a deletion.
   *
   * @param key an idempotency key of the form `<viewType>:<id>:<contentHash>` (see {@link viewIdentityOf}).
   * @throws {RangeError} when the key does not have that form: callers validate it first.
   */
  deliver(key: string, record: unknown, receivedAt: number = Date.now()): DeliveryOutcome {
    if (this.#keys.has(key)) {
      this.#replays += 1
      return 'replay'
    }
    const identity = viewIdentityOf(key)
    if (identity === undefined) throw new RangeError(`not an idempotency key <viewType>:<id>:<hash>: ${key}`)
    const stored: StoredRecord = { key, record, receivedAt }
    // First: a listener that fails (a journal that cannot write) leaves nothing stored.
    this.#listener?.accepted(stored)
    this.#keys.add(key)
    this.#log.push(stored)
    if (isDeletion(record)) this.#views.delete(identity)
    else this.#views.set(identity, stored)
    return 'accepted'
  }

  /** True when a delivery with this key was accepted. */
  hasKey(key: string): boolean {
    return this.#keys.has(key)
  }

  /** The latest accepted record of every view that exists (deleted views are absent). */
  views(): ReadonlyMap<string, StoredRecord> {
    return this.#views
  }

  /** Number of accepted records (deletions included). */
  get recordCount(): number {
    return this.#log.length
  }

  /** Accepted records in arrival order, from `offset`, at most `limit` of them. */
  records(offset = 0, limit: number = Number.POSITIVE_INFINITY): StoredRecord[] {
    return this.#log.slice(offset, offset + limit)
  }

  /** A snapshot of the counters. */
  stats(): MockAnalyticsStats {
    return {
      received: this.#received,
      accepted: this.#log.length,
      replays: this.#replays,
      rejected: this.#rejected,
      distinctKeys: this.#keys.size,
      views: this.#views.size,
      batches: this.#batches,
    }
  }

  /** Forgets everything: keys, records, views, counters and fault rules. */
  reset(): void {
    this.#keys = new Set()
    this.#log = []
    this.#views = new Map()
    this.#received = 0
    this.#replays = 0
    this.#rejected = 0
    this.#batches = 0
    this.faults.clear()
    this.#listener?.reset()
  }
}
