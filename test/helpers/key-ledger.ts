/**
 * Watches the idempotency keys an in-process analytics mock receives, replays included: a key must
 * always carry the same content. The mock stores a key at most once, so a key re-sent with other
 * content would be dropped as a replay and leave a stale view: that is what this catches.
 */
import type { MockAnalyticsStore } from '../../src/services/mock-analytics/store.ts'
import { canonical } from './expected-views.ts'

/** What {@link watchKeys} saw. */
export interface KeyLedger {
  /** Distinct keys received (accepted or replayed). */
  readonly keys: () => number
  /** Deliveries received, replays included. */
  readonly deliveries: () => number
  /** One line per key received with content other than its first delivery's. */
  readonly conflicts: string[]
}

/** Starts watching `store`'s deliveries (for the rest of the store's life). */
export function watchKeys(store: MockAnalyticsStore): KeyLedger {
  const contents = new Map<string, string>()
  const conflicts: string[] = []
  let deliveries = 0
  const original = store.deliver.bind(store)
  store.deliver = (key, record, receivedAt) => {
    deliveries++
    const content = canonical(record)
    const first = contents.get(key)
    if (first === undefined) contents.set(key, content)
    else if (first !== content) conflicts.push(`${key}: first ${first}, then ${content}`)
    return original(key, record, receivedAt)
  }
  return { keys: () => contents.size, deliveries: () => deliveries, conflicts }
}
