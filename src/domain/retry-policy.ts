/**
 * Retry classification and backoff (design §5), shared by the source poller and the Analytics
 * sink. Pure: the caller supplies the clock and the randomness.
 */

/** What to do after an HTTP status. */
export type StatusClass = 'success' | 'not-modified' | 'retryable' | 'permanent'

/** Classifies a response status: 408, 429 and 5xx are worth retrying; other 4xx are not. */
export function classifyStatus(status: number): StatusClass {
  if (status >= 200 && status < 300) return 'success'
  if (status === 304) return 'not-modified'
  if (status === 408 || status === 429 || status >= 500) return 'retryable'
  return 'permanent'
}

/** Backoff parameters. */
export interface BackoffPolicy {
  /** Total attempts, the first included. */
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
}

/**
 * The delay before retry number `attempt` (1 = first retry): exponential backoff with full jitter,
 * uniformly drawn from [0, min(max, base·2^(attempt−1))].
 *
 * @param random a number in [0, 1), e.g. Math.random()
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1))
  return Math.floor(random * ceiling)
}

/**
 * Parses a `Retry-After` header (seconds or an HTTP date) into a delay in milliseconds, capped at
 * `capMs`. Absurd values (negative, not a number, in the past) give undefined: use the backoff.
 */
export function parseRetryAfter(
  header: string | undefined,
  nowMs: number,
  capMs: number,
): number | undefined {
  if (header === undefined) return undefined
  const trimmed = header.trim()
  if (trimmed === '') return undefined
  let delay: number
  if (/^\d+(\.\d+)?$/.test(trimmed)) delay = Number(trimmed) * 1000
  else {
    const at = Date.parse(trimmed)
    if (Number.isNaN(at)) return undefined
    delay = at - nowMs
  }
  if (!Number.isFinite(delay) || delay < 0) return undefined
  return Math.min(Math.round(delay), capMs)
}
