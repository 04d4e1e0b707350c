/**
 * Decoding a source-topic message (pure): the envelope of design §3, or a tombstone, or poison with
 * the stage it failed at and a one-line reason. Nothing from Kafka is trusted.
 */

import { isUtf8 } from 'node:buffer'
import { oneLine } from '../errors.ts'
import {
  type EntityName,
  type EntityRecord,
  envelopeSchema,
  fastEnvelope,
  validateRecord,
} from './records.ts'
import type { StoredEntity } from './views.ts'

/** A decoded source message. */
export type DecodedSource =
  | {
      readonly kind: 'upsert'
      readonly entity: EntityName
      readonly id: string
      readonly stored: StoredEntity<EntityRecord>
    }
  | { readonly kind: 'delete'; readonly entity: EntityName; readonly id: string }
  | { readonly kind: 'poison'; readonly stage: 'deserialize' | 'validate'; readonly reason: string }

/**
 * A key as shown in a reason: quoted (so empty, blank and control characters are visible) and cut.
 * A Kafka key can be as large as a message; the reason goes into log lines and the DLQ.
 */
function quoted(text: string): string {
  const shown = JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text)
  return text.length > 100 ? `${shown} (${text.length} characters)` : shown
}

const hasBom = (value: Buffer): boolean => value[0] === 0xef && value[1] === 0xbb && value[2] === 0xbf

/** The raw value as text for a DLQ record: UTF-8 when it is, else base64 with a marker. */
export function rawPayload(value: Buffer | null): string | null {
  if (value === null) return null
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(value)
  } catch {
    return `base64:${value.toString('base64')}`
  }
}

/**
 * Decodes one message of the topic of `entity`.
 *
 * @param key the message key (the entity id), null when missing
 * @param value the raw value, null for a tombstone
 */
export function decodeSourceMessage(
  entity: EntityName,
  key: string | null,
  value: Buffer | null,
): DecodedSource {
  if (key === null || key === '')
    return { kind: 'poison', stage: 'validate', reason: 'message has no key (entity id)' }
  if (value === null) return { kind: 'delete', entity, id: key }
  let json: unknown
  try {
    if (!isUtf8(value)) throw new Error('invalid UTF-8')
    // As a UTF-8 TextDecoder reads it (a leading byte order mark is not text), minus its cost per message.
    json = JSON.parse(value.toString('utf8', hasBom(value) ? 3 : 0))
  } catch (error) {
    return {
      kind: 'poison',
      stage: 'deserialize',
      reason: `value is not JSON: ${oneLine((error as Error).message)}`,
    }
  }
  const fast = fastEnvelope(json)
  const envelope = fast ? { success: true as const, data: fast } : envelopeSchema.safeParse(json)
  if (!envelope.success) {
    const issue = envelope.error.issues[0]
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(envelope)'
    return {
      kind: 'poison',
      stage: 'validate',
      reason: `not a pipeline envelope: ${where}: ${issue?.message ?? 'invalid'}`,
    }
  }
  const { data } = envelope.data
  if (envelope.data.entity !== entity) {
    return { kind: 'poison', stage: 'validate', reason: `a ${envelope.data.entity} on the ${entity} topic` }
  }
  const record = validateRecord(entity, data)
  if (!record.ok) return { kind: 'poison', stage: 'validate', reason: `invalid ${entity}: ${record.reason}` }
  if (record.record.id !== key || envelope.data.id !== key) {
    return {
      kind: 'poison',
      stage: 'validate',
      reason: `key ${quoted(key)} does not match the record id ${quoted(record.record.id)}`,
    }
  }
  return {
    kind: 'upsert',
    entity,
    id: key,
    stored: { data: record.record, contentHash: envelope.data.contentHash, polledAt: envelope.data.polledAt },
  }
}
