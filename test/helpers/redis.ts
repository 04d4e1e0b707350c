/**
 * A Redis connection for one test file, with key prefixes that are unique per test and deleted,
 * with everything under them, when the file's tests are done.
 */
import { after, before } from 'node:test'
import { createLogger } from '../../src/observability/logger.ts'
import { connectRedis, type Redis } from '../../src/state/redis.ts'
import { testInfra, uniqueName } from './env.ts'

/** The file's connection (valid inside tests) and a maker of prefixes cleaned up after the file. */
export interface TestRedis {
  readonly redis: Redis
  newPrefix(label: string): string
}

/** Registers the file's `before`/`after` hooks: call it at the top level of a test file. */
export function useTestRedis(): TestRedis {
  let client: Redis | undefined
  const prefixes: string[] = []
  before(async () => {
    client = await connectRedis(testInfra.redisUrl, createLogger({ service: 'test', level: 'silent' }))
  })
  after(async () => {
    if (client === undefined) return
    for (const prefix of prefixes) {
      for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
        if (keys.length > 0) await client.del(keys)
      }
    }
    await client.close()
  })
  return {
    get redis(): Redis {
      if (client === undefined)
        throw new Error('the test Redis is connected in before(): use it inside tests')
      return client
    },
    newPrefix(label: string): string {
      const prefix = uniqueName(label)
      prefixes.push(prefix)
      return prefix
    },
  }
}
