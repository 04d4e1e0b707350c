/**
 * Stage 2 of the consumer: read refresh requests, compute each requested view from the current
 * state, and deliver the ones whose content changed (design §4, §5). Refreshes of one view share a
 * partition, so in a steady group its deliveries never race; a view is computed at delivery time, so
 * the last delivery carries the latest state. Across a rebalance two members may deliver one view,
 * and a request given up on may land late: the delivery records' claims and settlements (see
 * `DeliveryStore`) keep an older delivery from landing last.
 *
 * Outcomes: delivered → confirmed in Redis; rejected (permanent 4xx) → dead-lettered; exhausted
 * (failing while Analytics is healthy for others) → an off-path retry round, dead-lettered after
 * the last; circuit open → wait for Analytics and deliver again, never dead-lettered. One POST per
 * view, or with `SINK_BATCH_SIZE` > 1 up to that many per POST (opt-in): either way every view gets
 * its own outcome, handled alike.
 */

import { type DlqEntry, type DlqError, type DlqOrigin, messageOrigin } from '../../dlq/entry.ts'
import {
  computeView,
  type DeliveryPayload,
  type DeliveryRecord,
  decideDelivery,
  isCovered,
  parseViewId,
  type ViewId,
  type ViewOptions,
} from '../../domain/views.ts'
import { describeError } from '../../errors.ts'
import type { KafkaMessage } from '../../kafka/consumer.ts'
import type { DeadLetterWriter } from '../../kafka/ports.ts'
import type { Logger } from '../../observability/logger.ts'
import type { ConsumerMetrics } from '../../observability/metrics.ts'
import type { AnalyticsSink } from '../../sinks/delivery.ts'
import { type DeliveryOutcome, dlqErrorOf } from '../../sinks/outcome.ts'
import { chunks } from '../../state/bulk.ts'
import { claimText, type DeliveryStore, type Settlement } from '../../state/delivery-store.ts'
import type { EntityStore } from '../../state/entity-store.ts'
import type { RetrySchedule } from '../../state/retry-schedule.ts'
import type { ViewClock } from '../../state/view-clock.ts'
import type { ViewCoverage } from './coverage.ts'
import { parseRefresh, type RefreshRequest } from './refresh.ts'

/** What stage 2 works with. */
export interface DeliverContext {
  readonly entities: EntityStore
  readonly deliveries: DeliveryStore
  readonly retries: RetrySchedule
  /** Read before the state of a batch's views: what their evaluation covers. */
  readonly clock: ViewClock
  /** What this process's settled evaluations covered, per view. */
  readonly coverage: ViewCoverage
  readonly sink: AnalyticsSink
  readonly dlq: DeadLetterWriter
  readonly metrics: ConsumerMetrics
  readonly logger: Logger
  readonly viewOptions: Required<ViewOptions>
  readonly retryRounds: number
  readonly retryDelayMs: number
  /** How long one delivery, its retries included, may take: a claim's life (see `DeliveryStore`). */
  readonly inFlightMs: number
  /** How long after the client gave up a request may still land at Analytics (`SINK_LATE_ARRIVAL_MS`). */
  readonly lateMs: number
  /** Views per Analytics request (`SINK_BATCH_SIZE`); default 1, one POST per view. */
  readonly batchSize?: number
  /** Aborts waiting for Analytics on shutdown (the batch is then not committed). */
  readonly signal?: AbortSignal
}

/** One view to evaluate, with what the DLQ and the latency metric need. */
export interface ViewRequest {
  readonly polledAt: string | undefined
  readonly retry: boolean
  readonly origin: DlqOrigin
  /** The highest clock stamp of the requests merged here; undefined when one had none. */
  readonly seq: number | undefined
}

/** Handles one batch of refresh messages; resolves once every view is settled (or rescheduled). */
export async function deliverRefreshBatch(
  ctx: DeliverContext,
  batch: readonly KafkaMessage[],
): Promise<void> {
  const requests = new Map<ViewId, ViewRequest>()
  let read = 0
  for (const message of batch) {
    const refresh = parseRefresh(message.key, message.value)
    if (refresh === undefined) {
      ctx.metrics.messages.inc({ topic: message.topic, result: 'poison' })
      ctx.logger.warn(
        { topic: message.topic, offset: String(message.offset), key: message.key },
        `ignoring a message on the refresh topic that is no refresh request (key ${JSON.stringify(message.key)})`,
      )
      continue
    }
    read++
    if (refresh.invalid.length > 0) {
      ctx.logger.warn(
        { topic: message.topic, offset: String(message.offset), ignored: refresh.invalid.slice(0, 10) },
        `ignoring ${refresh.invalid.length} member(s) of a refresh message that are not view ids`,
      )
    }
    const origin = messageOrigin(message)
    for (const request of refresh.requests) mergeRequest(requests, request, origin)
  }
  if (read > 0) ctx.metrics.messages.inc({ topic: batch[0]?.topic ?? '', result: 'refresh' }, read)
  await deliverChunks(ctx, chunks([...requests], CHUNK_SIZE))
}

/**
 * Delivers `slices` one after the other, evaluating the next while the last is sent: a chunk's time
 * is about half reading and computing (the consumer and Redis) and half claiming, POSTing and
 * settling (Redis and Analytics), and the two halves of neighbouring chunks touch distinct views.
 * Nothing of a chunk is claimed before the chunk before it is done, so a failure or a stop leaves at
 * most one chunk's claims and drops one evaluation (its skip notes stand: they are per view). When
 * the chunk before waited for Analytics to come back, the next one is evaluated again: its state may
 * have moved on during the outage.
 */
async function deliverChunks(
  ctx: DeliverContext,
  slices: ReadonlyArray<ReadonlyArray<readonly [ViewId, ViewRequest]>>,
): Promise<void> {
  let failure: { readonly error: unknown } | undefined
  /** Resolves to whether the chunk waited for Analytics; never rejects (a failure is kept above). */
  let sending: Promise<boolean> = Promise.resolve(false)
  for (const slice of slices) {
    const requests = new Map(slice)
    let evaluation: Evaluation
    try {
      evaluation = await evaluateViews(ctx, requests)
    } catch (error) {
      // The chunk on its way is finished (settled) before the batch fails.
      await sending
      if (failure !== undefined)
        ctx.logger.warn(
          { err: error },
          `also failed meanwhile: evaluating the next chunk (${describeError(error)})`,
        )
      throw failure === undefined ? error : failure.error
    }
    const waited = await sending
    if (failure !== undefined) break
    if (ctx.signal?.aborted) throw stopped()
    if (waited) evaluation = await evaluateViews(ctx, requests)
    sending = deliverEvaluated(ctx, evaluation).catch((error: unknown) => {
      failure = { error }
      return false
    })
  }
  await sending
  if (failure !== undefined) throw failure.error
}

/** What ends a batch given up because the consumer is stopping: it is not committed, its views are read again. */
const stopped = (): Error => new Error('stopping: views left for the next run')

/**
 * Waits for every one of `tasks`, then throws the first failure. Where tasks POST views, failing at
 * the first error would leave the others' deliveries on their way after the batch was given up, to
 * land after what the next reader of those views delivers.
 */
async function settleAll(tasks: ReadonlyArray<Promise<unknown>>): Promise<void> {
  for (const outcome of await Promise.allSettled(tasks))
    if (outcome.status === 'rejected') throw outcome.reason
}

/** Views evaluated together (one read of their state, one write of their records). */
const CHUNK_SIZE = 500

/** Merges a request into the batch's: the earliest poll time, retry if any is, the highest stamp. */
function mergeRequest(requests: Map<ViewId, ViewRequest>, refresh: RefreshRequest, origin: DlqOrigin): void {
  const known = requests.get(refresh.view)
  const polledAt =
    known?.polledAt === undefined || (refresh.polledAt !== undefined && refresh.polledAt < known.polledAt)
      ? refresh.polledAt
      : known.polledAt
  requests.set(refresh.view, {
    polledAt,
    retry: refresh.retry || (known?.retry ?? false),
    // The message that asked for the view, named by the view (a packed message's key is its shard).
    origin: { ...origin, key: refresh.view },
    seq:
      known === undefined
        ? refresh.seq
        : known.seq === undefined || refresh.seq === undefined
          ? undefined
          : Math.max(known.seq, refresh.seq),
  })
}

/**
 * Sends an evaluation. While the Analytics circuit is open it waits for it to close and delivers
 * what is still pending, recomputed from the then current state.
 *
 * @returns whether it waited for Analytics
 */
async function deliverEvaluated(ctx: DeliverContext, evaluation: Evaluation): Promise<boolean> {
  let postponed = await sendEvaluated(ctx, evaluation)
  const waited = postponed.size > 0
  while (postponed.size > 0) {
    ctx.logger.warn(
      { views: postponed.size },
      `Analytics is unavailable (circuit open): ${postponed.size} view(s) wait for it; consumption paused`,
    )
    await ctx.sink.waitUntilClosed(ctx.signal)
    ctx.logger.info({ views: postponed.size }, 'Analytics answers again: delivering the views that waited')
    postponed = await sendEvaluated(ctx, await evaluateViews(ctx, postponed))
  }
  return waited
}

interface Planned {
  readonly view: ViewId
  readonly type: string
  readonly request: ViewRequest
  readonly payload: DeliveryPayload
  /** The payload's JSON, serialized once for hash and body. */
  readonly json: string
  readonly key: string
  readonly hash: string
  /** Re-sends only: until when an earlier attempt of the same key may still land. */
  readonly inheritedUntil: number | undefined
}

/** A chunk's views evaluated: what to send, what waits, and what it was computed from. */
interface Evaluation {
  /** The view clock read before the state the views were computed from. */
  readonly seq: number
  /** The stored delivery records the decisions were made from (what claims compare against). */
  readonly raw: ReadonlyMap<ViewId, string>
  readonly planned: readonly Planned[]
  /** Views that wait for an earlier delivery, each with when to look at it again. */
  readonly waiting: Map<ViewId, number>
}

/**
 * Reads the state of `requests`' views and decides each: skipped (covered, or unchanged: noted),
 * waiting for an earlier delivery, or planned for sending. Claims nothing.
 */
async function evaluateViews(
  ctx: DeliverContext,
  requests: ReadonlyMap<ViewId, ViewRequest>,
): Promise<Evaluation> {
  const nothing = (): Evaluation => ({
    seq: 0,
    raw: new Map(),
    planned: [],
    waiting: new Map(),
  })
  // Requests an earlier settled evaluation covered are skipped: first those this process remembers,
  // then, once the delivery records are read, those a record remembers.
  const uncovered = (
    entries: ReadonlyArray<readonly [ViewId, ViewRequest]>,
    evaluatedAt: (view: ViewId) => number | undefined,
  ) =>
    entries.filter(([view, request]) => {
      if (!isCovered(request.seq, evaluatedAt(view))) return true
      ctx.metrics.views.inc({ type: parseViewId(view)?.type ?? 'unknown', result: 'covered' })
      return false
    })
  const open = uncovered([...requests], (view) => ctx.coverage.get(view))
  if (open.length === 0) return nothing()
  // The clock is read before any state the views are computed from (see ViewClock).
  const [seq, { records: last, raw }] = await Promise.all([
    ctx.clock.read(),
    ctx.deliveries.readRecorded(open.map(([view]) => view)),
  ])
  // A record in doubt covers nothing: the sink may hold older content than it says.
  const evaluate = uncovered(open, (view) => {
    const record = last.get(view)
    return record?.doubt ? undefined : record?.seq
  })
  if (evaluate.length === 0) return nothing()
  const inputs = await ctx.entities.loadViewInputs(
    evaluate.map(([view]) => view),
    { customerIdsCap: ctx.viewOptions.customerIdsCap },
  )
  const planned: Planned[] = []
  /** Views that wait for an earlier delivery, each with when to look at it again. */
  const waiting = new Map<ViewId, number>()
  const skipped: Array<readonly [ViewId, ViewRequest]> = []
  const now = Date.now()
  for (const [view, request] of evaluate) {
    const viewInputs = inputs.get(view)
    const payload = viewInputs ? computeView(viewInputs, ctx.viewOptions) : undefined
    const decision = decideDelivery(view, payload, last.get(view), now)
    const type = parseViewId(view)?.type ?? 'unknown'
    if (decision.action === 'skip') {
      skipped.push([view, request])
      continue
    }
    if (decision.action === 'wait') {
      waiting.set(view, Math.min(decision.until, now + WAIT_STEP_MS))
      continue
    }
    planned.push({
      view,
      type,
      request,
      payload: decision.payload,
      json: decision.json,
      key: decision.key,
      hash: decision.hash,
      // A re-send of an attempt whose requests may still land (a member died sending it): giving up
      // on ours must not end the wait for theirs.
      inheritedUntil: decision.resend ? last.get(view)?.mayLandUntil : undefined,
    })
  }
  // A skip stands only if no claim came between the read of its record and now (see DeliveryStore).
  const unsettled =
    skipped.length === 0
      ? new Set<ViewId>()
      : await ctx.deliveries.evaluated(
          skipped.map(([view]) => [view, raw.get(view)] as const),
          seq,
        )
  const settledWithoutPost: ViewId[] = []
  for (const [view, request] of skipped) {
    if (unsettled.has(view)) {
      waiting.set(view, now + WAIT_STEP_MS)
      continue
    }
    ctx.metrics.views.inc({ type: parseViewId(view)?.type ?? 'unknown', result: 'unchanged' })
    ctx.coverage.note(view, seq)
    if (request.retry) settledWithoutPost.push(view)
  }
  if (settledWithoutPost.length > 0) await ctx.retries.clear(settledWithoutPost)
  return { seq, raw, planned, waiting }
}

/**
 * Claims, POSTs and settles an evaluation's planned views, and puts off those that wait.
 *
 * @returns the views postponed because the circuit is open (or the batch is stopping)
 */
async function sendEvaluated(ctx: DeliverContext, evaluation: Evaluation): Promise<Map<ViewId, ViewRequest>> {
  const { seq, raw, planned, waiting } = evaluation
  const now = Date.now()
  // Recorded before the POST: a crash after it re-sends the same key (see decideDelivery). A view
  // another member claimed since its record was read is left to that member's delivery.
  const claims = planned.map((p) => ({
    viewId: p.view,
    previous: raw.get(p.view),
    key: p.key,
    hash: p.hash,
    mayLandUntil: now + ctx.inFlightMs,
  }))
  const claimTexts = new Map(claims.map((c) => [c.viewId, claimText(c)]))
  const lost = claims.length === 0 ? new Set<ViewId>() : await ctx.deliveries.claim(claims, seq, claimTexts)
  for (const view of lost) waiting.set(view, now + WAIT_STEP_MS)
  await waitForEarlierDeliveries(ctx, waiting)
  const claimed = lost.size === 0 ? planned : planned.filter((p) => !lost.has(p.view))
  if (claimed.length === 0) return new Map()

  const settled: Settled = {
    postponed: new Map(),
    delivered: [],
    closed: [],
    ended: [],
    deadLetters: [],
    cleared: [],
  }
  const deliverOne = async (plan: Planned): Promise<void> => {
    let outcome: DeliveryOutcome | Thrown
    try {
      outcome = await ctx.sink.deliver({
        key: plan.key,
        payload: plan.payload,
        json: plan.json,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      })
    } catch (error) {
      outcome = { kind: 'thrown', error }
    }
    await settle(ctx, plan, outcome, settled)
  }
  let failure: unknown
  try {
    await postAll(ctx, claimed, deliverOne, settled)
  } catch (error) {
    failure = error
  }
  const { postponed, delivered, closed, deadLetters, cleared } = settled
  let lettered = deadLetters.length === 0
  if (failure === undefined && !lettered) {
    try {
      await ctx.dlq.write(deadLetters)
      ctx.metrics.dlqMessages.inc({ stage: 'deliver' }, deadLetters.length)
      lettered = true
    } catch (error) {
      failure = error
    }
  }
  // Every outcome is settled, whatever failed after it: a request that outlived its claim must leave
  // its doubt even when the batch is given up. Dead-lettered views only once their entries are
  // written: settled first, a crash in between would lose them.
  const moved = await settleRecords(ctx, seq, claimTexts, { ...settled, closed: lettered ? closed : [] })
  if (failure !== undefined) throw failure
  if (cleared.length > 0) await ctx.retries.clear(cleared)
  for (const plan of [...delivered, ...closed]) if (!moved.has(plan.view)) ctx.coverage.note(plan.view, seq)
  if (delivered.length > 0) {
    // One line per batch, not per view: readable in the demo, cheap at 100k views.
    const sample = delivered.slice(0, 5).map((plan) => plan.view)
    const more = delivered.length > sample.length ? ', …' : ''
    ctx.logger.info(
      { delivered: delivered.length, views: sample },
      `delivered ${delivered.length} view(s) to Analytics: ${sample.join(', ')}${more}`,
    )
  }
  if (ctx.signal?.aborted && postponed.size > 0) throw stopped()
  return postponed
}

/** POSTs the claimed views, one per request or in batches (`SINK_BATCH_SIZE`), each settled in `settled`. */
async function postAll(
  ctx: DeliverContext,
  claimed: readonly Planned[],
  deliverOne: (plan: Planned) => Promise<void>,
  settled: Settled,
): Promise<void> {
  const batchSize = ctx.batchSize ?? 1
  if (batchSize <= 1) await settleAll(claimed.map(deliverOne))
  else {
    await settleAll(
      chunks(claimed, batchSize).map(async (group) => {
        let outcomes: DeliveryOutcome[]
        try {
          outcomes = await ctx.sink.deliverBatch(
            group.map((plan) => ({ key: plan.key, payload: plan.payload, json: plan.json })),
            ctx.signal,
          )
        } catch {
          // An unusable key or payload refuses the whole batch before anything is sent: one by one,
          // only that view ends in the DLQ.
          await settleAll(group.map(deliverOne))
          return
        }
        await settleAll(
          group.map((plan, i) => settle(ctx, plan, outcomes[i] ?? { kind: 'aborted', attempts: 0 }, settled)),
        )
      }),
    )
  }
}

/**
 * How long a view whose delivery waits for an earlier one is put off at most before it is looked at
 * again: the earlier one is usually settled within a second by the member that claimed it, and its
 * claim's end (`mayLandUntil`) only matters when that member died.
 */
const WAIT_STEP_MS = 1000

/**
 * Puts off `views`, whose delivery waits for an earlier one that may still land (another member's
 * claim, or a request given up on that Analytics may still store): the retry schedule asks for each
 * again at its due time, computed from the then current state.
 */
async function waitForEarlierDeliveries(ctx: DeliverContext, views: ReadonlyMap<ViewId, number>) {
  if (views.size === 0) return
  const byDue = new Map<number, ViewId[]>()
  for (const [view, dueAt] of views) {
    const group = byDue.get(dueAt)
    if (group === undefined) byDue.set(dueAt, [view])
    else group.push(view)
  }
  await Promise.all([...byDue].map(([dueAt, due]) => ctx.retries.defer(due, dueAt)))
  for (const view of views.keys())
    ctx.metrics.views.inc({ type: parseViewId(view)?.type ?? 'unknown', result: 'waiting' })
  ctx.logger.debug(
    { views: views.size, sample: [...views.keys()].slice(0, 5) },
    `${views.size} view(s) wait for an earlier delivery that may still land`,
  )
}

/**
 * Settles the claims of a round: confirmed deliveries (2xx, with the clock they cover) and settled
 * failures, and attempts that ended without an answer (the sink may store them late). Views whose
 * record another member claimed meanwhile are in doubt now and evaluated again soon.
 */
async function settleRecords(
  ctx: DeliverContext,
  seq: number,
  claimTexts: ReadonlyMap<ViewId, string>,
  settled: Pick<Settled, 'delivered' | 'closed' | 'ended'>,
): Promise<Set<ViewId>> {
  // Dead-lettered or not, a request given up on may still be stored by the sink until `late`, and an
  // earlier attempt of the same key until its own end.
  const late = Date.now() + ctx.lateMs
  const lateFor = (plan: Planned): number => Math.max(late, plan.inheritedUntil ?? 0)
  const record = (plan: Planned, rest: Omit<DeliveryRecord, 'key' | 'hash'>): Settlement => ({
    viewId: plan.view,
    claimed: claimTexts.get(plan.view) ?? '',
    record: { key: plan.key, hash: plan.hash, ...rest },
  })
  const settlements = [
    ...settled.delivered.map((plan) => record(plan, { confirmed: true, seq })),
    ...settled.closed.map((plan) => record(plan, { confirmed: true, mayLandUntil: lateFor(plan) })),
    ...settled.ended.map((plan) => record(plan, { confirmed: false, mayLandUntil: lateFor(plan) })),
  ]
  if (settlements.length === 0) return new Set()
  const moved = await ctx.deliveries.settle(settlements)
  if (moved.size > 0) {
    await ctx.retries.defer([...moved], Date.now())
    for (const view of moved)
      ctx.metrics.views.inc({ type: parseViewId(view)?.type ?? 'unknown', result: 'overlap' })
    ctx.logger.warn(
      { views: moved.size, sample: [...moved].slice(0, 5) },
      `${moved.size} view(s) were delivered by another member meanwhile (a rebalance); evaluating them again under a fresh key`,
    )
  }
  return moved
}

/** A delivery that threw instead of ending in an outcome: a bug or an unusable key. */
interface Thrown {
  readonly kind: 'thrown'
  readonly error: unknown
}

/** What the outcomes of one round come to, written once every view of the round is settled. */
interface Settled {
  /** Views to deliver again once Analytics answers (circuit open) or in the next run (aborted). */
  readonly postponed: Map<ViewId, ViewRequest>
  /** Views Analytics answered 2xx for. */
  readonly delivered: Planned[]
  /** Views settled without a 2xx (dead-lettered): this content is not sent again. */
  readonly closed: Planned[]
  /** Views whose attempts ended without an answer (retried later): a request may still land. */
  readonly ended: Planned[]
  readonly deadLetters: DlqEntry[]
  /** Views whose off-path retry record is cleared. */
  readonly cleared: ViewId[]
}

/** Handles the outcome of one view's delivery, whichever way (alone or in a batch) it was sent. */
async function settle(
  ctx: DeliverContext,
  plan: Planned,
  outcome: DeliveryOutcome | Thrown,
  settled: Settled,
): Promise<void> {
  const { postponed, delivered, closed, ended, deadLetters, cleared } = settled
  switch (outcome.kind) {
    case 'thrown': {
      // Only a bug or an unusable key lands here: dead-letter rather than stall the partition.
      deadLetters.push(
        deliverEntry(plan, { class: 'DeliveryError', message: describeError(outcome.error) }, 1),
      )
      closed.push(plan)
      ctx.metrics.views.inc({ type: plan.type, result: 'dead_lettered' })
      return
    }
    case 'delivered': {
      delivered.push(plan)
      if (plan.request.retry) cleared.push(plan.view)
      ctx.metrics.views.inc({ type: plan.type, result: 'delivered' })
      const polled = plan.request.polledAt ? Date.parse(plan.request.polledAt) : Number.NaN
      if (Number.isFinite(polled))
        ctx.metrics.endToEnd.observe({ type: plan.type }, (Date.now() - polled) / 1000)
      return
    }
    case 'rejected': {
      // Settled: the same content is not sent again; a DLQ replay re-requests the view.
      closed.push(plan)
      cleared.push(plan.view)
      deadLetters.push(deliverEntry(plan, dlqErrorOf(outcome), outcome.attempts))
      ctx.metrics.views.inc({ type: plan.type, result: 'rejected' })
      ctx.logger.error(
        { view: plan.view, status: outcome.status, key: plan.key },
        `Analytics rejected ${plan.view} with HTTP ${outcome.status}; dead-lettered, not retried`,
      )
      return
    }
    case 'exhausted': {
      let decision: Awaited<ReturnType<RetrySchedule['recordFailure']>>
      try {
        decision = await ctx.retries.recordFailure(plan.view, outcome.attempts, {
          maxRounds: ctx.retryRounds,
          baseDelayMs: ctx.retryDelayMs,
        })
      } catch (error) {
        // Settled as given up on all the same (its requests may still land); the batch then fails.
        ended.push(plan)
        throw error
      }
      if (decision.kind === 'scheduled') {
        ctx.metrics.views.inc({ type: plan.type, result: 'retry_scheduled' })
        ctx.logger.warn(
          { view: plan.view, round: decision.round, dueAt: new Date(decision.dueAt).toISOString() },
          `${plan.view} failed ${outcome.attempts} attempt(s) (${outcome.error.message}); retry round ${decision.round} at ${new Date(decision.dueAt).toISOString()}`,
        )
        ended.push(plan)
        return
      }
      closed.push(plan)
      deadLetters.push(
        deliverEntry(plan, dlqErrorOf(outcome), decision.record.attempts, decision.record.firstFailedAt),
      )
      ctx.metrics.views.inc({ type: plan.type, result: 'dead_lettered' })
      ctx.logger.error(
        { view: plan.view, attempts: decision.record.attempts },
        `${plan.view} still failing after ${decision.record.attempts} attempts in ${decision.record.rounds} rounds; dead-lettered`,
      )
      return
    }
    case 'circuit-open':
    case 'aborted':
      postponed.set(plan.view, plan.request)
      ended.push(plan)
      return
  }
}

function deliverEntry(plan: Planned, error: DlqError, attempts: number, firstFailedAt?: string): DlqEntry {
  const now = new Date().toISOString()
  return {
    stage: 'deliver',
    error,
    attempts,
    firstFailedAt: firstFailedAt ?? now,
    failedAt: now,
    origin: plan.request.origin,
    view: plan.payload,
    idempotencyKey: plan.key,
  }
}
