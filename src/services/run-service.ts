/**
 * The shared life cycle of a long-running `pipeline` process: validate configuration, start, then
 * on SIGTERM/SIGINT close gracefully within a deadline and exit 0. A start-up failure is one line; a
 * stop signal during start-up (waiting for Redis or Kafka) ends it and exits 0 as well.
 */
import { type Config, loadConfig, secretEnvVarNames } from '../config/env.ts'
import { describeError } from '../errors.ts'
import { createLogger, type Logger } from '../observability/logger.ts'

/** What a started service hands back: how to stop it. */
export interface RunningService {
  close(): Promise<void>
}

/**
 * Starts one service from the validated configuration. `stopping` aborts when a stop signal arrives
 * during start-up: waits for Redis or Kafka end then, and the start rejects after closing what it opened.
 */
export type ServiceStarter = (
  config: Config,
  logger: Logger,
  stopping: AbortSignal,
) => Promise<RunningService>

/** How long a graceful stop may take before we exit anyway (design §2: within 30 s). */
const SHUTDOWN_DEADLINE_MS = 25_000

/**
 * Runs `start` as the process's service until a stop signal arrives.
 *
 * @returns the process exit code: 0 after a clean stop, 1 when start-up failed
 */
export async function runService(name: string, start: ServiceStarter): Promise<number> {
  let config: Config
  try {
    config = loadConfig()
  } catch (error) {
    console.error(`${name}: ${describeError(error)}`)
    return 1
  }
  const logger = createLogger({
    service: name,
    level: config.LOG_LEVEL,
    // Whatever a library or an error message echoes, the configured secrets never reach a line.
    secrets: secretEnvVarNames.map((variable) => config[variable] as string | undefined),
    ...(config.LOG_FORMAT === 'auto' ? {} : { pretty: config.LOG_FORMAT === 'pretty' }),
  })
  // Listened for from the start: without a handler a signal during start-up would kill the process
  // (exit 143) in the middle of whatever it was opening.
  const stopping = new AbortController()
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    const stop = (received: NodeJS.Signals) => {
      stopping.abort()
      resolve(received)
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  let service: RunningService
  try {
    service = await start(config, logger, stopping.signal)
  } catch (error) {
    if (stopping.signal.aborted) {
      logger.info({ signal: await signal }, `${name} stopped during start-up`)
      logger.flush()
      return 0
    }
    logger.fatal({ err: error }, `${name} failed to start: ${describeError(error)}`)
    logger.flush()
    return 1
  }
  logger.info({ signal: await signal }, `${name} stopping`)
  const deadline = setTimeout(() => {
    logger.error(`${name} did not stop within ${SHUTDOWN_DEADLINE_MS / 1000} s; exiting anyway`)
    logger.flush()
    process.exit(1)
  }, SHUTDOWN_DEADLINE_MS)
  deadline.unref()
  try {
    await service.close()
  } catch (error) {
    logger.error({ err: error }, `${name} stop failed: ${describeError(error)}`)
    return 1
  }
  logger.info(`${name} stopped`)
  logger.flush()
  return 0
}
