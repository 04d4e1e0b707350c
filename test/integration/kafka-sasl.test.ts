/**
 * Kafka with SASL/PLAIN (issue #7): the launcher starts a broker of this test's own whose client
 * listener requires SASL/PLAIN, and
 * - a client without credentials, or with a wrong password, gets nothing from it;
 * - `pipeline producer` and `pipeline consumer` processes configured with KAFKA_SASL_* carry Prism's
 *   records through it to the Analytics mock;
 * - with a wrong password each service stops at start-up with one line naming the cause and the code
 *   PIPELINE_KAFKA_AUTH_FAILED, never echoing the password;
 * - the broker's own logs and console never show a password, and its config file is private.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
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
let broker: SaslBroker
let mock: MockAnalytics
const processes: PipelineProcess[] = []

before(async () => {
  broker = await startSaslBroker({ username: 'pipeline', password: PASSWORD })
  mock = await startMockAnalytics({ port: 0 })
})
after(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGTERM', 15_000)))
  await mock?.close()
  await broker?.stop()
})

/** Runs `pipeline <command>` with `config` (the broker's, see {@link SaslBroker.config}). */
function run(command: string, config: Config, prefix: string): PipelineProcess {
  const child = new PipelineProcess(command, {
    command,
    env: consumerEnv(config, prefix, { LOG_LEVEL: 'debug' }),
  })
  processes.push(child)
  return child
}

/** The broker's configuration for this test: its own topics, group and Analytics mock. */
const saslConfig = (env: Record<string, string> = {}): Config =>
  broker.config({
    ANALYTICS_URL: `${mock.url}/analytics/data`,
    TOPIC_REFRESH: uniqueName('refresh'),
    CONSUMER_GROUP: uniqueName('group'),
    ...env,
  })

test('the broker refuses clients without SASL credentials or with a wrong password', async () => {
  const { brokers } = broker.kafka
  assert.equal(await kafkaAnswers(brokers, { username: 'pipeline', password: PASSWORD }), true)
  assert.equal(await kafkaAnswers(brokers, { username: 'pipeline', password: 'wrong' }), false)
  assert.equal(await kafkaAnswers(brokers, { username: 'nobody', password: PASSWORD }), false)
  assert.equal(await kafkaAnswers(brokers), false, 'a client without SASL gets no answer')
  const mode = statSync(join(broker.dataDir, 'server.properties')).mode & 0o777
  assert.equal(mode, 0o600, 'the config holding the users is readable by its owner only')
})

test('producer and consumer processes move Prism’s records through the SASL broker to Analytics', async () => {
  const config = saslConfig()
  const prefix = uniqueName('sasl')
  const consumer = run('consumer', config, prefix)
  await Promise.all([
    consumer.waitForLog(/^consumer-apply: joined/),
    consumer.waitForLog(/^consumer-deliver: joined/),
  ])
  const producer = run('producer', config, prefix)
  await waitFor('the brief’s four views at Analytics', () => mock.store.stats().accepted >= 4, 120_000).catch(
    (error: unknown) => {
      throw new Error(`${String(error)}\n--- producer\n${producer.tail()}\n--- consumer\n${consumer.tail()}`)
    },
  )
  assert.deepEqual([...mock.store.views().keys()].sort(), [
    'customer:1',
    'customer:2',
    'product:100',
    'product:200',
  ])
  const customers = await readTopicAs(config, config.TOPIC_CUSTOMERS, { count: 2 })
  assert.deepEqual(customers.map((m) => m.key).sort(), ['1', '2'], 'read back over SASL too')
  assert.ok(
    producer.lines.some((l) => /Customer 1 delivered successfully/.test(l.text)),
    'the producer reported its deliveries',
  )
  assert.equal(await producer.stop(), 'exit 0')
  assert.equal(await consumer.stop(), 'exit 0')
  for (const child of [producer, consumer])
    assert.ok(!child.lines.some((l) => l.text.includes(PASSWORD)), `${child.name} never shows the password`)
})

for (const command of ['producer', 'consumer']) {
  test(`${command} with a wrong password: exit 1 with one line naming the auth failure and its code`, async () => {
    const wrong = `wrong-${Date.now().toString(36)}-password`
    const child = run(command, saslConfig({ KAFKA_SASL_PASSWORD: wrong }), uniqueName('bad'))
    assert.equal(await child.exited, 'exit 1', `${command} stops:\n${child.tail()}`)
    const lines = child.lines.map((l) => l.text)
    assert.equal(lines.length, 1, `one line:\n${lines.join('\n')}`)
    const line = parseLogLine(lines[0] ?? '')
    assert.ok(line, `a JSON log line: ${lines[0]}`)
    assert.match(line.msg, new RegExp(`^${command} failed to start: Kafka authentication failed`))
    assert.match(line.msg, /refused the SASL credentials/)
    assert.match(line.msg, /KAFKA_SASL_PASSWORD/, 'says what to check')
    assert.match(line.msg, /\[PIPELINE_KAFKA_AUTH_FAILED\]$/)
    assert.doesNotMatch(line.msg, /\n|\s+at \S+ \(/, 'no stack trace in the message')
    assert.equal((line.err as { code?: unknown }).code, 'PIPELINE_KAFKA_AUTH_FAILED')
    for (const secret of [wrong, PASSWORD])
      assert.ok(!lines[0]?.includes(secret), 'neither the wrong nor the right password is shown')
  })
}

test('the broker’s logs never show a password', async () => {
  const logs = ['broker.log', 'kafka.out'].map((file) => readFileSync(join(broker.dataDir, file), 'utf8'))
  assert.ok((logs[0] ?? '').includes('Kafka Server started'), 'the broker log is the one written')
  for (const log of logs) assert.ok(!log.includes(PASSWORD.slice(0, 12)) && !log.includes('back\\slash'))
})
