/**
 * Stage 1's memory of what it has fanned out (design §4): per entity, the snapshot of the last
 * message whose refreshes were published. It is kept apart from the entity state on purpose: the
 * state is written before the refreshes are published and this only after, so a crash in between
 * leaves the old snapshot, and reprocessing the message diffs against it and republishes the same
 * refreshes.
 *
 * Per message the caller does: (1) {@link AppliedStore.read}, skip a duplicate; (2) write the entity
 * state (`EntityStore`); (3) publish the refreshes; (4) {@link AppliedStore.write}.
 *
 * Keys: `<prefix>:consumer:applied:customer` and `…:applied:product`, hashes id → JSON {@link AppliedSnapshot};
 * `<prefix>:consumer:applied-at:customer` and `…:applied-at:product`, hashes id → JSON {@link SourcePosition}
 * of the last applied message (kept after a deletion, so a replay of a deleted entity's history is skipped).
 */
import type { AppliedSnapshot, SourcePosition } from '../domain/fanout.ts'
import { hGetJsonMany, hSetJsonMany } from './bulk.ts'
import type { Redis } from './redis.ts'

/** The entities that have snapshots. */
export type AppliedEntity = 'customer' | 'product'

/** Redis-backed applied snapshots of one deployment (`prefix` separates deployments and tests). */
export class AppliedStore {
  readonly #redis: Redis
  readonly #prefix: string

  constructor(redis: Redis, prefix = 'pipeline') {
    this.#redis = redis
    this.#prefix = prefix
  }

  #key(entity: AppliedEntity): string {
    return `${this.#prefix}:consumer:applied:${entity}`
  }

  /** The snapshots of those of `ids` that have one. */
  read(entity: AppliedEntity, ids: Iterable<string>): Promise<Map<string, AppliedSnapshot>> {
    return hGetJsonMany<string, AppliedSnapshot>(this.#redis, this.#key(entity), ids)
  }

  /**
   * Records snapshots (undefined: the entity was deleted, forget it). Call only after the refreshes
   * of these messages are published. When an id occurs more than once, the last entry wins, so a
   * batch can pass its messages in order.
   */
  write(
    entity: AppliedEntity,
    entries: Iterable<readonly [string, AppliedSnapshot | undefined]>,
  ): Promise<void> {
    return hSetJsonMany(this.#redis, this.#key(entity), entries)
  }

  /** Where the last applied message of those of `ids` that have one was read. */
  readPositions(entity: AppliedEntity, ids: Iterable<string>): Promise<Map<string, SourcePosition>> {
    return hGetJsonMany<string, SourcePosition>(
      this.#redis,
      `${this.#prefix}:consumer:applied-at:${entity}`,
      ids,
    )
  }

  /** Records where applied messages were read; write it with {@link AppliedStore.write}. */
  writePositions(entity: AppliedEntity, entries: Iterable<readonly [string, SourcePosition]>): Promise<void> {
    return hSetJsonMany(this.#redis, `${this.#prefix}:consumer:applied-at:${entity}`, entries)
  }
}
