import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type CircuitStateName, FailureRun, type Health, SinkCircuit } from '../../src/sinks/breaker.ts'

/** A probe whose verdicts the test scripts, counting the calls. */
function scriptedProbe(...verdicts: Health[]) {
  const calls = { count: 0 }
  const probe = async (): Promise<Health> => {
    calls.count += 1
    await sleep(5)
    return verdicts.shift() ?? 'healthy'
  }
  return { calls, probe }
}

function watch(circuit: SinkCircuit): CircuitStateName[] {
  const seen: CircuitStateName[] = []
  circuit.onStateChange((state) => seen.push(state))
  return seen
}

test('a failure run reaches its threshold and starts over after a good answer', () => {
  const run = new FailureRun(3)
  assert.equal(run.fail(), false)
  assert.equal(run.fail(), false)
  assert.equal(run.fail(), true)
  assert.equal(run.fail(), true)
  run.reset()
  assert.equal(run.count, 0)
  assert.equal(run.fail(), false)
  assert.throws(() => new FailureRun(0), RangeError)
})

test('failures below the threshold, or broken by a good answer, never probe', async () => {
  const { calls, probe } = scriptedProbe('unhealthy')
  const circuit = new SinkCircuit({ failureThreshold: 3, halfOpenAfterMs: 50, probe })
  for (let i = 0; i < 10; i++) {
    circuit.recordFailure()
    circuit.recordFailure()
    circuit.recordHealthy()
  }
  await sleep(20)
  assert.equal(calls.count, 0)
  assert.equal(circuit.state(), 'closed')
  circuit.close()
})

test('a run of failures probes once; a healthy probe keeps the circuit closed', async () => {
  const { calls, probe } = scriptedProbe('healthy')
  const circuit = new SinkCircuit({ failureThreshold: 3, halfOpenAfterMs: 50, probe })
  const seen = watch(circuit)
  const epoch = circuit.healthEpoch
  for (let i = 0; i < 6; i++) circuit.recordFailure()
  assert.equal(await circuit.confirmHealth(), 'healthy')
  assert.equal(calls.count, 1, 'concurrent callers share one probe')
  assert.equal(circuit.state(), 'closed')
  assert.deepEqual(seen, [])
  assert.ok(circuit.healthEpoch > epoch, 'a healthy probe counts as evidence')
  circuit.close()
})

test('a failed probe opens the circuit, and recovery closes it by itself', async () => {
  const { calls, probe } = scriptedProbe('unhealthy', 'unhealthy', 'healthy')
  const circuit = new SinkCircuit({ failureThreshold: 2, halfOpenAfterMs: 40, probe })
  const seen = watch(circuit)
  circuit.recordFailure()
  circuit.recordFailure()
  assert.equal(await circuit.confirmHealth(), 'unhealthy')
  assert.equal(circuit.state(), 'open')
  assert.equal(await circuit.confirmHealth(), 'unhealthy', 'no extra probe while open')
  assert.equal(calls.count, 1)
  const started = performance.now()
  await circuit.waitUntilClosed(AbortSignal.timeout(2000))
  const waited = performance.now() - started
  assert.equal(circuit.state(), 'closed')
  assert.equal(calls.count, 3, 'one failed recovery probe, then a good one')
  assert.ok(waited >= 70, `two half-open periods passed (${waited} ms)`)
  assert.deepEqual(seen, ['open', 'half-open', 'open', 'half-open', 'closed'])
  circuit.close()
})

test('waitUntilClosed resolves at once when closed, and rejects on abort or close', async () => {
  const { probe } = scriptedProbe('unhealthy', 'unhealthy', 'unhealthy', 'unhealthy')
  const circuit = new SinkCircuit({ failureThreshold: 1, halfOpenAfterMs: 10_000, probe })
  await circuit.waitUntilClosed()
  circuit.recordFailure()
  await circuit.confirmHealth()
  assert.equal(circuit.state(), 'open')
  const controller = new AbortController()
  const aborted = circuit.waitUntilClosed(controller.signal)
  controller.abort(new Error('stop waiting'))
  await assert.rejects(aborted, /stop waiting/)
  const pending = circuit.waitUntilClosed()
  circuit.close()
  await assert.rejects(pending, { name: 'AbortError' })
})
