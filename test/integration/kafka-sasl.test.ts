/**
 * Kafka with SASL/PLAIN (issue #7): the launcher starts brokers of this test's own whose client
 * listener requires SASL/PLAIN, once in plain text (SASL_PLAINTEXT) and once over TLS (SASL_SSL, with
 * the launcher's self-signed certificate), and
 * - a client without credentials, with a wrong password or (TLS) without TLS gets nothing from it;
 * - `pipeline producer` and `pipeline consumer` processes configured with KAFKA_SASL_* (and KAFKA_TLS +
 *   KAFKA_TLS_CA_FILE) carry Prism's records through it to the Analytics mock;
 * - with a wrong password each service stops at start-up with one line naming the cause and the code
 *   PIPELINE_KAFKA_AUTH_FAILED, never echoing the password; a service that does not trust the TLS
 *   certificate stops with one line naming the certificate problem (PIPELINE_KAFKA_TLS_FAILED);
 * - the broker's own logs and console never show a password, and its config file is private.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Config } from '../../src/config/env.ts'
import { kafkaAnswers } from '../../src/infra/kafka.ts'
import { type MockAnalytics, startMockAnalytics } from '../../src/services/mock-analytics/server.ts'
import { consumerEnv } from '../helpers/consumer-process.ts'
import { uniqueName } from '../helpers/env.ts'
import { readTopicAs } from '../helpers/kafka.ts'
import { PipelineProcess, parseLogLine } from '../helpers/pipeline-process.ts'
import { type SaslBroker, startSaslBroker } from '../helpers/sasl-broker.ts'
import { waitFor } from '../helpers/wait.ts'

// Characters JAAS and Java properties files treat specially: the launcher must escape them.
const PASSWORD = `sasl-"quoted"\\back\\slash-ö-${Date.now().toString(36)}`
const processes: PipelineProcess[] = []
let mock: MockAnalytics

before(async () => {
  mock = await startMockAnalytics({ port: 0 })
})
after(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGTERM', 15_000)))
  await mock?.close()
})

/** Runs `pipeline <command>` with `config` (a broker's, see {@link SaslBroker.config}). */
function run(command: string, config: Config, prefix: string): PipelineProcess {
  const child = new PipelineProcess(command, {
    command,
    env: consumerEnv(config, prefix, { LOG_LEVEL: 'debug' }),
  })
  processes.push(child)
  return child
}

/** The single line a service that failed to start printed, parsed, with its exit checked. */
async function startupFailure(child: PipelineProcess): Promise<Record<string, unknown> & { msg: string }> {
  assert.equal(await child.exited, 'exit 1', `${child.name} stops:\n${child.tail()}`)
  const lines = child.lines.map((l) => l.text)
  assert.equal(lines.length, 1, `one line:\n${lines.join('\n')}`)
  const line = parseLogLine(lines[0] ?? '')
  assert.ok(line, `a JSON log line: ${lines[0]}`)
  assert.match(line.msg, new RegExp(`^${child.name} failed to start: `))
  assert.doesNotMatch(line.msg, /\n|\s+at \S+ \(/, 'no stack trace in the message')
  assert.ok(!lines[0]?.includes(PASSWORD), 'the password is not shown')
  return line
}

for (const tls of [false, true]) {
  const listener = tls ? 'SASL_SSL' : 'SASL_PLAINTEXT'
  describe(`a ${listener} broker`, () => {
    let broker: SaslBroker
    before(async () => {
      broker = await startSaslBroker({ username: 'pipeline', password: PASSWORD, tls })
    })
    after(() => broker?.stop())

    /** The broker's configuration for one test: its own topics, group and the Analytics mock. */
    const saslConfig = (env: Record<string, string> = {}): Config =>
      broker.config({
        ANALYTICS_URL: `${mock.url}/analytics/data`,
        TOPIC_REFRESH: uniqueName('refresh'),
        CONSUMER_GROUP: uniqueName('group'),
        ...env,
      })

    test('refuses clients without SASL credentials, with a wrong password or without TLS', async () => {
      const { brokers, caFile } = broker.kafka
      const ca = caFile === undefined ? undefined : readFileSync(caFile, 'utf8')
      assert.equal(tls, ca !== undefined, 'a TLS broker hands out its certificate')
      const user = { username: 'pipeline', password: PASSWORD }
      assert.equal(await kafkaAnswers(brokers, user, ca), true)
      assert.equal(await kafkaAnswers(brokers, { ...user, password: 'wrong' }, ca), false)
      assert.equal(await kafkaAnswers(brokers, { ...user, username: 'nobody' }, ca), false)
      assert.equal(await kafkaAnswers(brokers, undefined, ca), false, 'a client without SASL gets no answer')
      if (tls) assert.equal(await kafkaAnswers(brokers, user), false, 'nor a client without TLS')
      const mode = statSync(join(broker.dataDir, 'server.properties')).mode & 0o777
      assert.equal(mode, 0o600, 'the config holding the users is readable by its owner only')
    })

    test('producer and consumer processes move Prism’s records through it to Analytics', async () => {
      mock.store.reset()
      const config = saslConfig()
      const prefix = uniqueName('sasl')
      const consumer = run('consumer', config, prefix)
      await Promise.all([
        consumer.waitForLog(/^consumer-apply: joined/),
        consumer.waitForLog(/^consumer-deliver: joined/),
      ])
      const producer = run('producer', config, prefix)
      await waitFor(
        'the brief’s four views at Analytics',
        () => mock.store.stats().accepted >= 4,
        120_000,
      ).catch((error: unknown) => {
        throw new Error(
          `${String(error)}\n--- producer\n${producer.tail()}\n--- consumer\n${consumer.tail()}`,
        )
      })
      assert.deepEqual([...mock.store.views().keys()].sort(), [
        'customer:1',
        'customer:2',
        'product:100',
        'product:200',
      ])
      const customers = await readTopicAs(config, config.TOPIC_CUSTOMERS, { count: 2 })
      assert.deepEqual(customers.map((m) => m.key).sort(), ['1', '2'], `read back over ${listener} too`)
      assert.ok(
        producer.lines.some((l) => /Customer 1 delivered successfully/.test(l.text)),
        'the producer reported its deliveries',
      )
      assert.equal(await producer.stop(), 'exit 0')
      assert.equal(await consumer.stop(), 'exit 0')
      for (const child of [producer, consumer]) {
        assert.ok(
          !child.lines.some((l) => l.text.includes(PASSWORD)),
          `${child.name} never shows the password`,
        )
        assert.ok(!child.lines.some((l) => l.stream === 'stderr'), `${child.name} wrote nothing to stderr`)
      }
    })

    for (const command of ['producer', 'consumer']) {
      test(`${command} with a wrong password: one line naming the auth failure and its code`, async () => {
        const wrong = `wrong-${Date.now().toString(36)}-password`
        const line = await startupFailure(
          run(command, saslConfig({ KAFKA_SASL_PASSWORD: wrong }), uniqueName('bad')),
        )
        assert.match(line.msg, new RegExp(`^${command} failed to start: Kafka authentication failed`))
        assert.match(line.msg, /refused the SASL credentials/)
        assert.match(line.msg, /KAFKA_SASL_PASSWORD/, 'says what to check')
        assert.match(line.msg, /\[PIPELINE_KAFKA_AUTH_FAILED\]$/)
        assert.equal((line.err as { code?: unknown }).code, 'PIPELINE_KAFKA_AUTH_FAILED')
        assert.ok(!JSON.stringify(line).includes(wrong), 'the wrong password is not shown either')
      })
    }

    if (tls)
      test('a producer that does not trust the certificate: one line naming it', async () => {
        const { KAFKA_TLS_CA_FILE: _trusted, ...config } = saslConfig()
        const line = await startupFailure(run('producer', config as Config, uniqueName('untrusted')))
        assert.match(line.msg, /^producer failed to start: Kafka TLS failed .*certificate was not accepted/)
        assert.match(line.msg, /KAFKA_TLS_CA_FILE/, 'says what to set')
        assert.match(line.msg, /\[PIPELINE_KAFKA_TLS_FAILED\]$/)
        assert.equal((line.err as { code?: unknown }).code, 'PIPELINE_KAFKA_TLS_FAILED')
      })

    test('its logs never show a password', () => {
      const logs = ['broker.log', 'kafka.out'].map((file) => readFileSync(join(broker.dataDir, file), 'utf8'))
      assert.ok((logs[0] ?? '').includes('Kafka Server started'), 'the broker log is the one written')
      for (const log of logs) assert.ok(!log.includes(PASSWORD.slice(0, 12)) && !log.includes('back\\slash'))
    })
  })
}
