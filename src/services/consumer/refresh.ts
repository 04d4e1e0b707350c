/**
 * Refresh requests, the messages between the consumer's two stages. A request names a view, the poll
 * time of the change that caused it (for the end-to-end latency) and the view clock after the writes
 * that caused it (`seq`, see `ViewClock`: stage 2 skips a request an earlier evaluation covered).
 *
 * Requests travel **packed**: every view id belongs to one of {@link REFRESH_SHARDS} shards (a hash of
 * the id), and one message per shard carries all of a send's views of that shard, keyed by the shard.
 * Every refresh of one view therefore still goes through one partition, so its deliveries stay
 * serialized (design §4), while an initial load moves a few thousand messages instead of ~4 per view:
 * a Kafka message costs the client, the broker and stage 2 far more than a view id inside one.
 *
 * The shard function and count must never change while requests are in flight (a view would then
 * have two partitions): they are part of the topic's format, like the key of a table.
 */
import { isViewId, type ViewId } from '../../domain/views.ts'
import type { OutgoingMessage } from '../../kafka/ports.ts'

/** How many shards view ids are packed by (≥ any sensible partition count of the refresh topic). */
export const REFRESH_SHARDS = 64

/** Most views one message carries (~50 KiB), far below Kafka's message limit. */
export const MAX_VIEWS_PER_MESSAGE = 1000

const SHARD_KEY_PREFIX = 'views#'

/** A refresh request as read back. */
export interface RefreshRequest {
  readonly view: ViewId
  readonly polledAt: string | undefined
  /** Set by the retry schedule: the view failed before, and its failure record is cleared on success. */
  readonly retry: boolean
  /** The view clock after the writes that caused the request; undefined: always evaluate. */
  readonly seq: number | undefined
}

/** What one refresh message asks for. */
export interface ParsedRefresh {
  readonly requests: RefreshRequest[]
  /** Members of a packed message that are not view ids (nothing can evaluate them; the caller logs them). */
  readonly invalid: string[]
}

/**
 * The shard of a view id: FNV-1a over its UTF-16 code units (no bytes to allocate, as Kafka's own key
 * hash would need per view), so a shard is as stable as the id.
 */
export function refreshShard(view: ViewId): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < view.length; i++) hash = Math.imul(hash ^ view.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % REFRESH_SHARDS
}

/**
 * The packed messages' value: the views grouped by the poll time of the change that caused them
 * ('' when unknown): one stage-1 batch's views mostly share a few poll times.
 */
interface PackedValue {
  seq?: number
  retry?: true
  views: Record<string, ViewId[]>
}

/** One message being filled: its views by poll time, and how many it holds. */
interface Pack {
  readonly views: Record<string, ViewId[]>
  size: number
}

/**
 * The messages asking stage 2 to re-evaluate `views` (view id → the poll time of the change that
 * caused it), distinct views expected. Without `seq` they are always evaluated (retry rounds, DLQ
 * replays, rebalances: they must act even on a view whose state did not change).
 */
export function refreshMessages(
  topic: string,
  views: Iterable<readonly [ViewId, string | undefined]>,
  options: { readonly retry?: boolean; readonly seq?: number } = {},
): OutgoingMessage[] {
  const shards = new Map<number, Pack[]>()
  for (const [view, polledAt] of views) {
    const shard = refreshShard(view)
    let packs = shards.get(shard)
    if (packs === undefined) {
      packs = []
      shards.set(shard, packs)
    }
    let pack = packs[packs.length - 1]
    if (pack === undefined || pack.size === MAX_VIEWS_PER_MESSAGE) {
      pack = { views: Object.create(null) as Record<string, ViewId[]>, size: 0 }
      packs.push(pack)
    }
    const at = polledAt ?? ''
    const group = pack.views[at]
    if (group === undefined) pack.views[at] = [view]
    else group.push(view)
    pack.size++
  }
  const messages: OutgoingMessage[] = []
  for (const [shard, packs] of shards) {
    for (const { views } of packs) {
      const value: PackedValue = { views }
      if (options.seq !== undefined) value.seq = options.seq
      if (options.retry) value.retry = true
      messages.push({ topic, key: `${SHARD_KEY_PREFIX}${shard}`, value: JSON.stringify(value), headers: {} })
    }
  }
  return messages
}

/** The message asking stage 2 to re-evaluate one view (see {@link refreshMessages}). */
export function refreshMessage(
  topic: string,
  view: ViewId,
  polledAt: string | undefined,
  options: { readonly retry?: boolean; readonly seq?: number } = {},
): OutgoingMessage {
  return refreshMessages(topic, [[view, polledAt]], options)[0] as OutgoingMessage
}

// Anything but a positive whole number is no stamp: evaluated, never wrongly skipped.
const stampOf = (seq: unknown): number | undefined =>
  Number.isSafeInteger(seq) && (seq as number) > 0 ? (seq as number) : undefined

/**
 * Reads the refresh requests of one message; undefined when it is not a refresh message (the reason
 * is logged by the caller). A message keyed by a single view id (the format before packing) is read
 * too, so requests published by an older consumer are not lost in an upgrade.
 */
export function parseRefresh(key: string | null, value: Buffer | null): ParsedRefresh | undefined {
  if (key === null) return undefined
  let parsed: { polledAt?: unknown; retry?: unknown; seq?: unknown; views?: unknown } = {}
  try {
    if (value !== null) parsed = JSON.parse(value.toString('utf8')) as typeof parsed
  } catch {
    if (!isViewId(key)) return undefined
    // A single request is only its key; a damaged value costs the latency figure and the skip.
  }
  if (parsed === null || typeof parsed !== 'object') parsed = {}
  const retry = parsed.retry === true
  const seq = stampOf(parsed.seq)
  if (isViewId(key)) {
    const polledAt = typeof parsed.polledAt === 'string' ? parsed.polledAt : undefined
    return { requests: [{ view: key, polledAt, retry, seq }], invalid: [] }
  }
  const views = parsed.views
  if (!key.startsWith(SHARD_KEY_PREFIX) || views === null || typeof views !== 'object') return undefined
  const requests: RefreshRequest[] = []
  const invalid: string[] = []
  for (const at in views as Record<string, unknown>) {
    const group = (views as Record<string, unknown>)[at]
    if (!Array.isArray(group)) {
      invalid.push(at)
      continue
    }
    const polledAt = at === '' ? undefined : at
    for (const view of group) {
      if (typeof view === 'string' && isViewId(view)) requests.push({ view, polledAt, retry, seq })
      else invalid.push(String(view))
    }
  }
  return { requests, invalid }
}
