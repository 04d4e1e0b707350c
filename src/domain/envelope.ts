/**
 * Source-topic messages (design §3): a record in its envelope, keyed by id, with the essentials as
 * headers; or a tombstone. The producer writes them; consumer tests and tools write them the same way.
 */
import type { OutgoingMessage } from '../kafka/ports.ts'
import { canonicalJson, hashOfCanonical } from './canonical.ts'
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
  hash?: string,
): OutgoingMessage {
  const data = canonicalJson(record)
  return canonicalUpsertMessage(origin, record.id, data, hash ?? hashOfCanonical(data), polledAt)
}

/**
 * The message carrying a validated record given as its canonical JSON `data` (and its content
 * hash): the JSON the hash was computed from is reused as the envelope's `data`, so a record is
 * serialized once. The value is the JSON of an {@link Envelope}.
 */
export function canonicalUpsertMessage(
  origin: RecordOrigin,
  id: string,
  data: string,
  hash: string,
  polledAt: string,
): OutgoingMessage {
  return envelopeMessage(origin, id, hash, envelopeJson(origin, id, data, hash, polledAt))
}

/**
 * The JSON of the {@link Envelope} of a record given as its canonical JSON `data`: field by field
 * as JSON.stringify(envelope) would write them, with `data` spliced in as is.
 */
export function envelopeJson(
  origin: Pick<RecordOrigin, 'name' | 'entity'>,
  id: string,
  data: string,
  hash: string,
  polledAt: string,
): string {
  return (
    `{"schemaVersion":${SCHEMA_VERSION},"source":${JSON.stringify(origin.name)},` +
    `"entity":${JSON.stringify(origin.entity)},"id":${JSON.stringify(id)},"data":${data},` +
    `"contentHash":${JSON.stringify(hash)},"polledAt":${JSON.stringify(polledAt)}}`
  )
}

/**
 * The message carrying `envelope`, the {@link envelopeJson} of record `id` whose content hash is
 * `hash` (built elsewhere, e.g. by a scan worker, and there possibly encoded already).
 */
export function envelopeMessage<V extends string | Buffer>(
  origin: RecordOrigin,
  id: string,
  hash: string,
  envelope: V,
): OutgoingMessage<V> {
  return {
    topic: origin.topic,
    key: id,
    value: envelope,
    // The poll time is in the envelope only: every header costs the client a few buffers per
    // record, which a 100k-record sync feels. A tombstone has no envelope, so it keeps the header.
    headers: { 'content-hash': hash, source: origin.name, 'schema-version': SCHEMA_VERSION_TEXT },
  }
}

const SCHEMA_VERSION_TEXT = String(SCHEMA_VERSION)

/** The tombstone deleting `id` from the table of `origin`. */
export function tombstoneMessage(origin: RecordOrigin, id: string, polledAt: string): OutgoingMessage {
  return {
    topic: origin.topic,
    key: id,
    value: null,
    headers: { source: origin.name, 'schema-version': String(SCHEMA_VERSION), 'polled-at': polledAt },
  }
}
