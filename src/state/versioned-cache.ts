/**
 * A bounded in-process cache of parsed records, each filed under the version its entity had when it
 * was read (for products: the stored source position). A reader first reads the version (far smaller
 * than the record) and takes the cached record only if it still matches; every write changes the
 * version, so a hit is never older than what Redis held when the version was read. It saves moving and
 * parsing records that are read far more often than they change (a product is read by every customer
 * view that lists it).
 */
export class VersionedCache<T> {
  readonly #entries = new Map<string, { readonly version: string; readonly value: T }>()
  readonly #limit: number

  constructor(limit: number) {
    this.#limit = limit
  }

  /** The value cached for `id` at `version`; undefined on a miss (absent, or another version). */
  get(id: string, version: string): T | undefined {
    const entry = this.#entries.get(id)
    return entry !== undefined && entry.version === version ? entry.value : undefined
  }

  /** Caches `value` as `id` at `version`; beyond the limit the earliest cached entry goes. */
  set(id: string, version: string, value: T): void {
    this.#entries.delete(id)
    this.#entries.set(id, { version, value })
    if (this.#entries.size > this.#limit) {
      const oldest = this.#entries.keys().next()
      if (!oldest.done) this.#entries.delete(oldest.value)
    }
  }

  get size(): number {
    return this.#entries.size
  }
}
