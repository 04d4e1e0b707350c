/** Lua scripts run by SHA with a fallback to their source, shared by the stores that use scripts. */
import { createHash } from 'node:crypto'
import type { Redis } from './redis.ts'

/** A Lua script and its SHA-1, for EVALSHA. */
export interface Script {
  readonly source: string
  readonly sha: string
}

/** A {@link Script} of `source`. */
export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * Runs `which` by its SHA; on first use on this Redis (or after SCRIPT FLUSH or a restart) EVAL
 * runs it and caches it.
 */
export async function runScript(
  redis: Redis,
  which: Script,
  keys: string[],
  args: string[],
): Promise<unknown> {
  const options = { keys, arguments: args }
  try {
    return await redis.evalSha(which.sha, options)
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error
    return await redis.eval(which.source, options)
  }
}
