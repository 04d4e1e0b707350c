import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { canonicalJson, contentHash } from '../../src/domain/canonical.ts'
import { canonicalUpsertMessage, tombstoneMessage, upsertMessage } from '../../src/domain/envelope.ts'
import { envelopeSchema, SCHEMA_VERSION, validateRecord } from '../../src/domain/records.ts'

const crm = { name: 'crm', entity: 'customer' as const, topic: 'customer_data' }
const polledAt = '2026-02-04T18:31:00.000Z'

test('an upsert is keyed by id and carries the envelope of design §3 with the hash as a header', () => {
  const record = {
    id: '1',
    name: 'Ada',
    email: 'ada@example.com',
    status: 'active',
    productIds: ['100'],
    updatedAt: polledAt,
  }
  const message = upsertMessage(crm, record, polledAt)
  assert.equal(message.topic, 'customer_data')
  assert.equal(message.key, '1')
  const envelope = JSON.parse(message.value ?? 'null')
  assert.deepEqual(envelope, {
    schemaVersion: SCHEMA_VERSION,
    source: 'crm',
    entity: 'customer',
    id: '1',
    data: record,
    contentHash: contentHash(record),
    polledAt,
  })
  assert.ok(envelopeSchema.safeParse(envelope).success)
  assert.equal(message.headers['content-hash'], contentHash(record))
  assert.equal(message.headers.source, 'crm')
  assert.equal(message.headers['schema-version'], String(SCHEMA_VERSION))
})

test('the spliced envelope is the JSON of the envelope object, whatever the id and source strings hold', () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), fc.jsonValue(), (id, name, data) => {
      const origin = { name, entity: 'product' as const, topic: 't' }
      const json = canonicalJson(data)
      const value = canonicalUpsertMessage(origin, id, json, 'h', polledAt).value ?? ''
      const expected = {
        schemaVersion: SCHEMA_VERSION,
        source: name,
        entity: 'product',
        id,
        data: JSON.parse(json),
        contentHash: 'h',
        polledAt,
      }
      assert.equal(value, JSON.stringify(expected))
    }),
  )
})

test('a validated record goes out as its canonical JSON, which hashes to the header', () => {
  const validated = validateRecord('customer', {
    updatedAt: polledAt,
    id: 7,
    status: 'a',
    productIds: [1],
    email: '',
    name: 'n',
  })
  assert.ok(validated.ok)
  const message = upsertMessage(crm, validated.record, polledAt)
  const data = JSON.stringify(JSON.parse(message.value ?? '').data)
  assert.equal(data, canonicalJson(validated.record))
  assert.equal(message.headers['content-hash'], contentHash(JSON.parse(data)))
})

test('a tombstone has the key and a null value', () => {
  const message = tombstoneMessage(crm, '9', polledAt)
  assert.equal(message.key, '9')
  assert.equal(message.value, null)
  assert.equal(message.headers.source, 'crm')
})
