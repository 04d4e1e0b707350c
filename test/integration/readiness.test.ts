/**
 * `/readyz` and `/healthz` (design §2). The consumer is not ready until Redis is connected and both
 * stages joined their groups, turns not ready while Redis is unreachable and ready again once it is
 * back; the producer likewise follows Redis. `/healthz` (liveness) answers 200 throughout. Redis is
 * taken off the network with a TCP proxy in front of the test Redis.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { freePort } from '../../src/infra/ports.ts'
import { type ConsumerService, startConsumerService } from '../../src/services/consumer/service.ts'
import { createProducerRuntime } from '../../src/services/producer/service.ts'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { testInfra } from '../helpers/env.ts'
import { captureLogs } from '../helpers/producer.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'
import { waitFor } from '../helpers/wait.ts'

interface Readiness {
  readonly status: number
  readonly ready: boolean
  readonly checks: Record<string, boolean>
}

async function readyz(base: string): Promise<Readiness> {
  const response = await fetch(`${base}/readyz`)
  const body = (await response.json()) as { ready: boolean; checks: Record<string, boolean> }
  return { status: response.status, ...body }
}

async function healthz(base: string): Promise<number> {
  return (await fetch(`${base}/healthz`)).status
}

let proxy: TcpProxy
let fixture: PipelineFixture
let metricsPort: number

before(async () => {
  proxy = await startTcpProxy(Number(new URL(testInfra.redisUrl).port))
  await proxy.down()
  metricsPort = await freePort()
  fixture = await pipelineFixture({
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    METRICS_PORT: String(metricsPort),
  })
})
after(async () => {
  await fixture.close()
  await proxy.close()
})

test('consumer: 503 until Redis is connected and both groups are joined, 503 while Redis is gone, 200 after', async () => {
  const base = `http://127.0.0.1:${metricsPort}`
  const starting = startConsumerService(fixture.config, captureLogs('consumer').logger, {
    prefix: fixture.prefix,
  })
  let consumer: ConsumerService | undefined
  try {
    // Redis refuses connections: the service waits for it, already serving its health endpoints.
    await waitFor('the health server', async () => (await healthz(base)) === 200)
    const early = await readyz(base)
    assert.deepEqual(early, { status: 503, ready: false, checks: { redis: false, kafka: false } })
    await new Promise((resolve) => setTimeout(resolve, 1000))
    assert.equal((await readyz(base)).status, 503, 'still not ready while Redis stays unreachable')

    await proxy.up()
    consumer = await starting
    const ready = await waitFor('readyz 200', async () => {
      const r = await readyz(base)
      return r.status === 200 ? r : undefined
    })
    assert.deepEqual(ready, { status: 200, ready: true, checks: { redis: true, kafka: true } })

    await proxy.down()
    const lost = await waitFor('readyz 503 with Redis down', async () => {
      const r = await readyz(base)
      return r.status === 503 ? r : undefined
    })
    assert.equal(lost.checks.redis, false, 'the Redis check is what failed')
    assert.equal(await healthz(base), 200, 'the process is alive: liveness stays 200')

    await proxy.up()
    await waitFor('readyz 200 once Redis is back', async () => (await readyz(base)).status === 200)
  } finally {
    await proxy.up()
    await (consumer ?? (await starting.catch(() => undefined)))?.close()
  }
})

test('producer: 503 while Redis is unreachable, 200 once it is connected', async () => {
  await proxy.down()
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const config = { ...fixture.config, METRICS_PORT: port }
  const starting = createProducerRuntime(config, captureLogs('producer').logger, { prefix: fixture.prefix })
  try {
    await waitFor('the health server', async () => (await healthz(base)) === 200)
    assert.deepEqual(await readyz(base), {
      status: 503,
      ready: false,
      checks: { redis: false, kafka: false },
    })
    await proxy.up()
    await starting
    assert.deepEqual(await readyz(base), { status: 200, ready: true, checks: { redis: true, kafka: true } })
    await proxy.down()
    await waitFor('readyz 503 with Redis down', async () => (await readyz(base)).status === 503)
    assert.equal(await healthz(base), 200)
  } finally {
    await proxy.up()
    await (await starting.catch(() => undefined))?.close()
  }
})
