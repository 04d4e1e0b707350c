/**
 * Stage 2's memory of the view clock its settled evaluations read, per view (see `isCovered`): a
 * refresh request it covers is skipped without a Redis read. Only a cache: delivered views also
 * keep the value in their delivery record, so a restarted process or the next owner of a partition
 * re-evaluates at most once what it forgot. Any process's value is a sound lower bound (the clock
 * only grows), so nothing is invalidated when partitions move.
 */
import type { ViewId } from '../../domain/views.ts'

/** Default bound of the cache: about 10 MB of heap at most. */
export const DEFAULT_COVERAGE_ENTRIES = 200_000

/** A bounded map view → highest settled clock value; the least recently noted views go first. */
export class ViewCoverage {
  readonly #seen = new Map<ViewId, number>()
  readonly #limit: number

  constructor(limit = DEFAULT_COVERAGE_ENTRIES) {
    this.#limit = limit
  }

  /** The highest clock value a settled evaluation of `view` read, if remembered. */
  get(view: ViewId): number | undefined {
    return this.#seen.get(view)
  }

  /** Remembers that an evaluation of `view` that read the clock at `seq` is settled. */
  note(view: ViewId, seq: number): void {
    const known = this.#seen.get(view)
    if (known !== undefined) {
      if (known >= seq) return
      // Re-inserted, so the map's order stays least recently noted first.
      this.#seen.delete(view)
    }
    this.#seen.set(view, seq)
    if (this.#seen.size > this.#limit) {
      const oldest = this.#seen.keys().next()
      if (!oldest.done) this.#seen.delete(oldest.value)
    }
  }

  get size(): number {
    return this.#seen.size
  }
}
