/**
 * The Prometheus side of `deploy/`, checked with the real `promtool` (Debian package `prometheus`;
 * `.ci/run` installs it): the configuration and its rule files are valid, and the alert rules pass
 * their unit tests in `deploy/alerts.test.yml`. A missing promtool fails these tests, never skips them.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const deploy = fileURLToPath(new URL('../../deploy/', import.meta.url))

function promtool(...args: string[]): string {
  const run = spawnSync('promtool', args, { cwd: deploy, encoding: 'utf8', timeout: 60_000 })
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ENOENT')
    assert.fail('promtool was not found: install the Debian package prometheus (.ci/run does)')
  const output = `${run.stdout}${run.stderr}`
  assert.equal(run.status, 0, `promtool ${args.join(' ')} failed:\n${output}`)
  return output
}

interface AlertRule {
  readonly alert?: string
  readonly expr: string
  readonly for?: string
}

const rules = (
  parse(readFileSync(resolve(deploy, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }
).groups.flatMap((group) => group.rules)

test('promtool check config: prometheus.yml is valid and loads alerts.yml', () => {
  const output = promtool('check', 'config', 'prometheus.yml')
  assert.match(output, /SUCCESS: 1 rule files found/)
  assert.match(output, /alerts\.yml/)
})

test('promtool check rules: alerts.yml is valid', () => {
  assert.match(promtool('check', 'rules', 'alerts.yml'), new RegExp(`SUCCESS: ${rules.length} rules found`))
})

test('promtool test rules: every alert fires on its case and stays quiet on its near misses', () => {
  assert.match(promtool('test', 'rules', 'alerts.test.yml'), /SUCCESS/)
})

test('the issue’s alerts exist, each with a unit test that expects it to fire', () => {
  const byName = new Map(rules.map((rule) => [rule.alert, rule]))
  const expected: Record<string, RegExp> = {
    PipelineServiceDown: /\bup\b.*== 0/,
    PipelineSourceFailing: /pipeline_source_consecutive_failures\) >= 3/,
    PipelineDlqGrowing: /pipeline_dlq_messages_total/,
    PipelineCircuitOpen: /pipeline_sink_circuit_state/,
    PipelineLagGrowing: /deriv\(pipeline_consumer_lag/,
    PipelineNoDelivery: /pipeline_sink_deliveries_total\{outcome="delivered"\}[\s\S]*pipeline_consumer_lag/,
  }
  for (const [name, shape] of Object.entries(expected)) {
    const rule = byName.get(name)
    assert.ok(rule, `alerts.yml should define ${name}`)
    assert.match(rule.expr, shape, `${name} watches the right series`)
  }
  assert.equal(byName.get('PipelineCircuitOpen')?.for, '2m', 'the circuit alert waits 2 minutes')
  assert.equal(byName.get('PipelineLagGrowing')?.for, '10m', 'lag must grow for 10 minutes')

  const tests = (
    parse(readFileSync(resolve(deploy, 'alerts.test.yml'), 'utf8')) as {
      tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>
    }
  ).tests.flatMap((t) => t.alert_rule_test ?? [])
  for (const rule of rules) {
    const cases = tests.filter((t) => t.alertname === rule.alert)
    assert.ok(
      cases.some((t) => t.exp_alerts.length > 0),
      `${rule.alert} has a test where it fires`,
    )
    assert.ok(
      cases.some((t) => t.exp_alerts.length === 0),
      `${rule.alert} has a test where it stays quiet`,
    )
  }
})
