/**
 * The Analytics sink the consumer calls per view delivery (design §5): bounded concurrency, retries
 * with backoff and `Retry-After`, and the circuit breaker of breaker.ts, ending in a
 * {@link DeliveryOutcome} that tells the caller exactly what to do next.
 *
 * Retries are a small loop over the pure rules of outcome.ts rather than cockatiel's retry policy:
 * the wait comes from the failed answer (`Retry-After`), the budget's end needs a health probe before
 * it may say `exhausted`, and every wait must end the moment the circuit opens.
 */
import type { Config } from '../config/env.ts'
import type { BackoffPolicy } from '../domain/retry-policy.ts'
import type { SinkMetrics } from '../observability/metrics.ts'
import { AnalyticsClient } from './analytics-client.ts'
import { CIRCUIT_STATE_VALUE, type CircuitStateName, type Health, SinkCircuit } from './breaker.ts'
import {
  type AttemptResult,
  assertIdempotencyKey,
  type DeliveryOutcome,
  type DeliveryRequest,
  failureError,
  judge,
  nextStep,
  retryDelay,
  statusLabel,
} from './outcome.ts'
import { Semaphore } from './semaphore.ts'

/** Options of {@link AnalyticsSink}. */
export interface AnalyticsSinkOptions {
  /** The delivery endpoint (`ANALYTICS_URL`). */
  readonly url: string
  /** Sent as `Authorization: Bearer …` (`ANALYTICS_TOKEN`); never logged. */
  readonly token?: string | undefined
  /** Per-request connect, headers and body timeout (`SINK_TIMEOUT_MS`). */
  readonly timeoutMs: number
  /** Requests in flight at once, and keep-alive connections (`SINK_CONCURRENCY`). */
  readonly concurrency: number
  /** Attempts in all, base and maximum delay (`RETRY_*`). */
  readonly retry: BackoffPolicy
  /** `BREAKER_FAILURE_THRESHOLD` and `BREAKER_HALF_OPEN_AFTER_MS`. */
  readonly breaker: { readonly failureThreshold: number; readonly halfOpenAfterMs: number }
  /** From `createSinkMetrics(registry)`; none are recorded when absent. */
  readonly metrics?: SinkMetrics | undefined
}

/** The sink's options from the validated configuration. */
export function sinkOptionsFromConfig(config: Config, metrics?: SinkMetrics): AnalyticsSinkOptions {
  return {
    url: config.ANALYTICS_URL,
    token: config.ANALYTICS_TOKEN,
    timeoutMs: config.SINK_TIMEOUT_MS,
    concurrency: config.SINK_CONCURRENCY,
    retry: {
      maxAttempts: config.RETRY_MAX_ATTEMPTS,
      baseDelayMs: config.RETRY_BASE_DELAY_MS,
      maxDelayMs: config.RETRY_MAX_DELAY_MS,
    },
    breaker: {
      failureThreshold: config.BREAKER_FAILURE_THRESHOLD,
      halfOpenAfterMs: config.BREAKER_HALF_OPEN_AFTER_MS,
    },
    metrics,
  }
}

/** The last delivery Analytics accepted: re-sent as the health probe. */
interface Accepted {
  readonly key: string
  readonly body: Buffer
}

/**
 * Delivers views to Analytics. `deliver` never throws for HTTP or network outcomes (a throw is a bug:
 * a bad key, a payload JSON cannot encode, use after {@link close}).
 *
 * Health probe: the last delivery Analytics accepted, sent again with its own Idempotency-Key. The
 * sink dedupes it, so it changes nothing there, yet it takes the very path a delivery takes (URL,
 * token, body, the sink's storage front). Before anything was accepted, the probe GETs the origin's
 * root and counts any answer but 408, 429 and 5xx as alive.
 */
export class AnalyticsSink {
  readonly #client: AnalyticsClient
  readonly #circuit: SinkCircuit
  readonly #slots: Semaphore
  readonly #retry: BackoffPolicy
  readonly #url: string
  readonly #metrics: SinkMetrics | undefined
  /** Aborts a probe in flight on {@link close}; deliveries in flight may finish. */
  readonly #closing = new AbortController()
  readonly #wakers = new Set<() => void>()
  #lastAccepted: Accepted | undefined
  #closed = false

  constructor(options: AnalyticsSinkOptions) {
    this.#url = options.url
    this.#retry = options.retry
    this.#metrics = options.metrics
    this.#client = new AnalyticsClient({
      url: options.url,
      token: options.token,
      timeoutMs: options.timeoutMs,
      connections: options.concurrency,
    })
    this.#slots = new Semaphore(options.concurrency)
    this.#circuit = new SinkCircuit({
      failureThreshold: options.breaker.failureThreshold,
      halfOpenAfterMs: options.breaker.halfOpenAfterMs,
      probe: () => this.#probe(),
    })
    this.#metrics?.circuitState.set(CIRCUIT_STATE_VALUE.closed)
    this.#circuit.onStateChange((state) => {
      this.#metrics?.circuitState.set(CIRCUIT_STATE_VALUE[state])
      if (state === 'open') this.#interrupt('the Analytics circuit opened')
    })
  }

  /**
   * Delivers one view: POST with its Idempotency-Key, retried on network errors, timeouts, 408, 429
   * and 5xx up to `RETRY_MAX_ATTEMPTS` attempts in all.
   *
   * @returns `delivered` (2xx); `rejected` (permanent 4xx: dead-letter, no retry); `exhausted` (the
   *   budget ran out while Analytics was healthy for others: dead-letter); `circuit-open` (Analytics
   *   is down: pause, {@link waitUntilClosed}, deliver again, never dead-letter); `aborted` (the
   *   request's signal fired: deliver again later).
   * @throws {TypeError} for a key that is not printable ASCII or a payload JSON cannot encode
   */
  async deliver(request: DeliveryRequest): Promise<DeliveryOutcome> {
    if (this.#closed) throw new Error('AnalyticsSink.deliver called after close()')
    assertIdempotencyKey(request.key)
    const started = performance.now()
    const body = serialize(request.payload)
    const { signal } = request
    let attempts = 0
    const end = (outcome: DeliveryOutcome): DeliveryOutcome => {
      this.#metrics?.deliveries.inc({ outcome: outcome.kind.replace('-', '_') })
      return outcome
    }
    for (;;) {
      if (signal?.aborted || this.#closed) return end({ kind: 'aborted', attempts })
      if (this.#circuit.state() !== 'closed') return end({ kind: 'circuit-open', attempts })
      let release: () => void
      try {
        // Turned away when the caller aborts, the circuit opens or the sink closes.
        release = await this.#slots.acquire(signal)
      } catch {
        continue // the checks at the top say why
      }
      if (signal?.aborted || this.#closed || this.#circuit.state() !== 'closed') {
        release()
        continue
      }
      attempts += 1
      if (attempts > 1) this.#metrics?.retries.inc()
      const healthBefore = this.#circuit.healthEpoch
      let result: AttemptResult
      try {
        result = await this.#client.post(request.key, body, signal)
      } finally {
        release()
      }
      this.#observe(result)
      const judged = judge(result)
      switch (judged.verdict) {
        case 'aborted':
          return end({ kind: 'aborted', attempts })
        case 'success': {
          this.#circuit.recordHealthy()
          this.#lastAccepted = { key: request.key, body }
          const latencyMs = performance.now() - started
          return end({ kind: 'delivered', status: judged.status, attempts, latencyMs })
        }
        case 'permanent':
          this.#circuit.recordHealthy()
          return end({ kind: 'rejected', status: judged.status, body: judged.body, attempts })
        case 'retryable':
          break
      }
      this.#circuit.recordFailure()
      const step = nextStep(attempts, this.#retry.maxAttempts, this.#circuit.healthEpoch !== healthBefore)
      if (step !== 'retry') {
        if (this.#circuit.state() !== 'closed') return end({ kind: 'circuit-open', attempts })
        const health = step === 'exhausted' ? 'healthy' : await this.#circuit.confirmHealth()
        if (health === 'unhealthy') return end({ kind: 'circuit-open', attempts })
        return end({ kind: 'exhausted', error: failureError(judged.failure, this.#url), attempts })
      }
      if (this.#circuit.state() !== 'closed') continue
      await this.#pause(retryDelay(judged.failure, attempts, this.#retry, Date.now(), Math.random()), signal)
    }
  }

  /** The circuit's state: `closed` lets deliveries through; otherwise they end `circuit-open`. */
  state(): CircuitStateName {
    return this.#circuit.state()
  }

  /**
   * Calls `listener` on every state change (pause consumption on `open`, resume on `closed`);
   * returns the function that unsubscribes it.
   */
  onStateChange(listener: (state: CircuitStateName) => void): () => void {
    return this.#circuit.onStateChange(listener)
  }

  /**
   * Resolves once the circuit is closed (at once when it is). The sink probes Analytics every
   * `BREAKER_HALF_OPEN_AFTER_MS` meanwhile, so this ends without any delivery being attempted.
   *
   * @throws the signal's reason when `signal` aborts first, or an `AbortError` after {@link close}
   */
  waitUntilClosed(signal?: AbortSignal): Promise<void> {
    return this.#circuit.waitUntilClosed(signal)
  }

  /**
   * Stops probing, ends waiting deliveries with `aborted`, lets requests in flight finish and closes
   * the connection pool.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#circuit.close()
    this.#closing.abort()
    this.#interrupt('the Analytics sink was closed')
    await this.#client.close()
  }

  /**
   * Waits before a retry; ends early when the caller aborts, the circuit opens or the sink closes
   * (then the loop's checks say which). A plain set of wakers, not a combined AbortSignal per wait:
   * thousands of deliveries may be waiting at once.
   */
  #pause(delayMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer)
        this.#wakers.delete(wake)
        signal?.removeEventListener('abort', wake)
        resolve()
      }
      const timer = setTimeout(wake, delayMs)
      this.#wakers.add(wake)
      signal?.addEventListener('abort', wake, { once: true })
    })
  }

  /** Ends every wait at once: queued deliveries and backoffs go back to the loop's checks. */
  #interrupt(reason: string): void {
    this.#slots.cancelWaiting(new Error(reason))
    for (const wake of [...this.#wakers]) wake()
  }

  async #probe(): Promise<Health> {
    if (this.#closed) return 'unhealthy'
    const last = this.#lastAccepted
    const signal = this.#closing.signal
    const result = last
      ? await this.#client.post(last.key, last.body, signal)
      : await this.#client.getRoot(signal)
    this.#observe(result)
    // Any answer but a retryable one shows Analytics at work (a 4xx is the request's fault, not its).
    const verdict = judge(result).verdict
    const health: Health = verdict === 'success' || verdict === 'permanent' ? 'healthy' : 'unhealthy'
    this.#metrics?.probes.inc({ result: health })
    return health
  }

  #observe(result: AttemptResult): void {
    if (result.kind === 'aborted' || this.#metrics === undefined) return
    this.#metrics.requests.inc({ status: statusLabel(result) })
    this.#metrics.requestDuration.observe(result.durationMs / 1000)
  }
}

/** JSON of the payload, once per delivery whatever the attempts. */
function serialize(payload: unknown): Buffer {
  const json = JSON.stringify(payload)
  if (json === undefined) throw new TypeError(`a delivery payload must be JSON, got ${typeof payload}`)
  return Buffer.from(json, 'utf8')
}
