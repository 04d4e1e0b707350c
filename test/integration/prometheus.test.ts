/**
 * A real Prometheus (Debian's `prometheus` binary, via src/infra/prometheus.ts) scraping the
 * in-process producer and consumer every second, with the alert rules of deploy/alerts.yml loaded,
 * during the brief's flow (Prism → producer cycle → Kafka → consumer → mock Analytics). Its HTTP API
 * shows the flow counters move from nothing to the four records and views, the end-to-end latency
 * histogram fill, lag and DLQ depth per group, topic and partition; every dashboard query and every
 * alert rule evaluates on the live series without error, and none of the alerts fires on a healthy run.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { cacheDir } from '../../src/infra/paths.ts'
import { freePort } from '../../src/infra/ports.ts'
import { type LocalPrometheus, queryPrometheus, startPrometheus } from '../../src/infra/prometheus.ts'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { runCycle } from '../../src/services/producer/cycle.ts'
import { createProducerRuntime, type ProducerRuntime } from '../../src/services/producer/service.ts'
import { heldViews, type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { captureLogs } from '../helpers/producer.ts'
import { waitFor } from '../helpers/wait.ts'

const deploy = new URL('../../deploy/', import.meta.url)

let fixture: PipelineFixture
let consumer: ConsumerService
let producer: ProducerRuntime
let prometheus: LocalPrometheus
let dataDir: string

const hostPort = (url: string) => new URL(url).host

before(async () => {
  fixture = await pipelineFixture()
  consumer = await fixture.startConsumer()
  producer = await createProducerRuntime(fixture.config, captureLogs('producer').logger, {
    prefix: fixture.prefix,
  })
  const runs = join(cacheDir, 'test-runs')
  mkdirSync(runs, { recursive: true })
  dataDir = mkdtempSync(join(runs, 'prometheus-'))
  prometheus = await startPrometheus({
    dataDir,
    port: await freePort(),
    targets: { producer: [hostPort(producer.metricsUrl)], consumer: [hostPort(consumer.metricsUrl)] },
    interval: '1s',
    ruleFiles: [fileURLToPath(new URL('alerts.yml', deploy))],
  })
})
after(async () => {
  await prometheus?.stop()
  await producer?.close()
  await fixture?.close()
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
})

/** The value of a query that sums to one series (0 when it has none yet). */
async function scalar(query: string): Promise<number> {
  const samples = await queryPrometheus(prometheus.url, query)
  assert.ok(samples.length <= 1, `${query} gives one series at most`)
  return samples[0]?.value ?? 0
}

/** Waits until `query` reaches `atLeast` in Prometheus (which scrapes every second). */
function reaches(query: string, atLeast: number): Promise<number> {
  return waitFor(`${query} >= ${atLeast} in Prometheus`, async () => {
    const value = await scalar(query)
    return value >= atLeast ? value : undefined
  })
}

test('Prometheus scrapes both services, with their service label', async () => {
  for (const job of ['producer', 'consumer']) await reaches(`up{job="${job}"}`, 1)
  const series = await queryPrometheus(prometheus.url, 'pipeline_dlq_messages_total')
  const services = new Set(series.map((s) => `${s.metric.job}:${s.metric.service}`))
  assert.deepEqual([...services].sort(), ['consumer:consumer', 'producer:producer'])
})

test('the brief’s flow moves the counters from nothing to four records and four views, and fills the latency histogram', async () => {
  const published = 'sum(pipeline_source_records_total{result="published"})'
  const delivered = 'sum(pipeline_views_total{result="delivered"})'
  const latencyCount = 'sum(pipeline_end_to_end_latency_seconds_count)'
  await reaches('up{job="consumer"}', 1)
  assert.equal(await scalar(published), 0, 'nothing published before the cycle')
  assert.equal(await scalar(delivered), 0, 'nothing delivered before the cycle')
  assert.equal(await scalar(latencyCount), 0, 'no latency observed before the cycle')

  for (const source of producer.sources) await runCycle(producer.context, source)
  await waitFor('four views at Analytics', async () => Object.keys(await heldViews(fixture.mock)).length >= 4)

  assert.equal(await reaches(published, 4), 4, 'two customers and two products published')
  assert.equal(
    await reaches('sum(pipeline_kafka_publish_total{job="producer",outcome="acknowledged"})', 4),
    4,
  )
  assert.equal(await reaches('sum(pipeline_consumer_messages_total{result="applied"})', 4), 4)
  // Four views, delivered once or, for a customer whose products arrived after it, twice.
  const views = await reaches(delivered, 4)
  assert.ok(views <= 8, `at most two deliveries per view (${views})`)
  assert.ok((await reaches('sum(pipeline_sink_requests_total{status="2xx"})', views)) >= views)
  await waitFor('one latency observation per delivered view', async () => {
    const [count, total] = [await scalar(latencyCount), await scalar(delivered)]
    return count === total && count >= 4
  })
  assert.ok((await scalar('sum(pipeline_end_to_end_latency_seconds_sum)')) > 0)
  const p99 = await scalar(
    'histogram_quantile(0.99, sum by (le) (pipeline_end_to_end_latency_seconds_bucket))',
  )
  assert.ok(p99 > 0 && p99 < 30, `p99 end-to-end latency is a few seconds at most (${p99})`)
})

test('lag per group, topic and partition and the DLQ depth reach Prometheus', async () => {
  const config = fixture.config
  const lag = await waitFor('lag series of both groups', async () => {
    const series = await queryPrometheus(prometheus.url, 'pipeline_consumer_lag')
    return series.length >= 9 ? series : undefined
  })
  const keys = lag.map((s) => `${s.metric.group} ${s.metric.topic} ${s.metric.partition}`).sort()
  const expected = [
    ...[config.TOPIC_CUSTOMERS, config.TOPIC_PRODUCTS].flatMap((topic) =>
      [0, 1, 2].map((p) => `${config.CONSUMER_GROUP}.state ${topic} ${p}`),
    ),
    ...[0, 1, 2].map((p) => `${config.CONSUMER_GROUP}.deliver ${config.TOPIC_REFRESH} ${p}`),
  ].sort()
  assert.deepEqual(keys, expected)
  await waitFor('the lag drained to 0', async () => (await scalar('sum(pipeline_consumer_lag)')) === 0)
  assert.deepEqual(
    (await queryPrometheus(prometheus.url, 'pipeline_dlq_depth')).map((s) => s.value),
    [0],
  )
})

test('every dashboard query and every alert rule evaluates on the live series; no alert fires', async () => {
  const dashboard = JSON.parse(
    readFileSync(new URL('grafana/provisioning/dashboards/pipeline.json', deploy), 'utf8'),
  ) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> }
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets ?? []) {
      // Grafana's $__rate_interval is at least four scrape intervals.
      await queryPrometheus(prometheus.url, expr.replaceAll('$__rate_interval', '4s')).catch((error) =>
        assert.fail(`panel "${panel.title}": ${(error as Error).message}`),
      )
    }
  }
  const rules = await waitFor('every alert rule evaluated', async () => {
    const body = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as {
      data: {
        groups: Array<{
          rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }>
        }>
      }
    }
    const all = body.data.groups.flatMap((g) => g.rules)
    return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith('0001')) ? all : undefined
  })
  const { groups } = parse(readFileSync(new URL('alerts.yml', deploy), 'utf8')) as {
    groups: Array<{ rules: unknown[] }>
  }
  const defined = groups.reduce((sum, group) => sum + group.rules.length, 0)
  assert.ok(defined > 0)
  assert.equal(rules.length, defined, 'every rule of alerts.yml is loaded')
  for (const rule of rules) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`)
  assert.deepEqual(await queryPrometheus(prometheus.url, 'ALERTS'), [], 'no alert pending or firing')
})
