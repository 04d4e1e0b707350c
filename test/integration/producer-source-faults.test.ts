/**
 * A misbehaving source against the producer, with real Kafka and Redis: transient errors are
 * retried within the cycle, a hung source times out without delaying the other one, permanent
 * errors and endless pagination fail at once, invalid records are dead-lettered while their
 * page-mates flow, and a non-JSON answer fails the cycle without publishing or deleting anything.
 */
import assert from 'node:assert/strict'
import { type TestContext, test } from 'node:test'
import { describeError, ErrorCodes } from '../../src/errors.ts'
import { startProducerService } from '../../src/services/producer/service.ts'
import { makeInvalidRecords } from '../../src/simulator/records.ts'
import { startSourceSimulator } from '../../src/simulator/server.ts'
import { uniqueName } from '../helpers/env.ts'
import { metricValue } from '../helpers/metrics.ts'
import { captureLogs } from '../helpers/producer.ts'
import {
  readExactly,
  type SimulatedProducerOptions,
  simulatorConfig,
  startSimulatedProducer,
} from '../helpers/simulated-producer.ts'
import { waitFor } from '../helpers/wait.ts'

async function fixture(t: TestContext, options: SimulatedProducerOptions = {}) {
  const producer = await startSimulatedProducer({
    ...options,
    simulator: { customers: 20, products: 5, pageSize: 100, ...options.simulator },
  })
  t.after(() => producer.close())
  return producer
}

/** Asserts that `promise` rejects with a pipeline error of `code`, and returns that error's text. */
async function failsWith(promise: Promise<unknown>, code: string): Promise<string> {
  let text = ''
  await assert.rejects(promise, (error: unknown) => {
    text = describeError(error)
    assert.equal((error as { code?: string }).code, code, text)
    return true
  })
  return text
}

test('500, 500, 200 within one cycle still publishes in that cycle; the retries metric counts 2', async (t) => {
  const { sim, config, runtime, cycle, logs } = await fixture(t)
  sim.addFaults([{ path: '/customers', status: 500, count: 2 }])

  const summary = await cycle('crm')
  assert.equal(summary.outcome, 'success')
  assert.equal(summary.published, 20)
  assert.deepEqual(sim.requests().paths['/customers']?.statuses, { 200: 1, 500: 2 })
  assert.equal(await metricValue(runtime.metrics.httpRetries, { source: 'crm' }), 2)
  const retries = logs.messages().filter((m) => /^crm: .*HTTP 500; retrying in \d+ ms$/.test(m))
  assert.equal(retries.length, 2)
  await readExactly(config.TOPIC_CUSTOMERS, 20)
})

test('a hung CRM times out while the Inventory, polled by the same service, publishes promptly', async (t) => {
  const sim = await startSourceSimulator({ port: 0, customers: 20, products: 5 })
  t.after(() => sim.close())
  sim.addFaults([{ path: '/customers', delayMs: 30_000 }])
  const config = simulatorConfig(sim, {
    SOURCE_TIMEOUT_MS: '1000',
    RETRY_MAX_ATTEMPTS: '2',
    POLL_INTERVAL_MS: '60000',
  })
  const logs = captureLogs('producer')
  const started = Date.now()
  const service = await startProducerService(config, logs.logger, { prefix: uniqueName('hung') })
  t.after(() => service.close())
  const [crmLoop, inventoryLoop] = service.loops
  assert.ok(crmLoop && inventoryLoop)
  const settled = (loop: typeof crmLoop) => loop.firstCycle.then(() => Date.now() - started)

  const inventoryMs = await settled(inventoryLoop)
  const crmMs = await settled(crmLoop)
  assert.ok(
    inventoryMs < crmMs,
    `inventory done after ${inventoryMs} ms, before the CRM gave up (${crmMs} ms)`,
  )
  assert.ok(crmMs >= 2 * 1000, 'the CRM was given its two attempts of SOURCE_TIMEOUT_MS')
  assert.ok(crmMs < 10_000, `the CRM cycle ended long before the 30 s hang (${crmMs} ms)`)
  const inventoryCycle = logs.lines.find((line) => line.source === 'inventory' && line.outcome === 'success')
  assert.ok(inventoryCycle, 'the inventory cycle summary is logged')
  assert.ok(
    Number(inventoryCycle.durationMs) < 2 * 1000,
    `the inventory cycle (${inventoryCycle.durationMs} ms) did not wait for the CRM's two timeouts`,
  )

  const { metrics } = service.runtime
  assert.equal(await metricValue(metrics.polls, { source: 'inventory', outcome: 'success' }), 1)
  assert.equal(await metricValue(metrics.polls, { source: 'crm', outcome: 'failed' }), 1)
  const failure = logs.lines.find((line) => line.source === 'crm' && /cycle failed/.test(line.msg))
  assert.ok(failure, 'the CRM failure is logged')
  assert.equal(failure.code, ErrorCodes.SOURCE_TIMEOUT)
  assert.match(failure.msg, /did not answer within 1000 ms \(gave up after 2 attempts\)/)

  await readExactly(config.TOPIC_PRODUCTS, 5)
  await readExactly(config.TOPIC_CUSTOMERS, 0)
  // The producer hung up on both attempts; the simulator saw them go.
  assert.deepEqual(sim.requests().paths['/customers']?.statuses, { aborted: 2 })
})

test('invalid records are dead-lettered with their reason while their page-mates are published', async (t) => {
  const { sim, config, runtime, cycle } = await fixture(t)
  sim.addFaults([{ path: '/customers', invalidRecords: 3, count: 1 }])

  const summary = await cycle('crm')
  assert.equal(summary.fetched, 23)
  assert.equal(summary.invalid, 3)
  assert.equal(summary.published, 20)
  assert.equal(await metricValue(runtime.metrics.dlqMessages, { stage: 'source' }), 3)

  const entries = (await readExactly(config.TOPIC_DLQ, 3)).map((m) => JSON.parse(m.value ?? 'null'))
  // The simulator's broken records, in the order it mixed them in: no id, productIds not an array, id null.
  const raws = makeInvalidRecords('customers', 3, 0)
  const fields = ['id', 'productIds', 'id']
  raws.forEach((raw, i) => {
    const entry = entries.find((e) => JSON.stringify(e.payload) === JSON.stringify(raw))
    assert.ok(entry, `a DLQ entry holds broken record ${i} as it was served`)
    assert.equal(entry.stage, 'source')
    assert.equal(entry.error.class, 'ValidationError')
    assert.match(entry.error.message, new RegExp(`^${fields[i]}: `), 'the reason names the field')
    assert.equal(entry.origin.url, `${sim.url}/customers`)
    assert.equal(entry.origin.topic, config.TOPIC_CUSTOMERS)
  })

  const published = await readExactly(config.TOPIC_CUSTOMERS, 20)
  assert.ok(published.every((m) => !m.key.startsWith('invalid-')))
})

test('a known record that turns invalid is dead-lettered once and keeps its last valid version, not a tombstone', async (t) => {
  // Two pages, so no ETag: every poll reads the listing again.
  const { sim, config, runtime, cycle } = await fixture(t, { simulator: { pageSize: 10 } })
  assert.equal((await cycle('crm')).published, 20)

  assert.ok(sim.patch('customers', '7', { status: '' }), 'customer 7 now fails the schema (empty status)')
  const broken = await cycle('crm')
  assert.equal(broken.invalid, 1)
  assert.equal(broken.deleted, 0, 'a listed but invalid record is not a deletion')
  assert.equal(broken.published, 0)
  assert.ok((await runtime.state.knownHashes('crm')).has('7'), 'its last valid version stays known')

  const again = await cycle('crm')
  assert.equal(again.invalid, 1, 'still counted as invalid on every poll')
  assert.equal(again.deleted, 0)
  assert.equal(
    await metricValue(runtime.metrics.dlqMessages, { stage: 'source' }),
    1,
    'the same broken record is dead-lettered once, not once per poll',
  )

  assert.ok(sim.patch('customers', '7', { status: 'fixed' }))
  assert.equal((await cycle('crm')).published, 1, 'fixed at the source, it is published')
  assert.ok(sim.patch('customers', '7', { status: '' }))
  await cycle('crm')
  assert.equal(
    await metricValue(runtime.metrics.dlqMessages, { stage: 'source' }),
    2,
    'broken again after a fix, it is dead-lettered again',
  )

  const dlq = (await readExactly(config.TOPIC_DLQ, 2)).map((m) => JSON.parse(m.value ?? 'null'))
  assert.deepEqual(
    dlq.map((entry) => [entry.origin.key, entry.stage, entry.error.message.split(':')[0]]),
    [
      ['7', 'source', 'status'],
      ['7', 'source', 'status'],
    ],
  )
  const customers = await readExactly(config.TOPIC_CUSTOMERS, 21)
  assert.ok(
    customers.every((m) => m.value !== null),
    'no tombstone was published for customer 7',
  )
})

test('an HTML page with status 200 fails the cycle, publishes nothing and deletes nothing', async (t) => {
  const { sim, config, runtime, cycle } = await fixture(t, {
    simulator: { customers: 500, pageSize: 100, paging: { customers: 'page' } },
  })
  await cycle('crm')
  const known = await runtime.state.knownHashes('crm')
  assert.equal(known.size, 500)

  // A change on page 1 that must not be published from a listing whose page 2 is a login page.
  sim.patch('customers', '1', { status: 'changed-before-html' })
  sim.addFaults([
    {
      path: '/customers',
      page: 2,
      status: 200,
      contentType: 'text/html; charset=utf-8',
      body: '<html><body><form>Please log in</form></body></html>',
      count: 1,
    },
  ])
  const before = sim.requests().total
  const text = await failsWith(cycle('crm'), ErrorCodes.SOURCE_NOT_JSON)
  assert.match(text, /page=2.*content-type "text\/html; charset=utf-8", not JSON/)
  // Pages 2 and 4 are one scan thread's, 3 and 5 the other's: the one that met the login page
  // asked for nothing after it.
  const asked = sim
    .requests()
    .recent.filter((r) => r.seq > before && r.path === '/customers')
    .map((r) => new URLSearchParams(r.query).get('page') ?? '1')
  assert.ok(asked.includes('2'), `page 2 was asked for: ${asked}`)
  assert.ok(!asked.includes('4'), `page 4 was not asked for: ${asked}`)

  assert.deepEqual(await runtime.state.knownHashes('crm'), known, 'known hashes unchanged')
  const messages = await readExactly(config.TOPIC_CUSTOMERS, 500)
  assert.equal(messages.filter((m) => m.value === null).length, 0, 'no tombstones')
})

test('a listing that changes while two threads read it is read again in order: complete, counted, logged', async (t) => {
  const { sim, runtime, cycle, logs } = await fixture(t, {
    simulator: { customers: 500, pageSize: 100, paging: { customers: 'page' } },
  })
  await cycle('crm')
  const gone = [...(await runtime.state.knownHashes('crm')).keys()][0] ?? ''
  // Page 4 (the first thread's second page) is answered late; a customer is removed meanwhile, so it
  // says 499 records where page 1 said 500.
  sim.addFaults([{ path: '/customers', page: 4, delayMs: 1500, count: 1 }])
  const polled = cycle('crm')
  await waitFor('page 4 asked for', () =>
    sim.requests().recent.some((r) => r.query.includes('page=4') && r.outcome === null),
  )
  assert.ok(sim.remove('customers', gone))
  const summary = await polled
  assert.equal(summary.outcome, 'success')
  assert.equal(
    summary.deleted,
    1,
    'the removed customer is a tombstone of the complete listing read in order',
  )
  assert.equal(summary.unchanged, 499)
  assert.equal(await metricValue(runtime.metrics.rescans, { source: 'crm' }), 1)
  assert.ok(
    logs
      .messages()
      .some((m) =>
        /^crm: the listing changed while two threads read it \(.*page=4.*total 500\) but says .*total 499.*\); reading it again in order$/.test(
          m,
        ),
      ),
    logs.messages().join('\n'),
  )
})

test('401 and 404 are permanent: the cycle fails at once, without retries', async (t) => {
  const { sim, config, runtime, cycle, logs } = await fixture(t, { env: { CRM_TOKEN: 'wrong-token-1234' } })
  sim.configure({ token: 'right-token-5678' })
  let text = await failsWith(cycle('crm'), ErrorCodes.SOURCE_HTTP_STATUS)
  assert.match(text, /answered HTTP 401/)
  assert.deepEqual(sim.requests().paths['/customers']?.statuses, { 401: 1 })

  sim.configure({ token: null })
  sim.addFaults([{ path: '/products', status: 404 }])
  text = await failsWith(cycle('inventory'), ErrorCodes.SOURCE_HTTP_STATUS)
  assert.match(text, /answered HTTP 404/)
  assert.deepEqual(sim.requests().paths['/products']?.statuses, { 404: 1 })

  assert.equal(await metricValue(runtime.metrics.httpRetries), 0)
  assert.ok(!JSON.stringify(logs.lines).includes('wrong-token-1234'), 'the token is never logged')
  await readExactly(config.TOPIC_CUSTOMERS, 0)
})

test('a next link back to a page already read fails the cycle instead of looping', async (t) => {
  const { sim, config, cycle } = await fixture(t)
  const items = sim.snapshot().customers.slice(0, 3)

  // The first page links to itself.
  sim.setFaults([{ path: '/customers', body: JSON.stringify({ items, next: '/customers' }) }])
  let text = await failsWith(cycle('crm'), ErrorCodes.SOURCE_BAD_SHAPE)
  assert.match(text, /links back to a page already read/)
  assert.equal(sim.requests().paths['/customers']?.count, 1)

  // A cursor that never advances: page 2 names itself as the next page.
  sim.resetRequests()
  sim.setFaults([{ path: '/customers', body: JSON.stringify({ items, cursor: 'stuck' }) }])
  text = await failsWith(cycle('crm'), ErrorCodes.SOURCE_BAD_SHAPE)
  assert.match(text, /cursor=stuck/)
  assert.equal(sim.requests().paths['/customers']?.count, 2)

  await readExactly(config.TOPIC_CUSTOMERS, 0)
})
