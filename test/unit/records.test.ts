import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { entitySchemas, envelopeSchema, fastEnvelope, validateRecord } from '../../src/domain/records.ts'

const customer = {
  id: 1,
  name: 'Ada',
  email: 'ada@example.com',
  status: 'active',
  productIds: [100, '200'],
  updatedAt: '2026-02-04T18:30:00Z',
}
const product = {
  id: '100',
  sku: 'SKU-100',
  name: 'Mouse',
  price: 24.99,
  stock: 3,
  updatedAt: '2026-02-04T18:30:00Z',
}

test('numeric ids become strings, in the record and in productIds', () => {
  const result = validateRecord('customer', customer)
  assert.ok(result.ok)
  assert.equal(result.record.id, '1')
  assert.deepEqual(result.record.productIds, ['100', '200'])
})

test('a valid product passes unchanged', () => {
  const result = validateRecord('product', product)
  assert.ok(result.ok)
  assert.deepEqual(result.record, product)
})

test('a record without id, or with a price as a string, fails with a reason naming the field', () => {
  const { id: _drop, ...noId } = customer
  const missing = validateRecord('customer', noId)
  assert.ok(!missing.ok)
  assert.match(missing.reason, /^id: /)
  const badPrice = validateRecord('product', { ...product, price: '24.99' })
  assert.ok(!badPrice.ok)
  assert.match(badPrice.reason, /price/)
  assert.ok(!validateRecord('product', null).ok)
  assert.ok(!validateRecord('product', { ...product, updatedAt: 'yesterday' }).ok)
})

test('ids are trimmed strings of 1 to 200 characters, or non-negative safe integers', () => {
  const id = (value: unknown) => validateRecord('product', { ...product, id: value })
  assert.deepEqual(id(' 7 '), { ok: true, record: { ...product, id: '7' } })
  assert.deepEqual(id(0), { ok: true, record: { ...product, id: '0' } })
  assert.equal(id('x'.repeat(200)).ok, true)
  for (const bad of ['', '   ', 'x'.repeat(201), -1, 1.5, 2 ** 53, Number.NaN, null, true, ['1']]) {
    assert.equal(id(bad).ok, false, `id ${JSON.stringify(bad)}`)
  }
  assert.deepEqual(validateRecord('customer', { ...customer, productIds: [' 9', 10] }), {
    ok: true,
    record: { ...customer, id: '1', productIds: ['9', '10'] },
  })
})

test('unknown fields are dropped, and a valid record has its keys in sorted order', () => {
  const result = validateRecord('customer', { extra: 1, ...customer })
  assert.ok(result.ok)
  assert.equal('extra' in result.record, false)
  const keys = Object.keys(result.record)
  assert.deepEqual(keys, [...keys].sort())
})

/** Values near every boundary of the schemas, valid or not, for both the fast path and zod. */
const edgeString = fc.oneof(
  fc.string({ maxLength: 5 }),
  fc.string({ maxLength: 4, unit: 'binary' }),
  // Control characters (C0, DEL, C1), lone surrogates and inner spaces, which ids must not or may hold.
  fc.constantFrom('a\u0001b', 'a\u007fb', 'a\u0085b', 'a\ud800b', 'a\udc00', 'a b', `a${' '.repeat(198)}b`),
  fc.constantFrom(
    '',
    ' ',
    ' a',
    'a ',
    '\ta',
    'é',
    '\u00a0x',
    'x\u2028',
    '😀',
    'x'.repeat(200),
    'y'.repeat(201),
  ),
  fc.constantFrom('x'.repeat(320), 'x'.repeat(321), 'x'.repeat(1000), 'x'.repeat(1001), '😀'.repeat(160)),
)
const edgeNumber = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.double(),
  fc.constantFrom(-0, 2 ** 53 - 1, 2 ** 53, 0.5, Number.POSITIVE_INFINITY, Number.NaN),
)
const edgeTimestamp = fc.oneof(
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom(
    '2026-02-04T18:30:00Z',
    '2026-02-04T18:30:00+01:00',
    '2026-02-04T18:30:00.123456+23:59',
    '2026-02-29T00:00:00Z',
    '2024-02-29T00:00:00Z',
    '2026-02-04T24:00:00Z',
    '2026-02-04 18:30:00Z',
    '2026-02-04T18:30Z',
    '2026-02-04T18:30:00',
    'yesterday',
  ),
)
const edgeValue = fc.oneof(edgeString, edgeNumber, fc.constantFrom(null, true, undefined, {}, []))
const edgeId = fc.oneof(edgeString, edgeNumber, fc.constantFrom(null, '1', 42, ' 42 '))
const maybe = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: valid }, edgeValue)

test('the fast path and the zod schema agree on every record: same verdict, same output', () => {
  const customers = fc.record(
    {
      id: edgeId,
      name: maybe(edgeString),
      email: maybe(edgeString),
      status: maybe(edgeString),
      productIds: maybe(fc.array(edgeId, { maxLength: 4 })),
      updatedAt: maybe(edgeTimestamp),
      extra: edgeValue,
    },
    { requiredKeys: ['id', 'name', 'email', 'status', 'productIds', 'updatedAt'] },
  )
  const products = fc.record(
    {
      id: edgeId,
      sku: maybe(edgeString),
      name: maybe(edgeString),
      price: maybe(edgeNumber),
      stock: maybe(edgeNumber),
      updatedAt: maybe(edgeTimestamp),
    },
    { requiredKeys: ['id', 'sku', 'name', 'price', 'stock', 'updatedAt'] },
  )
  const agree = (entity: 'customer' | 'product') => (raw: unknown) => {
    const ours = validateRecord(entity, raw)
    const theirs = entitySchemas[entity].safeParse(raw)
    assert.equal(ours.ok, theirs.success, JSON.stringify(raw))
    if (ours.ok && theirs.success) assert.deepEqual(ours.record, theirs.data)
  }
  fc.assert(fc.property(customers, agree('customer')), { numRuns: 3000 })
  fc.assert(fc.property(products, agree('product')), { numRuns: 3000 })
})

test('the envelope fast path and the zod schema agree: same output wherever the fast path decides', () => {
  const often = <T>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<unknown>) =>
    fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: other })
  const envelopes = fc.record(
    {
      schemaVersion: often(fc.constant(1), fc.oneof(fc.integer({ min: -2, max: 3 }), edgeNumber, edgeValue)),
      source: often(fc.constant('crm'), edgeValue),
      entity: often(fc.constantFrom('customer', 'product'), fc.constantFrom('order', '', null, 1)),
      id: often(fc.constantFrom('1', 'a b'), edgeValue),
      data: often(
        fc.dictionary(fc.string({ maxLength: 3 }), edgeValue, { maxKeys: 3 }),
        fc.constantFrom([], null, 'x', Object.create(null)),
      ),
      contentHash: often(
        fc.constantFrom('a'.repeat(64), `${'0'.repeat(63)}f`),
        fc.oneof(fc.constantFrom('A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), ''), edgeValue),
      ),
      polledAt: often(fc.constant('2026-02-04T18:30:00.000Z'), edgeTimestamp),
      extra: edgeValue,
    },
    { requiredKeys: ['schemaVersion', 'source', 'entity', 'id', 'data', 'contentHash', 'polledAt'] },
  )
  let decided = 0
  fc.assert(
    fc.property(envelopes, (raw) => {
      const ours = fastEnvelope(raw)
      const theirs = envelopeSchema.safeParse(raw)
      if (ours === undefined) return
      decided++
      assert.ok(theirs.success, JSON.stringify(raw))
      assert.deepEqual(ours, theirs.data)
    }),
    { numRuns: 3000 },
  )
  assert.ok(decided > 100, `the fast path decided ${decided} of 3000`)
})
