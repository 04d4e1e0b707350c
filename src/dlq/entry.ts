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
  /**
   * Set when the payload or the view could not be stored whole (see {@link MAX_STORED_BYTES}): why,
   * per field. Such a payload is the head of its text and cannot be replayed.
   */
  readonly truncated?: { readonly payload?: string; readonly view?: string }
}

/** Bodies and messages are cut to 1 KiB so one bad answer cannot bloat the DLQ. */
export const MAX_BODY_BYTES = 1024

/**
 * Most bytes a payload or a view takes in a DLQ record, as JSON. A hostile record can be as large
 * as the source's page limit or the topic's message limit; stored whole it would make the DLQ
 * record larger than Kafka accepts, and the write (with the cycle or the batch) would fail.
 */
export const MAX_STORED_BYTES = 256 * 1024

/** What is kept of a field over {@link MAX_STORED_BYTES}: the head of its text (escapes can grow it 6×). */
const KEPT_BYTES = 32 * 1024

/** Longest origin key stored: a Kafka key can be as large as a message. */
const MAX_KEY_BYTES = 1024

/** `value` as it can be stored in a DLQ record, and why it was cut, if it was. */
function storable(value: unknown): { value: unknown; cut?: string } {
  if (value === undefined) return { value }
  let json: string
  try {
    json = JSON.stringify(value)
  } catch (error) {
    // A 100k-deep array parses fine but overflows the stack of JSON.stringify.
    return { value: null, cut: `not serializable: ${(error as Error).message}` }
  }
  const bytes = Buffer.byteLength(json ?? '', 'utf8')
  if (bytes <= MAX_STORED_BYTES) return { value }
  const text = typeof value === 'string' ? value : json
  return {
    value: cut(text, KEPT_BYTES),
    cut: `${bytes} bytes of JSON, over ${MAX_STORED_BYTES}: its first ${KEPT_BYTES} kept`,
  }
}

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
  const payload = storable(entry.payload)
  const view = storable(entry.view)
  const truncated = {
    ...entry.truncated,
    ...(payload.cut === undefined ? {} : { payload: payload.cut }),
    ...(view.cut === undefined ? {} : { view: view.cut }),
  }
  const key = entry.origin.key === undefined ? undefined : cut(entry.origin.key, MAX_KEY_BYTES)
  const safe: DlqEntry = {
    ...entry,
    ...(entry.payload === undefined ? {} : { payload: payload.value }),
    ...(entry.view === undefined ? {} : { view: view.value }),
    ...(Object.keys(truncated).length === 0 ? {} : { truncated }),
    error: {
      ...entry.error,
      message: cut(entry.error.message),
      ...(entry.error.body === undefined ? {} : { body: cut(entry.error.body) }),
    },
    origin: {
      ...entry.origin,
      ...(entry.origin.url === undefined ? {} : { url: redactUrl(entry.origin.url) }),
      ...(key === undefined ? {} : { key }),
    },
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
  return { key: key ?? entry.idempotencyKey, value: JSON.stringify(safe), headers }
}
