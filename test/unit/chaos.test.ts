/** The pure parts of the chaos suite: options, schedule, end checks, report. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { classifyDlqEntry, endCheckProblems, expectedJoin, tallyDlq } from '../../chaos/checks.ts'
import { chaosOptionsFrom, faultKinds, fullSizeDefaults } from '../../chaos/options.ts'
import { type ChaosFigures, formatReport } from '../../chaos/report.ts'
import { buildSchedule } from '../../chaos/schedule.ts'
import type { DlqEntry } from '../../src/dlq/entry.ts'

const base = { runsDir: '/tmp/chaos', log: () => undefined }

test('options: full size by default; flags in seconds become milliseconds; bad flags name themselves', () => {
  const defaults = chaosOptionsFrom([], base)
  assert.equal(defaults.customers, 100_000)
  assert.equal(defaults.products, 10_000)
  assert.equal(defaults.sinkOutageMs, 60_000)
  assert.ok(defaults.kills >= 20)
  assert.deepEqual([...defaults.faults], [...faultKinds])
  const small = chaosOptionsFrom(
    ['--customers', '2000', '--duration-s', '90', '--faults', 'poison,sink-outage', '--keep'],
    base,
  )
  assert.equal(small.customers, 2000)
  assert.equal(small.durationMs, 90_000)
  assert.deepEqual(small.faults, ['poison', 'sink-outage'])
  assert.equal(small.keep, true)
  assert.throws(() => chaosOptionsFrom(['--kills', 'many'], base), /--kills=many: expected a whole number/)
  assert.throws(() => chaosOptionsFrom(['--faults', 'meteor'], base), /unknown meteor/)
})

test('schedule: the asked kills of both roles and every fault once, seeded, never opening with the outage', () => {
  for (const seed of [1, 2, 3, 7, 11, 42]) {
    const steps = buildSchedule(seed, fullSizeDefaults.kills, faultKinds)
    const kills = steps.filter((s) => s.kind === 'kill')
    assert.equal(kills.length, fullSizeDefaults.kills)
    assert.ok(kills.some((s) => s.kind === 'kill' && s.role === 'producer'))
    assert.ok(kills.some((s) => s.kind === 'kill' && s.role === 'consumer'))
    for (const kind of faultKinds) assert.equal(steps.filter((s) => s.kind === kind).length, 1, kind)
    assert.notEqual(steps[0]?.kind, 'sink-outage')
    assert.deepEqual(
      buildSchedule(seed, fullSizeDefaults.kills, faultKinds),
      steps,
      'same seed, same schedule',
    )
  }
})

const entry = (fields: Partial<DlqEntry>): DlqEntry => ({
  stage: 'source',
  error: { class: 'ValidationError', message: 'bad' },
  attempts: 1,
  firstFailedAt: '2026-01-01T00:00:00.000Z',
  failedAt: '2026-01-01T00:00:00.000Z',
  origin: {},
  ...fields,
})

test('DLQ: injected records and poison by cause, repeats of one failure apart, anything else unexpected', () => {
  const invalid = entry({ payload: { id: null, email: 'broken.4@example.com' } })
  const invalidProduct = entry({ payload: { sku: 'SKU-BROKEN-5' } })
  const poison = entry({
    stage: 'deserialize',
    origin: { topic: 'customer_data', partition: 1, offset: '9', key: 'chaos-poison-0' },
  })
  const outage = entry({
    stage: 'deliver',
    error: { class: 'DeliveryError', message: 'retries exhausted', status: 503 },
    idempotencyKey: 'customer:1:abc',
  })
  assert.equal(classifyDlqEntry(invalid).cause, 'invalid source record')
  assert.equal(classifyDlqEntry(invalidProduct).cause, 'invalid source record')
  assert.equal(classifyDlqEntry(poison).cause, 'poison message')
  assert.equal(classifyDlqEntry(outage).cause, 'unexpected: deliver DeliveryError 503')
  const tally = tallyDlq([invalid, invalidProduct, poison, poison, outage])
  assert.deepEqual(tally.byCause, {
    'invalid source record': 2,
    'poison message': 1,
    'unexpected: deliver DeliveryError 503': 1,
  })
  assert.equal(tally.repeats, 1)
  assert.equal(tally.unexpected.length, 1)
})

test('end checks: a clean end passes; a stale view, a double key, a missing DLQ entry or an outage entry fail', () => {
  const snapshot = {
    customers: [
      {
        id: '1',
        name: 'A',
        email: 'a@x',
        status: 'active',
        productIds: ['100'],
        updatedAt: '2026-01-01T00:00:00Z',
      },
    ],
    products: [{ id: 100, sku: 'S', name: 'P', price: 2.5, stock: 4, updatedAt: '2026-01-01T00:00:00Z' }],
  }
  const expected = expectedJoin(snapshot, 10)
  const held = Object.fromEntries([...expected].map(([id, facts]) => [id, { ...facts }]))
  const stats = { received: 3, accepted: 2, replays: 1, rejected: 0, distinctKeys: 2, views: 2, batches: 0 }
  const clean = {
    expected,
    held,
    stats,
    keyConflicts: [],
    dlq: tallyDlq([entry({ payload: { email: 'broken.1@x' } })]),
    injected: { invalidRecords: 1, poison: 0 },
  }
  assert.deepEqual(endCheckProblems(clean), [])
  const stale = { ...held, 'product:100': { ...held['product:100'], customerCount: 0 } }
  assert.match(endCheckProblems({ ...clean, held: stale }).join('\n'), /does not hold the join/)
  assert.match(endCheckProblems({ ...clean, stats: { ...stats, accepted: 3 } }).join('\n'), /accepted twice/)
  assert.match(endCheckProblems({ ...clean, keyConflicts: ['k: a, then b'] }).join('\n'), /other content/)
  assert.match(
    endCheckProblems({ ...clean, injected: { invalidRecords: 2, poison: 0 } }).join('\n'),
    /holds 1 invalid source records, 2 were served/,
  )
  const withOutage = tallyDlq([
    entry({ payload: { email: 'broken.1@x' } }),
    entry({ stage: 'deliver', error: { class: 'DeliveryError', message: 'exhausted' } }),
  ])
  assert.match(endCheckProblems({ ...clean, dlq: withOutage }).join('\n'), /should not be there/)
})

test('report: every figure of issue #7 in the table, and the verdict', () => {
  const figures: ChaosFigures = {
    customers: 2000,
    products: 200,
    seed: 7,
    kills: { producer: 7, consumer: 13 },
    unexpectedExits: 0,
    outages: {
      kafkaRestarts: 1,
      redisRestarts: 1,
      sinkOutages: 1,
      sinkOutageMs: 10_000,
      sinkDelayed: 10,
      source429: 8,
      source503: 10,
    },
    sourceChanges: 603,
    sourceMessages: 2804,
    refreshMessages: 7355,
    viewsHeld: 2200,
    deliveries: { received: 5846, accepted: 4802, replays: 1044, rejected: 0 },
    dlq: { byCause: { 'poison message': 3 }, repeats: 0 },
    injected: { invalidRecords: 6, poison: 3 },
    wallMs: { total: 125_300, faults: 90_200, drain: 20_100 },
  }
  const table = formatReport(figures, [])
  for (const text of [
    'kills survived (SIGKILL)         | 20 (producers 7, consumers 13)',
    'Kafka restart 1, Redis restart 1, sink down 1× (10.0 s)',
    '429 answered 8×, 503 answered 10×',
    '2804 source messages',
    'duplicate POSTs (deduped by key) | 1044',
    'poison message 3',
    'wall time                        | 125.3 s',
    'PASS',
  ])
    assert.ok(table.includes(text), `${text} in\n${table}`)
  assert.match(formatReport(figures, ['x']), /verdict +\| FAIL[\s\S]*problem: x/)
})
