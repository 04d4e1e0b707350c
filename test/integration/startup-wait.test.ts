/**
 * A service started while Kafka cannot be reached waits for it (a warning per attempt, not ready
 * meanwhile) and comes up once the broker answers; after `KAFKA_STARTUP_TIMEOUT_MS` it gives up with
 * the last error, and so does a service that cannot reach Redis within `REDIS_STARTUP_TIMEOUT_MS`. A
 * stop signal during a wait for Kafka or Redis at start-up ends it: exit 0. The broker is taken off the network with a TCP proxy in front of its bootstrap
 * address (the client reaches the broker's advertised address only through the metadata it gets there).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ErrorCodes } from '../../src/errors.ts'
import { freePort } from '../../src/infra/ports.ts'
import { type ConsumerService, startConsumerService } from '../../src/services/consumer/service.ts'
import { createProducerRuntime } from '../../src/services/producer/service.ts'
import { connectRedis } from '../../src/state/redis.ts'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { consumerEnv } from '../helpers/consumer-process.ts'
import { testInfra } from '../helpers/env.ts'
import { PipelineProcess } from '../helpers/pipeline-process.ts'
import { captureLogs } from '../helpers/producer.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'
import { waitFor } from '../helpers/wait.ts'

let proxy: TcpProxy
let fixture: PipelineFixture

before(async () => {
  const [host, port] = (testInfra.kafkaBrokers[0] ?? '').split(':')
  assert.equal(host, '127.0.0.1', 'the test broker listens on 127.0.0.1')
  proxy = await startTcpProxy(Number(port))
  fixture = await pipelineFixture({ KAFKA_BROKERS: `127.0.0.1:${proxy.port}` })
})
after(async () => {
  await fixture.close()
  await proxy.close()
})

const unreachableWarnings = (logs: ReturnType<typeof captureLogs>) =>
  logs.lines.filter((line) => line.code === ErrorCodes.KAFKA_UNREACHABLE)

test('consumer: waits for an unreachable Kafka, not ready meanwhile, and starts once it answers', async () => {
  await proxy.down()
  const metricsPort = await freePort()
  const base = `http://127.0.0.1:${metricsPort}`
  const logs = captureLogs('consumer')
  const starting = startConsumerService({ ...fixture.config, METRICS_PORT: metricsPort }, logs.logger, {
    prefix: fixture.prefix,
  })
  let consumer: ConsumerService | undefined
  try {
    await waitFor('two warnings about Kafka', async () => unreachableWarnings(logs).length >= 2)
    const [first] = unreachableWarnings(logs)
    assert.match(
      String(first?.msg),
      new RegExp(
        `^Kafka not reachable yet at 127\\.0\\.0\\.1:${proxy.port} \\(.*ECONNREFUSED.*\\); trying again in 0\\.5 s`,
      ),
    )
    assert.equal((await fetch(`${base}/readyz`)).status, 503, 'not ready while waiting')
    assert.equal((await fetch(`${base}/healthz`)).status, 200, 'alive while waiting')

    await proxy.up()
    consumer = await starting
    await consumer.ready
    assert.equal((await fetch(`${base}/readyz`)).status, 200)
    assert.ok(
      logs.messages().includes(`Kafka reached at 127.0.0.1:${proxy.port}`),
      'says when the broker answered',
    )
  } finally {
    await proxy.up()
    await (consumer ?? (await starting.catch(() => undefined)))?.close()
  }
})

test('producer: gives up after KAFKA_STARTUP_TIMEOUT_MS with the last error', async () => {
  await proxy.down()
  const logs = captureLogs('producer')
  const started = Date.now()
  try {
    await assert.rejects(
      createProducerRuntime({ ...fixture.config, KAFKA_STARTUP_TIMEOUT_MS: 5000 }, logs.logger, {
        prefix: fixture.prefix,
      }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, ErrorCodes.KAFKA_TOPIC_SETUP_FAILED)
        assert.match(error.message, /ECONNREFUSED/)
        return true
      },
    )
    assert.ok(unreachableWarnings(logs).length >= 1, 'it tried again before giving up')
    assert.ok(
      Date.now() - started < 15_000,
      'within the configured wait (5 s and the last attempt), not the default 5 min',
    )
  } finally {
    await proxy.up()
  }
})

test('producer: gives up on an unreachable Redis after REDIS_STARTUP_TIMEOUT_MS, naming the error, not the password', async () => {
  const nobody = await freePort()
  const logs = captureLogs('producer')
  const started = Date.now()
  await assert.rejects(
    createProducerRuntime(
      {
        ...fixture.config,
        REDIS_URL: `redis://pipeline:sekret@127.0.0.1:${nobody}`,
        REDIS_STARTUP_TIMEOUT_MS: 2000,
      },
      logs.logger,
      { prefix: fixture.prefix },
    ),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, ErrorCodes.REDIS_UNREACHABLE)
      assert.match(
        error.message,
        new RegExp(
          `^Redis not reachable at redis://pipeline:\\*\\*\\*@127\\.0\\.0\\.1:${nobody} within 2000 ms`,
        ),
      )
      assert.match(error.message, /ECONNREFUSED/)
      assert.doesNotMatch(error.message, /sekret/)
      return true
    },
  )
  assert.ok(Date.now() - started < 10_000, 'within the configured wait, not the default 5 min')
  assert.ok(
    logs.messages().some((message) => message.startsWith('Redis connection problem')),
    'it warned while it waited',
  )
})

test('REDIS_STARTUP_TIMEOUT_MS=0: a reachable Redis is used, an unreachable one fails at its first error', async () => {
  const logger = captureLogs('producer').logger
  const redis = await connectRedis(testInfra.redisUrl, logger, { waitMs: 0 })
  try {
    assert.equal(await redis.ping(), 'PONG')
  } finally {
    await redis.close()
  }
  const nobody = await freePort()
  const started = Date.now()
  await assert.rejects(connectRedis(`redis://127.0.0.1:${nobody}`, logger, { waitMs: 0 }), {
    code: ErrorCodes.REDIS_UNREACHABLE,
  })
  assert.ok(Date.now() - started < 2000, 'at the first refused connection')
})

/** Starts `pipeline <command>` as a process on the test's state, `env` over the fixture's. */
function serviceProcess(command: string, env: Record<string, string>): PipelineProcess {
  return new PipelineProcess(command, {
    command,
    env: consumerEnv(fixture.config, fixture.prefix, { LOG_LEVEL: 'info', ...env }),
  })
}

/** Once `service` logs `waiting`, SIGTERM: it exits 0 and says it stopped during start-up. */
async function stopsDuringStartUp(service: PipelineProcess, waiting: RegExp): Promise<void> {
  await service.waitForLog(waiting)
  // The waits for Kafka and Redis last 5 min by default; the stop gives up after 20 s.
  assert.equal(await service.stop('SIGTERM', 20_000), 'exit 0')
  const said = `${service.name} stopped during start-up`
  assert.ok(
    service.lines.some((line) => line.text.includes(said)),
    service.tail(),
  )
}

test('SIGTERM while a service waits for Kafka at start-up: it stops at once, exit 0', async () => {
  await proxy.down()
  const consumer = serviceProcess('consumer', {})
  try {
    await stopsDuringStartUp(consumer, /^Kafka not reachable yet/)
  } finally {
    await consumer.stop('SIGKILL')
    await proxy.up()
  }
})

test('SIGTERM while a service waits for Redis at start-up: it stops at once, exit 0', async () => {
  const nobody = await freePort()
  const producer = serviceProcess('producer', { REDIS_URL: `redis://127.0.0.1:${nobody}` })
  try {
    await stopsDuringStartUp(producer, /^Redis connection problem/)
  } finally {
    await producer.stop('SIGKILL')
  }
})
