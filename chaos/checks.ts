/**
 * The end checks of a chaos run (pure): the views Analytics holds against the join of the
 * simulator's final state, idempotency keys, and the dead-letter entries by cause.
 */
import type { DlqEntry } from '../src/dlq/entry.ts'
import type { MockAnalyticsStats } from '../src/services/mock-analytics/store.ts'
import type { DatasetSnapshot } from '../src/simulator/dataset.ts'
import {
  expectedViews,
  type ModelState,
  type ViewFacts,
  viewDifferences,
} from '../test/helpers/expected-views.ts'

/** Key prefix of the poison messages the runner produces to a source topic. */
export const POISON_KEY_PREFIX = 'chaos-poison-'

/** The simulator's records as the reference model's state (ids as strings, as the pipeline keys them). */
export function modelStateOf(snapshot: DatasetSnapshot): ModelState {
  const state: ModelState = { customers: new Map(), products: new Map() }
  for (const c of snapshot.customers) {
    state.customers.set(String(c.id), { ...c, id: String(c.id), productIds: c.productIds.map(String) })
  }
  for (const p of snapshot.products) state.products.set(String(p.id), { ...p, id: String(p.id) })
  return state
}

/** The views the final source state must leave at the sink. */
export function expectedJoin(snapshot: DatasetSnapshot, lowStockThreshold: number): Map<string, ViewFacts> {
  return expectedViews(modelStateOf(snapshot), { lowStockThreshold })
}

/** Why a dead-letter entry is there: one of the injected causes, or something that should not be. */
export type DlqCause = 'invalid source record' | 'poison message' | `unexpected: ${string}`

/** A classified entry and the identity that tells re-writes of one failure apart from new ones. */
export interface ClassifiedEntry {
  readonly cause: DlqCause
  readonly identity: string
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined
}

/**
 * The cause of one entry. The simulator's broken records carry `broken.<serial>@…` emails (customers)
 * or `SKU-BROKEN-<serial>` skus (products); the runner's poison messages carry keys starting with
 * {@link POISON_KEY_PREFIX}. Everything else (deliveries dead-lettered during an outage, say) is
 * unexpected.
 */
export function classifyDlqEntry(entry: DlqEntry): ClassifiedEntry {
  const email = field(entry.payload, 'email')
  const sku = field(entry.payload, 'sku')
  if (entry.stage === 'source') {
    if (typeof email === 'string' && email.startsWith('broken.'))
      return { cause: 'invalid source record', identity: email }
    if (typeof sku === 'string' && sku.startsWith('SKU-BROKEN-'))
      return { cause: 'invalid source record', identity: sku }
  }
  const origin = entry.origin
  if (
    (entry.stage === 'deserialize' || entry.stage === 'validate') &&
    origin.key?.startsWith(POISON_KEY_PREFIX) === true
  ) {
    return { cause: 'poison message', identity: `${origin.topic}/${origin.partition}/${origin.offset}` }
  }
  const status = entry.error.status === undefined ? '' : ` ${entry.error.status}`
  const identity = `${entry.stage}:${entry.idempotencyKey ?? origin.key ?? origin.url ?? ''}:${entry.failedAt}`
  return { cause: `unexpected: ${entry.stage} ${entry.error.class}${status}`, identity }
}

/** Dead-letter entries counted by cause. */
export interface DlqTally {
  /** Distinct failures per cause. */
  readonly byCause: Record<string, number>
  /** Entries that repeat a failure already dead-lettered (a crash between the DLQ write and the commit). */
  readonly repeats: number
  /** One example line per unexpected cause. */
  readonly unexpected: string[]
}

/** Counts `entries` by cause, distinct failures apart from repeats. */
export function tallyDlq(entries: readonly DlqEntry[]): DlqTally {
  const seen = new Set<string>()
  const byCause: Record<string, number> = {}
  const unexpected: string[] = []
  let repeats = 0
  for (const entry of entries) {
    const { cause, identity } = classifyDlqEntry(entry)
    if (seen.has(`${cause}|${identity}`)) {
      repeats++
      continue
    }
    seen.add(`${cause}|${identity}`)
    byCause[cause] = (byCause[cause] ?? 0) + 1
    if (cause.startsWith('unexpected') && unexpected.length < 10) {
      unexpected.push(`${cause}: ${entry.error.message} (${entry.idempotencyKey ?? entry.origin.key ?? ''})`)
    }
  }
  return { byCause, repeats, unexpected }
}

/** What the end checks look at. */
export interface EndState {
  readonly expected: ReadonlyMap<string, ViewFacts>
  readonly held: Record<string, Record<string, unknown>>
  readonly stats: MockAnalyticsStats
  /** Keys delivered again with content other than their first delivery's. */
  readonly keyConflicts: readonly string[]
  readonly dlq: DlqTally
  /** Bad source records the simulator served, and poison messages produced. */
  readonly injected: { readonly invalidRecords: number; readonly poison: number }
}

/** One line per failed check; empty when the run is clean. */
export function endCheckProblems(state: EndState): string[] {
  const problems: string[] = []
  const differences = viewDifferences(state.held, state.expected)
  if (differences.length > 0) {
    problems.push(
      `the sink does not hold the join of the final source state: ${differences.length} views differ, e.g.\n  ${differences.slice(0, 5).join('\n  ')}`,
    )
  }
  if (state.stats.accepted !== state.stats.distinctKeys) {
    problems.push(
      `an idempotency key was accepted twice: ${state.stats.accepted} accepted, ${state.stats.distinctKeys} keys`,
    )
  }
  if (state.keyConflicts.length > 0) {
    problems.push(
      `${state.keyConflicts.length} keys were re-sent with other content, e.g. ${state.keyConflicts[0]?.slice(0, 300)}`,
    )
  }
  const invalid = state.dlq.byCause['invalid source record'] ?? 0
  if (invalid !== state.injected.invalidRecords) {
    problems.push(
      `the DLQ holds ${invalid} invalid source records, ${state.injected.invalidRecords} were served`,
    )
  }
  const poison = state.dlq.byCause['poison message'] ?? 0
  if (poison !== state.injected.poison) {
    problems.push(`the DLQ holds ${poison} poison messages, ${state.injected.poison} were produced`)
  }
  for (const line of state.dlq.unexpected) problems.push(`DLQ entry that should not be there: ${line}`)
  return problems
}
