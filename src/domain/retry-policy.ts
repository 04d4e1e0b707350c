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

// The three HTTP-date forms of RFC 9110 §5.6.7. Date.parse alone is far too lenient: it reads
// "-5" as the year 2001 and "soon 2030" as 2030.
// Each captures the day of the month, to refuse dates like 31 Feb that Date.parse rolls over.
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
const TIME = '\\d{2}:\\d{2}:\\d{2}'
const HTTP_DATE = [
  new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} \\d{4} ${TIME} GMT$`),
  new RegExp(
    `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-\\d{2} ${TIME} GMT$`,
  ),
  new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ([ \\d]\\d) ${TIME} \\d{4}$`),
]

/** The instant of an HTTP date, or undefined when `text` is not one (or names no real day). */
function httpDate(text: string): number | undefined {
  for (const form of HTTP_DATE) {
    const day = form.exec(text)?.[1]
    if (day === undefined) continue
    const at = Date.parse(text)
    return Number.isNaN(at) || new Date(at).getUTCDate() !== Number(day) ? undefined : at
  }
  return undefined
}

/**
 * Parses a `Retry-After` header (delay-seconds or an HTTP date) into a delay in milliseconds.
 * A delay over `capMs` (however huge, even past Number's range) is clamped to `capMs`. Anything
 * else gives undefined, and the caller falls back to its backoff: negative or fractional-looking
 * junk, text, dates in other formats, invalid calendar dates, and dates in the past (retrying at
 * once on a server's say-so would hammer it).
 */
export function parseRetryAfter(
  header: string | undefined,
  nowMs: number,
  capMs: number,
): number | undefined {
  if (header === undefined) return undefined
  const trimmed = header.trim()
  let delay: number
  if (/^\d+(\.\d+)?$/.test(trimmed)) delay = Number(trimmed) * 1000
  else {
    const at = httpDate(trimmed)
    if (at === undefined) return undefined
    delay = at - nowMs
  }
  if (delay < 0) return undefined
  return Math.min(Math.round(delay), capMs)
}
