/**
 * Scanning what a run put out for secrets: log lines, HTTP answers, DLQ records, broker logs. Each
 * secret is `<name>-<24 hex>`, so an echo is found whole and also by its random part alone (a
 * truncated, prefixed or re-quoted echo).
 */
import { randomBytes } from 'node:crypto'

/** A fresh secret for `name`, e.g. `crm-3f2a…`. */
export function testSecret(name: string): string {
  return `${name}-${randomBytes(12).toString('hex')}`
}

/** The strings whose presence counts as a leak of `secret`. */
function needles(secret: string): string[] {
  const dash = secret.lastIndexOf('-')
  const random = secret.slice(dash + 1)
  return random.length >= 16 ? [secret, random.slice(0, 16)] : [secret]
}

/** What was collected, and where each text came from. */
export class OutputScan {
  readonly #outputs: Array<{ readonly what: string; readonly text: string }> = []

  /** Adds one output, named for the leak report. */
  add(what: string, text: string): void {
    this.#outputs.push({ what, text })
  }

  /** Adds a record (a Kafka message, a parsed line) as its JSON; bigints as strings. */
  addJson(what: string, value: unknown): void {
    this.add(
      what,
      JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
    )
  }

  /** How many outputs were collected whose name matches `pattern` (to show a scan was not vacuous). */
  count(pattern: RegExp = /.*/): number {
    return this.#outputs.filter((o) => pattern.test(o.what)).length
  }

  /** `<secret name> in <output>` for every output holding a secret; empty when nothing leaked. */
  leaks(secrets: Readonly<Record<string, string>>): string[] {
    const found: string[] = []
    for (const [name, value] of Object.entries(secrets)) {
      const search = needles(value)
      for (const { what, text } of this.#outputs)
        if (search.some((needle) => text.includes(needle))) found.push(`${name} in ${what}`)
    }
    return found
  }
}
