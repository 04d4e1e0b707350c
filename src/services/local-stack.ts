/**
 * `pipeline up` (what `npm start` runs): the whole pipeline on this machine — real Kafka, Redis,
 * the Prism mock of CRM + Inventory, the mock Analytics, then the producer and the consumer — with
 * their output interleaved like `docker compose up`. Ctrl-C stops everything, services first.
 */
import { join } from 'node:path'
import { type Config, loadConfig } from '../config/env.ts'
import { describeError } from '../errors.ts'
import { type ManagedChild, spawnChild } from '../infra/child.ts'
import { type KafkaSaslOptions, launcherSaslFromConfig } from '../infra/kafka-sasl.ts'
import { cacheDir, projectRoot } from '../infra/paths.ts'
import { startLocalInfra } from '../infra/stack.ts'
import { redactUrl } from '../observability/redact.ts'

function portFromEnv(name: string): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return undefined
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(
      `${name}=${JSON.stringify(raw)} is not a TCP port; expected a whole number from 0 to 65535`,
    )
  }
  return port
}

/**
 * Runs the local stack until SIGINT/SIGTERM.
 *
 * @param services the CLI subcommands to start after the infrastructure, in order
 * @returns the exit code
 */
export async function runLocalStack(services: readonly string[]): Promise<number> {
  const say = (line: string) => process.stdout.write(`pipeline | ${line}\n`)
  let config: Config
  let ports: { kafka?: number; redis?: number; prism?: number }
  let kafkaSasl: KafkaSaslOptions | undefined
  try {
    config = loadConfig()
    // The services' SASL/PLAIN user is the one the launched broker accepts.
    kafkaSasl = launcherSaslFromConfig(config)
    ports = {}
    const kafka = portFromEnv('KAFKA_PORT')
    const redis = portFromEnv('REDIS_PORT')
    const prism = portFromEnv('PRISM_PORT')
    if (kafka !== undefined) ports.kafka = kafka
    if (redis !== undefined) ports.redis = redis
    if (prism !== undefined) ports.prism = prism
  } catch (error) {
    console.error(`pipeline up: ${describeError(error)}`)
    return 1
  }
  const dataDir = join(cacheDir, 'local')
  let infra: Awaited<ReturnType<typeof startLocalInfra>>
  try {
    infra = await startLocalInfra({
      dataDir,
      ports,
      log: say,
      ...(kafkaSasl ? { kafkaSasl } : {}),
      // KAFKA_TLS asks for a TLS broker; the services then trust its certificate (KAFKA_TLS_CA_FILE).
      ...(config.KAFKA_TLS ? { kafkaTls: true } : {}),
    })
  } catch (error) {
    console.error(`pipeline up: ${describeError(error)}`)
    return 1
  }
  const children: ManagedChild[] = []
  // The services' output reaches a person through our pipe: keep it pretty when we are on a terminal.
  const format = process.stdout.isTTY ? { LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty' } : {}
  // The mock keeps what it accepted beside the broker's and Redis's data: restarted with their state,
  // it must still hold the views the consumer's delivery records say it holds.
  const mockState = { MOCK_ANALYTICS_STATE_FILE: join(dataDir, 'mock-analytics.jsonl') }
  const env = { ...mockState, ...process.env, ...infra.env, ...format }
  for (const command of services) {
    children.push(
      spawnChild({
        name: command,
        command: process.execPath,
        args: [join(projectRoot, 'src', 'cli.ts'), command],
        env,
        logFile: join(dataDir, 'logs', `${command}.log`),
        echoPrefix: `${command.padEnd(14)} | `,
      }),
    )
  }
  say(
    [
      'stack running (Ctrl-C stops it):',
      `Kafka ${infra.kafkaBrokers.join(',')}`,
      `Redis ${redactUrl(infra.redisUrl)}`,
      `CRM/Inventory mock ${infra.prismUrl ?? '(not started)'}`,
      `Analytics mock http://${config.MOCK_ANALYTICS_HOST}:${config.MOCK_ANALYTICS_PORT}`,
    ].join('\n  '),
  )
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  say('stopping')
  for (const child of children.reverse()) await child.stop(30_000)
  await infra.stop()
  say('stopped')
  return 0
}
