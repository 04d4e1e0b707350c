/** The Redis connection every service shares: node-redis with bounded reconnects and no crash on errors. */
import { createClient } from 'redis'
import { describeError, ErrorCodes, PipelineError } from '../errors.ts'
import type { Logger } from '../observability/logger.ts'
import { redactUrl } from '../observability/redact.ts'

function newClient(url: string) {
  return createClient({
    url,
    socket: {
      connectTimeout: 5000,
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 5000),
    },
  })
}

/** A connected node-redis client. */
export type Redis = ReturnType<typeof newClient>

/** Options of {@link connectRedis}. */
export interface ConnectRedisOptions {
  /** Aborts the wait for the first connection (the process is stopping). */
  readonly signal?: AbortSignal | undefined
  /** Longest wait for the first connection (`REDIS_STARTUP_TIMEOUT_MS`); none by default. */
  readonly waitMs?: number | undefined
}

/**
 * Connects to `url`. Connection errors are logged (once per outage, not per retry) rather than
 * crashing the process; node-redis reconnects with backoff and commands wait or fail meanwhile.
 * The first connection is waited for up to `waitMs` (as long as it takes without it), unless
 * `signal` aborts (the process is stopping): the client is then destroyed and this rejects.
 *
 * @throws {PipelineError} `PIPELINE_REDIS_UNREACHABLE` once `waitMs` passed without a connection,
 *   naming the last error
 */
export async function connectRedis(
  url: string,
  logger: Logger,
  options: ConnectRedisOptions = {},
): Promise<Redis> {
  const { signal, waitMs } = options
  signal?.throwIfAborted()
  const client = newClient(url)
  let down = false
  let lastError: Error | undefined
  let connecting = true
  let timedOut = false
  const giveUp = () => client.destroy()
  client.on('error', (error: Error) => {
    lastError = error
    // No wait at all: the first failed attempt ends it.
    if (connecting && waitMs === 0) {
      timedOut = true
      giveUp()
    }
    if (down) return
    down = true
    logger.warn({ err: { message: error.message } }, `Redis connection problem: ${error.message}`)
  })
  client.on('ready', () => {
    if (down) logger.info('Redis connection restored')
    down = false
  })
  signal?.addEventListener('abort', giveUp, { once: true })
  const timer =
    waitMs === undefined || waitMs === 0
      ? undefined
      : setTimeout(() => {
          timedOut = true
          giveUp()
        }, waitMs)
  try {
    await client.connect()
  } catch (error) {
    if (!timedOut) throw error
    throw new PipelineError(
      ErrorCodes.REDIS_UNREACHABLE,
      `Redis not reachable at ${redactUrl(url)} within ${waitMs} ms (REDIS_STARTUP_TIMEOUT_MS); last error: ${lastError?.message ?? describeError(error)}`,
      { cause: error },
    )
  } finally {
    connecting = false
    clearTimeout(timer)
    signal?.removeEventListener('abort', giveUp)
  }
  return client
}
