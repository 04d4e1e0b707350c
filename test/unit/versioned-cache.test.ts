/** The in-process cache of records by version token (stage 2's product cache). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { VersionedCache } from '../../src/state/versioned-cache.ts'

test('a cached value is served only under the version it was cached at', () => {
  const cache = new VersionedCache<string>(10)
  cache.set('p1', 'a.1', 'first')
  assert.equal(cache.get('p1', 'a.1'), 'first')
  assert.equal(cache.get('p1', 'a.2'), undefined, 'another version is a miss')
  cache.set('p1', 'a.2', 'second')
  assert.equal(cache.get('p1', 'a.1'), undefined, 'the older version is gone with its value')
  assert.equal(cache.get('p1', 'a.2'), 'second')
  assert.equal(cache.get('p2', 'a.2'), undefined)
})

test('beyond its limit the cache drops the entry set longest ago', () => {
  const cache = new VersionedCache<number | null>(2)
  cache.set('a', '1', 1)
  cache.set('b', '1', null)
  cache.set('a', '2', 2) // set again: now the newest
  cache.set('c', '1', 3)
  assert.equal(cache.size, 2)
  assert.equal(cache.get('b', '1'), undefined, 'b was the oldest')
  assert.equal(cache.get('a', '2'), 2)
  assert.equal(cache.get('c', '1'), 3)
})
