/**
 * A lease in Redis: at most one holder at a time, lost automatically when the holder stops
 * renewing it (it died), so a standby takes over after at most the TTL.
 */
import type { Redis } from './redis.ts'

// Renew our own lease, or take a free one, atomically: a holder never loses the lease to a racing
// standby between a GET and a SET.
const ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/**
 * Takes the lease `key` for `owner`, or renews it when `owner` already holds it.
 *
 * @returns true when `owner` holds the lease for the next `ttlMs`
 */
export async function acquireLease(
  redis: Redis,
  key: string,
  owner: string,
  ttlMs: number,
): Promise<boolean> {
  const result = await redis.eval(ACQUIRE, { keys: [key], arguments: [owner, String(ttlMs)] })
  return result === 1
}

/** Gives the lease up when `owner` holds it, so a standby need not wait for the TTL. */
export async function releaseLease(redis: Redis, key: string, owner: string): Promise<void> {
  await redis.eval(RELEASE, { keys: [key], arguments: [owner] })
}
