import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { DlqEntry } from '../../src/dlq/entry.ts'
import type { DlqItem } from '../../src/dlq/item.ts'
import {
  forcedRedelivery,
  formatPlan,
  formatProgress,
  formatReplayReport,
  type PlannedReplay,
  parseRate,
  planActs,
  planReplay,
  type ReplayPlanContext,
  replayMarker,
  supersededBy,
  viewOfEntry,
} from '../../src/dlq/replay-plan.ts'
import { contentHash } from '../../src/domain/canonical.ts'
import { type RecordOrigin, upsertMessage } from '../../src/domain/envelope.ts'
import { decideDelivery, idempotencyKey } from '../../src/domain/views.ts'
import { isPipelineError } from '../../src/errors.ts'

const crm: RecordOrigin = { name: 'crm', entity: 'customer', topic: 'customer_data' }
const inventory: RecordOrigin = { name: 'inventory', entity: 'product', topic: 'inventory_data' }
const context: ReplayPlanContext = {
  sources: new Map([
    [crm.topic, crm],
    [inventory.topic, inventory],
  ]),
  replayed: new Map(),
}

const customer = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  name: `Customer ${id}`,
  email: `c${id}@example.com`,
  status: 'active',
  productIds: [],
  updatedAt: '2026-02-04T18:30:00Z',
  ...extra,
})

function item(offset: number, entry: Partial<DlqEntry> & Pick<DlqEntry, 'stage'>): DlqItem {
  return {
    topic: 'dlq',
    offset: String(offset),
    timestamp: '2026-02-10T10:00:00.000Z',
    key: entry.origin?.key ?? null,
    headers: {},
    entry: {
      error: { class: 'E', message: 'm' },
      attempts: 1,
      firstFailedAt: '2026-02-10T10:00:00.000Z',
      failedAt: '2026-02-10T10:00:00.000Z',
      origin: {},
      ...entry,
    },
  }
}

const reasonOf = (planned: PlannedReplay | undefined): string =>
  planned?.action.kind === 'still-failing' || planned?.action.kind === 'unsupported'
    ? planned.action.reason
    : ''

const recordIdOf = (planned: PlannedReplay | undefined): string | undefined =>
  planned?.action.kind === 'publish' ? planned.action.record.id : undefined

const rejected = (offset: number, view: string, key: string) =>
  item(offset, { stage: 'deliver', origin: { topic: 'refresh', key: view }, idempotencyKey: key, view: {} })

const envelope = (record: Record<string, unknown>) =>
  String(upsertMessage(crm, record as { id: string }, '2026-02-04T18:31:00Z').value)

test('a deliver entry re-requests its view; entries of one view make one request carrying all their keys', () => {
  const plan = planReplay(
    [
      rejected(1, 'customer:1', 'customer:1:k1'),
      rejected(2, 'product:9', 'product:9:k'),
      rejected(3, 'customer:1', 'customer:1:k2'),
    ],
    context,
  )
  assert.deepEqual(
    plan.map((p) => p.action),
    [
      { kind: 'covered', by: '3' },
      { kind: 'refresh', view: 'product:9', keys: ['product:9:k'], covers: [] },
      { kind: 'refresh', view: 'customer:1', keys: ['customer:1:k1', 'customer:1:k2'], covers: ['1'] },
    ],
  )
  assert.ok(planActs(plan))
  assert.equal(formatPlan(plan), '3 entries selected: 2 view(s) to re-request, 1 covered by another entry')
})

test('the view id comes from the origin key, else the idempotency key, else the view', () => {
  assert.equal(
    viewOfEntry({ stage: 'deliver', origin: {}, idempotencyKey: 'product:7:abc' } as DlqEntry),
    'product:7',
  )
  assert.equal(
    viewOfEntry({ stage: 'deliver', origin: {}, view: { type: 'customer', id: '3' } } as unknown as DlqEntry),
    'customer:3',
  )
  const [none] = planReplay([item(0, { stage: 'deliver', origin: { key: 'nope' } })], context)
  assert.equal(none?.action.kind, 'unsupported')
})

test('a source-stage record that passes today is published; one that still fails stays, with the reason', () => {
  const plan = planReplay(
    [
      item(1, { stage: 'source', origin: { topic: crm.topic, key: '5' }, payload: customer('5') }),
      item(2, {
        stage: 'source',
        origin: { topic: crm.topic, key: '6' },
        payload: customer('6', { email: 42 }),
      }),
      item(3, { stage: 'source', origin: { topic: 'elsewhere' }, payload: customer('7') }),
    ],
    context,
  )
  assert.equal(plan[0]?.action.kind, 'publish')
  const publish = plan[0]?.action
  assert.ok(publish?.kind === 'publish')
  assert.deepEqual(publish.origin, crm)
  assert.equal(publish.record.id, '5')
  assert.deepEqual(plan[1]?.action, {
    kind: 'still-failing',
    reason: 'invalid customer: email: Invalid input: expected string, received number',
  })
  assert.equal(plan[2]?.action.kind, 'unsupported')
  assert.match(reasonOf(plan[2]), /"elsewhere" is not a source topic/)
})

test('stage-1 poison is decoded again as stage 1 would: not JSON still fails; a valid envelope passes', () => {
  const plan = planReplay(
    [
      item(1, { stage: 'deserialize', origin: { topic: crm.topic, key: '44' }, payload: 'not-json' }),
      item(2, {
        stage: 'validate',
        origin: { topic: crm.topic, key: '45' },
        payload: envelope(customer('45')),
      }),
      // The message had no key: the envelope's id stands in for it.
      item(3, {
        stage: 'validate',
        origin: { topic: crm.topic, key: '' },
        payload: envelope(customer('46')),
      }),
      item(4, {
        stage: 'validate',
        origin: { topic: crm.topic, key: '47' },
        payload: envelope(customer('47', { productIds: 'x' })),
      }),
      item(5, {
        stage: 'validate',
        origin: { topic: inventory.topic, key: '48' },
        payload: envelope(customer('48')),
      }),
      item(6, {
        stage: 'validate',
        origin: { topic: crm.topic, key: '49' },
        payload: `base64:${Buffer.from('{').toString('base64')}`,
      }),
    ],
    context,
  )
  assert.equal(plan[0]?.action.kind, 'still-failing')
  assert.match(reasonOf(plan[0]), /^value is not JSON/)
  assert.equal(plan[1]?.action.kind, 'publish')
  assert.equal(recordIdOf(plan[2]), '46')
  assert.match(reasonOf(plan[3]), /invalid customer: productIds/)
  assert.match(reasonOf(plan[4]), /a customer on the product topic/)
  assert.match(reasonOf(plan[5]), /not JSON/)
})

test('of several passing versions of one record only the newest is published', () => {
  const plan = planReplay(
    [
      item(1, {
        stage: 'source',
        origin: { topic: crm.topic },
        payload: customer('5', { updatedAt: '2026-02-05T00:00:00Z' }),
      }),
      item(2, {
        stage: 'source',
        origin: { topic: crm.topic },
        payload: customer('5', { updatedAt: '2026-02-04T00:00:00Z' }),
      }),
    ],
    context,
  )
  assert.equal(plan[0]?.action.kind, 'publish')
  assert.deepEqual(plan[1]?.action, { kind: 'covered', by: '1' })
})

test('entries in the ledger are skipped; unreadable ones are not replayable', () => {
  const mark = { at: '2026-02-10T12:00:00Z', outcome: 'requested' }
  const plan = planReplay(
    [
      rejected(1, 'customer:1', 'customer:1:k'),
      { ...rejected(2, 'customer:2', 'k'), entry: undefined, problem: 'bad' },
    ],
    { ...context, replayed: new Map([['1', mark]]) },
  )
  assert.deepEqual(plan[0]?.action, { kind: 'already-replayed', mark })
  assert.deepEqual(plan[1]?.action, { kind: 'unsupported', reason: 'not a DLQ entry: bad' })
  assert.ok(!planActs(plan))
})

test('forced re-delivery: the rejected key stays the chain head, and the next decision sends a new key', () => {
  const view = 'customer:22' as const
  const payload = { type: 'customer', id: '22', deleted: true } as const
  const hash = contentHash(payload)
  const rejectedKey = idempotencyKey(view, undefined, hash)
  const settled = { key: rejectedKey, hash, confirmed: true }
  assert.deepEqual(decideDelivery(view, undefined, settled), { action: 'skip' }, 'settled content is skipped')

  const marker = replayMarker('dlq', '12')
  const forced = forcedRedelivery(settled, [rejectedKey], marker)
  assert.deepEqual(forced, { key: rejectedKey, hash: marker, confirmed: true })
  const decision = decideDelivery(view, undefined, forced)
  assert.equal(decision.action, 'deliver')
  assert.ok(
    decision.action === 'deliver' && decision.key !== rejectedKey && decision.key.startsWith(`${view}:`),
  )
  assert.ok(decision.action === 'deliver' && !decision.resend)

  assert.equal(forcedRedelivery(undefined, [rejectedKey], marker), undefined, 'no record: nothing to force')
  assert.equal(
    forcedRedelivery({ ...settled, key: 'customer:22:later' }, [rejectedKey], marker),
    undefined,
    'the view moved on: a plain refresh',
  )
})

test('a record is not published over the same or a newer version the consumer holds', () => {
  const record = customer('5', { updatedAt: '2026-02-05T00:00:00Z' })
  const stored = (data: Record<string, unknown>) => ({
    data: data as { id: string },
    contentHash: contentHash(data),
    polledAt: '',
  })
  assert.equal(supersededBy(undefined, record), undefined)
  assert.match(supersededBy(stored(record), record) ?? '', /already holds this version/)
  assert.match(
    supersededBy(stored(customer('5', { updatedAt: '2026-02-06T00:00:00Z' })), record) ?? '',
    /newer version/,
  )
  assert.equal(
    supersededBy(stored(customer('5', { updatedAt: '2026-02-04T00:00:00Z', name: 'x' })), record),
    undefined,
  )
})

test('rates: N/s, N/m, bare N per second, 0 unlimited; anything else is one line', () => {
  assert.equal(parseRate('10/s'), 10)
  assert.equal(parseRate('120/m'), 2)
  assert.equal(parseRate('2.5'), 2.5)
  assert.equal(parseRate('0'), Number.POSITIVE_INFINITY)
  assert.throws(
    () => parseRate('fast'),
    (error: unknown) => isPipelineError(error, 'PIPELINE_DLQ_BAD_FILTER'),
  )
})

test('the report lists what did not go through (everything in a dry run) and the totals', () => {
  const results = [
    {
      offset: '1',
      stage: 'deliver',
      key: 'customer:1',
      outcome: 'requested' as const,
      detail: 're-requested customer:1',
    },
    {
      offset: '2',
      stage: 'deserialize',
      key: '44',
      outcome: 'still-failing' as const,
      detail: 'value is not JSON',
    },
  ]
  const report = {
    topic: 'dlq',
    dryRun: false,
    selected: 2,
    counts: { requested: 1, 'still-failing': 1 },
    results,
  }
  const text = formatReplayReport(report)
  assert.doesNotMatch(text, /re-requested/)
  assert.match(text, /^\s+2\s+deserialize\s+still-failing\s+value is not JSON$/m)
  assert.match(text, /2 selected in dlq \(replayed\): 1 requested, 1 still-failing$/)
  assert.match(
    formatReplayReport({ ...report, dryRun: true }),
    /re-requested customer:1[\s\S]*dry run, nothing changed/,
  )
  assert.equal(formatProgress(1, 4, { requested: 1 }), '[#####---------------] 1/4 1 requested')
})
