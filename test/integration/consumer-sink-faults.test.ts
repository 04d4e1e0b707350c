/**
 * The consumer against a misbehaving Analytics (design §5, §6): transient 500s are retried in line
 * and delivered once; a 400 is dead-lettered at once with its context; one view that keeps failing
 * with 503 while Analytics is healthy for the others is retried off the hot path, round after round,
 * then dead-lettered, without holding up unrelated views or opening the circuit.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Metric } from 'prom-client'
import { parseRefresh } from '../../src/services/consumer/refresh.ts'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { type DlqRecord, readDlq } from '../helpers/dlq.ts'
import { readTopic } from '../helpers/kafka.ts'
import { metricValue } from '../helpers/metrics.ts'
import { sampleMetric } from '../helpers/sampler.ts'
import { customer, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const ATTEMPTS = 4
const ROUNDS = 2
const ROUND_DELAY_MS = 1000

let fixture: PipelineFixture
let consumer: ConsumerService
let sources: ReturnType<typeof sourceWriter>

before(async () => {
  fixture = await pipelineFixture({
    RETRY_MAX_ATTEMPTS: String(ATTEMPTS),
    RETRY_BASE_DELAY_MS: '20',
    RETRY_MAX_DELAY_MS: '100',
    DELIVERY_RETRY_ROUNDS: String(ROUNDS),
    DELIVERY_RETRY_DELAY_MS: String(ROUND_DELAY_MS),
  })
  consumer = await fixture.startConsumer()
  sources = sourceWriter(fixture.config)
})
after(async () => {
  await sources.close()
  await fixture.close()
})

function sinkMetric(name: string): Metric {
  const metric = consumer.registry.getSingleMetric(name)
  assert.ok(metric, `metric ${name} is registered`)
  return metric
}

const deliverDlqCount = () => metricValue(consumer.metrics.dlqMessages, { stage: 'deliver' })

/** The DLQ entries of `view` once the consumer counted `total` deliver-stage entries in all. */
async function deadLettersOf(view: string, total: number, timeoutMs = 15_000): Promise<DlqRecord[]> {
  await waitFor(
    `${total} deliver-stage DLQ entries`,
    async () => (await deliverDlqCount()) >= total,
    timeoutMs,
  )
  const records = await readDlq(fixture.config, { count: total })
  return records.filter((record) => record.key === view)
}

function statsDelta(before: ReturnType<PipelineFixture['mock']['store']['stats']>) {
  const now = fixture.mock.store.stats()
  return {
    received: now.received - before.received,
    accepted: now.accepted - before.accepted,
    replays: now.replays - before.replays,
    rejected: now.rejected - before.rejected,
  }
}

test('500, 500, 500 then 200: retried in line, delivered once, retries +3, nothing dead-lettered', async () => {
  const retries = sinkMetric('pipeline_sink_retries_total')
  const retriesBefore = await metricValue(retries)
  const dlqBefore = await deliverDlqCount()
  const statsBefore = fixture.mock.store.stats()
  fixture.mock.store.faults.add({ status: 500, count: 3, match: 'customer:11:' })

  await sources.write({ customer: customer('11', []) })
  const held = await waitFor('customer:11 at Analytics', () => fixture.mock.store.views().get('customer:11'))
  await sleep(500) // a second delivery or a late retry would have arrived by now

  assert.equal((held.record as { id: string }).id, '11')
  assert.equal(fixture.mock.store.faults.list().length, 0, 'the three 500s were all used')
  const stored = fixture.mock.store.records().filter((r) => r.key.startsWith('customer:11:'))
  assert.equal(stored.length, 1, 'the view was stored once')
  assert.deepEqual(statsDelta(statsBefore), { received: 4, accepted: 1, replays: 0, rejected: 3 })
  assert.equal((await metricValue(retries)) - retriesBefore, 3, 'pipeline_sink_retries_total +3')
  assert.equal(await deliverDlqCount(), dlqBefore, 'no DLQ entry counted')
  assert.equal(
    await metricValue(consumer.metrics.views, { type: 'customer', result: 'retry_scheduled' }),
    0,
    'no off-path round was needed',
  )
  const dlq = await readDlq(fixture.config, { idleMs: 1500 })
  assert.deepEqual(
    dlq.filter((record) => record.key === 'customer:11'),
    [],
    'no DLQ entry for customer:11',
  )
})

test('400 for a view: one DLQ entry with its full context, no retry', async () => {
  const retries = sinkMetric('pipeline_sink_retries_total')
  const retriesBefore = await metricValue(retries)
  const dlqBefore = await deliverDlqCount()
  const statsBefore = fixture.mock.store.stats()
  fixture.mock.store.faults.add({ status: 400, match: 'customer:22:' })
  const record = customer('22', ['220'])

  await sources.write({ customer: record })
  const [dead, ...more] = await deadLettersOf('customer:22', dlqBefore + 1)
  assert.ok(dead, 'a DLQ entry for customer:22')
  assert.equal(more.length, 0, 'exactly one DLQ entry')
  await sleep(1000) // a retry would have reached the mock by now

  const { entry, headers } = dead
  assert.equal(entry.stage, 'deliver')
  assert.equal(entry.error.class, 'PIPELINE_SINK_REJECTED')
  assert.equal(entry.error.status, 400)
  assert.match(entry.error.body ?? '', /injected fault: status 400/)
  assert.equal(entry.attempts, 1)
  assert.ok(entry.firstFailedAt <= entry.failedAt)
  const view = entry.view as { type: string; id: string; customer: unknown; missingProductIds: string[] }
  assert.equal(view.type, 'customer')
  assert.equal(view.id, '22')
  assert.deepEqual(view.customer, record)
  assert.deepEqual(view.missingProductIds, ['220'])
  assert.match(entry.idempotencyKey ?? '', /^customer:22:[0-9a-f]{64}$/)
  assert.equal(entry.origin.topic, fixture.config.TOPIC_REFRESH)
  assert.equal(entry.origin.key, 'customer:22')
  assert.equal(typeof entry.origin.partition, 'number')
  assert.match(entry.origin.offset ?? '', /^\d+$/)

  assert.equal(headers['dlq-stage'], 'deliver')
  assert.equal(headers['idempotency-key'], entry.idempotencyKey)
  assert.equal(headers['dlq-http-status'], '400')
  assert.equal(headers['dlq-attempts'], '1')
  assert.equal(headers['dlq-origin-topic'], fixture.config.TOPIC_REFRESH)
  assert.equal(headers['dlq-origin-partition'], String(entry.origin.partition))
  assert.equal(headers['dlq-origin-offset'], entry.origin.offset)

  // The origin names the refresh message that asked for the view (a packed one, keyed by its shard).
  const refreshes = await readTopic(fixture.config.TOPIC_REFRESH, { idleMs: 1500 })
  const origin = refreshes.find(
    (m) => m.partition === entry.origin.partition && String(m.offset) === entry.origin.offset,
  )
  assert.ok(origin, 'the origin is a message of the refresh topic')
  const asked = parseRefresh(
    origin.key,
    origin.value === null ? null : Buffer.from(origin.value),
  )?.requests.map((r) => r.view)
  assert.ok(asked?.includes('customer:22'), `the message asked for customer:22 (it asked for ${asked})`)

  assert.deepEqual(statsDelta(statsBefore), { received: 1, accepted: 0, replays: 0, rejected: 1 })
  assert.equal((await metricValue(retries)) - retriesBefore, 0, 'no retry')
  assert.equal(fixture.mock.store.views().has('customer:22'), false)
})

test('one view always 503 while Analytics is healthy for the others: dead-lettered after the retry budget, others delivered meanwhile, circuit closed throughout', async () => {
  const circuit = sampleMetric(sinkMetric('pipeline_sink_circuit_state'))
  const paused = sampleMetric(consumer.metrics.paused)
  const transitions: string[] = []
  const unsubscribe = consumer.sink.onStateChange((state) => transitions.push(state))
  try {
    const dlqBefore = await deliverDlqCount()
    const statsBefore = fixture.mock.store.stats()
    fixture.mock.store.faults.add({ status: 503, match: 'customer:33:' })

    await sources.write({ customer: customer('33', []) }, { customer: customer('34', []) })
    await waitFor('customer:34 at Analytics', () => fixture.mock.store.views().get('customer:34'))
    await waitFor('the first round of customer:33 to end with a retry scheduled', async () => {
      const scheduled = await metricValue(consumer.metrics.views, {
        type: 'customer',
        result: 'retry_scheduled',
      })
      return scheduled >= 1
    })
    // An unrelated view produced while customer:33 waits for its next round.
    const producedAt = Date.now()
    await sources.write({ customer: customer('35', []) })
    const unrelated = await waitFor('customer:35 at Analytics', () =>
      fixture.mock.store.views().get('customer:35'),
    )
    const unrelatedLatencyMs = unrelated.receivedAt - producedAt

    const [dead, ...more] = await deadLettersOf('customer:33', dlqBefore + 1, 30_000)
    assert.ok(dead, 'a DLQ entry for customer:33')
    assert.equal(more.length, 0, 'exactly one DLQ entry')
    const { entry, headers } = dead

    assert.ok(
      unrelatedLatencyMs < 2000,
      `customer:35 delivered promptly (${unrelatedLatencyMs} ms after it was produced)`,
    )
    assert.ok(
      unrelated.receivedAt < Date.parse(entry.failedAt),
      'customer:35 was delivered before customer:33 was dead-lettered',
    )

    const budget = ATTEMPTS * (ROUNDS + 1)
    assert.equal(entry.stage, 'deliver')
    assert.equal(entry.attempts, budget, 'attempts counted across rounds')
    assert.equal(headers['dlq-attempts'], String(budget))
    assert.equal(entry.error.class, 'PIPELINE_SINK_HTTP_STATUS')
    assert.equal(entry.error.status, 503)
    assert.match(entry.error.body ?? '', /injected fault: status 503/)
    const spanMs = Date.parse(entry.failedAt) - Date.parse(entry.firstFailedAt)
    // Rounds are due base × 2^(round − 1) after the previous one: 1 s, then 2 s.
    assert.ok(
      spanMs >= ROUND_DELAY_MS * (2 ** ROUNDS - 1),
      `firstFailedAt precedes failedAt by the rounds' delays (${spanMs} ms)`,
    )
    assert.deepEqual(
      { type: (entry.view as { type: string }).type, id: (entry.view as { id: string }).id },
      { type: 'customer', id: '33' },
    )
    assert.match(entry.idempotencyKey ?? '', /^customer:33:[0-9a-f]{64}$/)
    assert.equal(headers['idempotency-key'], entry.idempotencyKey)
    assert.equal(headers['dlq-stage'], 'deliver')
    assert.equal(entry.origin.topic, fixture.config.TOPIC_REFRESH)
    assert.equal(entry.origin.key, 'customer:33')

    const delta = statsDelta(statsBefore)
    assert.equal(delta.rejected, budget, 'every attempt of customer:33 reached the mock, no more')
    assert.equal(delta.accepted, 2, 'customer:34 and customer:35')
    assert.equal(fixture.mock.store.views().has('customer:33'), false)
    assert.equal(await metricValue(consumer.metrics.views, { result: 'dead_lettered' }), 1)
  } finally {
    unsubscribe()
    await Promise.all([circuit.stop(), paused.stop()])
  }
  assert.deepEqual(transitions, [], 'the circuit never changed state')
  assert.deepEqual([...circuit.seen()], [0], 'pipeline_sink_circuit_state stayed 0')
  assert.deepEqual([...paused.seen()], [0], 'consumption never paused')
})
