/**
 * What clients asked the source endpoints and what they got, so a test can prove behaviour from the
 * server side ("500, 500, then 200 within one cycle"; "the re-poll sent If-None-Match").
 */

/** How a request ended: an HTTP status, a dropped socket, or a client that gave up first. */
export type RequestOutcome = number | 'dropped' | 'aborted'

/** One request to a non-control path. */
export interface LoggedRequest {
  readonly seq: number
  readonly at: string
  readonly method: string
  readonly path: string
  /** The query string without `?`; empty when there was none. */
  readonly query: string
  readonly ifNoneMatch: string | null
  /** Id of the fault rule applied, if any. */
  faultId: number | null
  /** Null while the request is still being answered (e.g. a delay fault). */
  outcome: RequestOutcome | null
}

/** Counters of one path. */
export interface PathStats {
  count: number
  /** Outcomes by status code (as a string), `dropped` or `aborted`. */
  statuses: Record<string, number>
  lastIfNoneMatch: string | null
}

/** The log as `GET /control/requests` returns it. */
export interface RequestLogSnapshot {
  readonly total: number
  readonly paths: Record<string, PathStats>
  /** The most recent requests, oldest first. */
  readonly recent: readonly LoggedRequest[]
}

/** Counters per path plus a bounded list of recent requests. */
export class RequestLog {
  readonly #limit: number
  #total = 0
  #paths = new Map<string, PathStats>()
  #recent: LoggedRequest[] = []

  /** @param limit how many recent requests to keep (counters are unbounded). */
  constructor(limit = 1000) {
    this.#limit = limit
  }

  /** Records an arriving request; settle it with {@link RequestLog.settle}. */
  start(method: string, path: string, query: string, ifNoneMatch: string | null): LoggedRequest {
    this.#total++
    let stats = this.#paths.get(path)
    if (stats === undefined) {
      stats = { count: 0, statuses: {}, lastIfNoneMatch: null }
      this.#paths.set(path, stats)
    }
    stats.count++
    stats.lastIfNoneMatch = ifNoneMatch
    const entry: LoggedRequest = {
      seq: this.#total,
      at: new Date().toISOString(),
      method,
      path,
      query,
      ifNoneMatch,
      faultId: null,
      outcome: null,
    }
    this.#recent.push(entry)
    // Trimming in blocks keeps this O(1) amortised for a benchmark's hundreds of thousands of requests.
    if (this.#recent.length > this.#limit * 2) this.#recent = this.#recent.slice(-this.#limit)
    return entry
  }

  /**
   * Sets how a request ended. Called when the outcome is decided (before the bytes go out), so a test
   * that reads the log right after its response already sees it. Only the first outcome counts.
   */
  settle(entry: LoggedRequest, outcome: RequestOutcome): void {
    if (entry.outcome !== null) return
    entry.outcome = outcome
    const stats = this.#paths.get(entry.path)
    if (stats !== undefined) stats.statuses[String(outcome)] = (stats.statuses[String(outcome)] ?? 0) + 1
  }

  /** Requests seen since the last reset. */
  get total(): number {
    return this.#total
  }

  snapshot(): RequestLogSnapshot {
    const paths: Record<string, PathStats> = {}
    for (const [path, stats] of this.#paths) paths[path] = { ...stats, statuses: { ...stats.statuses } }
    return {
      total: this.#total,
      paths,
      recent: this.#recent.slice(-this.#limit).map((entry) => ({ ...entry })),
    }
  }

  reset(): void {
    this.#total = 0
    this.#paths.clear()
    this.#recent = []
  }
}
