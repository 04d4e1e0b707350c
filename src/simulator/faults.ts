/**
 * Fault rules for the source endpoints: which request gets which misbehaviour. Pure bookkeeping;
 * the server carries a rule out.
 */

/** The source endpoints a rule can target. */
export type SourcePath = '/customers' | '/products'

/** One misbehaviour, applied to matching requests. */
export interface FaultRule {
  /** Only requests to this path; every source path when absent. */
  readonly path?: SourcePath
  /**
   * Only requests for this page (their `page` parameter; none is page 1): a fault on one page of a
   * listing whose pages are read in parallel.
   */
  readonly page?: number
  /** Answer with this status (a JSON error body unless `body` is given; the normal body for 2xx). */
  readonly status?: number
  /** Apply to this many matching requests, then retire; forever when absent. */
  readonly count?: number
  /** Wait this long before sending headers: a hung source. */
  readonly delayMs?: number
  /** `Retry-After` header value: seconds or an HTTP date. */
  readonly retryAfter?: string | number
  /** Replace the body with this text. */
  readonly body?: string
  /** Replace the Content-Type, e.g. `text/html` for a login page served with 200. */
  readonly contentType?: string
  /** Destroy the socket instead of answering (after `delayMs`, if any). */
  readonly drop?: boolean
  /** Slow-loris: send headers, then the body in `slowBodyChunks` pieces with this pause before each. */
  readonly slowBodyMs?: number
  /** How many pieces a slow body is cut into; default 5. */
  readonly slowBodyChunks?: number
  /** Mix this many schema-violating records into the items of the response. */
  readonly invalidRecords?: number
}

/** A rule as installed: with an id and how often it can still fire. */
export interface ActiveFault {
  readonly id: number
  readonly rule: FaultRule
  /** Matching requests it still applies to; null for a rule without `count`. */
  remaining: number | null
  /** Requests it has been applied to. */
  hits: number
}

/** The installed rules, first match wins. */
export class FaultBook {
  #rules: ActiveFault[] = []
  #nextId = 1

  /** Installs rules after the existing ones. */
  add(rules: readonly FaultRule[]): ActiveFault[] {
    const added = rules.map((rule) => ({ id: this.#nextId++, rule, remaining: rule.count ?? null, hits: 0 }))
    this.#rules.push(...added)
    return added
  }

  /** Replaces every rule. */
  set(rules: readonly FaultRule[]): ActiveFault[] {
    this.#rules = []
    return this.add(rules)
  }

  clear(): void {
    this.#rules = []
  }

  /** The installed rules, copies (so callers cannot change the counters). */
  list(): ActiveFault[] {
    return this.#rules.map((fault) => ({ ...fault }))
  }

  /**
   * The rule a request to `path` with query string `query` gets, consuming one use of it; a rule
   * whose count is spent is removed. Undefined when no rule matches.
   */
  take(path: string, query = ''): ActiveFault | undefined {
    const page = Number(new URLSearchParams(query).get('page') ?? '1')
    const index = this.#rules.findIndex(
      ({ rule }) =>
        (rule.path === undefined || rule.path === path) && (rule.page === undefined || rule.page === page),
    )
    const fault = this.#rules[index]
    if (fault === undefined) return undefined
    fault.hits++
    if (fault.remaining !== null && --fault.remaining <= 0) this.#rules.splice(index, 1)
    return { ...fault }
  }
}
