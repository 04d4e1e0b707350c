/**
 * Carrying out a planned DLQ replay (I/O), entry after entry in offset order, at a bounded rate:
 *
 * - `refresh`: when the view's last delivery attempt is one of the dead-lettered keys, its delivery
 *   record is re-keyed with a replay marker ({@link forcedRedelivery}), then a refresh request goes to
 *   the refresh topic; stage 2 delivers the view's *current* state under a new idempotency key.
 * - `publish`: unless the consumer already holds this or a newer version ({@link supersededBy}), the
 *   record goes to its source topic in the producer's envelope.
 *
 * Each entry is claimed in the {@link ReplayLedger} first and settled after, so concurrent replays do
 * not both act on it and a second replay skips it. A dry run reads everything and writes nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type RecordOrigin, upsertMessage } from '../domain/envelope.ts'
import type { EntityRecord } from '../domain/records.ts'
import type { StoredEntity, ViewId } from '../domain/views.ts'
import { describeError } from '../errors.ts'
import type { MessagePublisher } from '../kafka/ports.ts'
import type { Logger } from '../observability/logger.ts'
import { refreshMessage } from '../services/consumer/refresh.ts'
import type { DeliveryStore } from '../state/delivery-store.ts'
import type { EntityStore } from '../state/entity-store.ts'
import type { ReplayLedger } from '../state/replay-ledger.ts'
import { itemKey, itemTime } from './item.ts'
import {
  countOutcomes,
  forcedRedelivery,
  type PlannedReplay,
  type ReplayOutcome,
  type ReplayReport,
  type ReplayResult,
  replayMarker,
  supersededBy,
} from './replay-plan.ts'

/** What carrying out a replay touches. */
export interface ReplayerDeps {
  readonly ledger: ReplayLedger
  readonly deliveries: DeliveryStore
  readonly entities: EntityStore
  readonly publisher: MessagePublisher
  /** The topic of refresh requests (stage 2's input). */
  readonly refreshTopic: string
  readonly logger?: Logger | undefined
}

/** Options of {@link executeReplay}. */
export interface ExecuteOptions {
  readonly dryRun?: boolean
  /** Entries acted on per second (requests and publishes); default unlimited. */
  readonly ratePerSecond?: number
  /** Called after each entry acted on (requested or published) with the progress and the outcomes so far. */
  readonly onProgress?: (done: number, total: number, counts: Partial<Record<ReplayOutcome, number>>) => void
  /** Stops between entries; the entries not reached are left out of the report. */
  readonly signal?: AbortSignal
}

/** Spaces actions to at most `perSecond` per second. */
function pacer(perSecond: number | undefined): () => Promise<void> {
  if (perSecond === undefined || !Number.isFinite(perSecond) || perSecond <= 0) return async () => {}
  const gapMs = 1000 / perSecond
  let next = 0
  return async () => {
    const now = Date.now()
    const at = Math.max(now, next)
    next = at + gapMs
    if (at > now) await sleep(at - now)
  }
}

interface Done {
  readonly outcome: ReplayOutcome
  readonly detail: string
}

/**
 * Replays `plan` of DLQ topic `topic`.
 *
 * @returns the report: one result per entry reached, in offset order
 */
export async function executeReplay(
  deps: ReplayerDeps,
  topic: string,
  plan: readonly PlannedReplay[],
  options: ExecuteOptions = {},
): Promise<ReplayReport> {
  const dryRun = options.dryRun ?? false
  const pace = pacer(options.ratePerSecond)
  const byOffset = new Map(plan.map((p) => [p.item.offset, p]))
  const outcomes = new Map<string, Done>()
  const failedAt = (offset: string) => {
    const item = byOffset.get(offset)?.item
    return item ? itemTime(item) : ''
  }

  const act = async (planned: PlannedReplay): Promise<void> => {
    const { item, action } = planned
    if (action.kind !== 'refresh' && action.kind !== 'publish') return
    const covers = action.covers
    const settleAll = async (done: Done) => {
      outcomes.set(item.offset, done)
      for (const offset of covers)
        outcomes.set(offset, { outcome: 'covered', detail: `with offset ${item.offset}` })
      if (dryRun) return
      await deps.ledger.settle(topic, [
        { offset: item.offset, failedAt: failedAt(item.offset), outcome: done.outcome },
        ...covers.map((offset) => ({ offset, failedAt: failedAt(offset), outcome: 'covered' })),
      ])
    }
    if (!dryRun) {
      const taken = await deps.ledger.claim(topic, item.offset, failedAt(item.offset))
      if (taken !== undefined) {
        const done: Done = {
          outcome: 'already-replayed',
          detail: `by another replay at ${taken.at} (${taken.outcome})`,
        }
        outcomes.set(item.offset, done)
        for (const offset of covers) outcomes.set(offset, done)
        return
      }
    }
    try {
      if (action.kind === 'refresh')
        await settleAll(await refresh(deps, topic, item.offset, action, dryRun, pace))
      else await settleAll(await publishRecord(deps, action, dryRun, pace))
    } catch (error) {
      if (!dryRun) await deps.ledger.release(topic, [item.offset]).catch(() => {})
      const done: Done = { outcome: 'error', detail: describeError(error) }
      outcomes.set(item.offset, done)
      for (const offset of covers)
        outcomes.set(offset, { outcome: 'error', detail: `with offset ${item.offset}` })
      deps.logger?.error(
        { offset: item.offset, err: { message: done.detail } },
        `DLQ replay of offset ${item.offset} failed: ${done.detail}`,
      )
    }
  }

  const results: ReplayResult[] = []
  const report = (planned: PlannedReplay, done: Done) => {
    const entry = planned.item.entry
    results.push({
      offset: planned.item.offset,
      stage: entry?.stage ?? 'unreadable',
      key: itemKey(planned.item) ?? null,
      ...done,
    })
  }
  // Acting entries first, in offset order, so a covered entry reports its primary's outcome.
  const primaries = plan.filter((p) => p.action.kind === 'refresh' || p.action.kind === 'publish')
  let stopped = false
  let acted = 0
  for (const planned of primaries) {
    if (options.signal?.aborted) {
      stopped = true
      break
    }
    await act(planned)
    acted += 1
    if (options.onProgress) {
      const counts: Partial<Record<ReplayOutcome, number>> = {}
      for (const { outcome } of outcomes.values()) counts[outcome] = (counts[outcome] ?? 0) + 1
      options.onProgress(acted, primaries.length, counts)
    }
  }
  for (const planned of plan) {
    const { action } = planned
    const done =
      outcomes.get(planned.item.offset) ??
      (action.kind === 'already-replayed'
        ? { outcome: 'already-replayed' as const, detail: `at ${action.mark.at} (${action.mark.outcome})` }
        : action.kind === 'still-failing' || action.kind === 'unsupported'
          ? { outcome: action.kind, detail: action.reason }
          : undefined)
    if (done !== undefined) report(planned, done)
    else if (!stopped) report(planned, { outcome: 'error', detail: 'not carried out' })
  }
  results.sort((a, b) =>
    BigInt(a.offset) < BigInt(b.offset) ? -1 : BigInt(a.offset) > BigInt(b.offset) ? 1 : 0,
  )
  return { topic, dryRun, selected: plan.length, counts: countOutcomes(results), results }
}

async function refresh(
  deps: ReplayerDeps,
  topic: string,
  offset: string,
  action: { readonly view: ViewId; readonly keys: readonly string[] },
  dryRun: boolean,
  pace: () => Promise<void>,
): Promise<Done> {
  const recorded = await deps.deliveries.readRecorded([action.view])
  const last = recorded.records.get(action.view)
  const reset = forcedRedelivery(last, action.keys, replayMarker(topic, offset))
  const movedOn = 'it was attempted again since: delivered if it changed'
  let how = reset
    ? 'forcing re-delivery of its current state under a new key'
    : last === undefined
      ? 'no delivery record: delivered if it exists'
      : movedOn
  if (dryRun) return { outcome: 'requested', detail: `would re-request ${action.view} (${how})` }
  await pace()
  // A delivery claimed since the read carries on from its own record: a plain refresh then does.
  if (reset && !(await deps.deliveries.replace(action.view, recorded.raw.get(action.view), reset)))
    how = movedOn
  await deps.publisher.send([refreshMessage(deps.refreshTopic, action.view, new Date().toISOString())])
  deps.logger?.info(
    { view: action.view, offset, forced: reset !== undefined },
    `DLQ replay: re-requested ${action.view} (${how})`,
  )
  return { outcome: 'requested', detail: `re-requested ${action.view} (${how})` }
}

async function publishRecord(
  deps: ReplayerDeps,
  action: { readonly origin: RecordOrigin; readonly record: EntityRecord },
  dryRun: boolean,
  pace: () => Promise<void>,
): Promise<Done> {
  const { origin, record } = action
  const held =
    origin.entity === 'customer'
      ? await deps.entities.getCustomers([record.id])
      : await deps.entities.getProducts([record.id])
  const why = supersededBy(held.get(record.id) as StoredEntity<EntityRecord> | undefined, record)
  if (why !== undefined) return { outcome: 'superseded', detail: `${origin.entity} ${record.id}: ${why}` }
  if (dryRun)
    return { outcome: 'published', detail: `would publish ${origin.entity} ${record.id} to ${origin.topic}` }
  await pace()
  await deps.publisher.send([upsertMessage(origin, record, new Date().toISOString())])
  deps.logger?.info(
    { topic: origin.topic, id: record.id },
    `DLQ replay: published ${origin.entity} ${record.id} to ${origin.topic}`,
  )
  return { outcome: 'published', detail: `published ${origin.entity} ${record.id} to ${origin.topic}` }
}
