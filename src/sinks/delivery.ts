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
import { cut } from '../dlq/entry.ts'
import type { BackoffPolicy } from '../domain/retry-policy.ts'
import type { SinkMetrics } from '../observability/metrics.ts'
import { AnalyticsClient } from './analytics-client.ts'
import { CIRCUIT_STATE_VALUE, type CircuitStateName, type Health, SinkCircuit } from './breaker.ts'
import {
  type AttemptResult,
  assertIdempotencyKey,
  type DeliveredOutcome,
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
  /**
   * The batch endpoint (`ANALYTICS_BATCH_URL`) {@link AnalyticsSink.deliverBatch} POSTs to; default
   * {@link defaultBatchUrl} of `url`.
   */
  readonly batchUrl?: string | undefined
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
    batchUrl: config.ANALYTICS_BATCH_URL,
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

/**
 * The longest a delivery's requests may keep landing at Analytics after it was claimed: every attempt
 * timing out after its longest backoff, plus the late arrival of the last one. A claim older than
 * this is taken for dead (its member died or froze), and another member may deliver the view. Time a
 * claimed view spends queued for a connection is not counted: a member that outlives its claim that
 * way finds the record moved on when it settles, and the view is delivered again (see `DeliveryStore`).
 */
export function deliveryWindowMs(config: Config): number {
  const attempt = config.SINK_TIMEOUT_MS + config.RETRY_MAX_DELAY_MS
  return config.RETRY_MAX_ATTEMPTS * attempt + config.SINK_LATE_ARRIVAL_MS
}

/** `ANALYTICS_URL` with `/batch` appended to its path: the batch endpoint when none is configured. */
export function defaultBatchUrl(url: string): string {
  const batch = new URL(url)
  batch.pathname = `${batch.pathname.replace(/\/+$/, '')}/batch`
  return batch.href
}

/**
 * Most bytes of one batch request: a batch whose items' JSON would be larger goes out as several
 * requests (a single larger item alone), so a few big views cannot turn a batch into a 413 that
 * would reject every item. Half the analytics mock's 1 MiB body limit.
 */
export const MAX_BATCH_BYTES = 512 * 1024

/** Sends one request (deliveries are POSTs of serialized bodies, so repeating it is safe). */
type Send = (signal?: AbortSignal) => Promise<AttemptResult>

/**
 * How one request's attempts ended: a 2xx answer (with its body when the request asked for it), or
 * the outcome that applies to everything the request carried.
 */
type Exchange =
  | {
      readonly kind: 'answered'
      readonly status: number
      readonly body: string
      readonly attempts: number
      readonly latencyMs: number
    }
  | Exclude<DeliveryOutcome, DeliveredOutcome>

/** One view of a batch, as {@link AnalyticsSink.deliverBatch} takes it. */
export type BatchDeliveryRequest = Omit<DeliveryRequest, 'signal'>

/**
 * Delivers views to Analytics, one per POST ({@link deliver}) or several ({@link deliverBatch}, the
 * opt-in batch mode). Neither throws for HTTP or network outcomes (a throw is a bug: a bad key, a
 * payload JSON cannot encode, use after {@link close}).
 *
 * Health probe: the last delivery Analytics accepted, sent again with its own Idempotency-Key (after
 * a batch, a batch of its first item). The sink dedupes it, so it changes nothing there, yet it takes
 * the very path a delivery takes (URL, token, body, the sink's storage front). Before anything was
 * accepted, the probe GETs the origin's root and counts any answer but 408, 429 and 5xx as alive.
 */
export class AnalyticsSink {
  readonly #client: AnalyticsClient
  readonly #circuit: SinkCircuit
  readonly #slots: Semaphore
  readonly #retry: BackoffPolicy
  readonly #url: string
  readonly #batchUrl: string
  readonly #metrics: SinkMetrics | undefined
  /** Aborts a probe in flight on {@link close}; deliveries in flight may finish. */
  readonly #closing = new AbortController()
  readonly #wakers = new Set<() => void>()
  /** Re-sends the last request Analytics accepted: the health probe. */
  #lastAccepted: Send | undefined
  #closed = false

  constructor(options: AnalyticsSinkOptions) {
    this.#url = options.url
    this.#batchUrl = options.batchUrl ?? defaultBatchUrl(options.url)
    this.#retry = options.retry
    this.#metrics = options.metrics
    this.#client = new AnalyticsClient({
      url: options.url,
      batchUrl: this.#batchUrl,
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
    const body = request.json === undefined ? serialize(request.payload) : Buffer.from(request.json, 'utf8')
    const send: Send = (signal) => this.#client.post(request.key, body, signal)
    const result = await this.#exchange(send, send, request.signal, this.#url)
    const outcome: DeliveryOutcome =
      result.kind === 'answered'
        ? { kind: 'delivered', status: result.status, attempts: result.attempts, latencyMs: result.latencyMs }
        : result
    this.#count([outcome])
    return outcome
  }

  /**
   * Delivers several views in one POST to the batch endpoint, `{ items: [{ idempotencyKey, record }] }`,
   * each item with the key {@link deliver} would send as its header; items beyond
   * {@link MAX_BATCH_BYTES} go in further requests. Each request is retried, backed off, counted
   * by the breaker and turned into outcomes exactly as a {@link deliver} is, as a whole: a network
   * error, timeout, 408, 429 or 5xx retries the whole batch (the sink dedupes what had landed), a
   * permanent 4xx rejects every item, `exhausted`, `circuit-open` and `aborted` apply to every item.
   * On a 2xx each item's result in the answer's `results` decides: `accepted` or `replay` is
   * `delivered`; anything else, or no result for the item, is `rejected` with that result.
   *
   * @returns one outcome per request, in order
   * @throws {TypeError} for a key that is not printable ASCII or a payload JSON cannot encode (nothing
   *   is sent then)
   */
  async deliverBatch(
    requests: readonly BatchDeliveryRequest[],
    signal?: AbortSignal,
  ): Promise<DeliveryOutcome[]> {
    if (this.#closed) throw new Error('AnalyticsSink.deliverBatch called after close()')
    const items = requests.map((request) => {
      assertIdempotencyKey(request.key)
      return batchItem(
        request.key,
        request.json === undefined ? serialize(request.payload) : Buffer.from(request.json, 'utf8'),
      )
    })
    const outcomes: DeliveryOutcome[] = new Array(requests.length)
    await Promise.all(
      sliceByBytes(items, MAX_BATCH_BYTES).map(async (slice) => {
        const body = batchBody(slice.map((i) => items[i] as Buffer))
        const send: Send = (s) => this.#client.postBatch(body, s)
        // The probe re-sends one item, not the whole batch: as telling, and cheap.
        const first = items[slice[0] as number] as Buffer
        const probe: Send = (s) => this.#client.postBatch(batchBody([first]), s)
        const result = await this.#exchange(send, probe, signal, this.#batchUrl)
        if (result.kind !== 'answered') {
          for (const i of slice) outcomes[i] = result
          return
        }
        const statuses = itemStatuses(result.body)
        for (const i of slice) {
          const key = (requests[i] as BatchDeliveryRequest).key
          const itemResult = statuses.kind === 'read' ? statuses.results.get(key) : undefined
          const status = (itemResult as { status?: unknown } | undefined)?.status
          outcomes[i] =
            status === 'accepted' || status === 'replay'
              ? {
                  kind: 'delivered',
                  status: result.status,
                  attempts: result.attempts,
                  latencyMs: result.latencyMs,
                }
              : {
                  kind: 'rejected',
                  status: result.status,
                  body: cut(
                    statuses.kind === 'unreadable'
                      ? `the batch answer has no readable results (${statuses.reason}): ${result.body}`
                      : itemResult === undefined
                        ? `the batch answer has no result for ${key}`
                        : `the batch answer's result for ${key}: ${JSON.stringify(itemResult)}`,
                  ),
                  attempts: result.attempts,
                }
        }
      }),
    )
    this.#count(outcomes)
    return outcomes
  }

  /**
   * Sends one request until it ends: retried on network errors, timeouts, 408, 429 and 5xx up to
   * `RETRY_MAX_ATTEMPTS` attempts in all, ending early when `signal` aborts, the circuit opens or
   * the sink closes. `probe` becomes the health probe once Analytics accepted the request.
   */
  async #exchange(send: Send, probe: Send, signal: AbortSignal | undefined, url: string): Promise<Exchange> {
    const started = performance.now()
    let attempts = 0
    for (;;) {
      if (signal?.aborted || this.#closed) return { kind: 'aborted', attempts }
      if (this.#circuit.state() !== 'closed') return { kind: 'circuit-open', attempts }
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
        result = await send(signal)
      } finally {
        release()
      }
      this.#observe(result)
      const judged = judge(result)
      switch (judged.verdict) {
        case 'aborted':
          return { kind: 'aborted', attempts }
        case 'success': {
          this.#circuit.recordHealthy()
          this.#lastAccepted = probe
          const body = result.kind === 'answered' ? result.body : ''
          const latencyMs = performance.now() - started
          return { kind: 'answered', status: judged.status, body, attempts, latencyMs }
        }
        case 'permanent':
          this.#circuit.recordHealthy()
          return { kind: 'rejected', status: judged.status, body: judged.body, attempts }
        case 'retryable':
          break
      }
      this.#circuit.recordFailure()
      const step = nextStep(attempts, this.#retry.maxAttempts, this.#circuit.healthEpoch !== healthBefore)
      if (step !== 'retry') {
        if (this.#circuit.state() !== 'closed') return { kind: 'circuit-open', attempts }
        const health = step === 'exhausted' ? 'healthy' : await this.#circuit.confirmHealth()
        if (health === 'unhealthy') return { kind: 'circuit-open', attempts }
        return { kind: 'exhausted', error: failureError(judged.failure, url), attempts }
      }
      if (this.#circuit.state() !== 'closed') continue
      await this.#pause(retryDelay(judged.failure, attempts, this.#retry, Date.now(), Math.random()), signal)
    }
  }

  /** Counts finished deliveries (one per view, however many requests carried them). */
  #count(outcomes: readonly DeliveryOutcome[]): void {
    for (const outcome of outcomes) this.#metrics?.deliveries.inc({ outcome: outcome.kind.replace('-', '_') })
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
    const result = last ? await last(signal) : await this.#client.getRoot(signal)
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

/** One batch item's JSON, `{"idempotencyKey":…,"record":…}` around the record's JSON. */
function batchItem(key: string, record: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`{"idempotencyKey":${JSON.stringify(key)},"record":`),
    record,
    CLOSE_ITEM,
  ])
}

const CLOSE_ITEM = Buffer.from('}')
const OPEN_BATCH = Buffer.from('{"items":[')
const CLOSE_BATCH = Buffer.from(']}')
const COMMA = Buffer.from(',')

/** The batch body of serialized items. */
function batchBody(items: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [OPEN_BATCH]
  items.forEach((item, i) => {
    if (i > 0) parts.push(COMMA)
    parts.push(item)
  })
  parts.push(CLOSE_BATCH)
  return Buffer.concat(parts)
}

/** Indices of `items` in consecutive runs of at most `maxBytes` (an item larger than that alone). */
function sliceByBytes(items: readonly Buffer[], maxBytes: number): number[][] {
  const slices: number[][] = []
  let current: number[] = []
  let size = 0
  items.forEach((item, i) => {
    if (current.length > 0 && size + item.length > maxBytes) {
      slices.push(current)
      current = []
      size = 0
    }
    current.push(i)
    size += item.length + 1
  })
  if (current.length > 0) slices.push(current)
  return slices
}

/** The per-item results of a batch answer `{ results: [{ idempotencyKey, status }] }`, by key. */
function itemStatuses(
  body: string,
): { kind: 'read'; results: Map<string, unknown> } | { kind: 'unreadable'; reason: string } {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch (error) {
    return { kind: 'unreadable', reason: error instanceof Error ? error.message : String(error) }
  }
  const results = (parsed as { results?: unknown } | null)?.results
  if (!Array.isArray(results)) return { kind: 'unreadable', reason: 'no results array' }
  const statuses = new Map<string, unknown>()
  for (const result of results) {
    const key = (result as { idempotencyKey?: unknown } | null)?.idempotencyKey
    if (typeof key === 'string') statuses.set(key, result)
  }
  return { kind: 'read', results: statuses }
}
