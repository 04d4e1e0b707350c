/**
 * Proves the integration set-up gives real parts: a Kafka broker that creates topics and moves
 * messages, a Redis that stores, Prism serving the brief's sample, and the analytics mock.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { createClient } from 'redis'
import { startMockAnalytics } from '../../src/services/mock-analytics/server.ts'
import { testInfra, uniqueName } from '../helpers/env.ts'

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

test('Kafka: a created topic carries a produced message to a consumer', async () => {
  const topic = uniqueName('real-parts')
  const admin = new Admin({ clientId: 'real-parts', bootstrapBrokers: testInfra.kafkaBrokers })
  cleanups.push(() => admin.close())
  await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
  cleanups.push(() => admin.deleteTopics({ topics: [topic] }))

  const producer = new Producer({
    clientId: 'real-parts',
    bootstrapBrokers: testInfra.kafkaBrokers,
    serializers: stringSerializers,
  })
  cleanups.push(() => producer.close())
  const sent = await producer.send({ messages: [{ topic, key: 'k1', value: 'hello kafka' }] })
  assert.equal(sent.offsets?.[0]?.offset, 0n)

  const consumer = new Consumer({
    clientId: 'real-parts',
    groupId: uniqueName('real-parts-group'),
    bootstrapBrokers: testInfra.kafkaBrokers,
    deserializers: stringDeserializers,
  })
  cleanups.push(() => consumer.close(true))
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
  for await (const message of stream) {
    assert.equal(message.key, 'k1')
    assert.equal(message.value, 'hello kafka')
    break
  }
})

test('Redis: a written value reads back', async () => {
  const redis = createClient({ url: testInfra.redisUrl })
  await redis.connect()
  cleanups.push(() => redis.close())
  const key = uniqueName('real-parts')
  await redis.set(key, 'hello redis', { expiration: { type: 'EX', value: 60 } })
  assert.equal(await redis.get(key), 'hello redis')
  await redis.del(key)
})

test("Prism serves the brief's customers and products", async () => {
  const customers = (await (await fetch(`${testInfra.prismUrl}/customers`)).json()) as Array<{ id: unknown }>
  const products = (await (await fetch(`${testInfra.prismUrl}/products`)).json()) as Array<{ id: unknown }>
  assert.deepEqual(
    customers.map((c) => String(c.id)),
    ['1', '2'],
  )
  assert.deepEqual(
    products.map((p) => String(p.id)),
    ['100', '200'],
  )
})

test('the analytics mock stores a POSTed record and lists it', async () => {
  const mock = await startMockAnalytics({ port: 0 })
  cleanups.push(() => mock.close())
  const response = await fetch(`${mock.url}/analytics/data`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'customer:1:abc' },
    body: JSON.stringify({ view: 'customer', id: '1', name: 'Ada' }),
  })
  assert.equal(response.status, 200)
  const held = (await (await fetch(`${mock.url}/analytics/views`)).json()) as {
    views: Record<string, { record: unknown }>
  }
  assert.deepEqual(held.views['customer:1']?.record, { view: 'customer', id: '1', name: 'Ada' })
})
