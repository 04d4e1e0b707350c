/**
 * What `pipeline dlq list|show` prints (pure): one row per entry, a table of them, a count by stage and
 * error class, and one whole entry. The same rows are the `--json` output and the admin endpoint's.
 */
import type { DlqStage } from './entry.ts'
import { type DlqItem, itemKey, itemTime } from './item.ts'

/** How a replayed entry was settled, as the replay ledger remembers it. */
export interface ReplayMark {
  /** When it was replayed (ISO 8601). */
  readonly at: string
  readonly outcome: string
}

/** One entry as listed. */
export interface DlqListRow {
  readonly offset: string
  /** When it (last) failed, ISO 8601. */
  readonly failedAt: string
  /** `unreadable` for a record that is not a DLQ entry. */
  readonly stage: DlqStage | 'unreadable'
  readonly key: string | null
  readonly errorClass: string
  readonly status: number | null
  readonly message: string
  readonly attempts: number
  /** Null when not replayed; absent when unknown (the replay ledger could not be read). */
  readonly replayed?: ReplayMark | null
}

/** Counts of the listed entries. */
export interface DlqSummary {
  readonly total: number
  readonly byStage: Readonly<Record<string, number>>
  readonly byErrorClass: Readonly<Record<string, number>>
  /** Per stage and error class, most frequent first. */
  readonly groups: readonly { readonly stage: string; readonly errorClass: string; readonly count: number }[]
}

/**
 * The row of `item`.
 *
 * @param replayed - the ledger's mark (null: not replayed; undefined: unknown)
 */
export function toListRow(item: DlqItem, replayed?: ReplayMark | null): DlqListRow {
  const entry = item.entry
  const row: DlqListRow = {
    offset: item.offset,
    failedAt: itemTime(item),
    stage: entry?.stage ?? 'unreadable',
    key: itemKey(item) ?? null,
    errorClass: entry?.error.class ?? 'UnreadableEntry',
    status: entry?.error.status ?? null,
    message: entry?.error.message ?? item.problem ?? '',
    attempts: entry?.attempts ?? 0,
  }
  return replayed === undefined ? row : { ...row, replayed }
}

/** Counts `rows` by stage, by error class, and by both. */
export function summarize(rows: readonly DlqListRow[]): DlqSummary {
  const byStage: Record<string, number> = {}
  const byErrorClass: Record<string, number> = {}
  const groups = new Map<string, { stage: string; errorClass: string; count: number }>()
  for (const row of rows) {
    byStage[row.stage] = (byStage[row.stage] ?? 0) + 1
    byErrorClass[row.errorClass] = (byErrorClass[row.errorClass] ?? 0) + 1
    const id = `${row.stage}\u0000${row.errorClass}`
    const group = groups.get(id) ?? { stage: row.stage, errorClass: row.errorClass, count: 0 }
    group.count += 1
    groups.set(id, group)
  }
  const sorted = [...groups.values()].sort(
    (a, b) => b.count - a.count || a.stage.localeCompare(b.stage) || a.errorClass.localeCompare(b.errorClass),
  )
  return { total: rows.length, byStage, byErrorClass, groups: sorted }
}

/** `text` on one line, cut to `width` characters with an ellipsis. */
export function shorten(text: string, width: number): string {
  const line = text.replace(/\s+/g, ' ').trim()
  if (line.length <= width) return line
  return width <= 1 ? '…'.slice(0, width) : `${line.slice(0, width - 1)}…`
}

/** An ISO time as `YYYY-MM-DD HH:MM:SS` (UTC), or the text as it is when it is not a time. */
export function shortTime(iso: string): string {
  const at = Date.parse(iso)
  return Number.isFinite(at) ? new Date(at).toISOString().slice(0, 19).replace('T', ' ') : iso
}

function errorText(row: DlqListRow): string {
  const status = row.status === null ? '' : ` ${row.status}`
  return row.message === '' ? `${row.errorClass}${status}` : `${row.errorClass}${status}: ${row.message}`
}

/** Options of {@link formatTable}. */
export interface TableOptions {
  /** Total line width to fit (the terminal's columns); default 120. */
  readonly width?: number
}

/**
 * The entries as a table: offset, time (UTC), stage, key, attempts, error class with a short message,
 * and whether they were replayed when any row knows it.
 */
export function formatTable(rows: readonly DlqListRow[], options: TableOptions = {}): string {
  const withReplayed = rows.some((row) => row.replayed !== undefined)
  const headers = ['OFFSET', 'FAILED AT (UTC)', 'STAGE', 'KEY', 'ATT', ...(withReplayed ? ['REPLAYED'] : [])]
  const cells = rows.map((row) => [
    row.offset,
    shortTime(row.failedAt),
    row.stage,
    shorten(row.key ?? '-', 40),
    String(row.attempts),
    ...(withReplayed ? [row.replayed ? row.replayed.outcome : row.replayed === null ? '-' : '?'] : []),
  ])
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...cells.map((cell) => cell[i]?.length ?? 0)),
  )
  const fixed = widths.reduce((sum, w) => sum + w + 2, 0)
  const errorWidth = Math.max(20, (options.width ?? 120) - fixed)
  const line = (values: readonly string[], error: string) =>
    `${values.map((value, i) => value.padEnd(widths[i] ?? 0)).join('  ')}  ${error}`.trimEnd()
  return [
    line(headers, 'ERROR'),
    ...rows.map((row, i) => line(cells[i] ?? [], shorten(errorText(row), errorWidth))),
  ].join('\n')
}

/** The summary as lines: the total, then a count per stage and error class. */
export function formatSummary(summary: DlqSummary, topic: string): string {
  const noun = summary.total === 1 ? 'entry' : 'entries'
  if (summary.total === 0) return `no ${noun} in ${topic} match`
  const stageWidth = Math.max(5, ...summary.groups.map((g) => g.stage.length))
  const classWidth = Math.max(11, ...summary.groups.map((g) => g.errorClass.length))
  return [
    `${summary.total} ${noun} in ${topic}`,
    `  ${'STAGE'.padEnd(stageWidth)}  ${'ERROR CLASS'.padEnd(classWidth)}  COUNT`,
    ...summary.groups.map(
      (g) =>
        `  ${g.stage.padEnd(stageWidth)}  ${g.errorClass.padEnd(classWidth)}  ${String(g.count).padStart(5)}`,
    ),
  ].join('\n')
}

/**
 * One whole entry for `pipeline dlq show`: where it sits and its headers, then the entry as indented
 * JSON. A payload that is JSON text (a stage-1 poison envelope) is shown parsed, so it is readable.
 */
export function formatItem(item: DlqItem, replayed?: ReplayMark | null): string {
  const lines = [
    `offset     ${item.offset} (${item.topic})`,
    `written    ${item.timestamp}`,
    `key        ${item.key ?? '-'}`,
  ]
  if (replayed !== undefined)
    lines.push(`replayed   ${replayed === null ? 'no' : `${replayed.at} (${replayed.outcome})`}`)
  const headerNames = Object.keys(item.headers).sort()
  if (headerNames.length > 0) {
    lines.push('headers')
    for (const name of headerNames) lines.push(`  ${name}: ${item.headers[name]}`)
  }
  if (item.entry === undefined) {
    lines.push(`unreadable ${item.problem ?? 'not a DLQ entry'}`)
    return lines.join('\n')
  }
  const entry = item.entry
  let shown: unknown = entry
  if (typeof entry.payload === 'string') {
    try {
      shown = { ...entry, payload: JSON.parse(entry.payload) as unknown }
      lines.push('entry (payload was JSON text, shown parsed)')
    } catch {
      lines.push('entry')
    }
  } else lines.push('entry')
  lines.push(JSON.stringify(shown, null, 2))
  return lines.join('\n')
}
