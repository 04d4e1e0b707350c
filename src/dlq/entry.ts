/**
 * The dead-letter record of design §6 (pure): what failed, where it came from, the payload, and
 * the same essentials as Kafka headers so tools can filter without parsing values.
 */

/** The stage at which a record failed. */
export type DlqStage = 'source' | 'deserialize' | 'validate' | 'deliver'

/** Where the failed record came from: a Kafka position, or a source URL. */
export interface DlqOrigin {
  readonly topic?: string
  readonly partition?: number
  readonly offset?: string
  readonly key?: string
  readonly url?: string
}

/** Where a consumed Kafka message sits, as a DLQ origin. */
export function messageOrigin(message: {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly key: string | null
}): DlqOrigin {
  return {
    topic: message.topic,
    partition: message.partition,
    offset: String(message.offset),
    ...(message.key === null ? {} : { key: message.key }),
  }
}

/** What went wrong. */
export interface DlqError {
  readonly class: string
  readonly message: string
  readonly status?: number
  /** The sink's response body, cut to {@link MAX_BODY_BYTES}. */
  readonly body?: string
}

/** A dead-letter entry as stored (JSON) on the DLQ topic. */
export interface DlqEntry {
  readonly stage: DlqStage
  readonly error: DlqError
  readonly attempts: number
  readonly firstFailedAt: string
  readonly failedAt: string
  readonly origin: DlqOrigin
  /** The raw record (source, deserialize and validate stages). */
  readonly payload?: unknown
  /** The view that could not be delivered (deliver stage). */
  readonly view?: unknown
  readonly idempotencyKey?: string
}

/** Bodies and messages are cut to 1 KiB so one bad answer cannot bloat the DLQ. */
export const MAX_BODY_BYTES = 1024

/** Cuts `text` to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function cut(text: string, maxBytes = MAX_BODY_BYTES): string {
  const bytes = Buffer.from(text, 'utf8')
  if (bytes.length <= maxBytes) return text
  return `${new TextDecoder().decode(bytes.subarray(0, maxBytes)).replace(/\uFFFD+$/, '')}…`
}

const SECRET_PARAM = /token|key|secret|pass|sig|auth|credential/i

/** Drops user info from a URL and masks query parameters whose names suggest credentials. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    for (const name of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAM.test(name)) parsed.searchParams.set(name, 'REDACTED')
    }
    return parsed.href
  } catch {
    return '(unparseable URL)'
  }
}

/** A Kafka message ready to produce to the DLQ topic. */
export interface DlqMessage {
  readonly key: string | undefined
  readonly value: string
  readonly headers: Record<string, string>
}

/** Builds the DLQ message of `entry`: JSON value, origin key, and filterable headers. */
export function toDlqMessage(entry: DlqEntry): DlqMessage {
  const safe: DlqEntry = {
    ...entry,
    error: {
      ...entry.error,
      message: cut(entry.error.message),
      ...(entry.error.body === undefined ? {} : { body: cut(entry.error.body) }),
    },
    origin:
      entry.origin.url === undefined ? entry.origin : { ...entry.origin, url: redactUrl(entry.origin.url) },
  }
  const headers: Record<string, string> = {
    'dlq-stage': entry.stage,
    'dlq-error-class': entry.error.class,
    'dlq-attempts': String(entry.attempts),
    'dlq-failed-at': entry.failedAt,
  }
  if (entry.error.status !== undefined) headers['dlq-http-status'] = String(entry.error.status)
  if (entry.origin.topic !== undefined) headers['dlq-origin-topic'] = entry.origin.topic
  if (entry.origin.partition !== undefined) headers['dlq-origin-partition'] = String(entry.origin.partition)
  if (entry.origin.offset !== undefined) headers['dlq-origin-offset'] = entry.origin.offset
  if (entry.idempotencyKey !== undefined) headers['idempotency-key'] = entry.idempotencyKey
  return { key: entry.origin.key ?? entry.idempotencyKey, value: JSON.stringify(safe), headers }
}
