/**
 * The pino logger factory: JSON lines by default (what log shippers want), pretty when stdout is a
 * terminal (what a person at `npm start` wants). Every line names its service. Secrets never reach a
 * line: fields that conventionally carry credentials are censored by name, and the configured secret
 * values are replaced wherever they appear (a message, an error's stack, a library's error text).
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino'
import { REDACTED, scrub, secretNeedles } from './redact.ts'

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
