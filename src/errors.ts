/**
 * The one errors module: every failure the pipeline reports on purpose carries a stable code, so
 * logs, metrics, DLQ records and tests can match on it instead of on message text.
 */

/** Stable error codes. Add new ones at the end of their group; never rename one that shipped. */
export const ErrorCodes = {
  CONFIG_INVALID: 'PIPELINE_CONFIG_INVALID',
  INFRA_JAVA_MISSING: 'PIPELINE_INFRA_JAVA_MISSING',
  INFRA_MAVEN_MISSING: 'PIPELINE_INFRA_MAVEN_MISSING',
  INFRA_DOWNLOAD_FAILED: 'PIPELINE_INFRA_DOWNLOAD_FAILED',
  INFRA_PORT_BUSY: 'PIPELINE_INFRA_PORT_BUSY',
  INFRA_NOT_READY: 'PIPELINE_INFRA_NOT_READY',
  INFRA_EXITED: 'PIPELINE_INFRA_EXITED',
  INFRA_REDIS_MISSING: 'PIPELINE_INFRA_REDIS_MISSING',
  INFRA_PROMETHEUS_MISSING: 'PIPELINE_INFRA_PROMETHEUS_MISSING',
  REDIS_UNREACHABLE: 'PIPELINE_REDIS_UNREACHABLE',
  USAGE: 'PIPELINE_USAGE',
  KAFKA_TIMEOUT: 'PIPELINE_KAFKA_TIMEOUT',
  KAFKA_PUBLISH_FAILED: 'PIPELINE_KAFKA_PUBLISH_FAILED',
  KAFKA_TOPIC_SETUP_FAILED: 'PIPELINE_KAFKA_TOPIC_SETUP_FAILED',
  KAFKA_AUTH_FAILED: 'PIPELINE_KAFKA_AUTH_FAILED',
  KAFKA_TLS_FAILED: 'PIPELINE_KAFKA_TLS_FAILED',
  KAFKA_CONSUMER_STALLED: 'PIPELINE_KAFKA_CONSUMER_STALLED',
  KAFKA_UNREACHABLE: 'PIPELINE_KAFKA_UNREACHABLE',
  KAFKA_RECORDS_SKIPPED: 'PIPELINE_KAFKA_RECORDS_SKIPPED',
  SOURCE_HTTP_STATUS: 'PIPELINE_SOURCE_HTTP_STATUS',
  SOURCE_NETWORK: 'PIPELINE_SOURCE_NETWORK',
  SOURCE_TIMEOUT: 'PIPELINE_SOURCE_TIMEOUT',
  SOURCE_TOO_LARGE: 'PIPELINE_SOURCE_TOO_LARGE',
  SOURCE_NOT_JSON: 'PIPELINE_SOURCE_NOT_JSON',
  SOURCE_BAD_SHAPE: 'PIPELINE_SOURCE_BAD_SHAPE',
  SOURCE_TOO_MANY_PAGES: 'PIPELINE_SOURCE_TOO_MANY_PAGES',
  SOURCE_ABORTED: 'PIPELINE_SOURCE_ABORTED',
  SOURCE_DEADLINE: 'PIPELINE_SOURCE_DEADLINE',
  SOURCE_BAD_ENCODING: 'PIPELINE_SOURCE_BAD_ENCODING',
  SOURCE_TOO_MANY_INVALID: 'PIPELINE_SOURCE_TOO_MANY_INVALID',
  SOURCE_SCAN_FAILED: 'PIPELINE_SOURCE_SCAN_FAILED',
  SOURCE_LISTING_CHANGED: 'PIPELINE_SOURCE_LISTING_CHANGED',
  SINK_REJECTED: 'PIPELINE_SINK_REJECTED',
  SINK_HTTP_STATUS: 'PIPELINE_SINK_HTTP_STATUS',
  SINK_TIMEOUT: 'PIPELINE_SINK_TIMEOUT',
  SINK_NETWORK: 'PIPELINE_SINK_NETWORK',
  DLQ_BAD_FILTER: 'PIPELINE_DLQ_BAD_FILTER',
  DLQ_NOT_FOUND: 'PIPELINE_DLQ_NOT_FOUND',
  DLQ_CONFIRMATION_REQUIRED: 'PIPELINE_DLQ_CONFIRMATION_REQUIRED',
  DLQ_REPLAY_BUSY: 'PIPELINE_DLQ_REPLAY_BUSY',
} as const

/** One of the stable error codes. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** Optional structured context attached to a {@link PipelineError}; never holds secrets. */
export type ErrorDetails = Readonly<Record<string, unknown>>

/**
 * An expected failure with a stable code and a one-line, human-readable message that names what was
 * wrong and, where there is one, what to do about it.
 */
export class PipelineError extends Error {
  readonly code: ErrorCode
  readonly details: ErrorDetails

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: ErrorDetails } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'PipelineError'
    this.code = code
    this.details = options.details ?? {}
  }
}

/** True when `error` is a {@link PipelineError}, optionally with the given code. */
export function isPipelineError(error: unknown, code?: ErrorCode): error is PipelineError {
  return error instanceof PipelineError && (code === undefined || error.code === code)
}

/** A one-line description of any thrown value, for logs and CLI output (no stack trace). */
export function describeError(error: unknown): string {
  if (error instanceof PipelineError) return `${error.message} [${error.code}]`
  if (error instanceof Error) return `${error.name}: ${error.message}`.replace(/\s*\n\s*/g, ' ')
  return String(error)
}

/**
 * `text` on one line and cut to `max` characters, for messages that quote what a peer sent (a
 * parser's excerpt of a body, a header): that text can hold newlines, control characters, anything.
 */
export function oneLine(text: string, max = 200): string {
  const flat = text.replace(/[\s\p{Cc}]+/gu, ' ')
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}
