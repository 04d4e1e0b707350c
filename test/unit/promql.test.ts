/** The test helper that finds the metric names a PromQL expression reads (used on the dashboard). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { exportedNames, metricNames } from '../helpers/promql.ts'

const names = (expr: string) => [...metricNames(expr)].sort()

test('names are found inside functions, aggregations and binary operations', () => {
  assert.deepEqual(
    names('histogram_quantile(0.95, sum by (le, source) (rate(pipeline_x_bucket{a="b"}[$__rate_interval])))'),
    ['pipeline_x_bucket'],
  )
  assert.deepEqual(names('time() - max by (source) (pipeline_last_success)'), ['pipeline_last_success'])
  assert.deepEqual(
    names(
      '(sum(increase(a_total{outcome="delivered"}[10m])) or vector(0)) == 0 and on () count(b offset 10m)',
    ),
    ['a_total', 'b'],
  )
  assert.deepEqual(names('up{job=~"producer|consumer"} == 0'), ['up'])
})

test('label values, label lists, durations and keywords are not names', () => {
  assert.deepEqual(names('sum without (instance, job) (x{le="+Inf", name="rate(y)"}) > bool 1e3'), ['x'])
  assert.deepEqual(names('a * on (instance) group_left (version) b'), ['a', 'b'])
})

test('exported names come from # TYPE lines, histograms with their three series', () => {
  const text = [
    '# HELP h_seconds help',
    '# TYPE h_seconds histogram',
    '# TYPE c_total counter',
    'c_total{a="b"} 1',
    '# TYPE s summary',
  ].join('\n')
  assert.deepEqual([...exportedNames(text)].sort(), [
    'c_total',
    'h_seconds_bucket',
    'h_seconds_count',
    'h_seconds_sum',
    's',
    's_count',
    's_sum',
  ])
})
