/**
 * Bulk reads and writes of JSON values in Redis hashes, in chunks that are big enough to amortize
 * round trips and small enough not to stall Redis (one command blocks every other client while it runs).
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

/** The parsed JSON values of those of `fields` that hash `key` holds. */
export async function hGetJsonMany<K extends string, T>(
  redis: Redis,
  key: string,
  fields: Iterable<K>,
): Promise<Map<K, T>> {
  const distinct = [...new Set(fields)]
  // Issued in one tick, the HMGETs leave as one pipeline.
  const replies = await Promise.all(chunks(distinct).map((slice) => redis.hmGet(key, slice)))
  const found = new Map<K, T>()
  replies.flat().forEach((raw, i) => {
    const field = distinct[i]
    if (raw !== null && field !== undefined) found.set(field, JSON.parse(raw) as T)
  })
  return found
}

/**
 * Stores the JSON of each value in hash `key`, deleting the fields whose value is undefined. A field
 * given twice takes its last value.
 */
export async function hSetJsonMany(
  redis: Redis,
  key: string,
  entries: Iterable<readonly [string, unknown]>,
): Promise<void> {
  const last = new Map<string, unknown>(entries)
  const sets: [string, string][] = []
  const deletions: string[] = []
  for (const [field, value] of last) {
    if (value === undefined) deletions.push(field)
    else sets.push([field, JSON.stringify(value)])
  }
  await Promise.all([
    ...chunks(sets).map((slice) => redis.hSet(key, Object.fromEntries(slice))),
    ...chunks(deletions).map((slice) => redis.hDel(key, slice)),
  ])
}
