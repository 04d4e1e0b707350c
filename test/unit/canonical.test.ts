import assert from 'node:assert/strict'
import { test } from 'node:test'
import { canonicalJson, contentHash } from '../../src/domain/canonical.ts'

test('canonical JSON sorts keys at every depth and drops undefined members', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } }),
    '{"a":{"d":[2,{"y":2,"z":1}]},"b":1}',
  )
})

test('the content hash ignores key order but not values or array order', () => {
  assert.equal(contentHash({ a: 1, b: [1, 2] }), contentHash({ b: [1, 2], a: 1 }))
  assert.notEqual(contentHash({ a: 1, b: [1, 2] }), contentHash({ a: 1, b: [2, 1] }))
  assert.notEqual(contentHash({ a: 1 }), contentHash({ a: '1' }))
  assert.match(contentHash({}), /^[0-9a-f]{64}$/)
})
