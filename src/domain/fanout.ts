/**
 * Which views a source message touches (design §4), without I/O. Stage 1 compares each message with
 * the entity's last *applied* snapshot, not with the current state, so a message reprocessed after a
 * crash between writing state and recording the snapshot republishes the same refreshes.
 */
import { formatViewId, type ViewId } from './views.ts'

/** What stage 1 remembers of an entity after publishing the refreshes of its last message. */
export interface AppliedSnapshot {
  /** Content hash of the applied record. */
  readonly hash: string
  /** Customers only: the applied `productIds`, distinct. */
  readonly productIds?: readonly string[]
}

/** The part of an incoming customer record the fan-out needs; null for a tombstone. */
export type IncomingCustomer = { readonly contentHash: string; readonly productIds: readonly string[] } | null

/** The part of an incoming product record the fan-out needs; null for a tombstone. */
export type IncomingProduct = { readonly contentHash: string } | null

/** The outcome of fanning out one message. */
export type Fanout =
  /** The entity is already in this state: skip the message ("Skipping duplicate message"). */
  | { readonly kind: 'duplicate' }
  | {
      readonly kind: 'refresh'
      /** Views to refresh, each once: the entity's own view first. */
      readonly views: readonly ViewId[]
      /** The snapshot to write once the refreshes are published (undefined: delete it). */
      readonly applied: AppliedSnapshot | undefined
    }

/**
 * True when `incoming` leaves the entity as `applied` has it: the same content hash, or a tombstone
 * for an entity that is not there.
 */
export function isDuplicate(
  applied: AppliedSnapshot | undefined,
  incoming: { readonly contentHash: string } | null,
): boolean {
  if (incoming === null) return applied === undefined
  return applied?.hash === incoming.contentHash
}

/** Where a source message sits: topic, partition, offset and timestamp (epoch ms; both as decimal text). */
export interface SourcePosition {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly timestamp: string
}

/**
 * The text a position is stored as. One encoding everywhere, because stage 1's conditional writes
 * compare stored positions with this text byte for byte.
 */
export function encodePosition(at: SourcePosition): string {
  return JSON.stringify({
    topic: at.topic,
    partition: at.partition,
    offset: at.offset,
    timestamp: at.timestamp,
  })
}

/**
 * True when `incoming` is an older message of an entity than the one applied at `applied`: the same
 * topic partition, a lower offset and a timestamp no later. Such a message is history read again — a
 * new consumer group or an offset reset replaying from the earliest offset, or a re-read after a crash
 * of messages a later one already superseded — and applying it would set the entity back until the
 * later message is read again, with stale views POSTed in between (design §4 must 4). The timestamp
 * condition keeps a recreated topic, whose offsets restart at 0, from being taken for history.
 */
export function isSuperseded(applied: SourcePosition | undefined, incoming: SourcePosition): boolean {
  return (
    applied !== undefined &&
    applied.topic === incoming.topic &&
    applied.partition === incoming.partition &&
    BigInt(incoming.offset) < BigInt(applied.offset) &&
    BigInt(incoming.timestamp) <= BigInt(applied.timestamp)
  )
}

/** Ids in `a` that are not in `b`. */
function minus(a: ReadonlySet<string>, b: ReadonlySet<string>): string[] {
  return [...a].filter((id) => !b.has(id))
}

/**
 * The views a customer message touches: the customer's own view, and the product view of every
 * product it gained or lost (both directions of the set difference between the applied and the
 * incoming `productIds`; a tombstone loses them all). A product it keeps is untouched: its view
 * counts customers, and this one still counts.
 */
export function customerFanout(
  id: string,
  applied: AppliedSnapshot | undefined,
  incoming: IncomingCustomer,
): Fanout {
  if (isDuplicate(applied, incoming)) return { kind: 'duplicate' }
  const before = new Set(applied?.productIds ?? [])
  const after = new Set(incoming?.productIds ?? [])
  const changed = [...minus(after, before), ...minus(before, after)]
  return {
    kind: 'refresh',
    views: [formatViewId('customer', id), ...changed.map((productId) => formatViewId('product', productId))],
    applied: incoming === null ? undefined : { hash: incoming.contentHash, productIds: [...after] },
  }
}

/**
 * The views a product message touches: the product's own view and the view of every customer that
 * references it. `referencingCustomerIds` must be read from the reverse index *after* the product's
 * state was written (see `EntityStore`), so call {@link isDuplicate} first and this after the write.
 */
export function productFanout(
  id: string,
  applied: AppliedSnapshot | undefined,
  incoming: IncomingProduct,
  referencingCustomerIds: Iterable<string>,
): Fanout {
  if (isDuplicate(applied, incoming)) return { kind: 'duplicate' }
  const customers = new Set(referencingCustomerIds)
  return {
    kind: 'refresh',
    views: [
      formatViewId('product', id),
      ...[...customers].map((customerId) => formatViewId('customer', customerId)),
    ],
    applied: incoming === null ? undefined : { hash: incoming.contentHash },
  }
}
