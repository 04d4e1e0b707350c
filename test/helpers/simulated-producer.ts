/**
 * A producer polling the source simulator (instead of Prism) against the test Kafka and Redis: each
 * fixture has its own simulator, topics and Redis prefix, so tests do not see each other's data.
 */
import assert from 'node:assert/strict'
import type { Config } from '../../src/config/env.ts'
import { type CycleSummary, runCycle } from '../../src/services/producer/cycle.ts'
import { createProducerRuntime, type ProducerRuntime } from '../../src/services/producer/service.ts'
import {
  type SourceSimulator,
  type SourceSimulatorOptions,
  startSourceSimulator,
} from '../../src/simulator/server.ts'
import type { SourceSpec } from '../../src/sources/catalog.ts'
import { uniqueName } from './env.ts'
import { type ReadMessage, readTopic } from './kafka.ts'
import { type CapturedLogs, captureLogs, testConfig } from './producer.ts'

/** The test configuration with both sources pointing at `sim`. */
export function simulatorConfig(sim: SourceSimulator, env: Record<string, string> = {}): Config {
  return testConfig({ CRM_BASE_URL: sim.url, INVENTORY_BASE_URL: sim.url, ...env })
}

/** A simulator, and a producer runtime polling it. */
export interface SimulatedProducer {
  readonly sim: SourceSimulator
  readonly config: Config
  readonly logs: CapturedLogs
  readonly runtime: ProducerRuntime
  /** The spec of source `crm` or `inventory`. */
  source(name: string): SourceSpec
  /** One cycle of a source, as the scheduler would run it. */
  cycle(name: string, signal?: AbortSignal): Promise<CycleSummary>
  /** Closes the runtime, then the simulator. */
  close(): Promise<void>
}

/** Options of {@link startSimulatedProducer}. */
export interface SimulatedProducerOptions {
  /** How the simulator starts; small data sets keep tests fast. */
  readonly simulator?: SourceSimulatorOptions
  /** Environment overrides of the producer's configuration. */
  readonly env?: Record<string, string>
}

/** Starts a simulator and a producer runtime on it (topics created, Redis connected). */
export async function startSimulatedProducer(
  options: SimulatedProducerOptions = {},
): Promise<SimulatedProducer> {
  const sim = await startSourceSimulator({ port: 0, ...options.simulator })
  const config = simulatorConfig(sim, options.env)
  const logs = captureLogs('producer')
  let runtime: ProducerRuntime
  try {
    runtime = await createProducerRuntime(config, logs.logger, { prefix: uniqueName('sim') })
  } catch (error) {
    await sim.close()
    throw error
  }
  const source = (name: string) => {
    const spec = runtime.sources.find((s) => s.name === name)
    assert.ok(spec, `no source ${name}`)
    return spec
  }
  return {
    sim,
    config,
    logs,
    runtime,
    source,
    cycle: (name, signal) => runCycle(runtime.context, source(name), signal),
    async close() {
      await runtime.close()
      await sim.close()
    },
  }
}

/**
 * Every message of `topic`, asserting there are exactly `expected`: waits long for the first ones
 * (a fresh consumer group takes a while to join), then `settleMs` more for any extra message.
 */
export async function readExactly(topic: string, expected: number, settleMs = 1500): Promise<ReadMessage[]> {
  const messages = await readTopic(topic, {
    count: expected,
    idleMs: expected === 0 ? settleMs : 10_000,
    settleMs,
  })
  assert.equal(messages.length, expected, `${topic} holds ${expected} messages`)
  return messages
}
