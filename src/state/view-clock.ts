/**
 * The consumer's logical clock of state writes, one counter in Redis shared by every consumer
 * process. Stage 1 ticks it after a batch's state writes and stamps the batch's refresh requests
 * with the value; stage 2 reads it *before* reading the state a view is computed from. Redis runs
 * commands one at a time, so a read that returns S comes after every tick up to S, and the state
 * read after it sees every write stamped S or lower: an evaluation that read S covers every refresh
 * stamped S or lower (see `isCovered` in domain/views.ts).
 *
 * Key: `<prefix>:consumer:view-clock`. It must never go back while delivery records remember
 * values of it: it lives in the same Redis as they do, and is only ever incremented.
 */
import type { Redis } from './redis.ts'

/** Redis-backed logical clock of one deployment (`prefix` separates deployments and tests). */
export class ViewClock {
  readonly #redis: Redis
  readonly #key: string

  constructor(redis: Redis, prefix = 'pipeline') {
    this.#redis = redis
    this.#key = `${prefix}:consumer:view-clock`
  }

  /** Advances the clock; call once the writes to stamp are acknowledged. Returns the new value. */
  tick(): Promise<number> {
    return this.#redis.incr(this.#key)
  }

  /** The current value (0 before the first tick); read it before the state it is to cover. */
  async read(): Promise<number> {
    const value = await this.#redis.get(this.#key)
    return value === null ? 0 : Number(value)
  }
}
