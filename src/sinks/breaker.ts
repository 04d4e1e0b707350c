/**
 * The circuit breaker of the Analytics sink (design §5): it opens when Analytics fails for everyone,
 * never because one poison view keeps failing, and it finds out by itself when Analytics is back.
 *
 * Policy, and why. Counting failed requests alone cannot tell "Analytics is down" from "a few views
 * keep failing while nothing else is being sent" (a consecutive-failure count trips on three poison
 * views retried in a quiet moment; a sampling window trips on low traffic or never trips on high).
 * Getting that wrong either dead-letters views during an outage or pauses the pipeline for ever on a
 * poison view. So failures only raise a suspicion, and a health probe decides:
 *
 * - `BREAKER_FAILURE_THRESHOLD` failed requests in a row, across all views, with no good answer in
 *   between, make the sink probe Analytics (one probe at a time, however many callers ask).
 * - A delivery that spent its attempt budget also asks for a probe, unless Analytics answered
 *   another request well while that delivery's last attempt was under way: only a view whose
 *   failures coexist with a healthy Analytics is `exhausted` (dead-lettered); otherwise it is an
 *   outage.
 * - A failed probe opens the circuit (cockatiel, `ConsecutiveBreaker(1)` over probes). A good one
 *   clears the suspicion.
 * - While open, a timer probes every `BREAKER_HALF_OPEN_AFTER_MS` through cockatiel's half-open
 *   state; success closes the circuit. The probe needs no traffic, because the consumer pauses.
 *
 * What a probe sends is the sink's business (delivery.ts); this module only runs the state machine.
 */
import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhenResult,
  isBrokenCircuitError,
} from 'cockatiel'

/** The circuit's state as the consumer sees it. */
export type CircuitStateName = 'closed' | 'open' | 'half-open'

/** The verdict of a health probe. */
export type Health = 'healthy' | 'unhealthy'

/**
 * Consecutive failures across all requests (pure). A good answer anywhere resets it: failures
 * interleaved with successes are view-specific, not an outage.
 */
export class FailureRun {
  readonly #threshold: number
  #count = 0

  /** @throws {RangeError} unless `threshold` is a positive whole number */
  constructor(threshold: number) {
    if (!Number.isSafeInteger(threshold) || threshold < 1) {
      throw new RangeError(`the failure threshold must be a positive whole number, got ${threshold}`)
    }
    this.#threshold = threshold
  }

  /** Failures since the last good answer. */
  get count(): number {
    return this.#count
  }

  /** Counts a failure; true when the run has reached the threshold (time to probe). */
  fail(): boolean {
    this.#count += 1
    return this.#count >= this.#threshold
  }

  /** A good answer: the run starts over. */
  reset(): void {
    this.#count = 0
  }
}

/** Options of {@link SinkCircuit}. */
export interface SinkCircuitOptions {
  /** Failed requests in a row that make the circuit probe (`BREAKER_FAILURE_THRESHOLD`). */
  readonly failureThreshold: number
  /** Time in the open state before each recovery probe (`BREAKER_HALF_OPEN_AFTER_MS`). */
  readonly halfOpenAfterMs: number
  /** One health check of Analytics. Must not throw: an unreachable Analytics is `unhealthy`. */
  readonly probe: () => Promise<Health>
}

/** The gauge value of each state (`pipeline_sink_circuit_state`). */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CircuitStateName, number>> = {
  closed: 0,
  'half-open': 1,
  open: 2,
}

/** Timers may fire a hair before cockatiel's Date.now()-based deadline; then try again this much later. */
const EARLY_TIMER_RETRY_MS = 10

/**
 * The breaker state machine around a cockatiel circuit breaker, with probe-confirmed opening and
 * self-driven recovery.
 */
export class SinkCircuit {
  readonly #policy: CircuitBreakerPolicy
  readonly #probe: () => Promise<Health>
  readonly #halfOpenAfterMs: number
  readonly #run: FailureRun
  readonly #listeners = new Set<(state: CircuitStateName) => void>()
  readonly #waiters = new Set<{ resolve(): void; reject(reason: unknown): void }>()
  #healthEpoch = 0
  #probing: Promise<Health> | undefined
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: SinkCircuitOptions) {
    this.#run = new FailureRun(options.failureThreshold)
    this.#probe = options.probe
    this.#halfOpenAfterMs = options.halfOpenAfterMs
    this.#policy = circuitBreaker(
      handleWhenResult((result) => result === 'unhealthy'),
      { halfOpenAfter: options.halfOpenAfterMs, breaker: new ConsecutiveBreaker(1) },
    )
    this.#policy.onStateChange((state) => this.#changed(state))
  }

  /** The current state. */
  state(): CircuitStateName {
    return nameOf(this.#policy.state)
  }

  /**
   * Grows each time Analytics answered well (a delivery or a probe). A caller remembers it when it
   * starts and compares later: a change means Analytics worked meanwhile.
   */
  get healthEpoch(): number {
    return this.#healthEpoch
  }

  /** Analytics answered a request in a way that proves it works (2xx, or a permanent 4xx). */
  recordHealthy(): void {
    this.#run.reset()
    this.#healthEpoch += 1
  }

  /** A request failed retryably; enough of them in a row start a probe. */
  recordFailure(): void {
    if (this.#run.fail()) void this.confirmHealth()
  }

  /**
   * Probes Analytics (one probe at a time; concurrent callers share it) while the circuit is closed.
   * A failed probe opens the circuit. When the circuit is not closed, Analytics counts as unhealthy
   * without a new probe: the recovery timer is already on it.
   */
  confirmHealth(): Promise<Health> {
    if (this.#closed || this.#policy.state !== CircuitState.Closed) return Promise.resolve('unhealthy')
    this.#probing ??= this.#execute().finally(() => {
      this.#probing = undefined
    })
    return this.#probing
  }

  /** Calls `listener` on every state change; returns the function that unsubscribes it. */
  onStateChange(listener: (state: CircuitStateName) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Resolves once the circuit is closed (at once if it is). The circuit probes by itself meanwhile.
   *
   * @throws the signal's reason when `signal` aborts first, or an `AbortError` when the circuit is
   *   shut down by {@link close}
   */
  waitUntilClosed(signal?: AbortSignal): Promise<void> {
    if (this.state() === 'closed') return Promise.resolve()
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.#closed) return Promise.reject(shutDown())
    return new Promise((resolve, reject) => {
      const onAbort = (): void => waiter.reject(signal?.reason)
      const waiter = {
        resolve: () => {
          this.#waiters.delete(waiter)
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
        reject: (reason: unknown) => {
          this.#waiters.delete(waiter)
          signal?.removeEventListener('abort', onAbort)
          reject(reason)
        },
      }
      this.#waiters.add(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Stops probing and fails pending {@link waitUntilClosed} calls. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    for (const waiter of [...this.#waiters]) waiter.reject(shutDown())
  }

  /** Runs one probe through cockatiel, which opens, half-opens or closes the circuit on its verdict. */
  async #execute(): Promise<Health> {
    let health: Health
    try {
      health = await this.#policy.execute(() => this.#probe())
    } catch (error) {
      if (isBrokenCircuitError(error)) return 'unhealthy'
      throw error
    }
    if (health === 'healthy') this.recordHealthy()
    return health
  }

  #changed(state: CircuitState): void {
    const name = nameOf(state)
    if (name === 'open') {
      this.#schedule(this.#halfOpenAfterMs)
    } else if (name === 'closed') {
      this.recordHealthy()
      for (const waiter of [...this.#waiters]) waiter.resolve()
    }
    for (const listener of this.#listeners) {
      try {
        listener(name)
      } catch (error) {
        // A listener's bug must not corrupt the breaker mid-transition; surface it on its own.
        queueMicrotask(() => {
          throw error
        })
      }
    }
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer)
    if (this.#closed) return
    this.#timer = setTimeout(() => this.#recover(), delayMs)
    // The consumer's own handles keep the process alive; a pending probe alone must not.
    this.#timer.unref()
  }

  #recover(): void {
    if (this.#closed || this.#policy.state !== CircuitState.Open) return
    void this.#policy
      .execute(() => this.#probe())
      .catch((error: unknown) => {
        if (!isBrokenCircuitError(error)) throw error
        this.#schedule(EARLY_TIMER_RETRY_MS)
      })
  }
}

function nameOf(state: CircuitState): CircuitStateName {
  switch (state) {
    case CircuitState.Closed:
      return 'closed'
    case CircuitState.HalfOpen:
      return 'half-open'
    default:
      return 'open'
  }
}

function shutDown(): DOMException {
  return new DOMException('the Analytics sink was closed', 'AbortError')
}
