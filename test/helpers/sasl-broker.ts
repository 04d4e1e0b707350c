/**
 * A Kafka broker of a test's own whose client listener requires SASL/PLAIN (over TLS with `tls`),
 * started by the local launcher on free ports in a fresh data directory, and the configuration that
 * points the pipeline at it.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../../src/config/env.ts'
import { type LocalKafka, startKafka } from '../../src/infra/kafka.ts'
import { cacheDir } from '../../src/infra/paths.ts'
import { freePort } from '../../src/infra/ports.ts'
import { testConfig } from './producer.ts'

/** A running SASL broker. */
export interface SaslBroker {
  readonly kafka: LocalKafka
  readonly dataDir: string
  readonly username: string
  readonly password: string
  /** {@link testConfig} on this broker with SASL/PLAIN as `username`/`password` (overridable in `env`). */
  config(env?: Record<string, string>): Config
  /** Stops the broker; its data directory is removed unless `keep` (a failed test's evidence). */
  stop(keep?: boolean): Promise<void>
}

/**
 * Starts a broker accepting `username` with `password` (a random one by default); with `tls`, on a
 * SASL_SSL listener with the launcher's self-signed certificate, which the config trusts.
 * The broker's heap is kept small: other brokers share the machine.
 */
export async function startSaslBroker(
  options: { username?: string; password?: string; tls?: boolean } = {},
): Promise<SaslBroker> {
  const username = options.username ?? 'pipeline'
  const password = options.password ?? `kafka-${randomBytes(12).toString('hex')}`
  const runs = join(cacheDir, 'test-runs')
  mkdirSync(runs, { recursive: true })
  const dataDir = mkdtempSync(join(runs, 'sasl-'))
  const kafka = await startKafka({
    dataDir,
    port: await freePort(),
    heapMb: 512,
    sasl: { users: { [username]: password } },
    ...(options.tls ? { tls: true } : {}),
  })
  const tls = kafka.caFile === undefined ? {} : { KAFKA_TLS: 'true', KAFKA_TLS_CA_FILE: kafka.caFile }
  return {
    kafka,
    dataDir,
    username,
    password,
    config: (env = {}) =>
      testConfig({
        KAFKA_BROKERS: kafka.brokers.join(','),
        KAFKA_SASL_MECHANISM: 'PLAIN',
        KAFKA_SASL_USERNAME: username,
        KAFKA_SASL_PASSWORD: password,
        ...tls,
        ...env,
      }),
    async stop(keep = false) {
      await kafka.stop()
      if (!keep) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
