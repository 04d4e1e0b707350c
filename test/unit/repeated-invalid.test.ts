import assert from 'node:assert/strict'
import { test } from 'node:test'
import { invalidFingerprint, splitRepeatedInvalid } from '../../src/sources/repeated-invalid.ts'
import type { InvalidRecord } from '../../src/sources/scan.ts'

const item = (
  raw: unknown,
  reason = 'status: too short',
  listedId: string | undefined = '7',
): InvalidRecord => ({
  raw,
  reason,
  url: 'http://crm/customers?page=1',
  id: listedId,
  listedId,
})

test('the same broken record listed again has the same fingerprint, wherever it is paged', () => {
  const a = item({ id: '7', status: '' })
  const b = { ...item({ id: '7', status: '' }), url: 'http://crm/customers?page=9' }
  assert.equal(invalidFingerprint(a), invalidFingerprint(b))
})

test('a change to the record, its reason or its id makes a new fingerprint', () => {
  const base = invalidFingerprint(item({ id: '7', status: '' }))
  assert.notEqual(invalidFingerprint(item({ id: '7', status: '', name: 'x' })), base)
  assert.notEqual(invalidFingerprint(item({ id: '7', status: '' }, 'email: too long')), base)
  assert.notEqual(invalidFingerprint(item({ id: '7', status: '' }, 'status: too short', '8')), base)
})

test('a record too deep to serialize still gets a fingerprint', () => {
  let deep: unknown = []
  for (let i = 0; i < 100_000; i++) deep = [deep]
  const fingerprint = invalidFingerprint(item(deep, 'not an object', undefined))
  assert.match(fingerprint, /^[0-9a-f]{64}$/)
})

test('splitRepeatedInvalid keeps for the DLQ only what the last listing did not already dead-letter', () => {
  const seen = item({ id: '7', status: '' })
  const fresh = item({ id: '8', status: '' }, 'status: too short', '8')
  const split = splitRepeatedInvalid([seen, fresh], new Set([invalidFingerprint(seen), 'forgotten']))
  assert.deepEqual(split.fresh, [fresh])
  assert.equal(split.repeated, 1)
  assert.deepEqual(split.fingerprints, [invalidFingerprint(seen), invalidFingerprint(fresh)])
})
