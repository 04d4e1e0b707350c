/**
 * Stage 1's memory of what it has fanned out (design §4): per entity, the snapshot of the last
 * message whose refreshes were published. It is kept apart from the entity state on purpose: the
 * state is written before the refreshes are published and this only after, so a crash in between
 * leaves the old snapshot, and reprocessing the message diffs against it and republishes the same
 * refreshes.
 *
 * Per message the caller does: (1) {@link AppliedStore.read}, skip a duplicate; (2) write the entity
 * state and its position (`EntityStore`, skipped when a later message was applied meanwhile); (3)
 * publish the refreshes; (4) {@link AppliedStore.writeIfCurrent}.
 *
 * Keys: `<prefix>:consumer:applied:customer` and `…:applied:product`, hashes id → JSON {@link AppliedSnapshot};
 * `<prefix>:consumer:applied-at:customer` and `…:applied-at:product`, hashes id → JSON {@link SourcePosition}
 * of the last applied message (kept after a deletion, so a replay of a deleted entity's history is skipped).
 */
import { type AppliedSnapshot, encodePosition, type SourcePosition } from '../domain/fanout.ts'
import { chunks, hGetJsonMany } from './bulk.ts'
import type { Redis } from './redis.ts'
import { runScript, script } from './scripts.ts'

/**
 * The hash of where each entity's last applied message was read. The entity store writes it with the
 * state, in the same script, so a position and the state it stands for never disagree.
 */
export function appliedAtKey(prefix: string, entity: AppliedEntity): string {
  return `${prefix}:consumer:applied-at:${entity}`
}

// Per entity: write its snapshot (or delete it, for '') only if the stored position is still the
// one this batch wrote with the state. A member that lost the partition in a rebalance, while the new
// owner applied a later message, would otherwise set the snapshot back and later diffs would miss
// refreshes. KEYS[1] snapshots, KEYS[2] positions; ARGV: triples of id, snapshot JSON or '', position.
const WRITE_IF_CURRENT = script(`
local i = 1
while i <= #ARGV do
  local id, json, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HGET', KEYS[2], id) == at then
    if json == '' then redis.call('HDEL', KEYS[1], id) else redis.call('HSET', KEYS[1], id, json) end
  end
  i = i + 3
end
return 1
`)

/** Snapshots per script call: a call blocks Redis while it runs, so keep it short. */
const SNAPSHOTS_PER_CALL = 200

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
   * Records snapshots (undefined: the entity was deleted, forget it), each only while the entity's
   * stored position is still `at`, the position this batch wrote its state with (see the entity
   * store): a later message applied meanwhile by another member keeps its own snapshot. Call only
   * after the refreshes of these messages are published. An id given twice takes its last entry.
   */
  async writeIfCurrent(
    entity: AppliedEntity,
    entries: Iterable<readonly [string, AppliedSnapshot | undefined, SourcePosition]>,
  ): Promise<void> {
    const last = new Map<string, readonly [AppliedSnapshot | undefined, SourcePosition]>()
    for (const [id, snapshot, at] of entries) last.set(id, [snapshot, at])
    const keys = [this.#key(entity), appliedAtKey(this.#prefix, entity)]
    await Promise.all(
      chunks([...last], SNAPSHOTS_PER_CALL).map((slice) => {
        const args: string[] = []
        for (const [id, [snapshot, at]] of slice)
          args.push(id, snapshot === undefined ? '' : JSON.stringify(snapshot), encodePosition(at))
        return runScript(this.#redis, WRITE_IF_CURRENT, keys, args)
      }),
    )
  }

  /** Where the last applied message of those of `ids` that have one was read. */
  readPositions(entity: AppliedEntity, ids: Iterable<string>): Promise<Map<string, SourcePosition>> {
    return hGetJsonMany<string, SourcePosition>(this.#redis, appliedAtKey(this.#prefix, entity), ids)
  }
}
