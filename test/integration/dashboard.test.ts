/**
 * The Grafana dashboard (deploy/grafana/provisioning/dashboards/pipeline.json) against the running
 * services: every metric its PromQL reads is exported by the producer or the consumer (their
 * `/metrics`, histograms with `_bucket`, `_sum`, `_count`), and it shows what the issue asks for.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { parse } from 'yaml'
import type { ConsumerService } from '../../src/services/consumer/service.ts'
import { createProducerRuntime, type ProducerRuntime } from '../../src/services/producer/service.ts'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { captureLogs } from '../helpers/producer.ts'
import { exportedNames, metricNames } from '../helpers/promql.ts'

const provisioning = new URL('../../deploy/grafana/provisioning/', import.meta.url)

interface Panel {
  readonly id: number
  readonly type: string
  readonly title: string
  readonly datasource?: { readonly type: string; readonly uid: string }
  readonly targets?: ReadonlyArray<{ readonly expr: string; readonly refId: string }>
  readonly panels?: readonly Panel[]
}

const dashboard = JSON.parse(readFileSync(new URL('dashboards/pipeline.json', provisioning), 'utf8')) as {
  uid: string
  title: string
  panels: Panel[]
}
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])])
const queries = panels.flatMap((panel) =>
  (panel.targets ?? []).map((target) => ({ panel, expr: target.expr })),
)

/** Series Prometheus itself adds to every scrape. */
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped'])

let fixture: PipelineFixture
let consumer: ConsumerService
let producer: ProducerRuntime

before(async () => {
  fixture = await pipelineFixture()
  consumer = await fixture.startConsumer()
  producer = await createProducerRuntime(fixture.config, captureLogs('producer').logger, {
    prefix: fixture.prefix,
  })
})
after(async () => {
  await producer?.close()
  await fixture.close()
})

async function scrape(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`)
  assert.equal(response.status, 200)
  return response.text()
}

test('every metric the dashboard queries is exported by the running producer or consumer', async () => {
  const exported = new Set([
    ...exportedNames(await scrape(producer.metricsUrl)),
    ...exportedNames(await scrape(consumer.metricsUrl)),
  ])
  assert.ok(exported.has('pipeline_end_to_end_latency_seconds_bucket'), 'histograms are expanded')
  assert.ok(queries.length >= 20, `the dashboard has its queries (${queries.length})`)
  const missing: string[] = []
  for (const { panel, expr } of queries) {
    const names = metricNames(expr)
    assert.ok(names.size > 0, `panel "${panel.title}" queries no metric: ${expr}`)
    for (const name of names)
      if (!exported.has(name) && !SYNTHETIC.has(name)) missing.push(`${name} (panel "${panel.title}")`)
  }
  assert.deepEqual(missing, [], 'metrics the dashboard reads but no service exports')
})

test('the dashboard shows the flow, duplicates, retries, DLQ, lag, latency percentiles and circuit state', () => {
  const used = new Set(queries.flatMap(({ expr }) => [...metricNames(expr)]))
  for (const name of [
    'pipeline_source_records_total', // polled, published
    'pipeline_consumer_messages_total', // consumed
    'pipeline_views_total', // delivered
    'pipeline_consumer_duplicates_total',
    'pipeline_sink_retries_total',
    'pipeline_dlq_messages_total',
    'pipeline_dlq_depth',
    'pipeline_consumer_lag',
    'pipeline_end_to_end_latency_seconds_bucket',
    'pipeline_sink_circuit_state',
  ])
    assert.ok(used.has(name), `the dashboard should show ${name}`)
  const latency = queries.filter(({ expr }) => expr.includes('pipeline_end_to_end_latency_seconds_bucket'))
  for (const q of ['0.5', '0.95', '0.99'])
    assert.ok(
      latency.some(({ expr }) => expr.startsWith(`histogram_quantile(${q},`)),
      `end-to-end latency p${Number(q) * 100}`,
    )
  const flow = panels.find((panel) => /flow/i.test(panel.title) && panel.type === 'timeseries')
  assert.ok(flow, 'a flow panel')
  assert.equal(flow.targets?.length, 4, 'polled → published → consumed → delivered')
})

test('the dashboard is well formed for provisioning: unique ids, the provisioned datasource', () => {
  assert.equal(dashboard.uid, 'integration-pipeline')
  const ids = panels.map((panel) => panel.id)
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  const datasources = parse(readFileSync(new URL('datasources/prometheus.yml', provisioning), 'utf8')) as {
    datasources: Array<{ uid: string; type: string }>
  }
  const uid = datasources.datasources.find((d) => d.type === 'prometheus')?.uid
  for (const panel of panels) {
    if (panel.type === 'row') continue
    assert.deepEqual(panel.datasource, { type: 'prometheus', uid }, `panel "${panel.title}" datasource`)
    assert.ok((panel.targets ?? []).length > 0, `panel "${panel.title}" has queries`)
    const refIds = (panel.targets ?? []).map((target) => target.refId)
    assert.equal(new Set(refIds).size, refIds.length, `panel "${panel.title}" refIds are unique`)
  }
})
