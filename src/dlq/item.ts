/**
 * A DLQ entry as read back from the topic (pure): where it sits (its offset: the DLQ has one
 * partition, so the offset alone names it), its Kafka timestamp, key and headers, and the parsed
 * {@link DlqEntry}. A value that is not an entry is kept with the reason, so a damaged record is shown
 * rather than hidden or fatal.
 */
import type { DlqEntry, DlqStage } from './entry.ts'

/** One record of the DLQ topic. */
export interface DlqItem {
  readonly topic: string
  /** Decimal offset: what `pipeline dlq show` and the replay ledger name it by. */
  readonly offset: string
  /** The Kafka record timestamp (ISO 8601). */
  readonly timestamp: string
  readonly key: string | null
  readonly headers: Readonly<Record<string, string>>
  /** Undefined when the value is not a DLQ entry; `problem` then says why. */
  readonly entry: DlqEntry | undefined
  readonly problem?: string
}

const STAGES: readonly DlqStage[] = ['source', 'deserialize', 'validate', 'deliver']

/** True when `value` is one of the four DLQ stages. */
export function isDlqStage(value: unknown): value is DlqStage {
  return typeof value === 'string' && (STAGES as readonly string[]).includes(value)
}

/** Every stage, in pipeline order. */
export const dlqStages: readonly DlqStage[] = STAGES

/**
 * Parses a DLQ record value: the entry, or a one-line reason why it is not one (not JSON, or missing
 * `stage`, `error.class`, `failedAt`).
 */
export function parseDlqValue(value: string | null): { entry: DlqEntry } | { problem: string } {
  if (value === null) return { problem: 'empty value (tombstone)' }
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch (error) {
    return { problem: `value is not JSON: ${(error as Error).message}` }
  }
  if (typeof parsed !== 'object' || parsed === null) return { problem: 'value is not a JSON object' }
  const candidate = parsed as Partial<DlqEntry>
  if (!isDlqStage(candidate.stage)) return { problem: `unknown stage ${JSON.stringify(candidate.stage)}` }
  if (typeof candidate.error?.class !== 'string') return { problem: 'no error.class' }
  if (typeof candidate.failedAt !== 'string') return { problem: 'no failedAt' }
  return {
    entry: {
      ...candidate,
      origin: candidate.origin ?? {},
      attempts: typeof candidate.attempts === 'number' ? candidate.attempts : 1,
      firstFailedAt: candidate.firstFailedAt ?? candidate.failedAt,
    } as DlqEntry,
  }
}

/** The key an operator knows the entry by: the origin key (record id or view id), else the record key. */
export function itemKey(item: DlqItem): string | undefined {
  return item.entry?.origin.key ?? item.key ?? undefined
}

/** When the entry failed (last failure), falling back to the Kafka timestamp. */
export function itemTime(item: DlqItem): string {
  return item.entry?.failedAt ?? item.timestamp
}
