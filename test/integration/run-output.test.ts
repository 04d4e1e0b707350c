/**
 * What a full run puts out. A run with CRM_TOKEN, INVENTORY_TOKEN, ANALYTICS_TOKEN and ADMIN_TOKEN set:
 * the brief's flow through Prism, the producer service, the consumer service and an Analytics mock
 * that requires its bearer token, plus a poison record, a view Analytics rejects, sources that answer
 * 401 and the DLQ admin API.
 *
 * - Secrets never leave the process (design §2): no captured log line, no `/metrics`, `/healthz` or
 *   `/readyz` answer of either service, no admin API answer and no DLQ record (value, key or header)
 *   contains any of them. The tokens were really used: Analytics accepted the views only with its
 *   token, and the sources saw theirs.
 * - Every log line names its service, and the lines about a source, topic or record name those.
 *
 * KAFKA_SASL_PASSWORD and the services as processes at debug level are in secrets.test.ts (its own SASL
 * broker); a REDIS_URL password is covered nowhere (the test Redis has no password).
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, test } from 'node:test'
import type { Config } from '../../src/config/env.ts'
import { type ConsumerService, startConsumerService } from '../../src/services/consumer/service.ts'
import { type MockAnalytics, startMockAnalytics } from '../../src/services/mock-analytics/server.ts'
import { type ProducerService, startProducerService } from '../../src/services/producer/service.ts'
import { sourcesFromConfig } from '../../src/sources/catalog.ts'
import { uniqueName } from '../helpers/env.ts'
import { readTopic } from '../helpers/kafka.ts'
import { metricValue } from '../helpers/metrics.ts'
import { captureLogs, testConfig } from '../helpers/producer.ts'
import { OutputScan, testSecret } from '../helpers/secret-scan.ts'
import { sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const SECRETS = {
  CRM_TOKEN: testSecret('crm'),
  INVENTORY_TOKEN: testSecret('inventory'),
  ANALYTICS_TOKEN: testSecret('analytics'),
  ADMIN_TOKEN: testSecret('admin'),
}

const producerLogs = captureLogs('producer')
const consumerLogs = captureLogs('consumer')
let mock: MockAnalytics
let config: Config
let consumer: ConsumerService
let producer: ProducerService
let failingProducer: ProducerService
/** A CRM/Inventory that answers 401 and remembers the Authorization headers it got. */
let guarded: Server
const seenAuthorization: string[] = []
const outputs = new OutputScan()

before(async () => {
  mock = await startMockAnalytics({ port: 0, token: SECRETS.ANALYTICS_TOKEN })
  guarded = createServer((req, res) => {
    seenAuthorization.push(req.headers.authorization ?? '')
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' })
    res.end('{"error":"invalid token"}')
  })
  await new Promise<void>((resolve) => guarded.listen(0, '127.0.0.1', resolve))
  config = testConfig({
    ...SECRETS,
    ANALYTICS_URL: `${mock.url}/analytics/data`,
    TOPIC_REFRESH: uniqueName('refresh'),
    CONSUMER_GROUP: uniqueName('group'),
    PIPELINE_REDIS_PREFIX: uniqueName('secrets'),
    SINK_TIMEOUT_MS: '2000',
  })
})
after(async () => {
  await failingProducer?.close()
  await producer?.close()
  await consumer?.close()
  await mock?.close()
  await new Promise((resolve) => guarded?.close(resolve))
})

async function fetchText(what: string, url: string, init?: RequestInit): Promise<Response> {
  const response = await fetch(url, init)
  outputs.add(what, await response.clone().text())
  return response
}

test('a full run with tokens set: delivered with the Analytics token, the sources sent theirs', async () => {
  const unauthorized = await fetch(`${mock.url}/analytics/data`, { method: 'POST', body: '{}' })
  assert.equal(unauthorized.status, 401, 'the mock requires ANALYTICS_TOKEN')

  consumer = await startConsumerService(config, consumerLogs.logger, { retryPollMs: 100, lagIntervalMs: 200 })
  await consumer.ready
  // Analytics rejects one view for good: dead-lettered with the answer it gave.
  mock.store.faults.add({ status: 422, match: 'customer:77:' })
  producer = await startProducerService(config, producerLogs.logger)
  await waitFor('the brief’s four views at Analytics', () => mock.store.stats().accepted >= 4)

  const sources = sourceWriter(config)
  try {
    await sources.writeRaw(config.TOPIC_CUSTOMERS, '66', 'not-json')
    await sources.write({
      customer: {
        id: '77',
        name: 'Customer 77',
        email: 'c77@example.com',
        status: 'active',
        productIds: [],
        updatedAt: '2026-02-04T18:30:00Z',
      },
    })
  } finally {
    await sources.close()
  }
  await waitFor(
    'a poison and a rejected view dead-lettered',
    async () => (await metricValue(consumer.metrics.dlqMessages)) >= 2,
  )

  // Sources that refuse the token: the producer logs the failures.
  const base = `http://127.0.0.1:${(guarded.address() as { port: number }).port}`
  failingProducer = await startProducerService(
    { ...config, CRM_BASE_URL: base, INVENTORY_BASE_URL: base },
    producerLogs.logger,
    {
      prefix: uniqueName('secrets-401'),
      sources: sourcesFromConfig({ ...config, CRM_BASE_URL: base, INVENTORY_BASE_URL: base }),
    },
  )
  await waitFor(
    'both sources failed a cycle',
    async () => (await metricValue(failingProducer.runtime.metrics.polls, { outcome: 'failed' })) >= 2,
  )
  assert.deepEqual(
    [...new Set(seenAuthorization)].sort(),
    [`Bearer ${SECRETS.CRM_TOKEN}`, `Bearer ${SECRETS.INVENTORY_TOKEN}`],
    'each source got its own token',
  )
})

test('no log line, metrics page, health answer, admin answer or DLQ record contains a secret', async () => {
  const auth = { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` }
  assert.equal(
    (await fetchText('admin list', `${consumer.metricsUrl}/admin/dlq`, { headers: auth })).status,
    200,
  )
  const replay = await fetchText('admin replay', `${consumer.metricsUrl}/admin/dlq/replay`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ dryRun: true }),
  })
  assert.equal(replay.status, 200)
  const wrong = await fetchText('admin with a wrong token', `${consumer.metricsUrl}/admin/dlq`, {
    headers: { authorization: 'Bearer not-the-token' },
  })
  assert.equal(wrong.status, 401)
  for (const service of [
    consumer.metricsUrl,
    producer.runtime.metricsUrl,
    failingProducer.runtime.metricsUrl,
  ])
    for (const path of ['/metrics', '/healthz', '/readyz'])
      await fetchText(`${service}${path}`, `${service}${path}`)

  const dlq = await readTopic(config.TOPIC_DLQ, { count: 2 })
  assert.ok(dlq.length >= 2, 'the poison record and the rejected view are on the DLQ')
  for (const record of dlq) outputs.addJson(`DLQ offset ${record.offset}`, record)
  assert.ok(
    dlq.some((r) => (r.value ?? '').includes('"stage":"deliver"')) &&
      dlq.some((r) => (r.value ?? '').includes('"stage":"deserialize"')),
    'both kinds of DLQ records were written',
  )

  const lines = [...producerLogs.lines, ...consumerLogs.lines]
  assert.ok(
    lines.some((l) => /^Customer 1 delivered successfully/.test(l.msg)) &&
      lines.some((l) => /cycle failed/.test(l.msg)) &&
      lines.some((l) => /poison message/.test(l.msg)) &&
      lines.some((l) => /rejected customer:77/.test(l.msg)),
    'the run logged its delivery reports and every failure path',
  )
  for (const line of lines) outputs.addJson(`log line "${line.msg}"`, line)
  assert.deepEqual(outputs.leaks(SECRETS), [])
})

test('every log line names its service, and lines about a source, topic or record name it', () => {
  for (const [logs, service] of [
    [producerLogs, 'producer'],
    [consumerLogs, 'consumer'],
  ] as const) {
    for (const line of logs.lines) assert.equal(line.service, service, `"${line.msg}" names its service`)
  }
  const lines = [...producerLogs.lines, ...consumerLogs.lines]
  const about = (pattern: RegExp) => lines.filter((line) => pattern.test(line.msg))
  for (const line of about(/^(crm|inventory):/)) assert.ok(line.source, `"${line.msg}" names its source`)
  for (const line of about(/publish job completed/)) assert.ok(line.topic, `"${line.msg}" names its topic`)
  for (const line of about(/^(Customer|Product) \S+ delivered successfully/)) {
    assert.ok(line.source && line.topic && line.id, `"${line.msg}" names source, topic and id`)
  }
  for (const line of about(/^Skipping duplicate message$|^poison message/))
    assert.ok(line.topic && (line.id || line.key), `"${line.msg}" names topic and id`)
  for (const line of about(/^Analytics rejected/)) assert.ok(line.view, `"${line.msg}" names the view`)
  for (const line of about(/: joined /))
    assert.ok(line.group && line.topics, `"${line.msg}" names group and topics`)
  assert.ok(about(/: joined /).length >= 2, 'both stages logged their join')
})
