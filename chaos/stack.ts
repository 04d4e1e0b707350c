/**
 * The infrastructure of one chaos run, all of it its own (never the shared test broker): a Kafka
 * broker and a Redis under the run folder, the source simulator and the analytics mock in this
 * process (so the runner can steer and inspect them), and a TCP proxy in front of the mock to take
 * the sink off the network while it keeps what it holds.
 *
 * Restarts keep data: Kafka restarts on the same data dir, port and controller port. Redis runs with
 * its append-only file and is restarted gracefully (SIGTERM: Redis fsyncs the AOF before it exits), so
 * no acknowledged write is lost; a crash of Redis (SIGKILL) under `appendfsync everysec` could lose
 * the last second of writes, after which a consumer would have committed offsets for state that
 * vanished. That is a property of the deployment (run Redis with `appendfsync always` or replicas if
 * it matters), not of the pipeline, so the chaos run restarts Redis the way an operator would.
 */
import { join } from 'node:path'
import { type LocalKafka, startKafka } from '../src/infra/kafka.ts'
import { freePort } from '../src/infra/ports.ts'
import { type LocalRedis, startRedis } from '../src/infra/redis.ts'
import { type MockAnalytics, startMockAnalytics } from '../src/services/mock-analytics/server.ts'
import { type SourceSimulator, startSourceSimulator } from '../src/simulator/server.ts'
import { startTcpProxy, type TcpProxy } from '../test/helpers/tcp-proxy.ts'

/** What {@link startChaosStack} needs. */
export interface ChaosStackOptions {
  readonly dataDir: string
  readonly customers: number
  readonly products: number
  readonly seed: number
}

/** The running infrastructure of a chaos run. */
export interface ChaosStack {
  readonly brokers: string[]
  readonly redisUrl: string
  readonly sim: SourceSimulator
  readonly mock: MockAnalytics
  /** The sink's address as the consumers know it. */
  readonly sink: TcpProxy
  /** Stops the broker (gracefully) and starts it again on the same data and ports; returns the new pid. */
  restartKafka(): Promise<number>
  /** SIGTERM to Redis (it persists the AOF first), then the same Redis again; returns the new pid. */
  restartRedis(): Promise<number>
  stop(): Promise<void>
}

/** Starts everything; on failure stops what already runs. */
export async function startChaosStack(options: ChaosStackOptions): Promise<ChaosStack> {
  const stops: Array<() => Promise<void>> = []
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined)
    stops.length = 0
  }
  try {
    const kafkaDir = join(options.dataDir, 'kafka')
    const redisDir = join(options.dataDir, 'redis')
    const [kafkaPort, redisPort] = [await freePort(), await freePort()]
    let kafka: LocalKafka = await startKafka({ dataDir: kafkaDir, port: kafkaPort })
    stops.push(() => kafka.stop())
    let redis: LocalRedis = await startRedis({ dataDir: redisDir, port: redisPort })
    stops.push(() => redis.stop())
    const sim = await startSourceSimulator({
      port: 0,
      customers: options.customers,
      products: options.products,
      seed: options.seed,
      pageSize: 1000,
    })
    stops.push(() => sim.close())
    const mock = await startMockAnalytics({ port: 0 })
    stops.push(() => mock.close())
    const sink = await startTcpProxy(mock.port)
    stops.push(() => sink.close())
    return {
      brokers: kafka.brokers,
      redisUrl: redis.url,
      sim,
      mock,
      sink,
      async restartKafka() {
        const controllerPort = kafka.controllerPort
        await kafka.stop()
        kafka = await startKafka({
          dataDir: kafkaDir,
          port: kafkaPort,
          controllerPort,
          readyTimeoutMs: 120_000,
        })
        return kafka.child.pid
      },
      async restartRedis() {
        await redis.stop()
        redis = await startRedis({ dataDir: redisDir, port: redisPort, readyTimeoutMs: 60_000 })
        return redis.child.pid
      },
      stop: stopAll,
    }
  } catch (error) {
    await stopAll()
    throw error
  }
}
