/**
 * The pure parts of the Kafka layer: client options (and that they hide the SASL secret), Java-compatible
 * key partitioning, topic specs, error descriptions and deadlines.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { inspect } from 'node:util'
import { murmur2 as libraryMurmur2, MultipleErrors, NetworkError, ProtocolError } from '@platformatic/kafka'
import fc from 'fast-check'
import { loadConfig } from '../../src/config/env.ts'
import { ErrorCodes, isPipelineError, PipelineError } from '../../src/errors.ts'
import {
  baseClientOptions,
  describeKafkaError,
  isKafkaUnreachable,
  NotReadyYet,
  withDeadline,
} from '../../src/kafka/connection.ts'
import { murmur2, partitionForKey } from '../../src/kafka/producer.ts'
import { DLQ_PARTITIONS, pipelineTopicSpecs, topicSpec } from '../../src/kafka/topics.ts'

describe('baseClientOptions', () => {
  test('names the client by role and sets bounded timeouts, without TLS or SASL by default', () => {
    const options = baseClientOptions(
      loadConfig({ KAFKA_BROKERS: 'a:9092,b:9093', KAFKA_CLIENT_ID: 'pipe' }),
      'producer',
    )
    assert.equal(options.clientId, 'pipe-producer')
    assert.deepEqual(options.bootstrapBrokers, ['a:9092', 'b:9093'])
    assert.ok((options.connectTimeout ?? 0) > 0 && (options.requestTimeout ?? 0) > (options.timeout ?? 0))
    assert.equal(typeof options.retries, 'number')
    assert.equal(options.tls, undefined)
    assert.equal(options.sasl, undefined)
  })

  test('turns on TLS and SASL, and the password appears in no inspection or JSON of the options', async () => {
    const password = 'very-secret-password-123'
    const options = baseClientOptions(
      loadConfig({
        KAFKA_TLS: 'true',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'svc',
        KAFKA_SASL_PASSWORD: password,
      }),
      'consumer',
    )
    assert.deepEqual(options.tls, {})
    assert.equal(options.sasl?.mechanism, 'SCRAM-SHA-512')
    assert.equal(options.sasl?.username, 'svc')
    assert.doesNotMatch(inspect(options, { depth: 10 }), new RegExp(password))
    assert.doesNotMatch(JSON.stringify(options), new RegExp(password))
    const provider = options.sasl?.password
    assert.equal(typeof provider === 'function' ? await provider() : provider, password)
  })
})

describe('baseClientOptions with TLS', () => {
  test('trusts KAFKA_TLS_CA_FILE when given, the system CAs otherwise', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kafka-ca-'))
    try {
      const ca = join(dir, 'ca.pem')
      writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
      const options = baseClientOptions(loadConfig({ KAFKA_TLS: 'true', KAFKA_TLS_CA_FILE: ca }), 'admin')
      assert.match(String((options.tls as { ca?: unknown }).ca), /BEGIN CERTIFICATE/)
      assert.deepEqual(baseClientOptions(loadConfig({ KAFKA_TLS: 'true' }), 'admin').tls, {})
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('an unreadable CA file is a one-line configuration error naming the variable', () => {
    assert.throws(
      () =>
        baseClientOptions(
          loadConfig({ KAFKA_TLS: 'true', KAFKA_TLS_CA_FILE: '/nonexistent/ca.pem' }),
          'admin',
        ),
      (error: unknown) =>
        isPipelineError(error, ErrorCodes.CONFIG_INVALID) && /KAFKA_TLS_CA_FILE=.*ENOENT/.test(error.message),
    )
  })

  test('sends the broker host as TLS server name, but never an IP address', () => {
    const serverName = (brokers: string) =>
      baseClientOptions(loadConfig({ KAFKA_TLS: 'true', KAFKA_BROKERS: brokers }), 'admin').tlsServerName
    assert.equal(serverName('kafka.example.com:9093'), true)
    assert.equal(serverName('127.0.0.1:9093,10.0.0.2:9093'), false)
  })
})

describe('partitionForKey', () => {
  test("matches the Java client's default partitioner", () => {
    // murmur2 values from Kafka's own UtilsTest; the Java partition is (hash & 0x7fffffff) % n.
    const javaHashes: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['abc', 479470107],
    ]
    for (const [key, hash] of javaHashes) {
      for (const n of [1, 3, 6, 7])
        assert.equal(partitionForKey(key, n), (hash & 0x7fffffff) % n, `${key} / ${n}`)
    }
    assert.equal(partitionForKey(Buffer.from('21'), 6), partitionForKey('21', 6))
  })

  test("our 32-bit murmur2 equals the client library's BigInt one on any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const data = Buffer.from(bytes)
        assert.equal(murmur2(data), libraryMurmur2(data))
      }),
      { numRuns: 2000 },
    )
  })
})

describe('topic specs', () => {
  test('source topics are compacted tables with the configured partitions; the DLQ is a 30-day log', () => {
    const [customers, products, dlq] = pipelineTopicSpecs(
      { TOPIC_CUSTOMERS: 'c', TOPIC_PRODUCTS: 'p', TOPIC_DLQ: 'd', TOPIC_PARTITIONS: 6 },
      3,
    )
    for (const table of [customers, products]) {
      assert.equal(table?.partitions, 6)
      assert.equal(table?.replicationFactor, 3)
      assert.equal(table?.configs['cleanup.policy'], 'compact')
      assert.equal(table?.configs['min.insync.replicas'], '2')
    }
    assert.equal(dlq?.name, 'd')
    assert.equal(dlq?.partitions, DLQ_PARTITIONS)
    assert.equal(dlq?.configs['cleanup.policy'], 'delete')
    assert.equal(dlq?.configs['retention.ms'], String(30 * 24 * 60 * 60 * 1000))
  })

  test('internal topics: replication 1 by default, extra configs win', () => {
    const spec = topicSpec('refresh', 12, 'compact', { configs: { 'segment.ms': '3600000' } })
    assert.equal(spec.replicationFactor, 1)
    assert.equal(spec.configs['min.insync.replicas'], undefined)
    assert.equal(spec.configs['segment.ms'], '3600000')
  })
})

describe('describeKafkaError', () => {
  test('names the leaves of the aggregates the client throws', () => {
    const error = new MultipleErrors('Creating topics failed.', [
      new ProtocolError('TOPIC_AUTHORIZATION_FAILED'),
      new Error('connect ECONNREFUSED 127.0.0.1:9092'),
    ])
    const text = describeKafkaError(error)
    assert.match(text, /^Creating topics failed\. \(/)
    assert.match(text, /TOPIC_AUTHORIZATION_FAILED/)
    assert.match(text, /ECONNREFUSED/)
    assert.equal(describeKafkaError('plain'), 'plain')
  })
})

describe('withDeadline', () => {
  test('passes the result through, or rejects with PIPELINE_KAFKA_TIMEOUT when late', async () => {
    assert.equal(await withDeadline(Promise.resolve(7), 100, 'fast'), 7)
    const slow = new Promise((resolve) => setTimeout(resolve, 500))
    await assert.rejects(withDeadline(slow, 20, 'slow thing'), (error: unknown) => {
      assert.ok(isPipelineError(error, ErrorCodes.KAFKA_TIMEOUT))
      assert.match(error.message, /slow thing within 20 ms/)
      return true
    })
  })
})

test('a broker that cannot be reached is told from one that answered and refused', () => {
  const setupFailed = (cause: unknown) =>
    new PipelineError(ErrorCodes.KAFKA_TOPIC_SETUP_FAILED, 'Could not create or check the Kafka topics t', {
      cause,
    })
  const refused = new NetworkError('Connection to 127.0.0.1:1 failed.', {
    cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
  })
  assert.equal(isKafkaUnreachable(setupFailed(new MultipleErrors('Listing topics failed.', [refused]))), true)
  assert.equal(
    isKafkaUnreachable(new PipelineError(ErrorCodes.KAFKA_TIMEOUT, 'ensureTopics(t) timed out')),
    true,
  )
  assert.equal(
    isKafkaUnreachable(
      setupFailed(
        new MultipleErrors('Creating topics failed.', [new ProtocolError('INVALID_REPLICATION_FACTOR')]),
      ),
    ),
    false,
    'an invalid topic setting',
  )
  assert.equal(
    isKafkaUnreachable(
      new PipelineError(ErrorCodes.KAFKA_AUTH_FAILED, 'refused the SASL credentials', { cause: refused }),
    ),
    false,
    'wrong credentials, whatever lies under them',
  )
  assert.equal(
    isKafkaUnreachable(
      setupFailed(new MultipleErrors('Creating topics failed.', [new ProtocolError('NOT_CONTROLLER')])),
    ),
    true,
    'a broker still electing its controller',
  )
  assert.equal(isKafkaUnreachable(setupFailed(new NotReadyYet('the topics t have no leader yet'))), true)
  assert.equal(isKafkaUnreachable(new Error('something else')), false)
})
