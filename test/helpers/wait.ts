/** Waiting for an eventually true condition in integration tests, with a clear failure. */
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `probe` until it returns a value that is not undefined/false, and returns it.
 *
 * @throws an Error naming `what` when `timeoutMs` passes first
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      last = error
    }
    await sleep(100)
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
  )
}
