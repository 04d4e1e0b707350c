/**
 * Secrets never leave the processes (design §2, issue #7). Distinct random tokens for CRM_TOKEN,
 * INVENTORY_TOKEN, ANALYTICS_TOKEN, KAFKA_SASL_PASSWORD and ADMIN_TOKEN; the whole stack as processes
 * sharing one environment (like `pipeline up`), at LOG_LEVEL=debug: `pipeline mock-analytics` requiring
 * its token, `pipeline consumer` and `pipeline producer` against a Kafka broker of this test's own that
 * requires SASL/PLAIN, and two source simulators requiring the CRM and the Inventory token.
 *
 * Then every path that logs request details or errors is taken: a source answering 500 until the cycle
 * fails, a source refusing the token (401), a source record failing validation (DLQ `source`), a poison
 * message (DLQ `deserialize`), a view Analytics rejects for good (DLQ `deliver`), the admin API with a
 * wrong token (a replay) and with the right one (a list and a dry-run replay). Every stdout/stderr line
 * of every process, every `/metrics`, `/healthz` and `/readyz` answer, every admin answer, every DLQ
 * record (key, raw value, headers) and the broker's own logs are scanned for each token, after checking
 * the scan saw what it must have seen. (Little is logged at debug level; it is set so that whatever is,
 * is scanned too.)
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { Config } from '../../src/config/env.ts'
import { type SourceSimulator, startSourceSimulator } from '../../src/simulator/server.ts'
import { AnalyticsClient } from '../../src/sinks/analytics-client.ts'
import { consumerEnv } from '../helpers/consumer-process.ts'
import { uniqueName } from '../helpers/env.ts'
import { type ReadMessage, readTopicAs } from '../helpers/kafka.ts'
import { PipelineProcess, parseLogLine } from '../helpers/pipeline-process.ts'
import { type SaslBroker, startSaslBroker } from '../helpers/sasl-broker.ts'
import { OutputScan, testSecret } from '../helpers/secret-scan.ts'
import { sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const SECRETS = {
  CRM_TOKEN: testSecret('crm'),
  INVENTORY_TOKEN: testSecret('inventory'),
  ANALYTICS_TOKEN: testSecret('analytics'),
  KAFKA_SASL_PASSWORD: testSecret('kafka'),
  ADMIN_TOKEN: testSecret('admin'),
}
const LONG_WAIT = 120_000

let broker: SaslBroker
let crm: SourceSimulator
let inventory: SourceSimulator
let config: Config
let mock: PipelineProcess
let consumer: PipelineProcess
let producer: PipelineProcess
let mockUrl: string
let consumerUrl: string
let producerUrl: string
const scan = new OutputScan()

/** A `pipeline` process with the shared environment, kept for the scan. */
function start(command: string, extra: Record<string, string> = {}): PipelineProcess {
  return new PipelineProcess(command, {
    command,
    env: consumerEnv(config, config.PIPELINE_REDIS_PREFIX, { LOG_LEVEL: 'debug', ...extra }),
  })
}

/** The URL a service's start line names (`metrics` or `url`). */
async function startedAt(child: PipelineProcess, pattern: RegExp, field: string): Promise<string> {
  const line = await child.waitForLog(pattern)
  const url = line[field]
  assert.equal(typeof url, 'string', `${child.name} names its ${field}`)
  return url as string
}

/** Analytics mock API call with its token. */
async function mockApi(path: string, init: RequestInit = {}): Promise<unknown> {
  const response = await fetch(`${mockUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${SECRETS.ANALYTICS_TOKEN}`, 'content-type': 'application/json' },
  })
  assert.ok(response.ok, `${path}: HTTP ${response.status}`)
  return response.json()
}

const logged = (child: PipelineProcess, pattern: RegExp) => () =>
  child.lines.some((line) => pattern.test(parseLogLine(line.text)?.msg ?? ''))

/** Fails with the processes' last output, which says why a wait did not end. */
async function waitForStack<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
) {
  return waitFor(what, probe, LONG_WAIT).catch((error: unknown) => {
    const tails = [mock, consumer, producer]
      .filter((child) => child !== undefined)
      .map((child) => `--- ${child.name}\n${child.tail(15)}`)
    throw new Error(`${String(error)}\n${tails.join('\n')}`)
  })
}

before(async () => {
  broker = await startSaslBroker({ password: SECRETS.KAFKA_SASL_PASSWORD })
  // Same seed: both simulators hold the same data; each serves its own collection with its own token.
  crm = await startSourceSimulator({ port: 0, customers: 4, products: 3, seed: 7, token: SECRETS.CRM_TOKEN })
  inventory = await startSourceSimulator({
    port: 0,
    customers: 4,
    products: 3,
    seed: 7,
    token: SECRETS.INVENTORY_TOKEN,
  })
  const base = {
    ...SECRETS,
    CRM_BASE_URL: crm.url,
    INVENTORY_BASE_URL: inventory.url,
    PIPELINE_REDIS_PREFIX: uniqueName('secrets'),
    TOPIC_REFRESH: uniqueName('refresh'),
    CONSUMER_GROUP: uniqueName('group'),
    POLL_INTERVAL_MS: '1000',
    RETRY_MAX_ATTEMPTS: '2',
  }
  config = broker.config(base)
  mock = start('mock-analytics', { MOCK_ANALYTICS_PORT: '0' })
  mockUrl = await startedAt(mock, /^mock Analytics listening/, 'url')
  config = broker.config({ ...base, ANALYTICS_URL: `${mockUrl}/analytics/data` })
})

after(async () => {
  for (const child of [producer, consumer, mock]) await child?.stop('SIGTERM', 20_000)
  await crm?.close()
  await inventory?.close()
  await broker?.stop()
})

test('the stack runs with every token set and takes every path that logs details or errors', async () => {
  // Analytics rejects one view for good: dead-lettered with the answer it gave.
  await mockApi('/control/faults', {
    method: 'POST',
    body: JSON.stringify({ status: 422, match: 'customer:2:' }),
  })
  consumer = start('consumer')
  consumerUrl = await startedAt(consumer, /^consumer started/, 'metrics')
  await Promise.all([
    consumer.waitForLog(/^consumer-apply: joined/),
    consumer.waitForLog(/^consumer-deliver: joined/),
  ])
  producer = start('producer')
  producerUrl = await startedAt(producer, /^producer started/, 'metrics')
  // 4 customer views (one rejected) and 3 product views.
  await waitForStack('every view delivered or rejected', async () => {
    const stats = (await mockApi('/analytics/stats')) as { accepted: number; rejected: number }
    return stats.accepted >= 6 && stats.rejected >= 1
  })

  crm.addFaults([{ path: '/customers', invalidRecords: 1, count: 1 }])
  await waitForStack(
    'an invalid source record dead-lettered',
    logged(producer, /is invalid and was dead-lettered/),
  )
  crm.addFaults([{ path: '/customers', status: 500, count: 2, body: '{"error":"boom"}' }])
  await waitForStack('the CRM cycle failed on 500', logged(producer, /^crm: cycle failed/))
  inventory.configure({ token: testSecret('rotated') })
  await waitForStack('the Inventory cycle failed on 401', logged(producer, /^inventory: cycle failed.*401/))
  inventory.configure({ token: SECRETS.INVENTORY_TOKEN })

  const writer = sourceWriter(config)
  try {
    await writer.writeRaw(config.TOPIC_CUSTOMERS, 'poison-1', 'not-json')
  } finally {
    await writer.close()
  }
  await waitForStack('a poison message dead-lettered', logged(consumer, /^poison message/))

  const admin = `${consumerUrl}/admin/dlq`
  // A replay (not a dry run) with a wrong token: refused, and nothing replayed.
  const wrong = await fetch(`${admin}/replay`, {
    method: 'POST',
    headers: { authorization: `Bearer ${testSecret('not-admin')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ dryRun: false }),
  })
  scan.add('admin answer to a replay with a wrong token', await wrong.text())
  assert.equal(wrong.status, 401)
  const auth = { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` }
  const list = await fetch(admin, { headers: auth })
  scan.add('admin list', await list.text())
  assert.equal(list.status, 200)
  const replay = await fetch(`${admin}/replay`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ dryRun: true }),
  })
  scan.add('admin dry-run replay', await replay.text())
  assert.equal(replay.status, 200)
  await waitForStack('the refused admin call logged', logged(consumer, /^admin API: request without a valid/))

  for (const url of [consumerUrl, producerUrl])
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      const response = await fetch(`${url}${path}`)
      scan.add(`${url}${path}`, await response.text())
    }
})

let dlq: ReadMessage[] = []

test('the DLQ holds a source, a deserialize and a deliver entry', async () => {
  dlq = await readTopicAs(config, config.TOPIC_DLQ, { count: 3, idleMs: 10_000 })
  const stages = new Set(dlq.map((m) => (JSON.parse(m.value ?? '{}') as { stage?: string }).stage))
  assert.deepEqual([...stages].sort(), ['deliver', 'deserialize', 'source'])
  for (const message of dlq) {
    assert.ok(Object.keys(message.headers).length > 0, 'DLQ records carry headers')
    scan.addJson(`DLQ record at offset ${message.offset}`, message)
  }
})

test('no output of any process, metrics page, admin answer, DLQ record or broker log holds a token', async () => {
  for (const child of [producer, consumer, mock]) assert.equal(await child.stop('SIGTERM', 20_000), 'exit 0')
  const all = [producer, consumer, mock].flatMap((child) =>
    child.lines.map((line, i) => ({ what: `${child.name} ${line.stream} line ${i + 1}`, line })),
  )
  const messages = all.map(({ line }) => parseLogLine(line.text)?.msg ?? '')
  for (const expected of [
    /^Customer 1 delivered successfully/,
    /is invalid and was dead-lettered/,
    /^crm: cycle failed/,
    /^inventory: cycle failed/,
    /^poison message/,
    /^Analytics rejected customer:2/,
    /^admin API: request without a valid admin token refused/,
    /^admin API: DLQ replay \(dry run\)/,
    /^mock Analytics listening/,
    /^(producer|consumer|mock-analytics) stopped$/,
  ])
    assert.ok(
      messages.some((m) => expected.test(m)),
      `the run logged ${expected}`,
    )
  for (const { what, line } of all) scan.add(what, line.text)
  for (const file of ['broker.log', 'kafka.out'])
    scan.add(`broker ${file}`, readFileSync(join(broker.dataDir, file), 'utf8'))

  assert.ok(scan.count(/ line \d+$/) >= 30, 'every process line is in the scan')
  assert.equal(scan.count(/\/(metrics|healthz|readyz)$/), 6, 'both services’ three pages are in the scan')
  assert.ok(scan.count(/^DLQ record/) >= 3, 'the DLQ records are in the scan')
  assert.deepEqual(scan.leaks(SECRETS), [])
})

test('an Analytics that echoes the token it refused: the error body kept for logs and the DLQ does not', async () => {
  const echo = createServer((req, res) => {
    res.writeHead(401, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'invalid credentials', got: req.headers.authorization }))
  })
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve))
  const client = new AnalyticsClient({
    url: `http://127.0.0.1:${(echo.address() as AddressInfo).port}/analytics/data`,
    token: SECRETS.ANALYTICS_TOKEN,
    timeoutMs: 5000,
    connections: 1,
  })
  try {
    const result = await client.post('customer:1:abc', Buffer.from('{}'))
    assert.equal(result.kind, 'answered')
    const body = (result as { body: string }).body
    assert.match(body, /"got":"Bearer \[redacted\]"/, 'the answer is kept, the token is not')
  } finally {
    await client.close()
    await new Promise((resolve) => echo.close(resolve))
  }
})
