/** The brief's producer flow against Prism: the sample lands on the topics, a re-poll adds nothing. */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { envelopeSchema } from '../../src/domain/records.ts'
import { runCycle } from '../../src/services/producer/cycle.ts'
import { createProducerRuntime, type ProducerRuntime } from '../../src/services/producer/service.ts'
import { uniqueName } from '../helpers/env.ts'
import { readTopic } from '../helpers/kafka.ts'
import { captureLogs, testConfig } from '../helpers/producer.ts'

const config = testConfig()
const logs = captureLogs('producer')
let runtime: ProducerRuntime

before(async () => {
  runtime = await createProducerRuntime(config, logs.logger, { prefix: uniqueName('prism') })
})
after(() => runtime.close())

const cycleOf = (name: string) => {
  const source = runtime.sources.find((s) => s.name === name)
  assert.ok(source, name)
  return runCycle(runtime.context, source)
}

test("Prism's customers and products land on their topics keyed by id, in the envelope", async () => {
  const crm = await cycleOf('crm')
  const inventory = await cycleOf('inventory')
  assert.equal(crm.published, 2)
  assert.equal(inventory.published, 2)

  const customers = await readTopic(config.TOPIC_CUSTOMERS, { count: 2 })
  const products = await readTopic(config.TOPIC_PRODUCTS, { count: 2 })
  assert.deepEqual(customers.map((m) => m.key).sort(), ['1', '2'])
  assert.deepEqual(products.map((m) => m.key).sort(), ['100', '200'])
  for (const message of [...customers, ...products]) {
    const envelope = envelopeSchema.parse(JSON.parse(message.value ?? 'null'))
    assert.equal(envelope.id, message.key)
    assert.equal(message.headers['content-hash'], envelope.contentHash)
  }
  const first = JSON.parse(customers.find((m) => m.key === '1')?.value ?? '{}')
  assert.equal(first.source, 'crm')
  assert.equal(first.entity, 'customer')
  assert.deepEqual(first.data.productIds, ['100', '200'])

  const reports = logs
    .messages()
    .filter((m) => / delivered successfully to partition=\d+ offset=\d+$/.test(m))
  assert.ok(reports.some((m) => m.startsWith('Customer 1 delivered successfully to partition=')))
  assert.ok(reports.some((m) => m.startsWith('Product 200 delivered successfully to partition=')))
  assert.ok(logs.messages().some((m) => m.startsWith('crm: publish job completed: fetched 2, published 2')))
})

test('a second identical poll publishes nothing', async () => {
  const crm = await cycleOf('crm')
  const inventory = await cycleOf('inventory')
  assert.equal(crm.published + inventory.published, 0)
  assert.ok(crm.outcome === 'not_modified' || crm.unchanged === 2)
  const customers = await readTopic(config.TOPIC_CUSTOMERS, { count: 3, idleMs: 2000 })
  assert.equal(customers.length, 2)
})
