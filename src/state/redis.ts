/** The Redis connection every service shares: node-redis with bounded reconnects and no crash on errors. */
import { createClient } from 'redis'
import type { Logger } from '../observability/logger.ts'

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

/**
 * Connects to `url`. Connection errors are logged (once per outage, not per retry) rather than
 * crashing the process; node-redis reconnects with backoff and commands wait or fail meanwhile.
 * The first connection is waited for as long as it takes, unless `signal` aborts (the process is
 * stopping): the client is then destroyed and this rejects.
 */
export async function connectRedis(url: string, logger: Logger, signal?: AbortSignal): Promise<Redis> {
  signal?.throwIfAborted()
  const client = newClient(url)
  let down = false
  client.on('error', (error: Error) => {
    if (down) return
    down = true
    logger.warn({ err: { message: error.message } }, `Redis connection problem: ${error.message}`)
  })
  client.on('ready', () => {
    if (down) logger.info('Redis connection restored')
    down = false
  })
  const giveUp = () => client.destroy()
  signal?.addEventListener('abort', giveUp, { once: true })
  try {
    await client.connect()
  } finally {
    signal?.removeEventListener('abort', giveUp)
  }
  return client
}
