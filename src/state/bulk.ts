/**
 * Bulk reads of values in Redis hashes, in chunks that are big enough to amortize round trips and
 * small enough not to stall Redis (one command blocks every other client while it runs).
 */
import type { Redis } from './redis.ts'

/** Fields per HMGET, HSET or HDEL. */
export const CHUNK = 1000

/** `items` in slices of at most `size`. */
export function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** The stored text of those of `fields` that hash `key` holds. */
export async function hGetMany<K extends string>(
  redis: Redis,
  key: string,
  fields: Iterable<K>,
): Promise<Map<K, string>> {
  const distinct = [...new Set(fields)]
  // Issued in one tick, the HMGETs leave as one pipeline.
  const replies = await Promise.all(chunks(distinct).map((slice) => redis.hmGet(key, slice)))
  const found = new Map<K, string>()
  replies.flat().forEach((raw, i) => {
    const field = distinct[i]
    if (raw !== null && field !== undefined) found.set(field, raw)
  })
  return found
}

/** The parsed JSON values of those of `fields` that hash `key` holds. */
export async function hGetJsonMany<K extends string, T>(
  redis: Redis,
  key: string,
  fields: Iterable<K>,
): Promise<Map<K, T>> {
  const found = new Map<K, T>()
  for (const [field, raw] of await hGetMany(redis, key, fields)) found.set(field, JSON.parse(raw) as T)
  return found
}
