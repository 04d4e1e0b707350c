/**
 * What the producer remembers per source, in Redis so it survives restarts and is shared by
 * replicas: the content hash last acknowledged by Kafka per id, the ETag of the last listing, the
 * fingerprints of the invalid records already dead-lettered, and when the last cycle started (so
 * replicas keep one schedule).
 */
import type { Redis } from './redis.ts'

const CHUNK = 1000

/** Redis-backed producer state of one deployment (`prefix` separates deployments and tests). */
export class SourceState {
  readonly #redis: Redis
  readonly #prefix: string

  constructor(redis: Redis, prefix = 'pipeline') {
    this.#redis = redis
    this.#prefix = prefix
  }

  #key(source: string, what: string): string {
    return `${this.#prefix}:producer:${source}:${what}`
  }

  /** id → content hash last acknowledged by Kafka. */
  async knownHashes(source: string): Promise<Map<string, string>> {
    const all = await this.#redis.hGetAll(this.#key(source, 'hashes'))
    return new Map(Object.entries(all))
  }

  /**
   * Records that ids no hash is known for are about to be published for the first time. Until
   * {@link markPublished} or {@link markDeleted} settles them, Kafka may hold them or not: a crash
   * after the broker's acknowledgement leaves them downstream with no hash here, and a later
   * listing without them must still produce their tombstones (see {@link pendingIds}).
   */
  async markPending(source: string, ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += CHUNK) {
      await this.#redis.sAdd(this.#key(source, 'pending'), ids.slice(i, i + CHUNK))
    }
  }

  /** Ids marked pending and never settled: published by a cycle that did not finish, perhaps. */
  async pendingIds(source: string): Promise<string[]> {
    return this.#redis.sMembers(this.#key(source, 'pending'))
  }

  /** Records that Kafka acknowledged these versions. */
  async markPublished(source: string, entries: ReadonlyArray<readonly [string, string]>): Promise<void> {
    for (let i = 0; i < entries.length; i += CHUNK) {
      const slice = entries.slice(i, i + CHUNK)
      await this.#redis.hSet(this.#key(source, 'hashes'), Object.fromEntries(slice))
      await this.#redis.sRem(
        this.#key(source, 'pending'),
        slice.map(([id]) => id),
      )
    }
  }

  /** Records that Kafka acknowledged tombstones for these ids. */
  async markDeleted(source: string, ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += CHUNK) {
      const slice = ids.slice(i, i + CHUNK)
      await this.#redis.hDel(this.#key(source, 'hashes'), slice)
      await this.#redis.sRem(this.#key(source, 'pending'), slice)
    }
  }

  /** Fingerprints of the invalid records the last complete listing dead-lettered or found already there. */
  async deadLettered(source: string): Promise<Set<string>> {
    return new Set(await this.#redis.sMembers(this.#key(source, 'dead-lettered')))
  }

  /**
   * Replaces the remembered fingerprints with those of this listing (at most SOURCE_MAX_INVALID_RECORDS),
   * after its new entries reached the DLQ: a record fixed at the source is forgotten, so if it
   * breaks again the same way it is dead-lettered again.
   */
  async setDeadLettered(source: string, fingerprints: readonly string[]): Promise<void> {
    const key = this.#key(source, 'dead-lettered')
    const multi = this.#redis.multi().del(key)
    if (fingerprints.length > 0) multi.sAdd(key, [...fingerprints])
    await multi.exec()
  }

  /** The ETag of the last complete single-page listing. */
  async etag(source: string): Promise<string | undefined> {
    return (await this.#redis.get(this.#key(source, 'etag'))) ?? undefined
  }

  /** Stores (or, with undefined, forgets) the ETag for the next conditional GET. */
  async setEtag(source: string, etag: string | undefined): Promise<void> {
    if (etag === undefined) await this.#redis.del(this.#key(source, 'etag'))
    else await this.#redis.set(this.#key(source, 'etag'), etag)
  }

  /** Epoch ms when the last cycle of `source` started, by any replica. */
  async lastCycleAt(source: string): Promise<number | undefined> {
    const raw = await this.#redis.get(this.#key(source, 'last-cycle'))
    return raw === null ? undefined : Number(raw)
  }

  /** Records the start of a cycle. */
  async setLastCycleAt(source: string, at: number): Promise<void> {
    await this.#redis.set(this.#key(source, 'last-cycle'), String(at))
  }
}
