/**
 * Removing secret values from text that leaves the process (log lines, error bodies kept in the DLQ,
 * URLs printed for a person). Pure.
 */

/** What stands in for a removed secret. */
export const REDACTED = '[redacted]'

// Shorter values would censor ordinary words; a credential that short is not worth hiding anyway.
const MIN_SECRET_LENGTH = 6

/**
 * The strings to replace for some secret values: each value as given and as it appears inside a JSON
 * string; for a URL (e.g. `redis://user:pw@host`) only its password, raw and percent-decoded, so the
 * rest of a URL without credentials is not censored.
 */
export function secretNeedles(values: ReadonlyArray<string | undefined>): string[] {
  const needles = new Set<string>()
  const add = (value: string) => {
    if (value.length < MIN_SECRET_LENGTH) return
    needles.add(value)
    needles.add(JSON.stringify(value).slice(1, -1))
  }
  for (const value of values) {
    if (value === undefined) continue
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
      const password = URL.canParse(value) ? new URL(value).password : ''
      if (password !== '') {
        add(password)
        add(decodeURIComponent(password))
      }
      continue
    }
    add(value)
  }
  // Longest first: a secret containing another is replaced whole.
  return [...needles].sort((a, b) => b.length - a.length)
}

/** Replaces every needle in `text` with {@link REDACTED}. */
export function scrub(text: string, needles: readonly string[]): string {
  let out = text
  for (const needle of needles) if (out.includes(needle)) out = out.split(needle).join(REDACTED)
  return out
}

/** `url` with its password (if any) replaced, for printing where a URL may carry credentials. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return url
  const parsed = new URL(url)
  if (parsed.password === '') return url
  // `***` survives the userinfo encoding where `[redacted]` would print as %5Bredacted%5D.
  parsed.password = '***'
  return parsed.toString()
}
