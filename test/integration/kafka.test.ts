/**
 * The Kafka layer against a real broker: topic creation and its idempotence, where published messages
 * land, tombstones, manual commits, lag, and failing in bounded time when the broker is gone.
 */
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import { ConfigResourceTypes } from '@platformatic/kafka'
import { type Config, loadConfig } from '../../src/config/env.ts'
import { ErrorCodes, isPipelineError } from '../../src/errors.ts'
import { consumerLag, createAdmin } from '../../src/kafka/admin.ts'
import {
  commitMessage,
  createConsumer,
  type KafkaMessage,
  type KafkaStream,
  openStream,
  processEach,
} from '../../src/kafka/consumer.ts'
import { createProducer, jsonMessage, partitionForKey, publish } from '../../src/kafka/producer.ts'
import { ensureTopics, pipelineTopicSpecs, topicSpec } from '../../src/kafka/topics.ts'
import { testInfra, uniqueName } from '../helpers/env.ts'

const config: Config = loadConfig({
  KAFKA_BROKERS: testInfra.kafkaBrokers.join(','),
  KAFKA_CLIENT_ID: 'kafka-test',
})

const admin = createAdmin(config)
const topicsToDelete: string[] = []
const groupsToDelete: string[] = []
const closers: Array<() => Promise<unknown>> = []

after(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  if (groupsToDelete.length > 0) await admin.deleteGroups({ groups: groupsToDelete }).catch(() => {})
  if (topicsToDelete.length > 0) await admin.deleteTopics({ topics: topicsToDelete })
  await admin.close()
})

/** A topic for one test, deleted after the run. */
async function freshTopic(prefix: string, partitions: number): Promise<string> {
  const name = uniqueName(prefix)
  topicsToDelete.push(name)
  await ensureTopics(admin, [topicSpec(name, partitions, 'delete')])
  return name
}

function producer() {
  const p = createProducer(config, 'test-producer')
  closers.push(() => p.close())
  return p
}

function consumer(groupId: string) {
  const c = createConsumer(config, { groupId, role: 'test-consumer' })
  closers.push(() => c.close(true))
  return c
}

/** One iterator per stream, and the read a timed-out {@link take} left pending (it still gets a record). */
const readers = new WeakMap<
  KafkaStream,
  { iterator: AsyncIterator<KafkaMessage>; pending?: Promise<IteratorResult<KafkaMessage>> | undefined }
>()

/** Reads the next `n` messages without ending the stream (a for-await `break` would destroy it). */
async function take(stream: KafkaStream, n: number, timeoutMs = 15_000): Promise<KafkaMessage[]> {
  let reader = readers.get(stream)
  if (reader === undefined) {
    reader = { iterator: stream[Symbol.asyncIterator]() }
    readers.set(stream, reader)
  }
  const messages: KafkaMessage[] = []
  const deadline = Date.now() + timeoutMs
  while (messages.length < n) {
    reader.pending ??= reader.iterator.next()
    const next = await Promise.race([
      reader.pending,
      new Promise<'timeout'>((resolve) =>
        setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now())),
      ),
    ])
    if (next === 'timeout') throw new Error(`got ${messages.length} of ${n} messages in ${timeoutMs} ms`)
    reader.pending = undefined
    if (next.done) throw new Error(`stream ended after ${messages.length} of ${n} messages`)
    messages.push(next.value)
  }
  return messages
}

async function describeTopicConfigs(name: string, keys: string[]): Promise<Record<string, string | null>> {
  const [described] = await admin.describeConfigs({
    resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: name, configurationKeys: keys }],
  })
  return Object.fromEntries((described?.configs ?? []).map((c) => [c.name, c.value ?? null]))
}

describe('ensureTopics', () => {
  test('creates the compacted source topics and the DLQ with their partitions and configs, then creates nothing', async () => {
    const names = {
      TOPIC_CUSTOMERS: uniqueName('customers'),
      TOPIC_PRODUCTS: uniqueName('products'),
      TOPIC_DLQ: uniqueName('dlq'),
      TOPIC_PARTITIONS: 4,
    }
    topicsToDelete.push(names.TOPIC_CUSTOMERS, names.TOPIC_PRODUCTS, names.TOPIC_DLQ)
    const specs = pipelineTopicSpecs(names)

    const first = await ensureTopics(admin, specs)
    assert.deepEqual(first.created, [names.TOPIC_CUSTOMERS, names.TOPIC_PRODUCTS, names.TOPIC_DLQ])
    assert.deepEqual(first.warnings, [])

    const metadata = await admin.metadata({ topics: specs.map((s) => s.name), forceUpdate: true })
    assert.equal(metadata.topics.get(names.TOPIC_CUSTOMERS)?.partitionsCount, 4)
    assert.equal(metadata.topics.get(names.TOPIC_PRODUCTS)?.partitionsCount, 4)
    assert.equal(metadata.topics.get(names.TOPIC_DLQ)?.partitionsCount, 1)
    for (const table of [names.TOPIC_CUSTOMERS, names.TOPIC_PRODUCTS]) {
      const configs = await describeTopicConfigs(table, ['cleanup.policy', 'delete.retention.ms'])
      assert.equal(configs['cleanup.policy'], 'compact')
      assert.equal(configs['delete.retention.ms'], String(7 * 24 * 3600 * 1000))
    }
    const dlq = await describeTopicConfigs(names.TOPIC_DLQ, ['cleanup.policy', 'retention.ms'])
    assert.deepEqual(dlq, { 'cleanup.policy': 'delete', 'retention.ms': String(30 * 24 * 3600 * 1000) })

    const second = await ensureTopics(admin, specs)
    assert.deepEqual(second.created, [])
    assert.deepEqual(
      second.existing,
      specs.map((s) => s.name),
    )
    assert.deepEqual(second.warnings, [])
  })

  test('two processes racing to create the same topics both succeed and exactly one creates each', async () => {
    const specs = [
      topicSpec(uniqueName('race-a'), 3, 'compact'),
      topicSpec(uniqueName('race-b'), 2, 'delete'),
    ]
    topicsToDelete.push(...specs.map((s) => s.name))
    const other = createAdmin(config, 'admin-2')
    closers.push(() => other.close())
    const [a, b] = await Promise.all([ensureTopics(admin, specs), ensureTopics(other, specs)])
    for (const spec of specs) {
      const creators = [a, b].filter((r) => r.created.includes(spec.name)).length
      assert.equal(creators, 1, `${spec.name} created by ${creators} processes`)
      assert.ok(a.created.includes(spec.name) || a.existing.includes(spec.name))
      assert.ok(b.created.includes(spec.name) || b.existing.includes(spec.name))
    }
    assert.deepEqual([...a.warnings, ...b.warnings], [])
  })

  test('reports, without changing it, an existing topic with fewer partitions or another policy', async () => {
    const name = uniqueName('smaller')
    topicsToDelete.push(name)
    await admin.createTopics({ topics: [{ topic: name, partitions: 2, replicas: 1 }] })
    const result = await ensureTopics(admin, [topicSpec(name, 6, 'compact')])
    assert.deepEqual(result.created, [])
    assert.deepEqual(result.existing, [name])
    assert.deepEqual(
      result.warnings.filter((w) => w.kind === 'fewer-partitions'),
      [{ kind: 'fewer-partitions', topic: name, expected: 6, actual: 2 }],
    )
    assert.ok(
      result.warnings.some(
        (w) => w.kind === 'config-differs' && w.config === 'cleanup.policy' && w.actual === 'delete',
      ),
    )
    const metadata = await admin.metadata({ topics: [name], forceUpdate: true })
    assert.equal(metadata.topics.get(name)?.partitionsCount, 2)
  })
})

describe('publish', () => {
  test('returns each message its own partition and offset, also for several messages to one partition', async () => {
    const topic = await freshTopic('offsets', 3)
    const p = producer()
    // Keys chosen so that three land on one partition, interleaved with the others.
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
    const on = (partition: number) => keys.filter((k) => partitionForKey(k, 3) === partition)
    const [a0, b0, c0] = on(0)
    const [a1] = on(1)
    const [a2, b2] = on(2)
    assert.ok(a0 && b0 && c0 && a1 && a2 && b2)
    const order = [a0, a1, b0, a2, c0, b2]

    const deliveries = await publish(
      p,
      order.map((key) => ({ topic, key, value: `v-${key}` })),
    )
    assert.deepEqual(
      deliveries.map((d) => [d.partition, d.offset]),
      [
        [0, 0n],
        [1, 0n],
        [0, 1n],
        [2, 0n],
        [0, 2n],
        [2, 1n],
      ],
    )
    assert.ok(deliveries.every((d) => d.topic === topic))

    // A second publish continues where the first ended, and a forced partition is honoured.
    const more = await publish(p, [
      { topic, key: a0, value: 'again' },
      { topic, key: a2, value: 'forced', partition: 1 },
    ])
    assert.deepEqual(
      more.map((d) => [d.partition, d.offset]),
      [
        [0, 3n],
        [1, 1n],
      ],
    )

    // The broker agrees: the record at each reported position is the message reported there.
    const groupId = uniqueName('offsets-check')
    groupsToDelete.push(groupId)
    const stream = await openStream(consumer(groupId), { topics: [topic], from: 'earliest' })
    const read = await take(stream, 8)
    const at = new Map(read.map((m) => [`${m.partition}:${m.offset}`, m.value?.toString()]))
    order.forEach((key, i) => {
      const d = deliveries[i]
      assert.equal(at.get(`${d?.partition}:${d?.offset}`), `v-${key}`)
    })
    assert.equal(at.get(`1:${more[1]?.offset}`), 'forced')
  })

  test('spreads a large batch over several sends and still numbers every message', async () => {
    const topic = await freshTopic('chunks', 2)
    const messages = Array.from({ length: 30 }, (_, i) => ({
      topic,
      key: `key-${i}`,
      value: 'x'.repeat(1000),
    }))
    const deliveries = await publish(producer(), messages, { maxBatchBytes: 4096 })
    const next = new Map<number, bigint>()
    deliveries.forEach((d, i) => {
      assert.equal(d.partition, partitionForKey(`key-${i}`, 2))
      assert.equal(d.offset, next.get(d.partition) ?? 0n)
      next.set(d.partition, d.offset + 1n)
    })
  })
})

describe('consume', () => {
  test('a keyed JSON message round-trips with its headers', async () => {
    const topic = await freshTopic('roundtrip', 2)
    const value = { id: '1', name: 'Ada', tags: ['a', 'b'] }
    const [delivery] = await publish(producer(), [
      jsonMessage(topic, 'customer-1', value, { source: 'crm', 'content-hash': 'abc123' }),
    ])
    const groupId = uniqueName('roundtrip')
    groupsToDelete.push(groupId)
    const [message] = await take(await openStream(consumer(groupId), { topics: [topic] }), 1)
    assert.ok(message)
    assert.equal(message.key, 'customer-1')
    assert.deepEqual(JSON.parse(message.value?.toString('utf8') ?? 'null'), value)
    assert.equal(message.headers.get('source'), 'crm')
    assert.equal(message.headers.get('content-hash'), 'abc123')
    assert.equal(message.partition, delivery?.partition)
    assert.equal(message.offset, delivery?.offset)
  })

  test('a tombstone arrives with a null value; an empty value does not', async () => {
    const topic = await freshTopic('tombstone', 1)
    await publish(producer(), [
      { topic, key: 'gone', value: null },
      jsonMessage(topic, 'also-gone', undefined),
      { topic, key: 'no-value' },
      { topic, key: 'empty', value: '' },
    ])
    const groupId = uniqueName('tombstone')
    groupsToDelete.push(groupId)
    const messages = await take(await openStream(consumer(groupId), { topics: [topic] }), 4)
    assert.deepEqual(
      messages.map((m) => [m.key, m.value]),
      [
        ['gone', null],
        ['also-gone', null],
        ['no-value', null],
        ['empty', Buffer.alloc(0)],
      ],
    )
  })

  test('a restarted member of the group resumes after the last committed record', async () => {
    const topic = await freshTopic('commits', 1)
    await publish(
      producer(),
      Array.from({ length: 6 }, (_, i) => ({ topic, key: `k${i}`, value: `v${i}` })),
    )
    const groupId = uniqueName('commits')
    groupsToDelete.push(groupId)

    // First run: processes and commits three records; reads a fourth but crashes before committing it.
    const first = consumer(groupId)
    const stream = await openStream(first, { topics: [topic] })
    const processed: string[] = []
    const stop = new AbortController()
    await processEach(
      stream,
      (m) => {
        if (processed.length === 3) {
          stop.abort()
          throw new Error('crash before commit')
        }
        processed.push(String(m.value))
      },
      stop.signal,
    ).catch((error: unknown) => assert.equal((error as Error).message, 'crash before commit'))
    assert.deepEqual(processed, ['v0', 'v1', 'v2'])
    await first.close(true)

    // Second run, same group: starts at the first uncommitted record, nothing committed comes again.
    const stream2 = await openStream(consumer(groupId), { topics: [topic] })
    const resumed = await take(stream2, 3)
    assert.deepEqual(
      resumed.map((m) => [String(m.value), m.offset]),
      [
        ['v3', 3n],
        ['v4', 4n],
        ['v5', 5n],
      ],
    )
    // Commits are monotonic: committing an earlier record after a later one does not move back.
    const [r3, , r5] = resumed
    assert.ok(r3 && r5)
    await commitMessage(stream2, r5)
    await commitMessage(stream2, r3)
    const [lag] = await consumerLag(admin, groupId, [topic])
    assert.equal(lag?.committedOffset, 6n)
  })

  test('a paused stream fetches nothing new until resumed', async () => {
    const topic = await freshTopic('pause', 1)
    const p = producer()
    const groupId = uniqueName('pause')
    groupsToDelete.push(groupId)
    const stream = await openStream(consumer(groupId), { topics: [topic] })
    await publish(p, [{ topic, key: 'a', value: '1' }])
    assert.equal(String((await take(stream, 1))[0]?.value), '1')

    stream.pause()
    // Pausing stops new fetches; one already waiting at the broker (maxWaitTime, 1 s) still delivers.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    await publish(p, [{ topic, key: 'b', value: '2' }])
    await assert.rejects(take(stream, 1, 2_500), /got 0 of 1/)
    stream.resume()
    assert.equal(String((await take(stream, 1))[0]?.value), '2')
  })
})

describe('consumerLag', () => {
  test('reports log end minus committed offset per partition, and the whole log for a group without commits', async () => {
    const topic = await freshTopic('lag', 2)
    const p = producer()
    await publish(p, [
      ...Array.from({ length: 5 }, (_, i) => ({ topic, value: `p0-${i}`, partition: 0 })),
      ...Array.from({ length: 3 }, (_, i) => ({ topic, value: `p1-${i}`, partition: 1 })),
    ])
    const groupId = uniqueName('lag')
    groupsToDelete.push(groupId)
    const stream = await openStream(consumer(groupId), { topics: [topic] })
    const read = await take(stream, 8)
    // Commit up to offset 1 on partition 0 (two records) and everything on partition 1.
    const target = read.filter(
      (m) => (m.partition === 0 && m.offset === 1n) || (m.partition === 1 && m.offset === 2n),
    )
    for (const m of target) await commitMessage(stream, m)

    const lags = await consumerLag(admin, groupId, [topic])
    assert.deepEqual(
      lags.map((l) => [l.partition, l.logEndOffset, l.committedOffset, l.lag]),
      [
        [0, 5n, 2n, 3],
        [1, 3n, 3n, 0],
      ],
    )

    const never = await consumerLag(admin, uniqueName('never-committed'), [topic])
    assert.deepEqual(
      never.map((l) => [l.partition, l.committedOffset, l.lag]),
      [
        [0, null, 5],
        [1, null, 3],
      ],
    )
  })
})

describe('an unreachable broker', () => {
  async function listen(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
    const server = createServer(onSocket)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    assert.ok(address !== null && typeof address === 'object')
    return { server, port: address.port }
  }

  const deadConfig = (port: number): Config => ({ ...config, KAFKA_BROKERS: [`127.0.0.1:${port}`] })

  test('a closed port makes publish fail within a bounded time', async () => {
    const { server, port } = await listen(() => {})
    await new Promise((resolve) => server.close(resolve))
    const p = createProducer(deadConfig(port), 'dead')
    closers.push(() => p.close())
    const started = Date.now()
    await assert.rejects(publish(p, [{ topic: 'anything', key: 'k', value: 'v' }]), (error: unknown) => {
      assert.ok(isPipelineError(error, ErrorCodes.KAFKA_PUBLISH_FAILED), String(error))
      assert.match(error.message, /ECONNREFUSED/)
      return true
    })
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`)
  })

  test('a broker that accepts connections but never answers makes publish and ensureTopics time out', async () => {
    const sockets: Socket[] = []
    const { server, port } = await listen((socket) => {
      sockets.push(socket)
      socket.on('error', () => {})
    })
    closers.push(async () => {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    })
    const p = createProducer(deadConfig(port), 'silent')
    const silentAdmin = createAdmin(deadConfig(port), 'silent-admin')
    // Closing the clients also ends the retries still running behind the deadline.
    closers.push(
      () => p.close(),
      () => silentAdmin.close(),
    )

    const started = Date.now()
    await assert.rejects(
      publish(p, [{ topic: 'anything', key: 'k', value: 'v' }], { timeoutMs: 3_000 }),
      (error) => isPipelineError(error, ErrorCodes.KAFKA_TIMEOUT),
    )
    await assert.rejects(
      ensureTopics(silentAdmin, [topicSpec('anything', 1, 'delete')], { timeoutMs: 3_000 }),
      (error) => isPipelineError(error, ErrorCodes.KAFKA_TIMEOUT),
    )
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`)
  })
})
