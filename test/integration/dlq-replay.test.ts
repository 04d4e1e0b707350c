/**
 * `pipeline dlq` against a real pipeline (design §6): a view Analytics rejected is replayed once the
 * sink accepts it, delivered exactly once, and a second replay does nothing; a dry run changes
 * nothing; filters select exactly their entries; poison that still fails stays, with its reason, while
 * a record valid today is published to its source topic; the CLI itself lists as JSON and refuses to
 * replay unconfirmed; concurrent replays act once.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DlqListing } from '../../src/dlq/operations.ts'
import type { ReplayReport } from '../../src/dlq/replay-plan.ts'
import { createDlqWriter } from '../../src/dlq/writer.ts'
import { createProducer, publish } from '../../src/kafka/producer.ts'
import { createLogger } from '../../src/observability/logger.ts'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { connectRedis } from '../../src/state/redis.ts'
import { CLAIM_TTL_MS, ReplayLedger } from '../../src/state/replay-ledger.ts'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { cliEnv, type DlqTool, dlqTool, runCli } from '../helpers/dlq-ops.ts'
import { readTopic } from '../helpers/kafka.ts'
import { customer, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

let fixture: PipelineFixture
let consumer: ConsumerService
let sources: ReturnType<typeof sourceWriter>
let tool: DlqTool

before(async () => {
  fixture = await pipelineFixture()
  consumer = await fixture.startConsumer()
  sources = sourceWriter(fixture.config)
  tool = await dlqTool(fixture)
})
after(async () => {
  await tool.close()
  await sources.close()
  await fixture.close()
})

/** Records the mock stored for `view` (one per accepted delivery under a new key). */
const storedOf = (view: string) => fixture.mock.store.records().filter((r) => r.key.startsWith(`${view}:`))

/** Makes Analytics reject `ids`' customer views with 400 and waits for their DLQ entries. */
async function rejectCustomers(ids: readonly string[]): Promise<void> {
  for (const id of ids) fixture.mock.store.faults.add({ status: 400, match: `customer:${id}:` })
  await sources.write(...ids.map((id) => ({ customer: customer(id, []) })))
  for (const id of ids) await tool.waitForEntries({ key: `customer:${id}`, stage: 'deliver' })
  fixture.mock.store.faults.clear()
}

test('a view rejected with 400, replayed after the fix, is delivered once; a second replay does nothing', async () => {
  await rejectCustomers(['31'])
  const [entry] = await tool.list({ key: 'customer:31' })
  assert.ok(entry)
  assert.equal(entry.errorClass, 'PIPELINE_SINK_REJECTED')
  assert.equal(entry.replayed, null)
  assert.equal(storedOf('customer:31').length, 0, 'nothing at Analytics yet')

  const received = fixture.mock.store.stats().received
  const first = await tool.replay({ key: 'customer:31' })
  assert.deepEqual(first.counts, { requested: 1 })
  assert.match(first.results[0]?.detail ?? '', /forcing re-delivery/)
  const held = await waitFor('customer:31 at Analytics', () => fixture.mock.store.views().get('customer:31'))
  assert.equal((held.record as { id: string }).id, '31')
  await sleep(1000) // a second delivery would have arrived by now
  assert.equal(storedOf('customer:31').length, 1, 'delivered once')
  assert.equal(fixture.mock.store.stats().received - received, 1, 'one POST')
  const [dead] = await tool.list({ key: 'customer:31' })
  assert.equal(dead?.replayed?.outcome, 'requested', 'the ledger remembers the replay')

  const second = await tool.replay({ key: 'customer:31' })
  assert.deepEqual(second.counts, { 'already-replayed': 1 })
  await sleep(1000)
  assert.equal(storedOf('customer:31').length, 1, 'still once')
  assert.equal(fixture.mock.store.stats().received - received, 1, 'no further POST')
})

test('--dry-run reports what a replay would do and changes nothing', async () => {
  await rejectCustomers(['41'])
  const received = fixture.mock.store.stats().received
  const report = await tool.replay({ key: 'customer:41' }, { dryRun: true })
  assert.equal(report.dryRun, true)
  assert.deepEqual(report.counts, { requested: 1 })
  assert.match(report.results[0]?.detail ?? '', /^would re-request customer:41 \(forcing/)
  await sleep(1500)
  assert.equal(fixture.mock.store.stats().received, received, 'no POST')
  assert.equal(fixture.mock.store.views().get('customer:41'), undefined)
  const [row] = await tool.list({ key: 'customer:41' })
  assert.equal(row?.replayed, null, 'not recorded as replayed')
  // The real replay afterwards still works: the dry run left the delivery record alone.
  assert.deepEqual((await tool.replay({ key: 'customer:41' })).counts, { requested: 1 })
  await waitFor('customer:41 at Analytics', () => fixture.mock.store.views().get('customer:41'))
})

test('filters select exactly the matching entries, for listing and for replay', async () => {
  await rejectCustomers(['71', '72'])
  const keys = (rows: readonly { key: string | null }[]) => rows.map((r) => r.key).sort()
  assert.deepEqual(keys(await tool.list({ key: 'customer:7*' })), ['customer:71', 'customer:72'])
  assert.deepEqual(keys(await tool.list({ key: 'customer:71' })), ['customer:71'])
  assert.deepEqual(keys(await tool.list({ key: 'customer:7*', error: '400', stage: 'deliver' })), [
    'customer:71',
    'customer:72',
  ])
  assert.deepEqual(await tool.list({ key: 'customer:7*', stage: 'validate' }), [])
  assert.deepEqual(await tool.list({ key: 'customer:7*', error: '503' }), [])
  assert.deepEqual(await tool.list({ key: 'customer:7*', until: '1h' }), [])
  assert.equal((await tool.list({ key: 'customer:7*', since: '1h' })).length, 2)

  const report = await tool.replay({ key: 'customer:71' })
  assert.deepEqual(
    report.results.map((r) => [r.key, r.outcome]),
    [['customer:71', 'requested']],
  )
  await waitFor('customer:71 at Analytics', () => fixture.mock.store.views().get('customer:71'))
  await sleep(1000)
  assert.equal(fixture.mock.store.views().get('customer:72'), undefined, 'the other entry was not replayed')
  const rows = await tool.list({ key: 'customer:7*' })
  assert.deepEqual(rows.map((r) => [r.key, r.replayed?.outcome ?? null]).sort(), [
    ['customer:71', 'requested'],
    ['customer:72', null],
  ])
})

test('poison that still fails stays, with its reason; a record valid today is published to its topic', async () => {
  await sources.writeRaw(fixture.config.TOPIC_CUSTOMERS, '61', 'not-json')
  // A record the producer dead-lettered under an older, stricter schema: valid today.
  const producer = createProducer(fixture.config, 'test-dlq')
  try {
    await createDlqWriter(
      { send: (messages) => publish(producer, messages) },
      fixture.config.TOPIC_DLQ,
    ).write([
      {
        stage: 'source',
        error: { class: 'ValidationError', message: 'email: too long (old schema)' },
        attempts: 1,
        firstFailedAt: new Date().toISOString(),
        failedAt: new Date().toISOString(),
        origin: { url: 'http://crm.test/customers?page=1', key: '62', topic: fixture.config.TOPIC_CUSTOMERS },
        payload: customer('62', []),
      },
    ])
  } finally {
    await producer.close()
  }
  await tool.waitForEntries({ key: '61' })
  await tool.waitForEntries({ key: '62' })

  const report = await tool.replay({ key: '6*', stage: 'source,deserialize,validate' })
  const outcome = (key: string) => report.results.find((r) => r.key === key)
  assert.equal(outcome('61')?.outcome, 'still-failing')
  assert.match(outcome('61')?.detail ?? '', /^value is not JSON/)
  assert.equal(outcome('62')?.outcome, 'published')
  await waitFor('customer:62 at Analytics', () => fixture.mock.store.views().get('customer:62'))

  const [poison] = await tool.list({ key: '61' })
  assert.equal(poison?.stage, 'deserialize', 'the poison entry is still in the DLQ')
  assert.equal(poison?.replayed, null, 'and not marked replayed')
  const again = await tool.replay({ key: '6*', stage: 'source,deserialize,validate' })
  assert.deepEqual(again.results.map((r) => [r.key, r.outcome]).sort(), [
    ['61', 'still-failing'],
    ['62', 'already-replayed'],
  ])
  const onTopic = await readTopic(fixture.config.TOPIC_CUSTOMERS, { idleMs: 1500 })
  assert.equal(onTopic.filter((m) => m.key === '61').length, 1, 'the poison was never republished')
  assert.equal(onTopic.filter((m) => m.key === '62').length, 1, 'the valid record was published once')
})

test('the CLI: dlq list --json as a child process; show; a dry run; replay refuses without --yes off a terminal', async () => {
  await rejectCustomers(['91'])
  const env = cliEnv(fixture)
  const listed = await runCli(['dlq', 'list', '--json', '--key', 'customer:9*'], env)
  assert.equal(listed.code, 0, listed.stderr)
  const listing = JSON.parse(listed.stdout) as DlqListing
  assert.equal(listing.topic, fixture.config.TOPIC_DLQ)
  assert.deepEqual(
    listing.rows.map((r) => [r.key, r.stage, r.errorClass, r.status, r.replayed]),
    [['customer:91', 'deliver', 'PIPELINE_SINK_REJECTED', 400, null]],
  )
  assert.deepEqual(listing.summary.byStage, { deliver: 1 })

  const all = JSON.parse((await runCli(['dlq', 'list', '--json'], env)).stdout) as DlqListing
  assert.ok(all.rows.length >= 5, 'every entry of the earlier tests')
  assert.ok(all.rows.some((r) => r.key === 'customer:31' && r.replayed?.outcome === 'requested'))

  const offset = listing.rows[0]?.offset ?? ''
  const shown = await runCli(['dlq', 'show', offset], env)
  assert.equal(shown.code, 0, shown.stderr)
  assert.match(shown.stdout, new RegExp(`^offset {5}${offset} `))
  assert.match(shown.stdout, /"idempotencyKey": "customer:91:[0-9a-f]{64}"/)
  const missing = await runCli(['dlq', 'show', '999999'], env)
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /no entry at offset 999999.*\[PIPELINE_DLQ_NOT_FOUND\]\n$/)

  const dry = await runCli(['dlq', 'replay', '--key', 'customer:91', '--dry-run'], env)
  assert.equal(dry.code, 0, dry.stderr)
  assert.match(dry.stdout, /^\s+\d+\s+deliver\s+requested\s+would re-request customer:91 \(forcing/m)
  assert.match(dry.stdout, /1 selected in \S+ \(dry run, nothing changed\): 1 requested\n$/)

  const refused = await runCli(['dlq', 'replay', '--key', 'customer:91'], env)
  assert.equal(refused.code, 1)
  assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line')
  assert.match(refused.stderr, /refusing to replay without --yes.*\[PIPELINE_DLQ_CONFIRMATION_REQUIRED\]/)
  await sleep(500)
  assert.equal(fixture.mock.store.views().get('customer:91'), undefined)

  const replayed = await runCli(
    ['dlq', 'replay', '--key', 'customer:91', '--yes', '--json', '--rate', '5/s'],
    env,
  )
  assert.equal(replayed.code, 0, replayed.stderr)
  const report = JSON.parse(replayed.stdout) as ReplayReport
  assert.deepEqual(report.counts, { requested: 1 })
  await waitFor('customer:91 at Analytics', () => fixture.mock.store.views().get('customer:91'))
})

test('two replays at once act on an entry once; a claim left by a dead replay expires', async () => {
  await rejectCustomers(['95'])
  const other = await dlqTool(fixture)
  try {
    const received = fixture.mock.store.stats().received
    const reports = await Promise.all([
      tool.replay({ key: 'customer:95' }),
      other.replay({ key: 'customer:95' }),
    ])
    const outcomes = reports.map((r) => r.results[0]?.outcome).sort()
    assert.deepEqual(outcomes, ['already-replayed', 'requested'])
    await waitFor('customer:95 at Analytics', () => fixture.mock.store.views().get('customer:95'))
    await sleep(1000)
    assert.equal(fixture.mock.store.stats().received - received, 1, 'one POST')
  } finally {
    await other.close()
  }

  const redis = await connectRedis(
    fixture.config.REDIS_URL,
    createLogger({ service: 'test', level: 'silent' }),
  )
  try {
    const ledger = new ReplayLedger(redis, fixture.prefix)
    const now = Date.now()
    assert.equal(await ledger.claim('t', '7', 'f', now), undefined, 'claimed')
    assert.equal((await ledger.claim('t', '7', 'f', now + 1000))?.outcome, 'claimed', 'held by the first')
    assert.equal(
      await ledger.claim('t', '7', 'other failedAt', now + 1000),
      undefined,
      'another entry at that offset',
    )
    assert.equal(
      await ledger.claim('t', '7', 'other failedAt', now + CLAIM_TTL_MS + 2000),
      undefined,
      'stale claim',
    )
    await ledger.settle('t', [{ offset: '7', failedAt: 'other failedAt', outcome: 'requested' }], now)
    assert.equal(
      (await ledger.claim('t', '7', 'other failedAt', now + 10 * CLAIM_TTL_MS))?.outcome,
      'requested',
    )
    assert.equal(await ledger.prune('t', 8n), 1)
    assert.deepEqual(await ledger.marks('t', [{ offset: '7', failedAt: 'other failedAt' }]), new Map())
  } finally {
    await redis.close()
  }
})

test('the admin endpoint is off without ADMIN_TOKEN', async () => {
  const response = await fetch(`${consumer.metricsUrl}/admin/dlq`)
  assert.equal(response.status, 404)
  await response.text()
})
