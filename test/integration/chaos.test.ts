/**
 * The short chaos run (issue #7): the same runner as `npm run chaos`, at 2k customers and 200
 * products, with at least 20 SIGKILLs of producers and consumers and every fault kind once (Kafka
 * and Redis restarts, a sink outage, a slow sink, 429 and 503 storms, invalid source records,
 * poison messages). It starts its own Kafka and Redis (it restarts them), not the shared ones.
 *
 * Asserts the three end checks (exact join, no key accepted twice, DLQ exactly as injected) and that
 * every kill and fault really happened, so it cannot pass vacuously.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { faultKinds } from '../../chaos/options.ts'
import { formatReport } from '../../chaos/report.ts'
import { runChaos } from '../../chaos/runner.ts'
import { cacheDir } from '../../src/infra/paths.ts'

test('chaos: 20+ kills, broker and Redis restarts, sink outage and slowness, source storms: exact join, no double, DLQ as injected', {
  timeout: 900_000,
}, async (t) => {
  const lines: string[] = []
  const result = await runChaos({
    customers: 2000,
    products: 200,
    seed: Number(process.env.CHAOS_SEED ?? 11),
    durationMs: 90_000,
    kills: 20,
    faults: faultKinds,
    sinkOutageMs: 10_000,
    faultWindowMs: 5000,
    changesPerTick: 10,
    tickMs: 1000,
    pollIntervalMs: 2000,
    invalidRecords: 3,
    drainTimeoutMs: 300_000,
    runsDir: join(cacheDir, 'chaos-runs'),
    keep: false,
    log: (line) => lines.push(line),
  })
  const table = formatReport(result.figures, result.problems)
  for (const line of table.split('\n')) t.diagnostic(line)
  const context = `${table}\n${lines.slice(-20).join('\n')}\nlogs: ${result.runDir}`
  assert.deepEqual(result.problems, [], context)
  const { figures } = result
  assert.ok(figures.kills.producer + figures.kills.consumer >= 20, `at least 20 SIGKILLs\n${context}`)
  assert.ok(figures.kills.producer > 0 && figures.kills.consumer > 0, 'producers and consumers were killed')
  for (const kind of faultKinds) assert.equal(result.performed[kind], 1, `${kind} happened once`)
  assert.ok(figures.outages.source429 > 0, 'the sources answered 429')
  assert.ok(figures.outages.source503 > 0, 'the sources answered 503')
  assert.ok(figures.outages.sinkDelayed > 0, 'the sink delayed deliveries')
  assert.ok(figures.sourceChanges > 0, 'the sources changed during the run')
  assert.ok(figures.injected.invalidRecords > 0 && figures.injected.poison > 0, 'bad input was injected')
  assert.ok(figures.viewsHeld > 0, 'the sink holds views')
})
