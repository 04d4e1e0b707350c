/**
 * Selecting DLQ entries (pure): the filters shared by `pipeline dlq list|replay` and the consumer's
 * admin endpoint. Raw values come from command-line options or query parameters; {@link parseFilter}
 * turns them into a {@link DlqFilter} or one line saying what is wrong.
 */
import { ErrorCodes, PipelineError } from '../errors.ts'
import type { DlqStage } from './entry.ts'
import { type DlqItem, dlqStages, isDlqStage, itemKey, itemTime } from './item.ts'

/** The filters as typed by an operator; every field optional. */
export interface RawDlqFilter {
  /** One stage, or several comma-separated (`deliver`, `deserialize,validate`). */
  readonly stage?: string | readonly string[] | undefined
  /** An ISO 8601 date or time (`2026-02-04`, `2026-02-04T18:00Z`) or an age (`30m`, `2h`, `7d`). */
  readonly since?: string | undefined
  /** Same forms as `since`. */
  readonly until?: string | undefined
  /** The entry's key (record id or view id); `*` matches any run of characters (`customer:*`). */
  readonly key?: string | undefined
  /** Case-insensitive text found in the error class or message, or the exact HTTP status (`400`). */
  readonly error?: string | undefined
}

/** A parsed filter: an entry is selected when it passes every field that is set. */
export interface DlqFilter {
  readonly stages?: readonly DlqStage[]
  /** Epoch milliseconds; entries that failed at or after it. */
  readonly since?: number
  /** Epoch milliseconds; entries that failed before it. */
  readonly until?: number
  readonly key?: string
  readonly error?: string
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

function badFilter(message: string, field: string): PipelineError {
  return new PipelineError(ErrorCodes.DLQ_BAD_FILTER, message, { details: { field } })
}

/**
 * Parses a point in time: an ISO 8601 date or time, or an age such as `90s`, `30m`, `2h`, `7d`, `1w`
 * counted back from `now`.
 *
 * @throws {PipelineError} `PIPELINE_DLQ_BAD_FILTER` naming `field` when `text` is neither
 */
export function parseTimeFilter(text: string, now: number, field = 'since'): number {
  const age = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(text.trim())
  if (age?.[1] !== undefined && age[2] !== undefined) {
    return now - Number(age[1]) * (UNIT_MS[age[2].toLowerCase()] ?? 0)
  }
  const iso = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i
  const at = iso.test(text.trim()) ? Date.parse(text.trim()) : Number.NaN
  if (!Number.isFinite(at)) {
    throw badFilter(
      `--${field} ${JSON.stringify(text)} is not a time; expected an ISO 8601 date or time (2026-02-04, 2026-02-04T18:00Z) or an age (30m, 2h, 7d)`,
      field,
    )
  }
  return at
}

/**
 * Parses the operator's filters.
 *
 * @param now - what ages are counted back from (epoch ms)
 * @throws {PipelineError} `PIPELINE_DLQ_BAD_FILTER` with one line naming the bad filter
 */
export function parseFilter(raw: RawDlqFilter, now = Date.now()): DlqFilter {
  const filter: {
    stages?: DlqStage[]
    since?: number
    until?: number
    key?: string
    error?: string
  } = {}
  if (raw.stage !== undefined) {
    const names = (typeof raw.stage === 'string' ? [raw.stage] : raw.stage)
      .flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter((s) => s !== '')
    const stages: DlqStage[] = []
    for (const name of names) {
      if (!isDlqStage(name))
        throw badFilter(
          `--stage ${JSON.stringify(name)} is not a stage; expected ${dlqStages.join(', ')}`,
          'stage',
        )
      if (!stages.includes(name)) stages.push(name)
    }
    if (stages.length > 0) filter.stages = stages
  }
  if (raw.since !== undefined && raw.since !== '') filter.since = parseTimeFilter(raw.since, now, 'since')
  if (raw.until !== undefined && raw.until !== '') filter.until = parseTimeFilter(raw.until, now, 'until')
  if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) {
    throw badFilter(
      `--since (${new Date(filter.since).toISOString()}) is not before --until (${new Date(filter.until).toISOString()})`,
      'since',
    )
  }
  if (raw.key !== undefined && raw.key !== '') filter.key = raw.key
  if (raw.error !== undefined && raw.error !== '') filter.error = raw.error
  return filter
}

/** A matcher of `pattern`, where `*` stands for any run of characters and everything else is literal. */
export function keyMatcher(pattern: string): (key: string) => boolean {
  if (!pattern.includes('*')) return (key) => key === pattern
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  const regex = new RegExp(`^${source}$`, 's')
  return (key) => regex.test(key)
}

/** A predicate selecting the items that pass `filter`; unreadable items pass only an empty filter. */
export function filterPredicate(filter: DlqFilter): (item: DlqItem) => boolean {
  const matchKey = filter.key === undefined ? undefined : keyMatcher(filter.key)
  const needle = filter.error?.toLowerCase()
  return (item) => {
    const entry = item.entry
    if (entry === undefined)
      return (
        filter.stages === undefined &&
        filter.error === undefined &&
        filter.since === undefined &&
        filter.until === undefined &&
        (matchKey === undefined || (item.key !== null && matchKey(item.key)))
      )
    if (filter.stages !== undefined && !filter.stages.includes(entry.stage)) return false
    if (filter.since !== undefined || filter.until !== undefined) {
      const at = Date.parse(itemTime(item))
      if (!Number.isFinite(at)) return false
      if (filter.since !== undefined && at < filter.since) return false
      if (filter.until !== undefined && at >= filter.until) return false
    }
    if (matchKey !== undefined) {
      const key = itemKey(item)
      if (key === undefined || !matchKey(key)) return false
    }
    if (needle !== undefined) {
      const { class: errorClass, message, status } = entry.error
      const found =
        errorClass.toLowerCase().includes(needle) ||
        message.toLowerCase().includes(needle) ||
        (status !== undefined && String(status) === needle)
      if (!found) return false
    }
    return true
  }
}

/** The items of `items` that pass `filter`, in their order. */
export function selectItems(items: readonly DlqItem[], filter: DlqFilter): DlqItem[] {
  return items.filter(filterPredicate(filter))
}

/** True when `filter` selects everything. */
export function isEmptyFilter(filter: DlqFilter): boolean {
  return Object.values(filter).every((value) => value === undefined)
}
