/**
 * The DLQ replay ledger: which DLQ entries were replayed, so replaying the same filter twice does
 * nothing the second time, and two replays running at once (the CLI and the admin endpoint, or two
 * operators) never both act on one entry.
 *
 * Key: `<prefix>:dlq:replayed`, a hash `<topic>:<offset>` → JSON {@link LedgerMark}. The entry's
 * `failedAt` is part of the mark: a DLQ topic deleted and created again starts its offsets over, and
 * a mark of another entry at the same offset is ignored. An entry is *claimed* before it is replayed
 * and *settled* after; a claim older than {@link CLAIM_TTL_MS} (a replay that died) can be taken over.
 * Marks below the topic's earliest retained offset are pruned.
 */
import type { ReplayMark } from '../dlq/format.ts'
import type { Redis } from './redis.ts'

/** How long a claim holds without being settled before another replay may take the entry over. */
export const CLAIM_TTL_MS = 10 * 60 * 1000

/** What the ledger stores per entry. */
export interface LedgerMark extends ReplayMark {
  /** The entry's failedAt: tells this entry from another that later took its offset. */
  readonly failedAt: string
  /** Epoch ms of the claim or settlement. */
  readonly atMs: number
}

const CLAIMED = 'claimed'

// KEYS[1] the hash; ARGV[1] field, ARGV[2] failedAt, ARGV[3] the claim JSON, ARGV[4] claims older than
// this epoch ms are stale. Returns the existing mark's JSON when the entry is taken, else claims it.
const CLAIM = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local mark = cjson.decode(current)
  if mark.failedAt == ARGV[2] and (mark.outcome ~= '${CLAIMED}' or mark.atMs > tonumber(ARGV[4])) then
    return current
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return false
`

/** Redis-backed replay ledger of one deployment (`prefix` separates deployments and tests). */
export class ReplayLedger {
  readonly #redis: Redis
  readonly #key: string

  constructor(redis: Redis, prefix = 'pipeline') {
    this.#redis = redis
    this.#key = `${prefix}:dlq:replayed`
  }

  /**
   * The marks of the entries of `topic` among `entries` (offset and failedAt) that were replayed
   * or are being replayed, by offset. Stale claims are left out.
   */
  async marks(
    topic: string,
    entries: readonly { offset: string; failedAt: string }[],
    now = Date.now(),
  ): Promise<Map<string, LedgerMark>> {
    const found = new Map<string, LedgerMark>()
    if (entries.length === 0) return found
    const fields = entries.map((e) => `${topic}:${e.offset}`)
    const raws: (string | null)[] = []
    for (let i = 0; i < fields.length; i += 1000)
      raws.push(...(await this.#redis.hmGet(this.#key, fields.slice(i, i + 1000))))
    entries.forEach((entry, i) => {
      const raw = raws[i]
      if (raw === null || raw === undefined) return
      const mark = JSON.parse(raw) as LedgerMark
      if (mark.failedAt !== entry.failedAt) return
      if (mark.outcome === CLAIMED && mark.atMs <= now - CLAIM_TTL_MS) return
      found.set(entry.offset, mark)
    })
    return found
  }

  /**
   * Claims entry `offset` of `topic` for a replay.
   *
   * @returns undefined when claimed, else the mark of whoever replayed or is replaying it
   */
  async claim(
    topic: string,
    offset: string,
    failedAt: string,
    now = Date.now(),
  ): Promise<LedgerMark | undefined> {
    const mark: LedgerMark = { at: new Date(now).toISOString(), atMs: now, outcome: CLAIMED, failedAt }
    const current = await this.#redis.eval(CLAIM, {
      keys: [this.#key],
      arguments: [`${topic}:${offset}`, failedAt, JSON.stringify(mark), String(now - CLAIM_TTL_MS)],
    })
    return typeof current === 'string' ? (JSON.parse(current) as LedgerMark) : undefined
  }

  /** Records how claimed entries were settled. */
  async settle(
    topic: string,
    entries: readonly { offset: string; failedAt: string; outcome: string }[],
    now = Date.now(),
  ): Promise<void> {
    if (entries.length === 0) return
    const at = new Date(now).toISOString()
    const values: Record<string, string> = {}
    for (const entry of entries) {
      const mark: LedgerMark = { at, atMs: now, outcome: entry.outcome, failedAt: entry.failedAt }
      values[`${topic}:${entry.offset}`] = JSON.stringify(mark)
    }
    await this.#redis.hSet(this.#key, values)
  }

  /** Gives up claims (the replay of those entries failed and may be tried again). */
  async release(topic: string, offsets: readonly string[]): Promise<void> {
    if (offsets.length === 0) return
    await this.#redis.hDel(
      this.#key,
      offsets.map((offset) => `${topic}:${offset}`),
    )
  }

  /** Forgets the marks of `topic` below `earliestOffset` (entries Kafka no longer retains). */
  async prune(topic: string, earliestOffset: bigint): Promise<number> {
    const prefix = `${topic}:`
    const stale: string[] = []
    for await (const fields of this.#redis.hScanIterator(this.#key, {
      MATCH: `${escapeGlob(topic)}:*`,
      COUNT: 1000,
    })) {
      for (const { field } of fields) {
        const offset = field.slice(prefix.length)
        if (field.startsWith(prefix) && /^\d+$/.test(offset) && BigInt(offset) < earliestOffset)
          stale.push(field)
      }
    }
    for (let i = 0; i < stale.length; i += 1000) await this.#redis.hDel(this.#key, stale.slice(i, i + 1000))
    return stale.length
  }

  /**
   * How many entries of `topic` at or after `earliestOffset` were replayed with one of `outcomes`
   * (the consumer's DLQ depth leaves them out). Claims in progress count only when listed.
   */
  async countSettled(topic: string, earliestOffset: bigint, outcomes: ReadonlySet<string>): Promise<number> {
    const prefix = `${topic}:`
    let count = 0
    for await (const fields of this.#redis.hScanIterator(this.#key, {
      MATCH: `${escapeGlob(topic)}:*`,
      COUNT: 1000,
    })) {
      for (const { field, value } of fields) {
        const offset = field.slice(prefix.length)
        if (!field.startsWith(prefix) || !/^\d+$/.test(offset) || BigInt(offset) < earliestOffset) continue
        const mark = JSON.parse(value) as Partial<LedgerMark>
        if (typeof mark.outcome === 'string' && outcomes.has(mark.outcome)) count++
      }
    }
    return count
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
