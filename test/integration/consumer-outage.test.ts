/**
 * Analytics down for a whole minute (design §5): the breaker opens, both consumer stages pause, no
 * delivery is attempted and nothing is dead-lettered; once Analytics answers again every change made
 * during the outage is delivered and Analytics holds the join of the final source state.
 *
 * The outage has two halves: for 30 s the sink answers 503 to everything (fault rule), then for 30 s
 * nothing listens on its port (a proxy in front of the analytics mock is taken down, so connections
 * are refused while the mock keeps what it holds), as a crashed Analytics would look.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { isDeepStrictEqual } from 'node:util'
import type { Metric } from 'prom-client'
import type { Customer, Product } from '../../src/domain/records.ts'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { heldViews, type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { readDlq } from '../helpers/dlq.ts'
import { expectedJoin } from '../helpers/join.ts'
import { metricValue } from '../helpers/metrics.ts'
import { sampleMetric } from '../helpers/sampler.ts'
import { customer, product, type SourceChange, sourceWriter } from '../helpers/sources.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'
import { waitFor } from '../helpers/wait.ts'

const OUTAGE_MS = 60_000

let proxy: TcpProxy
let fixture: PipelineFixture
let consumer: ConsumerService
let sources: ReturnType<typeof sourceWriter>
const customers = new Map<string, Customer>()
const products = new Map<string, Product>()

before(async () => {
  proxy = await startTcpProxy()
  fixture = await pipelineFixture({
    ANALYTICS_URL: `${proxy.url}/analytics/data`,
    BREAKER_FAILURE_THRESHOLD: '3',
    RETRY_MAX_ATTEMPTS: '3',
    RETRY_BASE_DELAY_MS: '20',
    RETRY_MAX_DELAY_MS: '200',
    SINK_TIMEOUT_MS: '1000',
  })
  proxy.target = fixture.mock.port
  consumer = await fixture.startConsumer()
  sources = sourceWriter(fixture.config)
})
after(async () => {
  await sources.close()
  await fixture.close()
  await proxy.close()
})

/** Produces `changes` and keeps the source state the views must end up joining. */
async function change(...changes: SourceChange[]): Promise<void> {
  await sources.write(...changes)
  for (const c of changes) {
    if ('customer' in c) customers.set(c.customer.id, c.customer)
    else if ('product' in c) products.set(c.product.id, c.product)
    else if ('deleteCustomer' in c) customers.delete(c.deleteCustomer)
    else products.delete(c.deleteProduct)
  }
}

/** Waits until Analytics holds exactly the join of the source state; fails with the difference. */
async function waitForJoin(what: string, timeoutMs: number): Promise<void> {
  const expected = expectedJoin(customers.values(), products.values(), {
    lowStockThreshold: fixture.config.LOW_STOCK_THRESHOLD,
    customerIdsCap: 100,
  })
  try {
    await waitFor(what, async () => isDeepStrictEqual(await heldViews(fixture.mock), expected), timeoutMs)
  } catch (error) {
    assert.deepEqual(await heldViews(fixture.mock), expected, what)
    throw error
  }
}

function sinkMetric(name: string): Metric {
  const metric = consumer.registry.getSingleMetric(name)
  assert.ok(metric, `metric ${name} is registered`)
  return metric
}

const sleepUntil = (time: number) => sleep(Math.max(0, time - Date.now()))

test('Analytics down for 60 s: the breaker opens, consumption pauses, nothing is dead-lettered, all is delivered after recovery', async (t) => {
  const circuitState = sinkMetric('pipeline_sink_circuit_state')
  const deliveries = sinkMetric('pipeline_sink_deliveries_total')
  const circuit = sampleMetric(circuitState, 50)
  const paused = sampleMetric(consumer.metrics.paused, 50)
  const dlqCount = () => metricValue(consumer.metrics.dlqMessages)
  try {
    await change(
      { product: product('1') },
      { product: product('2', { price: 20, stock: 50 }) },
      { product: product('3', { price: 5, stock: 2 }) },
      { customer: customer('1', ['1', '2']) },
      { customer: customer('2', ['2']) },
      { customer: customer('3', ['3']) },
      { customer: customer('4', ['2', '3']) },
    )
    await waitForJoin('the views before the outage', 15_000)
    const acceptedBefore = fixture.mock.store.stats().accepted

    // First half: every request is answered 503. A change makes the consumer find out.
    const outageStart = Date.now()
    fixture.mock.store.faults.add({ status: 503 })
    await change({ product: product('1', { price: 12 }) })
    await waitFor('the circuit to open', async () => (await metricValue(circuitState)) === 2, 15_000)
    await waitFor(
      'consumption to pause',
      async () => (await metricValue(consumer.metrics.paused)) === 1,
      5000,
    )
    t.diagnostic(`circuit open ${Date.now() - outageStart} ms into the outage`)
    await sleep(1000) // a fetch in flight as the stages paused has landed by now
    const appliedAtPause = await metricValue(consumer.metrics.messages, { result: 'applied' })
    const deliveriesAtPause = await metricValue(deliveries)

    await change(
      { customer: customer('2', ['2', '3', '4']) },
      { customer: customer('5', ['1', '4']) },
      { deleteProduct: '3' },
      { deleteCustomer: '4' },
    )
    await sleepUntil(outageStart + OUTAGE_MS / 2)

    // Second half: nothing listens on the sink's port.
    await proxy.down()
    await change(
      { product: product('4', { stock: 3 }) },
      { customer: customer('3', ['3'], { name: 'Renamed' }) },
    )
    await sleepUntil(outageStart + OUTAGE_MS)

    assert.notEqual(
      await metricValue(circuitState),
      0,
      'the circuit is still not closed at the end of the outage',
    )
    assert.equal(await metricValue(consumer.metrics.paused), 1, 'consumption is still paused')
    assert.equal(
      await metricValue(consumer.metrics.messages, { result: 'applied' }),
      appliedAtPause,
      'no source change was consumed while paused',
    )
    assert.equal(await metricValue(deliveries), deliveriesAtPause, 'no delivery was attempted while open')
    assert.equal(fixture.mock.store.stats().accepted, acceptedBefore, 'nothing reached Analytics')
    assert.equal(await dlqCount(), 0, 'nothing dead-lettered during the outage')

    // Recovery.
    fixture.mock.store.faults.clear()
    await proxy.up()
    const recoveredAt = Date.now()
    await waitForJoin('the join of the final state after recovery', 30_000)
    t.diagnostic(`every view delivered ${Date.now() - recoveredAt} ms after recovery`)
    await waitFor('the circuit to close', async () => (await metricValue(circuitState)) === 0, 5000)
    await waitFor(
      'consumption to resume',
      async () => (await metricValue(consumer.metrics.paused)) === 0,
      5000,
    )
  } finally {
    await Promise.all([circuit.stop(), paused.stop()])
  }
  assert.ok(circuit.seen().has(2), 'pipeline_sink_circuit_state was 2')
  assert.ok(paused.seen().has(1), 'pipeline_consumer_paused was 1')
  assert.equal(paused.last(), 0)
  assert.equal(await dlqCount(), 0, 'no DLQ entry counted')
  const requests = sinkMetric('pipeline_sink_requests_total')
  assert.ok((await metricValue(requests, { status: '5xx' })) > 0, 'Analytics answered 503 in the first half')
  assert.ok(
    (await metricValue(requests, { status: 'network' })) > 0,
    'connections were refused in the second',
  )
  assert.equal(await metricValue(deliveries, { outcome: 'exhausted' }), 0)
  assert.equal(await metricValue(deliveries, { outcome: 'rejected' }), 0)
  assert.deepEqual(await readDlq(fixture.config, { idleMs: 2000 }), [], 'the DLQ topic is empty')
})
