/**
 * A counting semaphore with first-come, first-served waiters that can give up (abort). It bounds the
 * requests in flight to Analytics so callers may fire thousands of deliveries at once.
 */

interface Waiter {
  readonly grant: (release: () => void) => void
  readonly cancel: (reason: unknown) => void
}

/** Hands out at most `permits` slots at a time. */
export class Semaphore {
  #available: number
  readonly #waiters: Waiter[] = []

  /** @throws {RangeError} unless `permits` is a positive whole number */
  constructor(permits: number) {
    if (!Number.isSafeInteger(permits) || permits < 1) {
      throw new RangeError(`a semaphore needs a positive whole number of permits, got ${permits}`)
    }
    this.#available = permits
  }

  /** Slots free right now. */
  get available(): number {
    return this.#available
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#waiters.length
  }

  /**
   * Resolves with the function that gives the slot back (call it exactly once; later calls do
   * nothing).
   *
   * @throws the signal's reason when `signal` aborts before a slot was granted
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.#available > 0) {
      this.#available -= 1
      return Promise.resolve(this.#releaser())
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(release)
        },
        cancel: (reason) => {
          signal?.removeEventListener('abort', onAbort)
          reject(reason)
        },
      }
      const onAbort = (): void => {
        const index = this.#waiters.indexOf(waiter)
        if (index !== -1) this.#waiters.splice(index, 1)
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(waiter)
    })
  }

  /** Turns every waiter away with `reason` (slots already granted are unaffected). */
  cancelWaiting(reason: unknown): void {
    for (const waiter of this.#waiters.splice(0)) waiter.cancel(reason)
  }

  #releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiters.shift()
      // The slot passes straight to the next waiter, so a newcomer cannot overtake the queue.
      if (next === undefined) this.#available += 1
      else next.grant(this.#releaser())
    }
  }
}
