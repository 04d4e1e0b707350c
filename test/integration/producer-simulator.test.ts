/**
 * The producer's change detection against the source simulator, with real Kafka and Redis: every
 * paging style is followed to the end, a re-poll publishes nothing, one change publishes one
 * message, a removal publishes a tombstone, and the mass-deletion guard refuses a gutted listing.
 */
import assert from 'node:assert/strict'
import { type TestContext, test } from 'node:test'
import type { SourceSimulatorOptions } from '../../src/simulator/server.ts'
import { metricValue } from '../helpers/metrics.ts'
import {
  readExactly,
  type SimulatedProducerOptions,
  startSimulatedProducer,
} from '../helpers/simulated-producer.ts'

/** A producer on a fresh simulator, closed when the test ends. */
async function fixture(t: TestContext, options: SimulatedProducerOptions) {
  const producer = await startSimulatedProducer(options)
  t.after(() => producer.close())
  return producer
}

/** Every customer id the simulator currently serves, as Kafka keys. */
const customerIds = (sim: { snapshot(): { customers: ReadonlyArray<{ id: string | number }> } }) =>
  sim.snapshot().customers.map((c) => String(c.id))

for (const paging of ['page', 'next', 'cursor'] as const) {
  test(`250 customers in pages of 100 (${paging} paging) publish 250; an identical re-poll publishes 0`, async (t) => {
    const { sim, config, cycle } = await fixture(t, {
      simulator: { customers: 250, products: 5, pageSize: 100, paging: { customers: paging } },
    })
    const first = await cycle('crm')
    assert.equal(first.outcome, 'success')
    assert.equal(first.pages, 3)
    assert.equal(first.fetched, 250)
    assert.equal(first.published, 250)

    const second = await cycle('crm')
    assert.equal(second.outcome, 'success', 'a multi-page listing is not conditional')
    assert.equal(second.pages, 3)
    assert.equal(second.published, 0)
    assert.equal(second.unchanged, 250)
    assert.equal(second.deleted, 0)
    assert.equal(sim.requests().paths['/customers']?.count, 6, 'three pages per poll')

    const messages = await readExactly(config.TOPIC_CUSTOMERS, 250)
    assert.deepEqual(messages.map((m) => m.key).sort(), customerIds(sim).sort())
  })
}

test('a single-page listing with an ETag: the re-poll sends If-None-Match and gets 304', async (t) => {
  const { sim, config, cycle } = await fixture(t, {
    simulator: { customers: 250, products: 5, paging: { customers: 'array' } },
  })
  const first = await cycle('crm')
  assert.equal(first.published, 250)
  const etag = sim.state().customers.etag

  const second = await cycle('crm')
  assert.equal(second.outcome, 'not_modified')
  assert.equal(second.published, 0)
  const stats = sim.requests().paths['/customers']
  assert.equal(stats?.lastIfNoneMatch, etag)
  assert.deepEqual(stats?.statuses, { 200: 1, 304: 1 })
  await readExactly(config.TOPIC_CUSTOMERS, 250)
})

const small: SourceSimulatorOptions = { customers: 20, products: 5, pageSize: 100 }

test('one changed record publishes exactly one message, for its key, with the new content', async (t) => {
  const { sim, config, cycle } = await fixture(t, { simulator: small })
  assert.equal((await cycle('crm')).published, 20)

  const changed = sim.patch('customers', '7', { status: 'churned-in-test', email: 'new.7@example.com' })
  assert.ok(changed)
  const summary = await cycle('crm')
  assert.equal(summary.published, 1)
  assert.equal(summary.unchanged, 19)

  const messages = await readExactly(config.TOPIC_CUSTOMERS, 21)
  const ofSeven = messages.filter((m) => m.key === '7').sort((a, b) => Number(a.offset - b.offset))
  assert.equal(ofSeven.length, 2, 'the changed record is the only one published twice')
  const latest = JSON.parse(ofSeven[1]?.value ?? 'null')
  assert.equal(latest.data.status, 'churned-in-test')
  assert.equal(latest.data.email, 'new.7@example.com')
  assert.equal(latest.data.updatedAt, changed.updatedAt)
  assert.notEqual(ofSeven[1]?.headers['content-hash'], ofSeven[0]?.headers['content-hash'])
})

test('a removed record becomes a tombstone (same key, null value) and leaves the known hashes', async (t) => {
  const { sim, config, runtime, cycle } = await fixture(t, { simulator: small })
  await cycle('crm')
  assert.ok((await runtime.state.knownHashes('crm')).has('5'))

  assert.equal(sim.remove('customers', '5'), true)
  const summary = await cycle('crm')
  assert.equal(summary.deleted, 1)
  assert.equal(summary.published, 0)

  const messages = await readExactly(config.TOPIC_CUSTOMERS, 21)
  const tombstones = messages.filter((m) => m.value === null)
  assert.deepEqual(
    tombstones.map((m) => m.key),
    ['5'],
  )
  assert.equal(tombstones[0]?.headers.source, 'crm')
  const known = await runtime.state.knownHashes('crm')
  assert.equal(known.has('5'), false)
  assert.equal(known.size, 19)

  const again = await cycle('crm')
  assert.equal(again.deleted, 0, 'a tombstone is published once')
})

test('the mass-deletion guard refuses to delete 60% of the records, or all of them', async (t) => {
  const { sim, config, runtime, cycle, logs } = await fixture(t, { simulator: small })
  const { metrics } = runtime
  await cycle('crm')
  const knownBefore = await runtime.state.knownHashes('crm')
  assert.equal(knownBefore.size, 20)

  for (const id of customerIds(sim).slice(0, 12)) sim.remove('customers', id)
  const gutted = await cycle('crm')
  assert.equal(gutted.deleted, 0)
  assert.equal(gutted.refusedDeletions, 12)
  assert.equal(await metricValue(metrics.deletionsRefused, { source: 'crm' }), 12)
  const refusal = logs.lines.find((line) => line.level === 50 && /refusing to delete 12 of 20/.test(line.msg))
  assert.ok(refusal, 'an error line says the deletions were refused')

  // A source answering an empty list (a wiped table, a broken export) is refused the same way.
  sim.addFaults([{ path: '/customers', body: '[]', count: 1 }])
  const empty = await cycle('crm')
  assert.equal(empty.fetched, 0)
  assert.equal(empty.deleted, 0)
  assert.equal(empty.refusedDeletions, 20)
  assert.equal(await metricValue(metrics.deletionsRefused, { source: 'crm' }), 32)

  assert.deepEqual(await runtime.state.knownHashes('crm'), knownBefore, 'no id was forgotten')
  const messages = await readExactly(config.TOPIC_CUSTOMERS, 20)
  assert.equal(messages.filter((m) => m.value === null).length, 0, 'no tombstones')
})
