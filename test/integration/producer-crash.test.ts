/**
 * A producer that dies after Kafka acknowledged a record's first publish but before it recorded the
 * acknowledgement (found by the chaos run: a SIGKILL in that window, then the record deleted at the
 * source, left the consumers holding it forever). The next cycle must republish what is still
 * listed and tombstone what vanished.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runCycle } from '../../src/services/producer/cycle.ts'
import { readTopic } from '../helpers/kafka.ts'
import { startSimulatedProducer } from '../helpers/simulated-producer.ts'

test('a crash between the acknowledgement of a first publish and its record: a vanished record still gets its tombstone', async () => {
  const producer = await startSimulatedProducer({ simulator: { customers: 3, products: 1 } })
  try {
    const { context } = producer.runtime
    const crashing = {
      ...context,
      publisher: {
        async send(messages: Parameters<typeof context.publisher.send>[0]) {
          await context.publisher.send(messages)
          throw new Error('process killed after the broker acknowledged')
        },
      },
    }
    await assert.rejects(runCycle(crashing, producer.source('crm')), /killed after the broker acknowledged/)
    assert.equal((await producer.runtime.state.knownHashes('crm')).size, 0, 'nothing recorded as published')

    producer.sim.remove('customers', '2')
    const summary = await producer.cycle('crm')
    assert.equal(summary.deleted, 1, 'customer 2 is tombstoned')
    assert.equal(
      summary.published,
      2,
      'customers 1 and 3 are published again (their first send is unconfirmed)',
    )

    const messages = await readTopic(producer.config.TOPIC_CUSTOMERS, { count: 6 })
    const last = new Map(messages.map((m) => [m.key, m.value]))
    assert.equal(last.get('2'), null, 'the last word on customer 2 is a tombstone')
    assert.notEqual(last.get('1'), null)
    assert.notEqual(last.get('3'), null)
    assert.deepEqual([...(await producer.runtime.state.knownHashes('crm')).keys()].sort(), ['1', '3'])
    assert.deepEqual(await producer.runtime.state.pendingIds('crm'), [], 'every first publish settled')

    const again = await producer.cycle('crm')
    assert.equal(again.published + again.deleted, 0, 'then nothing more to do')
  } finally {
    await producer.close()
  }
})
