/**
 * The off-path retry schedule of views whose delivery exhausted its in-line attempts while Analytics
 * was healthy for others (design §5: a failing view must not hold up unrelated ones), and of views
 * whose delivery waits for an earlier one that may still land ({@link RetrySchedule.defer}). A sorted set
 * of view ids by due time, and per view the rounds and attempts so far; a due view is claimed by
 * exactly one consumer (ZREM decides) and re-requested, so its retry computes the current state.
 */
import type { ViewId } from '../domain/views.ts'
import { chunks } from './bulk.ts'
import type { Redis } from './redis.ts'
import { runScript, script } from './scripts.ts'

/** What is known of a failing view. */
export interface FailureRecord {
  readonly rounds: number
  readonly attempts: number
  readonly firstFailedAt: string
}

/** The decision after another exhausted round. */
export type FailureDecision =
  | { readonly kind: 'scheduled'; readonly round: number; readonly dueAt: number }
  | { readonly kind: 'give-up'; readonly record: FailureRecord }

/** Views claimed from the schedule, and when their claim ends. */
export interface DueClaim {
  readonly views: readonly ViewId[]
  readonly lease: number
}

/** How long a claim of due views lasts before they are due again, unless acknowledged. */
const DUE_LEASE_MS = 30_000

// Due views (score ≤ ARGV[1]), at most ARGV[2], each moved to the lease's end ARGV[3] and returned.
const LEASE_DUE = script(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, view in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], view) end
return due
`)

// Removes each view ARGV[2..] still due at the lease's end ARGV[1].
const ACK_DUE = script(`
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == lease then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 1
`)

// Counts another exhausted round of view ARGV[1] (ARGV[2] more attempts, first failure ARGV[3] if
// none is recorded) in one step, so two members failing the same view at once count two rounds. Past
// ARGV[5] rounds it forgets the view; else it records the round and makes the view due at ARGV[4] +
// ARGV[6] × 2^(round − 1). KEYS[1] the failures, KEYS[2] the due views. Returns the decision, rounds,
// attempts, first failure and, when scheduled, the due time.
const RECORD_FAILURE = script(`
local view = ARGV[1]
local rounds, attempts, first = 1, tonumber(ARGV[2]), ARGV[3]
local raw = redis.call('HGET', KEYS[1], view)
if raw then
  local known = cjson.decode(raw)
  rounds = (tonumber(known.rounds) or 0) + 1
  attempts = (tonumber(known.attempts) or 0) + attempts
  if type(known.firstFailedAt) == 'string' then first = known.firstFailedAt end
end
if rounds > tonumber(ARGV[5]) then
  redis.call('HDEL', KEYS[1], view)
  return {'give-up', rounds, attempts, first}
end
local dueAt = string.format('%d', tonumber(ARGV[4]) + tonumber(ARGV[6]) * 2 ^ (rounds - 1))
redis.call('HSET', KEYS[1], view, cjson.encode({rounds = rounds, attempts = attempts, firstFailedAt = first}))
redis.call('ZADD', KEYS[2], dueAt, view)
return {'scheduled', rounds, attempts, first, dueAt}
`)

/** Redis-backed retry schedule. */
export class RetrySchedule {
  readonly #redis: Redis
  readonly #due: string
  readonly #failures: string

  constructor(redis: Redis, prefix = 'pipeline') {
    this.#redis = redis
    this.#due = `${prefix}:consumer:retry:due`
    this.#failures = `${prefix}:consumer:retry:failures`
  }

  /**
   * Records another exhausted round of `view` and schedules the next one, with a delay doubling per
   * round; after `maxRounds` rounds it gives up (the caller dead-letters) and forgets the view.
   */
  async recordFailure(
    view: ViewId,
    attempts: number,
    options: { readonly maxRounds: number; readonly baseDelayMs: number; readonly now?: number },
  ): Promise<FailureDecision> {
    const now = options.now ?? Date.now()
    const reply = (await runScript(
      this.#redis,
      RECORD_FAILURE,
      [this.#failures, this.#due],
      [
        view,
        String(attempts),
        new Date(now).toISOString(),
        String(now),
        String(options.maxRounds),
        String(options.baseDelayMs),
      ],
    )) as [string, number, number, string, string?]
    const [kind, rounds, total, firstFailedAt, dueAt] = reply
    if (kind === 'give-up') return { kind, record: { rounds, attempts: total, firstFailedAt } }
    return { kind: 'scheduled', round: rounds, dueAt: Number(dueAt) }
  }

  /**
   * Asks for `views` to be evaluated again at `dueAt` without counting a failed round: their delivery
   * waits for another one that may still land. An earlier due time already scheduled is kept.
   */
  async defer(views: readonly ViewId[], dueAt: number): Promise<void> {
    if (views.length === 0) return
    await Promise.all(
      chunks([...views]).map((slice) =>
        this.#redis.zAdd(
          this.#due,
          slice.map((value) => ({ score: dueAt, value })),
          { comparison: 'LT' },
        ),
      ),
    )
  }

  /**
   * Forgets the failures of `views` (delivered, or settled otherwise). Their due entries stay: one
   * may be a wait another member scheduled meanwhile, and one no longer needed costs an evaluation
   * that finds the view unchanged.
   */
  async clear(views: readonly ViewId[]): Promise<void> {
    await Promise.all(chunks([...views]).map((slice) => this.#redis.hDel(this.#failures, slice)))
  }

  /**
   * Claims up to `limit` due views for `leaseMs`: each is claimed by one caller only, and stays
   * scheduled (due again when the lease ends) until {@link ack} confirms its refresh was published,
   * so a claimant that dies in between loses nothing.
   */
  async claimDue(limit: number, now = Date.now(), leaseMs = DUE_LEASE_MS): Promise<DueClaim> {
    const lease = now + leaseMs
    const views = (await runScript(
      this.#redis,
      LEASE_DUE,
      [this.#due],
      [String(now), String(limit), String(lease)],
    )) as ViewId[]
    return { views, lease }
  }

  /**
   * Forgets claimed views whose refresh is published, each only while it is still due at its lease's
   * end: one scheduled again meanwhile (a wait, another round) stays.
   */
  async ack({ views, lease }: DueClaim): Promise<void> {
    await Promise.all(
      chunks([...views]).map((slice) =>
        runScript(this.#redis, ACK_DUE, [this.#due], [String(lease), ...slice]),
      ),
    )
  }

  /** Puts claimed views back, due now (their refresh could not be published). */
  async unclaim({ views }: DueClaim, now = Date.now()): Promise<void> {
    if (views.length > 0)
      await this.#redis.zAdd(
        this.#due,
        views.map((value) => ({ score: now, value })),
      )
  }

  /** How many views wait for a retry round. */
  pending(): Promise<number> {
    return this.#redis.zCard(this.#due)
  }
}
