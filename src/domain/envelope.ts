/**
 * Source-topic messages (design §3): a record in its envelope, keyed by id, with the essentials as
 * headers; or a tombstone. The producer writes them; consumer tests and tools write them the same way.
 */
import type { OutgoingMessage } from '../kafka/ports.ts'
import { contentHash } from './canonical.ts'
import { type EntityName, type EntityRecord, type Envelope, SCHEMA_VERSION } from './records.ts'

/** Where a record comes from and goes to. */
export interface RecordOrigin {
  /** Source name, e.g. `crm`. */
  readonly name: string
  readonly entity: EntityName
  readonly topic: string
}

/** The message carrying `record` (already validated); `hash` defaults to its content hash. */
export function upsertMessage(
  origin: RecordOrigin,
  record: EntityRecord,
  polledAt: string,
  hash = contentHash(record),
): OutgoingMessage {
  const envelope: Envelope = {
    schemaVersion: SCHEMA_VERSION,
    source: origin.name,
    entity: origin.entity,
    id: record.id,
    data: record,
    contentHash: hash,
    polledAt,
  }
  return {
    topic: origin.topic,
    key: record.id,
    value: JSON.stringify(envelope),
    headers: {
      'content-hash': hash,
      source: origin.name,
      'schema-version': String(SCHEMA_VERSION),
      'polled-at': polledAt,
    },
  }
}

/** The tombstone deleting `id` from the table of `origin`. */
export function tombstoneMessage(origin: RecordOrigin, id: string, polledAt: string): OutgoingMessage {
  return {
    topic: origin.topic,
    key: id,
    value: null,
    headers: { source: origin.name, 'schema-version': String(SCHEMA_VERSION), 'polled-at': polledAt },
  }
}
