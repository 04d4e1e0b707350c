/**
 * Generators (fast-check) of hostile messages on the source topics, each with the outcome the
 * consumer must reach: poison at a stage with a reason pattern, or a normal upsert or deletion.
 * Shared by the unit test (decoding) and the integration test (the real consumer).
 */
import fc from 'fast-check'
import { upsertMessage } from '../../src/domain/envelope.ts'
import type { EntityName, EntityRecord } from '../../src/domain/records.ts'
import { hostileRecord, validRecord } from './hostile-source.ts'

/** A message as produced to a source topic. */
export interface HostileMessage {
  readonly kind: string
  readonly entity: EntityName
  readonly key: string | null
  readonly value: Buffer | null
  readonly headers: Readonly<Record<string, string>>
  readonly expect:
    | { readonly kind: 'poison'; readonly stage: 'deserialize' | 'validate'; readonly reason: RegExp }
    | { readonly kind: 'upsert' | 'delete'; readonly id: string }
}

const topics = { customer: 'customer_data', product: 'inventory_data' } as const
const other = (entity: EntityName): EntityName => (entity === 'customer' ? 'product' : 'customer')

/** The envelope object the producer would write for `record`. */
function envelopeOf(entity: EntityName, record: Record<string, unknown>): Record<string, unknown> {
  const origin = { name: entity === 'customer' ? 'crm' : 'inventory', entity, topic: topics[entity] }
  return JSON.parse(String(upsertMessage(origin, record as EntityRecord, '2026-02-04T18:30:00.000Z').value))
}

const text = (value: unknown) => Buffer.from(JSON.stringify(value))

/** Headers a hostile producer might attach: the consumer must not care. */
const hostileHeaders = fc.dictionary(
  fc.oneof(
    fc.constantFrom('content-hash', 'source', 'schema-version', 'polled-at'),
    fc.string({ maxLength: 20 }),
  ),
  fc.oneof(fc.string({ maxLength: 50 }), fc.constant('x'.repeat(10_000)), fc.constant('\ud800\u0000')),
  { maxKeys: 4 },
)

const poison = (stage: 'deserialize' | 'validate', reason: RegExp) => ({
  kind: 'poison' as const,
  stage,
  reason,
})

/** A hostile (or, for contrast, a valid) message for the topic of `entity` whose record id is `id`. */
export function hostileMessage(entity: EntityName, id: string): fc.Arbitrary<HostileMessage> {
  const envelope = envelopeOf(entity, validRecord(entity, id))
  const valid = text(envelope)
  const make = (kind: string, key: string | null, value: Buffer | null, expect: HostileMessage['expect']) =>
    hostileHeaders.map((headers): HostileMessage => ({ kind, entity, key, value, headers, expect }))

  const notUtf8 = fc
    .tuple(
      fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x80, 0x80]),
      fc.nat({ max: valid.length }),
    )
    .chain(([bytes, at]) =>
      make(
        'value not UTF-8',
        id,
        Buffer.concat([valid.subarray(0, at), Buffer.from(bytes), valid.subarray(at)]),
        poison('deserialize', /^value is not JSON: /),
      ),
    )
  const truncated = fc
    .nat({ max: valid.length - 1 })
    .chain((at) =>
      make('truncated JSON', id, valid.subarray(0, at), poison('deserialize', /^value is not JSON: /)),
    )
  const notJson = fc
    .string({ maxLength: 200 })
    .filter((s) => {
      try {
        JSON.parse(s)
        return false
      } catch {
        return true
      }
    })
    .chain((s) => make('not JSON', id, Buffer.from(s), poison('deserialize', /^value is not JSON: /)))
  // Deep values are written as text: JSON.stringify itself overflows long before JSON.parse does.
  const notEnvelope = fc
    .oneof(
      fc
        .jsonValue({ maxDepth: 4 })
        .filter((v) => v === null || typeof v !== 'object' || !('schemaVersion' in v))
        .map(text),
      fc
        .integer({ min: 1, max: 100_000 })
        .map((depth) => Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`)),
      fc
        .integer({ min: 1, max: 100_000 })
        .map((depth) => Buffer.from(`${'{"data":'.repeat(depth)}{}${'}'.repeat(depth)}`)),
    )
    .chain((value) => make('not an envelope', id, value, poison('validate', /^not a pipeline envelope: /)))
  const brokenEnvelope = fc
    .constantFrom<[string, unknown]>(
      ['schemaVersion', 0],
      ['schemaVersion', '1'],
      ['schemaVersion', 1.5],
      ['source', ''],
      ['entity', 'order'],
      ['id', ''],
      ['data', null],
      ['data', [1]],
      ['contentHash', 'abc'],
      ['contentHash', 'A'.repeat(64)],
      ['polledAt', 'now'],
      ['polledAt', 1],
    )
    .chain(([field, value]) =>
      make(
        'broken envelope',
        id,
        text({ ...envelope, [field]: value }),
        poison('validate', new RegExp(`^not a pipeline envelope: ${field}: `)),
      ),
    )
  const wrongTopic = make(
    'record of the other entity',
    id,
    text(envelopeOf(other(entity), validRecord(other(entity), id))),
    poison('validate', new RegExp(`^a ${other(entity)} on the ${entity} topic$`)),
  )
  const invalidRecord = hostileRecord(entity, id).chain(({ raw, reason }) => {
    const isObject = raw !== null && typeof raw === 'object' && !Array.isArray(raw)
    return make(
      'record failing the schema',
      id,
      text({ ...envelope, data: raw }),
      // Data that is not even an object fails the envelope's shape before the record's schema.
      isObject
        ? poison('validate', new RegExp(`^invalid ${entity}: ${reason.source.slice(1)}`))
        : poison('validate', /^not a pipeline envelope: data: /),
    )
  })
  const wrongKey = fc
    .oneof(
      fc.string({ minLength: 1, maxLength: 30 }),
      fc.constant('k'.repeat(100_000)),
      fc.constant('\u0000'),
    )
    .filter((key) => key !== id)
    .chain((key) =>
      make(
        'key not the record id',
        key,
        valid,
        poison('validate', /^key ".*"( \(\d+ characters\))? does not match the record id "/),
      ),
    )
  const noKey = fc
    .constantFrom(null, '')
    .chain((key) => make('no key', key, valid, poison('validate', /^message has no key/)))
  const fine = fc.oneof(
    make('valid envelope with odd headers', id, valid, { kind: 'upsert', id }),
    make('tombstone', id, null, { kind: 'delete', id }),
  )
  return fc.oneof(
    notUtf8,
    truncated,
    notJson,
    notEnvelope,
    brokenEnvelope,
    wrongTopic,
    invalidRecord,
    wrongKey,
    noKey,
    fine,
  )
}

/** A message for either topic, with a short description for counterexample reports. */
export const hostileMessageCase: fc.Arbitrary<HostileMessage> = fc
  .tuple(fc.constantFrom<EntityName>('customer', 'product'), fc.integer({ min: 1, max: 1_000_000 }))
  .chain(([entity, n]) => hostileMessage(entity, `m${n}`))
  .map((m) =>
    Object.assign(m, {
      [fc.toStringMethod]: () =>
        `${m.kind} on ${m.entity}: key ${JSON.stringify(m.key?.slice(0, 40))}, ${m.value?.length ?? 'null'} bytes ${JSON.stringify(m.value?.subarray(0, 100).toString('latin1'))}`,
    }),
  )
