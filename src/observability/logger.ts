/**
 * The pino logger factory: JSON lines by default (what log shippers want), pretty when stdout is a
 * terminal (what a person at `npm start` wants). Every line names its service. Secrets never reach a
 * line: fields that conventionally carry credentials are censored by name, and the configured secret
 * values are replaced wherever they appear (a message, an error's stack, a library's error text).
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino'

export type { Logger } from 'pino'

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly service: string
  readonly level?: LevelWithSilent
  /** Force pretty or JSON output; by default pretty exactly when stdout is a TTY. */
  readonly pretty?: boolean
  /** Where JSON lines go (tests capture them); defaults to stdout. */
  readonly destination?: NodeJS.WritableStream
  /** Secret values (tokens, passwords, URLs with credentials) to replace in every line; see {@link secretNeedles}. */
  readonly secrets?: ReadonlyArray<string | undefined>
}

/** What stands in for a removed secret. */
export const REDACTED = '[redacted]'

// By name, whatever their value: headers and options objects a library error or a caller may attach.
const redactPaths = [
  'authorization',
  'password',
  'token',
  'headers.authorization',
  '*.authorization',
  '*.password',
  '*.token',
  '*.headers.authorization',
  'sasl.password',
  '*.sasl.password',
]

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

/** A stream that scrubs each line before handing it on; flush and end reach the inner stream. */
function scrubbing(inner: DestinationStream, needles: readonly string[]): DestinationStream {
  const target = inner as DestinationStream & {
    flush?: (cb?: (error?: Error) => void) => void
    flushSync?: () => void
    end?: () => void
  }
  return {
    write: (line: string) => target.write(scrub(line, needles)),
    ...(target.flush ? { flush: (cb?: (error?: Error) => void) => target.flush?.(cb) } : {}),
    ...(target.flushSync ? { flushSync: () => target.flushSync?.() } : {}),
    ...(target.end ? { end: () => target.end?.() } : {}),
  } as DestinationStream
}

/** Creates the process logger for one service. */
export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty ?? (options.destination === undefined && process.stdout.isTTY === true)
  const base = { service: options.service }
  const level = options.level ?? 'info'
  const redact = { paths: redactPaths, censor: REDACTED }
  const needles = secretNeedles(options.secrets ?? [])
  const guard = (stream: DestinationStream) => (needles.length === 0 ? stream : scrubbing(stream, needles))
  if (pretty) {
    const transport = pino.transport({
      target: 'pino-pretty',
      options: { ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' },
    })
    return pino({ level, base, redact }, guard(transport))
  }
  const destination =
    (options.destination as DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: false })
  return pino({ level, base, redact, timestamp: pino.stdTimeFunctions.isoTime }, guard(destination))
}
