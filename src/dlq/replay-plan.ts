/**
 * Planning a DLQ replay (pure): what each selected entry needs, before anything is touched.
 *
 * - A **deliver**-stage entry re-requests its view: stage 2 then computes the view from the *current*
 *   state and delivers it under a fresh idempotency key. Entries of one view in one replay make one
 *   request (the others are `covered`).
 * - A **source**, **deserialize** or **validate**-stage entry is validated again with today's schema;
 *   if it passes it is published to its source topic, else it stays, with the reason. Of several
 *   passing entries of one record, only the newest version is published.
 * - An entry the replay ledger already holds is skipped, so replaying the same filter twice does
 *   nothing the second time.
 */
import { contentHash } from '../domain/canonical.ts'
import { decodeSourceMessage } from '../domain/decode.ts'
import type { RecordOrigin } from '../domain/envelope.ts'
import { type EntityRecord, validateRecord } from '../domain/records.ts'
import { type DeliveryRecord, isViewId, type StoredEntity, type ViewId } from '../domain/views.ts'
import { ErrorCodes, PipelineError } from '../errors.ts'
import type { DlqEntry } from './entry.ts'
import type { ReplayMark } from './format.ts'
import type { DlqItem } from './item.ts'

/** What replaying one entry will do. */
export type ReplayAction =
  /** The ledger says it was replayed already. */
  | { readonly kind: 'already-replayed'; readonly mark: ReplayMark }
  /** Re-request view `view`; `keys` are the idempotency keys its selected entries failed with. */
  | {
      readonly kind: 'refresh'
      readonly view: ViewId
      readonly keys: readonly string[]
      /** Offsets of the other selected entries of the same view, settled by this request. */
      readonly covers: readonly string[]
    }
  /** Publish `record` (valid now) to its source topic. */
  | {
      readonly kind: 'publish'
      readonly origin: RecordOrigin
      readonly record: EntityRecord
      readonly covers: readonly string[]
    }
  /** Another selected entry (at offset `by`) does the work for this one. */
  | { readonly kind: 'covered'; readonly by: string }
  /** The entry still fails validation: it stays in the DLQ. */
  | { readonly kind: 'still-failing'; readonly reason: string }
  /** Nothing a replay can do (unreadable entry, unknown origin topic, no view id). */
  | { readonly kind: 'unsupported'; readonly reason: string }

/** One selected entry and its action. */
export interface PlannedReplay {
  readonly item: DlqItem
  readonly action: ReplayAction
}

/** What planning needs to know besides the entries. */
export interface ReplayPlanContext {
  /** The source topics (by name) and how a record is published to each. */
  readonly sources: ReadonlyMap<string, RecordOrigin>
  /** Offsets the replay ledger holds, with how they were settled. */
  readonly replayed: ReadonlyMap<string, ReplayMark>
}

/** The view a deliver-stage entry is about: its origin key (the refresh key), else from its key or view. */
export function viewOfEntry(entry: DlqEntry): ViewId | undefined {
  const key = entry.origin.key
  if (key !== undefined && isViewId(key)) return key
  const idempotencyKey = entry.idempotencyKey
  if (idempotencyKey !== undefined && idempotencyKey.lastIndexOf(':') > 0) {
    const view = idempotencyKey.slice(0, idempotencyKey.lastIndexOf(':'))
    if (isViewId(view)) return view
  }
  const shown = entry.view as { type?: unknown; id?: unknown } | undefined
  if (typeof shown?.type === 'string' && typeof shown.id === 'string') {
    const view = `${shown.type}:${shown.id}`
    if (isViewId(view)) return view
  }
  return undefined
}

/** The raw bytes of a stage-1 poison payload (UTF-8 text, or `base64:` marked bytes). */
function payloadBytes(payload: string): Buffer {
  return payload.startsWith('base64:')
    ? Buffer.from(payload.slice('base64:'.length), 'base64')
    : Buffer.from(payload, 'utf8')
}

/** The `id` of an envelope in `text`, if it is a JSON object with a string id. */
function envelopeId(text: string): string | null {
  try {
    const parsed = JSON.parse(text) as { id?: unknown }
    return typeof parsed.id === 'string' && parsed.id !== '' ? parsed.id : null
  } catch {
    return null
  }
}

/** The outcome of validating a poison entry again. */
export type Revalidation =
  | { readonly ok: true; readonly origin: RecordOrigin; readonly record: EntityRecord }
  | { readonly ok: false; readonly kind: 'still-failing' | 'unsupported'; readonly reason: string }

/**
 * Validates a source-, deserialize- or validate-stage entry again: a `source` payload is the raw
 * record; a stage-1 payload is the message value (envelope text), decoded as stage 1 would, under the
 * origin key or, when the message had none, the envelope's id.
 */
export function revalidate(entry: DlqEntry, sources: ReadonlyMap<string, RecordOrigin>): Revalidation {
  const topic = entry.origin.topic
  const origin = topic === undefined ? undefined : sources.get(topic)
  if (origin === undefined) {
    return {
      ok: false,
      kind: 'unsupported',
      reason: `origin topic ${JSON.stringify(topic ?? null)} is not a source topic of this configuration (${[...sources.keys()].join(', ')})`,
    }
  }
  if (entry.truncated?.payload !== undefined) {
    return {
      ok: false,
      kind: 'unsupported',
      reason: `the payload was not stored whole (${entry.truncated.payload})`,
    }
  }
  if (entry.stage === 'source') {
    const result = validateRecord(origin.entity, entry.payload)
    return result.ok
      ? { ok: true, origin, record: result.record }
      : { ok: false, kind: 'still-failing', reason: `invalid ${origin.entity}: ${result.reason}` }
  }
  if (typeof entry.payload !== 'string')
    return { ok: false, kind: 'still-failing', reason: 'the entry has no payload to replay' }
  const key =
    entry.origin.key !== undefined && entry.origin.key !== '' ? entry.origin.key : envelopeId(entry.payload)
  const decoded = decodeSourceMessage(origin.entity, key, payloadBytes(entry.payload))
  if (decoded.kind === 'poison') return { ok: false, kind: 'still-failing', reason: decoded.reason }
  if (decoded.kind === 'delete')
    return { ok: false, kind: 'unsupported', reason: 'the payload is a tombstone' }
  return { ok: true, origin, record: decoded.stored.data }
}

const updatedAtOf = (record: EntityRecord): number => {
  const at = typeof record.updatedAt === 'string' ? Date.parse(record.updatedAt) : Number.NaN
  return Number.isFinite(at) ? at : Number.NEGATIVE_INFINITY
}

const byOffset = (a: string, b: string): number => {
  const diff = BigInt(a) - BigInt(b)
  return diff < 0n ? -1 : diff > 0n ? 1 : 0
}

/**
 * Plans the replay of `items` (the selected entries, in offset order). Pure: the ledger marks and the
 * source topics come in `context`; the delivery records and current entity state are read when the
 * plan is carried out (see {@link forcedRedelivery} and {@link supersededBy}).
 */
export function planReplay(items: readonly DlqItem[], context: ReplayPlanContext): PlannedReplay[] {
  const actions = new Map<DlqItem, ReplayAction>()
  const views = new Map<ViewId, { item: DlqItem; key: string | undefined }[]>()
  const records = new Map<string, { item: DlqItem; origin: RecordOrigin; record: EntityRecord }[]>()
  for (const item of items) {
    const mark = context.replayed.get(item.offset)
    if (mark !== undefined) {
      actions.set(item, { kind: 'already-replayed', mark })
      continue
    }
    const entry = item.entry
    if (entry === undefined) {
      actions.set(item, { kind: 'unsupported', reason: `not a DLQ entry: ${item.problem ?? 'unreadable'}` })
      continue
    }
    if (entry.stage === 'deliver') {
      const view = viewOfEntry(entry)
      if (view === undefined) {
        actions.set(item, { kind: 'unsupported', reason: 'the entry names no view id' })
        continue
      }
      const group = views.get(view) ?? []
      group.push({ item, key: entry.idempotencyKey })
      views.set(view, group)
      continue
    }
    const checked = revalidate(entry, context.sources)
    if (!checked.ok) {
      actions.set(item, { kind: checked.kind, reason: checked.reason })
      continue
    }
    const id = `${checked.origin.topic}\u0000${checked.record.id}`
    const group = records.get(id) ?? []
    group.push({ item, origin: checked.origin, record: checked.record })
    records.set(id, group)
  }
  for (const [view, group] of views) {
    // The latest entry makes the request; it is the one a person reads about last.
    const sorted = [...group].sort((a, b) => byOffset(b.item.offset, a.item.offset))
    const [first, ...rest] = sorted
    if (first === undefined) continue
    const keys = [...new Set(group.map((g) => g.key).filter((k): k is string => k !== undefined))]
    actions.set(first.item, { kind: 'refresh', view, keys, covers: rest.map((r) => r.item.offset) })
    for (const other of rest) actions.set(other.item, { kind: 'covered', by: first.item.offset })
  }
  for (const group of records.values()) {
    // The newest version of the record wins; of equal versions, the latest entry.
    const sorted = [...group].sort(
      (a, b) => updatedAtOf(b.record) - updatedAtOf(a.record) || byOffset(b.item.offset, a.item.offset),
    )
    const [first, ...rest] = sorted
    if (first === undefined) continue
    actions.set(first.item, {
      kind: 'publish',
      origin: first.origin,
      record: first.record,
      covers: rest.map((r) => r.item.offset),
    })
    for (const other of rest) actions.set(other.item, { kind: 'covered', by: first.item.offset })
  }
  return items.map((item) => ({
    item,
    action: actions.get(item) ?? { kind: 'unsupported', reason: 'not planned' },
  }))
}

/** The hash a forced re-delivery writes: never a content hash (those are 64 hex digits). */
export function replayMarker(topic: string, offset: string): string {
  return `dlq-replay:${topic}:${offset}`
}

/**
 * The delivery record that makes stage 2 deliver view content again under a fresh key, or undefined
 * when none is needed.
 *
 * A rejected or dead-lettered view is recorded as settled (confirmed), so its unchanged content
 * would be skipped; an unconfirmed record with the same hash would re-send the *same* key, which the
 * sink may have kept as rejected. So when the view's last attempt is one of the entries' keys, the
 * record keeps that key (the chain goes on from it) with `marker` as hash: the next decision sees
 * other content and chains a new key. When the last attempt is another key, the view has moved on
 * since (delivered, or failed again with its own entry), and a plain refresh delivers only what changed.
 */
export function forcedRedelivery(
  last: DeliveryRecord | undefined,
  keys: readonly string[],
  marker: string,
): DeliveryRecord | undefined {
  if (last === undefined || !keys.includes(last.key)) return undefined
  // A request of the settled attempt that may still land keeps the next delivery waiting for it.
  const late = last.mayLandUntil === undefined ? {} : { mayLandUntil: last.mayLandUntil }
  return { key: last.key, hash: marker, confirmed: true, ...late }
}

/**
 * Why publishing `record` again would be wrong, given what the consumer holds for its id now: the
 * same version (nothing to do) or a newer one (publishing would roll it back). Undefined: publish.
 */
export function supersededBy(
  stored: StoredEntity<EntityRecord> | undefined,
  record: EntityRecord,
): string | undefined {
  if (stored === undefined) return undefined
  if (stored.contentHash === contentHash(record)) return 'the consumer already holds this version'
  const held = updatedAtOf(stored.data)
  if (held > updatedAtOf(record))
    return `a newer version (updatedAt ${String(stored.data.updatedAt)}) is already applied`
  return undefined
}

/** How one entry ended up. */
export type ReplayOutcome =
  | 'requested'
  | 'published'
  | 'covered'
  | 'superseded'
  | 'already-replayed'
  | 'still-failing'
  | 'unsupported'
  | 'error'

/** Outcomes that settle an entry: recorded in the ledger, so it is not replayed again. */
export const SETTLED_OUTCOMES: ReadonlySet<ReplayOutcome> = new Set([
  'requested',
  'published',
  'covered',
  'superseded',
])

/** One entry's result. */
export interface ReplayResult {
  readonly offset: string
  readonly stage: string
  readonly key: string | null
  readonly outcome: ReplayOutcome
  /** One line: what was done, or why not. */
  readonly detail: string
}

/** A whole replay's report. */
export interface ReplayReport {
  readonly topic: string
  readonly dryRun: boolean
  readonly selected: number
  readonly counts: Readonly<Partial<Record<ReplayOutcome, number>>>
  readonly results: readonly ReplayResult[]
}

/** Counts `results` by outcome. */
export function countOutcomes(results: readonly ReplayResult[]): Partial<Record<ReplayOutcome, number>> {
  const counts: Partial<Record<ReplayOutcome, number>> = {}
  for (const result of results) counts[result.outcome] = (counts[result.outcome] ?? 0) + 1
  return counts
}

const OUTCOME_ORDER: readonly ReplayOutcome[] = [
  'requested',
  'published',
  'covered',
  'superseded',
  'already-replayed',
  'still-failing',
  'unsupported',
  'error',
]

/** The counts as one phrase, e.g. `2 requested, 1 still-failing`. */
export function formatCounts(counts: Readonly<Partial<Record<ReplayOutcome, number>>>): string {
  const parts = OUTCOME_ORDER.filter((o) => (counts[o] ?? 0) > 0).map((o) => `${counts[o]} ${o}`)
  return parts.length === 0 ? 'nothing' : parts.join(', ')
}

/**
 * The end-of-replay report: a line per entry that did not simply go through (still failing, errors,
 * and in a dry run every entry), then the totals.
 */
export function formatReplayReport(report: ReplayReport): string {
  const verb = report.dryRun ? 'dry run, nothing changed' : 'replayed'
  const shown = report.results.filter(
    (r) =>
      report.dryRun || r.outcome === 'still-failing' || r.outcome === 'unsupported' || r.outcome === 'error',
  )
  const lines = shown.map(
    (r) => `  ${r.offset.padStart(6)}  ${r.stage.padEnd(11)}  ${r.outcome.padEnd(16)}  ${r.detail}`,
  )
  lines.push(`${report.selected} selected in ${report.topic} (${verb}): ${formatCounts(report.counts)}`)
  return lines.join('\n')
}

/** A one-line progress bar for a terminal: `[#####-----] 12/40 2 requested, 1 still-failing`. */
export function formatProgress(
  done: number,
  total: number,
  counts: Readonly<Partial<Record<ReplayOutcome, number>>>,
  width = 80,
): string {
  const bar = 20
  const filled = total === 0 ? bar : Math.round((done / total) * bar)
  const line = `[${'#'.repeat(filled)}${'-'.repeat(bar - filled)}] ${done}/${total} ${formatCounts(counts)}`
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line
}

/**
 * Parses a replay rate: `N/s`, `N/m` or a bare `N` (per second); `0` means unlimited.
 *
 * @returns entries per second (Infinity when unlimited)
 * @throws {PipelineError} `PIPELINE_DLQ_BAD_FILTER` for anything else
 */
export function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(?:\/\s*([sm]))?$/i.exec(text.trim())
  const value = match?.[1] === undefined ? Number.NaN : Number(match[1])
  if (!Number.isFinite(value)) {
    throw new PipelineError(
      ErrorCodes.DLQ_BAD_FILTER,
      `--rate ${JSON.stringify(text)} is not a rate; expected entries per second or minute, e.g. 10/s, 120/m (0: unlimited)`,
      { details: { field: 'rate' } },
    )
  }
  if (value === 0) return Number.POSITIVE_INFINITY
  return match?.[2]?.toLowerCase() === 'm' ? value / 60 : value
}

/** What a plan will do, as one line for the confirmation prompt and the dry run. */
export function formatPlan(plan: readonly PlannedReplay[]): string {
  const count = (kind: ReplayAction['kind']) => plan.filter((p) => p.action.kind === kind).length
  const parts = [
    [count('refresh'), 'view(s) to re-request'],
    [count('publish'), 'record(s) to publish'],
    [count('covered'), 'covered by another entry'],
    [count('still-failing'), 'still failing'],
    [count('unsupported'), 'not replayable'],
    [count('already-replayed'), 'already replayed'],
  ] as const
  const shown = parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`)
  return `${plan.length} entr${plan.length === 1 ? 'y' : 'ies'} selected${shown.length > 0 ? `: ${shown.join(', ')}` : ''}`
}

/** True when carrying out `plan` would change something (request a view or publish a record). */
export function planActs(plan: readonly PlannedReplay[]): boolean {
  return plan.some((p) => p.action.kind === 'refresh' || p.action.kind === 'publish')
}
