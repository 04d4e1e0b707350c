/**
 * What one HTTP attempt against Analytics produced, what a whole delivery came to, and the decisions
 * between the two (design §5). Pure: the caller supplies the clock and the randomness, so retry and
 * outcome rules are tested without a server.
 */
import { cut, type DlqError, redactUrl } from '../dlq/entry.ts'
import { type BackoffPolicy, backoffDelay, classifyStatus, parseRetryAfter } from '../domain/retry-policy.ts'
import { ErrorCodes } from '../errors.ts'

/** One view delivery, as the consumer hands it to the sink. */
export interface DeliveryRequest {
  /** Sent as `Idempotency-Key`: `<view type>:<id>:<content hash>`, printable ASCII. */
  readonly key: string
  /** The JSON body; serialized once, whatever the number of attempts. */
  readonly payload: unknown
  /** `payload` already serialized (a view's canonical JSON): sent as is instead of serializing again. */
  readonly json?: string | undefined
  /** Aborting ends the delivery with `aborted` (shutdown); what was sent may still have landed. */
  readonly signal?: AbortSignal | undefined
}

/** Analytics stored the view (2xx); a replayed key counts, since the sink dedupes it. */
export interface DeliveredOutcome {
  readonly kind: 'delivered'
  readonly status: number
  readonly attempts: number
  /** From the call of `deliver` to the answer: queueing, retries and backoff included. */
  readonly latencyMs: number
}

/**
 * Analytics refused the view for good (a 4xx other than 408 and 429; in a batch, also a 2xx answer
 * whose result for the item is not `accepted` or `replay`): dead-letter it, no retry.
 */
export interface RejectedOutcome {
  readonly kind: 'rejected'
  readonly status: number
  /** The response body (in a batch, what its answer said of the item), cut to 1 KiB. */
  readonly body: string
  readonly attempts: number
}

/**
 * Every attempt failed retryably while Analytics was demonstrably answering (another request or a
 * health probe succeeded meanwhile): this view is the problem, dead-letter it.
 */
export interface ExhaustedOutcome {
  readonly kind: 'exhausted'
  /** The last attempt's failure, in the DLQ's shape. */
  readonly error: DlqError
  readonly attempts: number
}

/**
 * The circuit is open: Analytics is down for everything. Nothing was sent, or the delivery was cut
 * short. Pause, wait for the circuit to close, deliver again; never dead-letter this.
 */
export interface CircuitOpenOutcome {
  readonly kind: 'circuit-open'
  readonly attempts: number
}

/** The caller's signal aborted the delivery; the view was possibly stored, deliver it again later. */
export interface AbortedOutcome {
  readonly kind: 'aborted'
  readonly attempts: number
}

/** How a delivery ended. `attempts − 1` of the attempts were retries. */
export type DeliveryOutcome =
  | DeliveredOutcome
  | RejectedOutcome
  | ExhaustedOutcome
  | CircuitOpenOutcome
  | AbortedOutcome

/** What one HTTP request produced, before any decision. */
export type AttemptResult =
  | {
      readonly kind: 'answered'
      readonly status: number
      /** The start of the body for non-2xx answers; for 2xx, empty unless it was asked for (batches). */
      readonly body: string
      readonly retryAfter: string | undefined
      readonly durationMs: number
    }
  | { readonly kind: 'timeout'; readonly message: string; readonly durationMs: number }
  | { readonly kind: 'network'; readonly message: string; readonly durationMs: number }
  | { readonly kind: 'aborted'; readonly durationMs: number }

/** The failed attempts worth another try. */
export type RetryableResult = Exclude<AttemptResult, { kind: 'aborted' }>

/** What an attempt means for the delivery, with what each case needs. */
export type Judgement =
  | { readonly verdict: 'success'; readonly status: number }
  | { readonly verdict: 'permanent'; readonly status: number; readonly body: string }
  | { readonly verdict: 'retryable'; readonly failure: RetryableResult }
  | { readonly verdict: 'aborted' }

/**
 * Judges an attempt: 2xx succeed; network errors, timeouts, 408, 429 and 5xx are retryable; any
 * other answer is permanent (its body cut to 1 KiB).
 */
export function judge(result: AttemptResult): Judgement {
  if (result.kind === 'aborted') return { verdict: 'aborted' }
  if (result.kind !== 'answered') return { verdict: 'retryable', failure: result }
  const kind = classifyStatus(result.status)
  if (kind === 'success') return { verdict: 'success', status: result.status }
  if (kind === 'retryable') return { verdict: 'retryable', failure: result }
  // A 304 or other 3xx to a POST is no acknowledgement, and repeating the request would not change it.
  return { verdict: 'permanent', status: result.status, body: cut(result.body) }
}

/** The `status` label of `pipeline_sink_requests_total`: a status class, `network` or `timeout`. */
export function statusLabel(result: Exclude<AttemptResult, { kind: 'aborted' }>): string {
  if (result.kind !== 'answered') return result.kind
  return `${Math.floor(result.status / 100)}xx`
}

/**
 * The wait before the next attempt: the server's `Retry-After` when it gave a sane one (capped at
 * `maxDelayMs`), otherwise exponential backoff with full jitter.
 *
 * @param attempt the number of the attempt that just failed (1 = the first)
 */
export function retryDelay(
  result: RetryableResult,
  attempt: number,
  policy: BackoffPolicy,
  nowMs: number,
  random: number,
): number {
  const hinted =
    result.kind === 'answered' ? parseRetryAfter(result.retryAfter, nowMs, policy.maxDelayMs) : undefined
  return hinted ?? backoffDelay(policy, attempt, random)
}

/** What to do after a retryable failure. */
export type NextStep = 'retry' | 'confirm-health' | 'exhausted'

/**
 * Decides after a retryable failure of attempt `attempt`. Within the budget: retry. Once the budget is
 * spent, the view may be poison or Analytics may be down for everyone; only the second must stop the
 * pipeline instead of dead-lettering. If Analytics answered another request well while the last
 * attempt was under way, it is the view: exhausted. Otherwise the sink must ask (probe) first; an
 * older success proves nothing, since the outage may have begun after it.
 *
 * @param healthyMeanwhile Analytics answered well since the last attempt was sent
 */
export function nextStep(attempt: number, maxAttempts: number, healthyMeanwhile: boolean): NextStep {
  if (attempt < maxAttempts) return 'retry'
  return healthyMeanwhile ? 'exhausted' : 'confirm-health'
}

/** The DLQ error of a failed attempt. */
export function failureError(result: RetryableResult, url: string): DlqError {
  const target = `POST ${redactUrl(url)}`
  switch (result.kind) {
    case 'answered':
      return {
        class: ErrorCodes.SINK_HTTP_STATUS,
        message: `${target} answered HTTP ${result.status}`,
        status: result.status,
        body: cut(result.body),
      }
    case 'timeout':
      return { class: ErrorCodes.SINK_TIMEOUT, message: `${target}: ${result.message}` }
    case 'network':
      return { class: ErrorCodes.SINK_NETWORK, message: `${target}: ${result.message}` }
  }
}

/**
 * The DLQ error of a delivery that ended for good without success: the refusal (class
 * `PIPELINE_SINK_REJECTED`, with status and body) or the last failure of an exhausted one.
 */
export function dlqErrorOf(outcome: RejectedOutcome | ExhaustedOutcome): DlqError {
  if (outcome.kind === 'exhausted') return outcome.error
  return {
    class: ErrorCodes.SINK_REJECTED,
    message: `Analytics rejected the delivery with HTTP ${outcome.status}`,
    status: outcome.status,
    body: outcome.body,
  }
}

const PRINTABLE_ASCII = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/

/**
 * Checks an idempotency key before anything is sent: HTTP header values cannot carry control or
 * non-ASCII characters, and a key silently rewritten on the way would break the sink's dedupe.
 *
 * @throws {TypeError} when the key is empty, has surrounding spaces, or holds anything but printable ASCII
 */
export function assertIdempotencyKey(key: string): void {
  if (typeof key !== 'string' || !PRINTABLE_ASCII.test(key)) {
    throw new TypeError(
      `Idempotency-Key must be non-empty printable ASCII without surrounding spaces, got ${JSON.stringify(key)}`,
    )
  }
}
