/**
 * Fault injection of the mock Analytics service: the rules tests install to make deliveries fail (a
 * status, a dropped connection, a delay) so the sink's retries, DLQ and circuit breaker can be proven
 * against a real HTTP peer. Pure logic: the HTTP server decides how to act on the rule it is handed.
 */

/**
 * One fault rule. `count` absent means the rule never runs out; `match` limits it to deliveries whose
 * Idempotency-Key starts with that prefix. `status` answers that status, `drop` destroys the connection
 * without an answer, `delayMs` waits first (alone, it only delays a delivery that then goes through).
 */
export interface FaultRule {
  readonly status?: number | undefined
  readonly count?: number | undefined
  readonly delayMs?: number | undefined
  readonly drop?: boolean | undefined
  readonly retryAfter?: string | number | undefined
  readonly match?: string | undefined
}

/** A rule as installed: `remaining` counts down the uses left (`undefined`: unlimited). */
export interface InstalledFaultRule {
  readonly id: number
  readonly rule: FaultRule
  readonly remaining: number | undefined
}

interface ArmedRule {
  readonly id: number
  readonly rule: FaultRule
  remaining: number | undefined
}

/**
 * The ordered list of installed rules. The first rule that matches a delivery applies to it, and a
 * counted rule is used up by the deliveries it applies to, so `{ status: 500, count: 3 }` fails exactly
 * the next three.
 */
export class FaultRules {
  #rules: ArmedRule[] = []
  #nextId = 1

  /** Appends a rule (evaluated after those installed before it) and returns it as installed. */
  add(rule: FaultRule): InstalledFaultRule {
    const armed: ArmedRule = { id: this.#nextId++, rule, remaining: rule.count }
    this.#rules.push(armed)
    return { ...armed }
  }

  /** Removes every rule and tells how many there were. */
  clear(): number {
    const removed = this.#rules.length
    this.#rules = []
    return removed
  }

  /** The rules still armed, in evaluation order. */
  list(): InstalledFaultRule[] {
    return this.#rules.map((armed) => ({ ...armed }))
  }

  /**
   * Finds the rule that applies to a delivery carrying `keys` (one for a single POST, the items' keys
   * for a batch) and uses it up once.
   */
  take(keys: readonly string[]): FaultRule | undefined {
    // The common case, no rule installed, must cost nothing on the hot path.
    if (this.#rules.length === 0) return undefined
    const index = this.#rules.findIndex((armed) => matches(armed.rule, keys))
    const found = this.#rules[index]
    if (found === undefined) return undefined
    if (found.remaining !== undefined) {
      found.remaining -= 1
      // Exhausted rules leave the list so `GET /control/faults` shows only what is still armed.
      if (found.remaining === 0) this.#rules.splice(index, 1)
    }
    return found.rule
  }
}

function matches(rule: FaultRule, keys: readonly string[]): boolean {
  const prefix = rule.match
  return prefix === undefined || keys.some((key) => key.startsWith(prefix))
}
