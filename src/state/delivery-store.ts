/**
 * Stage 2's memory of what it sent to Analytics: per view, the last attempted delivery (idempotency
 * key and content hash), whether the sink acknowledged it, and until when a request of it may still
 * land. {@link decideDelivery} reads it to skip unchanged views, re-send an attempt of unknown outcome
 * under its own key, hold other content back while an older request may still land, and chain the
 * key of the next one.
 *
 * Per batch the caller does: (1) {@link DeliveryStore.read}; (2) decide each view; (3)
 * {@link DeliveryStore.claim} the views to send; (4) POST what it claimed; (5) {@link DeliveryStore.settle}
 * each claim with its outcome. Step 3 must complete before step 4 starts: it is what lets a view that
 * changes back after a crash be delivered again (see {@link decideDelivery}).
 *
 * Claims and settlements are compare-and-set on the record's key, because two members may deliver one
 * view at once: after a rebalance the member that lost the partition can still be POSTing while the
 * new owner reads the same requests. Of two claims made from the same record only the first wins, so
 * two contents of a view are never in the air together; a claim also loses to any evaluation that
 * read a later view clock (one that found nothing to send says so with {@link DeliveryStore.evaluated}),
 * so an older evaluation cannot send what a newer one skipped; and a settlement that finds the record moved
 * on (its claim had expired) marks it in doubt, so the view is delivered again under a fresh key.
 *
 * Key: `<prefix>:consumer:delivered`, a hash view id → JSON {@link DeliveryRecord}. Records of deleted
 * views stay: the next key of a view that comes back chains on them. `<prefix>:consumer:evaluated`, a
 * hash view id → the view clock its latest claiming or skipping evaluation read.
 */
import type { DeliveryRecord, ViewId } from '../domain/views.ts'
import { chunks, hGetJsonMany, hSetJsonMany } from './bulk.ts'
import type { Redis } from './redis.ts'
import { runScript, type Script, script } from './scripts.ts'

/** A delivery about to be POSTed: it may go only while the view's record is still `previousKey`'s. */
export interface Claim {
  readonly viewId: ViewId
  /** The key of the record the decision was made from; undefined when there was none. */
  readonly previousKey: string | undefined
  readonly key: string
  readonly hash: string
  /** Until when the POST, its retries included, may land at Analytics (epoch ms). */
  readonly mayLandUntil: number
}

/** How a claimed delivery ended: the record to keep, written only while the view is still `key`'s. */
export interface Settlement {
  readonly viewId: ViewId
  readonly record: DeliveryRecord
}

// Per claim: write the record only if the stored one still has the key the decision was made from
// ('' for none) and no evaluation read a later view clock than this one (ARGV[1]): that one may have
// seen a write this one missed, and skipped the view as unchanged. KEYS[1] the records, KEYS[2] the
// clock of the latest evaluation per view; then ARGV triples of view, previous key, record JSON.
// Returns the views whose record moved on.
const CLAIM = script(`
local seq = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV, 3 do
  local view, previous, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local raw = redis.call('HGET', KEYS[1], view)
  local current = ''
  if raw then current = cjson.decode(raw).key end
  if current == previous and (tonumber(redis.call('HGET', KEYS[2], view)) or 0) <= seq then
    redis.call('HSET', KEYS[1], view, json)
    redis.call('HSET', KEYS[2], view, seq)
  else
    lost[#lost + 1] = view
  end
end
return lost
`)

// Per view: record that an evaluation read the view clock at ARGV[1], unless a later one did.
// KEYS[1] the clock of the latest evaluation per view; ARGV[2..] the views.
const EVALUATED = script(`
local seq = tonumber(ARGV[1])
for i = 2, #ARGV do
  if (tonumber(redis.call('HGET', KEYS[1], ARGV[i])) or 0) < seq then
    redis.call('HSET', KEYS[1], ARGV[i], seq)
  end
end
return 1
`)

// Per settlement: while the stored record still has the settled key, replace it (keeping a doubt
// another member raised meanwhile); otherwise mark the stored record in doubt, and make it wait for
// the settled request's possible late landing. KEYS[1] the records; ARGV quadruples of view, key,
// record JSON, the settled record's mayLandUntil or ''. Returns the views whose record moved on.
const SETTLE = script(`
local moved = {}
for i = 1, #ARGV, 4 do
  local view, key, json, late = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local raw = redis.call('HGET', KEYS[1], view)
  local current = raw and cjson.decode(raw)
  if not current or current.key == key then
    if current and current.doubt then
      local record = cjson.decode(json)
      record.doubt = true
      json = cjson.encode(record)
    end
    redis.call('HSET', KEYS[1], view, json)
  else
    current.doubt = true
    if late ~= '' and (current.mayLandUntil == nil or tonumber(late) > current.mayLandUntil) then
      current.mayLandUntil = tonumber(late)
    end
    redis.call('HSET', KEYS[1], view, cjson.encode(current))
    moved[#moved + 1] = view
  end
end
return moved
`)

/** Views per script call: a call blocks Redis while it runs, so keep it short. */
const RECORDS_PER_CALL = 200

/** Redis-backed delivery records of one deployment (`prefix` separates deployments and tests). */
export class DeliveryStore {
  readonly #redis: Redis
  readonly #key: string
  readonly #evaluated: string

  constructor(redis: Redis, prefix = 'pipeline') {
    this.#redis = redis
    this.#key = `${prefix}:consumer:delivered`
    this.#evaluated = `${prefix}:consumer:evaluated`
  }

  /** The records of those of `viewIds` that have one. */
  read(viewIds: Iterable<ViewId>): Promise<Map<ViewId, DeliveryRecord>> {
    return hGetJsonMany<ViewId, DeliveryRecord>(this.#redis, this.#key, viewIds)
  }

  /**
   * Records that these deliveries are about to be POSTed, their outcome unknown, each only if its
   * view's record is still the one it was decided from and no evaluation read a later clock than
   * `seq`, the view clock read before the state these deliveries were computed from.
   *
   * @returns the views whose record moved on meanwhile (another member claimed them, or evaluated
   *   them from newer state): not to be sent
   */
  async claim(claims: readonly Claim[], seq: number): Promise<Set<ViewId>> {
    return this.#run(CLAIM, [this.#key, this.#evaluated], [String(seq)], claims, (c) => {
      const record: DeliveryRecord = {
        key: c.key,
        hash: c.hash,
        confirmed: false,
        mayLandUntil: c.mayLandUntil,
      }
      return [c.viewId, c.previousKey ?? '', JSON.stringify(record)]
    })
  }

  /**
   * Records how claimed deliveries ended, each only while its view's record still holds its key.
   *
   * @returns the views whose record had moved on: another member delivered meanwhile, and this
   *   delivery may have landed after its. Those are now in doubt; evaluate them again.
   */
  async settle(settlements: readonly Settlement[]): Promise<Set<ViewId>> {
    return this.#run(SETTLE, [this.#key], [], settlements, ({ viewId, record }) => [
      viewId,
      record.key,
      JSON.stringify(record),
      record.mayLandUntil === undefined ? '' : String(record.mayLandUntil),
    ])
  }

  /**
   * Records that `views` were evaluated, from state read after the view clock read `seq`, and found
   * with nothing to send. A member still holding an older evaluation of one of them can then no
   * longer claim it: what it would send may be older than what this evaluation saw.
   */
  async evaluated(views: readonly ViewId[], seq: number): Promise<void> {
    await this.#run(EVALUATED, [this.#evaluated], [String(seq)], views, (view) => [view])
  }

  /** Writes records as they are, whatever is stored (a DLQ replay resetting a settled view). */
  put(records: Iterable<readonly [ViewId, DeliveryRecord]>): Promise<void> {
    return hSetJsonMany(this.#redis, this.#key, records)
  }

  /** Runs `which` over `items` in slices, each call with `head` before the slice's arguments. */
  async #run<T>(
    which: Script,
    keys: string[],
    head: string[],
    items: readonly T[],
    args: (item: T) => string[],
  ): Promise<Set<ViewId>> {
    const replies = await Promise.all(
      chunks(items, RECORDS_PER_CALL).map((slice) =>
        runScript(this.#redis, which, keys, [...head, ...slice.flatMap(args)]),
      ),
    )
    return new Set(replies.flatMap((reply) => (Array.isArray(reply) ? (reply as ViewId[]) : [])))
  }
}
