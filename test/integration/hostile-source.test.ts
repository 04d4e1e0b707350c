/**
 * Hostile sources against the producer's real path (undici fetch, scan, validation, change
 * detection, Kafka, DLQ, Redis): the committed corpus `test/fixtures/hostile/` played by a real HTTP
 * server, each case to its expected outcome — good records of a listing published and its bad ones
 * dead-lettered with their reasons, or the cycle failed with its code, publishing and deleting
 * nothing after an earlier good cycle — and a sample of the generated cases of the unit test through
 * the same real HTTP path.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import fc from 'fast-check'
import type { Config } from '../../src/config/env.ts'
import type { DlqEntry } from '../../src/dlq/entry.ts'
import type { EntityName } from '../../src/domain/records.ts'
import { describeError, isPipelineError } from '../../src/errors.ts'
import { type CycleSummary, runCycle } from '../../src/services/producer/cycle.ts'
import {
  createProducerRuntime,
  type ProducerRuntime,
  startProducerService,
} from '../../src/services/producer/service.ts'
import type { SourceSpec } from '../../src/sources/catalog.ts'
import { type ScanResult, scanSource } from '../../src/sources/scan.ts'
import { readDlq } from '../helpers/dlq.ts'
import { uniqueName } from '../helpers/env.ts'
import {
  type Answer,
  answerOf,
  type CorpusCase,
  type HostileServer,
  loadCorpus,
  startHostileServer,
} from '../helpers/hostile-corpus.ts'
import {
  HOSTILE_MAX_BYTES,
  type HostileCase,
  hostileSourceCase,
  validRecord,
} from '../helpers/hostile-source.ts'
import { readTopic } from '../helpers/kafka.ts'
import { metricValue } from '../helpers/metrics.ts'
import { type CapturedLogs, captureLogs, testConfig } from '../helpers/producer.ts'

const corpus = loadCorpus()
const GENERATED_RUNS = 150
const TOKEN = 'corpus-token-7f3a9c'

/** Per case: whether it serves its baseline listing or its hostile answers, and how many of those it gave. */
const phase = new Map<string, { baseline: boolean; served: number }>()
/** The generated case the server plays on `/generated/listing`. */
let generated: Answer | undefined
let server: HostileServer
let config: Config
let runtime: ProducerRuntime
let logs: CapturedLogs
/** What each corpus case ended as, for the final check of the topics and the DLQ. */
const results = new Map<string, { summary?: CycleSummary; error?: string }>()

const baselineIds = (name: string) => [`${name}-b1`, `${name}-b2`]

function corpusAnswer(c: CorpusCase, page: number): Answer {
  const state = phase.get(c.name) ?? { baseline: false, served: 0 }
  if (state.baseline) {
    const records = baselineIds(c.name).map((id) => validRecord(c.entity, id))
    return answerOf({ json: records })
  }
  const response = c.responses[Math.min(state.served++, c.responses.length - 1)]
  assert.ok(response, `${c.name} has responses`)
  if (!c.endless) return answerOf(response)
  return answerOf({
    ...response,
    json: { ...(response.json as object), next: `/${c.name}/listing?page=${page + 1}` },
  })
}

before(async () => {
  const byName = new Map(corpus.map((c) => [c.name, c]))
  server = await startHostileServer((path, query) => {
    const [, name, what] = path.split('/')
    if (name === 'generated' && what === 'listing') return generated
    const c = byName.get(name ?? '')
    return c && what === 'listing' ? corpusAnswer(c, Number(query.get('page') ?? 1)) : undefined
  })
  config = testConfig({
    CRM_BASE_URL: server.url,
    INVENTORY_BASE_URL: server.url,
    CRM_TOKEN: TOKEN,
    SOURCE_TIMEOUT_MS: '1000',
    SOURCE_REQUEST_DEADLINE_MS: '2000',
    SOURCE_MAX_RESPONSE_BYTES: String(1024 * 1024),
    SOURCE_MAX_PAGES: '5',
    SOURCE_MAX_INVALID_RECORDS: '20',
    RETRY_MAX_ATTEMPTS: '2',
    RETRY_BASE_DELAY_MS: '50',
    RETRY_MAX_DELAY_MS: '300',
  })
  logs = captureLogs('producer')
  runtime = await createProducerRuntime(config, logs.logger, { prefix: uniqueName('hostile') })
})
after(async () => {
  await runtime?.close()
  await server?.close()
})

function specOf(name: string, entity: EntityName, path = `/${name}/listing`): SourceSpec {
  return {
    name: `hostile-${name}`,
    entity,
    label: entity === 'customer' ? 'Customer' : 'Product',
    url: new URL(`${server.url}${path}`),
    topic: entity === 'customer' ? config.TOPIC_CUSTOMERS : config.TOPIC_PRODUCTS,
    token: TOKEN,
  }
}

const retryDelays = (source: string) =>
  logs.lines
    .filter((line) => line.source === source && /retrying in/.test(line.msg))
    .map((line) => Number(line.delayMs))

for (const c of corpus) {
  test(`corpus ${c.name}: ${c.about}`, async () => {
    const spec = specOf(c.name, c.entity)
    const expect = c.expect
    if ('error' in expect) {
      phase.set(c.name, { baseline: true, served: 0 })
      const baseline = await runCycle(runtime.context, spec)
      assert.equal(baseline.published, 2, 'the baseline listing is published')
      const known = await runtime.state.knownHashes(spec.name)
      phase.set(c.name, { baseline: false, served: 0 })

      let error: unknown
      await runCycle(runtime.context, spec).catch((caught: unknown) => {
        error = caught
      })
      assert.ok(isPipelineError(error), `a coded error, got ${describeError(error)}`)
      assert.equal(error.code, expect.error, describeError(error))
      assert.match(error.message, new RegExp(expect.message))
      assert.doesNotMatch(error.message, /[\r\n]/, 'one line')
      assert.ok(error.message.includes(server.url), 'it names the source URL')
      assert.deepEqual(await runtime.state.knownHashes(spec.name), known, 'nothing published or deleted')
      results.set(c.name, { error: error.code })
      return
    }
    phase.set(c.name, { baseline: false, served: 0 })
    const summary = await runCycle(runtime.context, spec)
    assert.equal(summary.published, expect.published.length)
    assert.equal(summary.invalid, expect.dead.length)
    assert.deepEqual(
      [...(await runtime.state.knownHashes(spec.name)).keys()].sort(),
      [...expect.published].sort(),
      'exactly the good records are known as published',
    )
    const delays = retryDelays(spec.name)
    assert.equal(delays.length, expect.retries ?? 0, 'retries')
    for (const delay of delays) {
      if (expect.retryDelayMs !== undefined) assert.equal(delay, expect.retryDelayMs)
      if (expect.retriesAtMostMs !== undefined) assert.ok(delay <= expect.retriesAtMostMs, `${delay} ms`)
    }
    results.set(c.name, { summary })
  })
}

test('the corpus on Kafka: good records once each, bad ones in the DLQ with reason and payload, failed listings left as they were', async () => {
  const listings = corpus.filter((c) => !('error' in c.expect))
  const failing = corpus.filter((c) => 'error' in c.expect)
  assert.equal(results.size, corpus.length, 'every corpus case ran')
  const expectedDead = listings.reduce((n, c) => n + ('dead' in c.expect ? c.expect.dead.length : 0), 0)
  const expectedPublished =
    listings.reduce((n, c) => n + ('published' in c.expect ? c.expect.published.length : 0), 0) +
    2 * failing.length

  const dlq = await readDlq(config, { count: expectedDead })
  assert.equal(dlq.length, expectedDead, 'one DLQ entry per bad record, none for failed listings')
  const [customers, products] = await Promise.all([
    readTopic(config.TOPIC_CUSTOMERS, { count: 1, settleMs: 1500 }),
    readTopic(config.TOPIC_PRODUCTS, { count: 1, settleMs: 1500 }),
  ])
  const published = [...customers, ...products]
  assert.equal(
    published.length,
    expectedPublished,
    'no other message: no tombstone, nothing from a failed listing',
  )
  assert.ok(
    published.every((m) => m.value !== null),
    'no tombstones',
  )
  const keys = published.map((m) => m.key).sort()
  assert.equal(new Set(keys).size, keys.length, 'each record published once')

  for (const c of listings) {
    if (!('published' in c.expect)) continue
    for (const id of c.expect.published) {
      const message = published.find((m) => m.key === id)
      assert.ok(message, `${c.name}: ${id} published`)
      assert.equal(JSON.parse(message.value ?? 'null').data.id, id)
    }
    const entries = dlq
      .map((record) => record.entry)
      .filter((entry) => new URL(entry.origin.url ?? 'x:').pathname === `/${c.name}/listing`)
    assert.equal(entries.length, c.expect.dead.length, `${c.name}: its dead letters`)
    c.expect.dead.forEach((dead, i) => {
      const entry = entries[i] as DlqEntry
      assert.equal(entry.stage, 'source')
      assert.equal(entry.error.class, 'ValidationError')
      assert.match(entry.error.message, new RegExp(dead.reason), `${c.name} #${i}`)
      assert.equal(entry.origin.key ?? null, dead.key, `${c.name} #${i} key`)
      assert.ok(entry.payload !== undefined, 'the raw record, or what could be kept of it')
      if (dead.truncated === undefined) assert.equal(entry.truncated, undefined, `${c.name} #${i} kept whole`)
      else
        assert.match(entry.truncated?.payload ?? '', new RegExp(dead.truncated), `${c.name} #${i} truncated`)
    })
  }
  for (const c of failing) {
    const ids = published.filter((m) => m.key.startsWith(`${c.name}-`)).map((m) => m.key)
    assert.deepEqual(ids.sort(), baselineIds(c.name), `${c.name}: only its baseline`)
  }
  assert.ok(!published.some((m) => m.key.startsWith('never-')), 'nothing from a failed listing')
  assert.equal(server.requests.get('/steal') ?? 0, 0)
  assert.ok(!JSON.stringify(logs.lines).includes(TOKEN), 'the token is never logged')
  assert.ok(!dlq.some((record) => JSON.stringify(record).includes(TOKEN)), 'nor dead-lettered')
})

test(`${GENERATED_RUNS} generated hostile responses through a real HTTP server and the real scan`, async () => {
  const spec = specOf('generated', 'customer')
  let chunked = false
  await fc.assert(
    fc.asyncProperty(hostileSourceCase, async (c: HostileCase) => {
      chunked = !chunked
      generated = { ...c.response, chunked }
      const entitySpec = { ...spec, entity: c.entity }
      let outcome: ScanResult | undefined
      let error: unknown
      try {
        outcome = await scanSource(entitySpec, { ...runtime.context.scan, maxBytes: HOSTILE_MAX_BYTES })
      } catch (caught) {
        error = caught
      }
      if (c.expect.kind === 'error') {
        assert.ok(
          isPipelineError(error),
          `expected ${c.expect.code}, got ${describeError(error ?? outcome?.kind)}`,
        )
        assert.equal(error.code, c.expect.code, error.message)
        return
      }
      assert.equal(error, undefined, describeError(error))
      assert.ok(outcome?.kind === 'listing')
      assert.deepEqual(
        outcome.records.map((r) => r.id),
        c.expect.valid,
      )
      assert.equal(outcome.invalid.length, c.expect.invalid.length)
      for (const [i, item] of outcome.invalid.entries())
        assert.match(item.reason, c.expect.invalid[i] as RegExp)
    }),
    { numRuns: GENERATED_RUNS },
  )
})

test('a slow-loris CRM is cut by the whole-request deadline: the failure is one coded line and a metric; the Inventory publishes', async (t) => {
  const records = [validRecord('product', 'loris-p1')]
  const slow = await startHostileServer((path) =>
    path === '/customers'
      ? { ...answerOf({ json: [validRecord('customer', 'loris-c1')] }), slowBodyMs: 300, slowChunks: 100 }
      : path === '/products'
        ? answerOf({ json: records })
        : undefined,
  )
  t.after(() => slow.close())
  const serviceLogs = captureLogs('producer')
  const service = await startProducerService(
    { ...config, CRM_BASE_URL: slow.url, INVENTORY_BASE_URL: slow.url, POLL_INTERVAL_MS: 600_000 },
    serviceLogs.logger,
    { prefix: uniqueName('loris') },
  )
  t.after(() => service.close())
  const [crm, inventory] = service.loops
  assert.ok(crm && inventory)
  await Promise.all([crm.firstCycle, inventory.firstCycle])

  const { metrics } = service.runtime
  assert.equal(await metricValue(metrics.polls, { source: 'crm', outcome: 'failed' }), 1)
  assert.equal(await metricValue(metrics.consecutiveFailures, { source: 'crm' }), 1)
  assert.equal(await metricValue(metrics.polls, { source: 'inventory', outcome: 'success' }), 1)
  const failure = serviceLogs.lines.find((line) => line.source === 'crm' && /cycle failed/.test(line.msg))
  assert.ok(failure, 'the failure is logged')
  assert.equal(failure.code, 'PIPELINE_SOURCE_DEADLINE')
  assert.match(
    failure.msg,
    /did not complete its answer within 2000 ms \(SOURCE_REQUEST_DEADLINE_MS\) \(gave up after 2 attempts\)/,
  )
  assert.equal(slow.requests.get('/customers'), 2, 'two attempts, each cut at the deadline')
})
