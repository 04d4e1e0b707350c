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
 * Claims, skips and settlements are compare-and-set, because two members may deliver one view at
 * once: after a rebalance the member that lost the partition can still be POSTing while the new owner
 * reads the same requests. A claim goes only while the record is still byte for byte the one it was
 * decided from, so of two claims made from the same record only the first wins and two contents of a
 * view are never in the air together; a claim also loses to any evaluation that read a later view
 * clock, and a skip ({@link DeliveryStore.evaluated}) does not stand if a claim came between its read
 * and its note, so an older evaluation cannot send what a newer one skipped; and a settlement that finds the record moved
 * on (its claim had expired) marks it in doubt, so the view is delivered again under a fresh key.
 *
 * Key: `<prefix>:consumer:delivered`, a hash view id → JSON {@link DeliveryRecord}. Records of deleted
 * views stay: the next key of a view that comes back chains on them. `<prefix>:consumer:evaluated`, a
 * hash view id → the view clock its latest claiming or skipping evaluation read.
 */
import type { DeliveryRecord, ViewId } from '../domain/views.ts'
import { chunks, hGetMany } from './bulk.ts'
import type { Redis } from './redis.ts'
import { runScript, type Script, script } from './scripts.ts'

/** A delivery about to be POSTed: it may go only while the view's record is still the one it was decided from. */
export interface Claim {
  readonly viewId: ViewId
  /** The stored text of the record the decision was made from ({@link Recorded.raw}); undefined: none. */
  readonly previous: string | undefined
  readonly key: string
  readonly hash: string
  /** Until when the POST, its retries included, may land at Analytics (epoch ms). */
  readonly mayLandUntil: number
}

/** How a claimed delivery ended: the record to keep, written only while the view is still `key`'s. */
export interface Settlement {
  readonly viewId: ViewId
  /** The record text its claim wrote ({@link claimText}). */
  readonly claimed: string
  readonly record: DeliveryRecord
}

/** The record text a claim writes: what its settlement recognises as its own. */
export function claimText(claim: Claim): string {
  const record: DeliveryRecord = {
    key: claim.key,
    hash: claim.hash,
    confirmed: false,
    mayLandUntil: claim.mayLandUntil,
  }
  return JSON.stringify(record)
}

/** The records of some views as read, with their stored text (what claims compare against). */
export interface Recorded {
  readonly records: Map<ViewId, DeliveryRecord>
  readonly raw: Map<ViewId, string>
}

// Per claim: write the record only if the stored one is still, byte for byte, the one the decision
// was made from ('' for none): another member's claim, a re-send's renewed window or a doubt raised
// meanwhile all change it. With a view clock (ARGV[1], '' for none), also only if no evaluation read a
// later clock: that one may have seen a write this one missed, and skipped the view as unchanged.
// KEYS[1] the records, KEYS[2] the clock of the latest evaluation per view; then ARGV triples of view,
// previous record text, record JSON. Returns the views whose record moved on.
const CLAIM = script(`
local seq = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV, 3 do
  local view, previous, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current = redis.call('HGET', KEYS[1], view) or ''
  if current == previous and (not seq or (tonumber(redis.call('HGET', KEYS[2], view)) or 0) <= seq) then
    redis.call('HSET', KEYS[1], view, json)
    if seq then redis.call('HSET', KEYS[2], view, seq) end
  else
    lost[#lost + 1] = view
  end
end
return lost
`)

// Per view: record that an evaluation read the view clock at ARGV[1] and found nothing to send,
// only if the record is still the one it decided from (else a claim came between its read and now,
// and the skip stands on stale ground), and unless a later evaluation noted a later clock. KEYS[1]
// the records, KEYS[2] the clock of the latest evaluation per view; ARGV pairs of view, previous
// record text. Returns the views whose record moved on.
const EVALUATED = script(`
local seq = tonumber(ARGV[1])
local moved = {}
for i = 2, #ARGV, 2 do
  local view, previous = ARGV[i], ARGV[i + 1]
  if (redis.call('HGET', KEYS[1], view) or '') ~= previous then
    moved[#moved + 1] = view
  elseif (tonumber(redis.call('HGET', KEYS[2], view)) or 0) < seq then
    redis.call('HSET', KEYS[2], view, seq)
  end
end
return moved
`)

// Per settlement: while the stored record is still the settling claim's own, replace it. If it
// changed but still has the settled key (another member re-sent the same key, or raised a doubt),
// merge: keep a doubt and its window, and for an outcome without a 2xx keep the longer of the two
// windows (the other member's copy may still land; after a 2xx every copy is a replay). If it has
// another key, mark it in doubt and make it wait for the settled request's possible late landing.
// KEYS[1] the records; ARGV quintuples of view, the claim's record text, key, record JSON, its
// mayLandUntil or ''. Returns the views whose record moved on.
const SETTLE = script(`
local moved = {}
for i = 1, #ARGV, 5 do
  local view, claimed, key, json, late = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local raw = redis.call('HGET', KEYS[1], view)
  if not raw or raw == claimed then
    redis.call('HSET', KEYS[1], view, json)
  else
    local current = cjson.decode(raw)
    local window = current.mayLandUntil
    if current.key == key then
      local record = cjson.decode(json)
      if current.doubt then record.doubt = true end
      if window and (current.doubt or late ~= '') and (not record.mayLandUntil or window > record.mayLandUntil) then
        record.mayLandUntil = window
      end
      redis.call('HSET', KEYS[1], view, cjson.encode(record))
    else
      current.doubt = true
      if late ~= '' and (window == nil or tonumber(late) > window) then current.mayLandUntil = tonumber(late) end
      redis.call('HSET', KEYS[1], view, cjson.encode(current))
      moved[#moved + 1] = view
    end
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
  async read(viewIds: Iterable<ViewId>): Promise<Map<ViewId, DeliveryRecord>> {
    return (await this.readRecorded(viewIds)).records
  }

  /** The records of those of `viewIds` that have one, with their stored text (for {@link claim}). */
  async readRecorded(viewIds: Iterable<ViewId>): Promise<Recorded> {
    const raw = await hGetMany(this.#redis, this.#key, viewIds)
    const records = new Map<ViewId, DeliveryRecord>()
    for (const [view, text] of raw) records.set(view, JSON.parse(text) as DeliveryRecord)
    return { records, raw }
  }

  /**
   * Records that these deliveries are about to be POSTed, their outcome unknown, each only if its
   * view's record is still the one it was decided from and no evaluation read a later clock than
   * `seq`, the view clock read before the state these deliveries were computed from.
   *
   * `texts` may hold each claim's {@link claimText} when the caller made it already (it needs it
   * again to settle).
   *
   * @returns the views whose record moved on meanwhile (another member claimed them, or evaluated
   *   them from newer state): not to be sent
   */
  async claim(
    claims: readonly Claim[],
    seq: number,
    texts?: ReadonlyMap<ViewId, string>,
  ): Promise<Set<ViewId>> {
    return this.#run(CLAIM, [this.#key, this.#evaluated], [String(seq)], claims, (c) => [
      c.viewId,
      c.previous ?? '',
      texts?.get(c.viewId) ?? claimText(c),
    ])
  }

  /**
   * Records that `views` were evaluated, from state read after the view clock read `seq`, and found
   * with nothing to send, each only if its record is still the one the evaluation read (`previous`,
   * its stored text). A member still holding an older evaluation can then no longer claim them: what
   * it would send may be older than what this evaluation saw.
   *
   * @returns the views whose record moved on since they were read: their skip does not stand
   */
  async evaluated(
    views: ReadonlyArray<readonly [ViewId, string | undefined]>,
    seq: number,
  ): Promise<Set<ViewId>> {
    return this.#run(EVALUATED, [this.#key, this.#evaluated], [String(seq)], views, ([view, previous]) => [
      view,
      previous ?? '',
    ])
  }

  /**
   * Replaces a record that is still, byte for byte, `previous` (a DLQ replay resetting a settled
   * view: a delivery claimed meanwhile keeps its record).
   *
   * @returns false when the record moved on
   */
  async replace(viewId: ViewId, previous: string | undefined, record: DeliveryRecord): Promise<boolean> {
    const lost = await this.#run(CLAIM, [this.#key, this.#evaluated], [''], [viewId], (view) => [
      view,
      previous ?? '',
      JSON.stringify(record),
    ])
    return lost.size === 0
  }

  /**
   * Records how claimed deliveries ended, each only while its view's record still holds its key
   * (see the script for how a record another member touched meanwhile is merged).
   *
   * @returns the views whose record had moved on: another member delivered meanwhile, and this
   *   delivery may have landed after its. Those are now in doubt; evaluate them again.
   */
  async settle(settlements: readonly Settlement[]): Promise<Set<ViewId>> {
    return this.#run(SETTLE, [this.#key], [], settlements, ({ viewId, claimed, record }) => [
      viewId,
      claimed,
      record.key,
      JSON.stringify(record),
      record.mayLandUntil === undefined ? '' : String(record.mayLandUntil),
    ])
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
