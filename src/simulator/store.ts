/**
 * One versioned collection of records. Every mutation bumps the version, which is what ETags and the
 * page cache key on. Records keep a sequence number in insertion order so cursor paging can resume
 * "after record N" even when records before it were deleted meanwhile.
 */
import { type EntityId, keyOf } from './records.ts'

/** An immutable listing of a collection at one version, in insertion order. */
export interface CollectionView<T> {
  readonly version: number
  readonly records: readonly T[]
  /** `seqs[i]` is the sequence number of `records[i]`; strictly increasing. */
  readonly seqs: readonly number[]
}

interface Entry<T> {
  readonly seq: number
  readonly record: T
}

/** A keyed, versioned, insertion-ordered collection. */
export class Collection<T extends { readonly id: EntityId }> {
  readonly #entries = new Map<string, Entry<T>>()
  #nextSeq = 1
  #version: number
  #view: CollectionView<T> | undefined

  /** @param version where to start counting; replacing a data set continues from the old version. */
  constructor(records: Iterable<T>, version = 1) {
    for (const record of records) this.#entries.set(keyOf(record), { seq: this.#nextSeq++, record })
    this.#version = version
  }

  get version(): number {
    return this.#version
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: string): T | undefined {
    return this.#entries.get(key)?.record
  }

  /**
   * Stores the record under `String(record.id)`. A replaced record keeps its place in the listing (as a
   * database row would); a new one goes to the end.
   */
  upsert(record: T): 'created' | 'replaced' {
    const key = keyOf(record)
    const existing = this.#entries.get(key)
    this.#entries.set(key, { seq: existing?.seq ?? this.#nextSeq++, record })
    this.#changed()
    return existing === undefined ? 'created' : 'replaced'
  }

  /** Removes the record; false (and no new version) when there was none. */
  delete(key: string): boolean {
    if (!this.#entries.delete(key)) return false
    this.#changed()
    return true
  }

  /** The current listing. Cached until the next mutation, so paging over it is cheap. */
  view(): CollectionView<T> {
    if (this.#view !== undefined) return this.#view
    const records: T[] = new Array(this.#entries.size)
    const seqs: number[] = new Array(this.#entries.size)
    let i = 0
    // A Map iterates in insertion order and replacing a value keeps its slot, so seqs stay sorted.
    for (const entry of this.#entries.values()) {
      records[i] = entry.record
      seqs[i] = entry.seq
      i++
    }
    this.#view = { version: this.#version, records, seqs }
    return this.#view
  }

  #changed(): void {
    this.#version++
    this.#view = undefined
  }
}
