import assert from 'node:assert/strict'
import { test } from 'node:test'
import { validateRecord } from '../../src/domain/records.ts'

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
