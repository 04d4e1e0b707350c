/**
 * The pino logger factory: JSON lines by default (what log shippers want), pretty when stdout is a
 * terminal (what a person at `npm start` wants). Every line names its service.
 */
import { type LevelWithSilent, type Logger, pino } from 'pino'

export type { Logger } from 'pino'

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly service: string
  readonly level?: LevelWithSilent
  /** Force pretty or JSON output; by default pretty exactly when stdout is a TTY. */
  readonly pretty?: boolean
  /** Where JSON lines go (tests capture them); defaults to stdout. */
  readonly destination?: NodeJS.WritableStream
}

/** Creates the process logger for one service. */
export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty ?? (options.destination === undefined && process.stdout.isTTY === true)
  const base = { service: options.service }
  const level = options.level ?? 'info'
  if (pretty) {
    return pino({
      level,
      base,
      transport: {
        target: 'pino-pretty',
        options: { ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' },
      },
    })
  }
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false })
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, destination)
}
