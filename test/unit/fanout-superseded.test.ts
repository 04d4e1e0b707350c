import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSuperseded, type SourcePosition } from '../../src/domain/fanout.ts'

const at = (offset: number, timestamp: number, partition = 0, topic = 'customer_data'): SourcePosition => ({
  topic,
  partition,
  offset: String(offset),
  timestamp: String(timestamp),
})

test('an older message of the same topic partition is superseded by the applied one', () => {
  assert.equal(isSuperseded(at(18, 2000), at(12, 1000)), true)
  assert.equal(isSuperseded(at(18, 2000), at(12, 2000)), true, 'same millisecond')
})

test('the applied message itself, a later one, or nothing applied yet is not superseded', () => {
  assert.equal(isSuperseded(undefined, at(12, 1000)), false)
  assert.equal(isSuperseded(at(18, 2000), at(18, 2000)), false, 'the same message: the hash decides')
  assert.equal(isSuperseded(at(18, 2000), at(19, 2500)), false)
})

test('another partition or topic is not compared', () => {
  assert.equal(isSuperseded(at(18, 2000, 1), at(3, 1000, 2)), false, 'partition count changed')
  assert.equal(isSuperseded(at(18, 2000), at(3, 1000, 0, 'customers_v2')), false)
})

test('a recreated topic (offsets from 0 again, newer timestamps) is not history', () => {
  assert.equal(isSuperseded(at(500, 2000), at(0, 3000)), false)
})

test('offsets beyond 2^53 compare exactly', () => {
  const big = (n: bigint): SourcePosition => ({ topic: 't', partition: 0, offset: String(n), timestamp: '1' })
  assert.equal(isSuperseded(big(9007199254740993n), big(9007199254740992n)), true)
  assert.equal(isSuperseded(big(9007199254740992n), big(9007199254740993n)), false)
})
