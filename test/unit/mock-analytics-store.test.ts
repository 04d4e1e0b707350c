import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { FaultRules } from '../../src/services/mock-analytics/faults.ts'
import {
  parseBatch,
  parseFaultRule,
  parseIdempotencyKey,
  parsePage,
  parseRecord,
} from '../../src/services/mock-analytics/protocol.ts'
import { isDeletion, MockAnalyticsStore, viewIdentityOf } from '../../src/services/mock-analytics/store.ts'

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))

describe('viewIdentityOf', () => {
  test('is everything before the last colon, so ids may contain colons', () => {
    assert.equal(viewIdentityOf('customer:1:abc'), 'customer:1')
    assert.equal(viewIdentityOf('product:urn:x:42:ff00'), 'product:urn:x:42')
  })

  test('refuses keys without a view type, an id or a hash', () => {
    for (const key of ['', 'customer', 'customer:1', ':1:abc', 'customer::abc', 'customer:1:']) {
      assert.equal(viewIdentityOf(key), undefined, key)
    }
  })
})

describe('MockAnalyticsStore', () => {
  test('stores a key once and counts its repetitions as replays', () => {
    const store = new MockAnalyticsStore()
    assert.equal(store.deliver('customer:1:h1', { n: 1 }, 10), 'accepted')
    assert.equal(store.deliver('customer:1:h1', { n: 1 }, 11), 'replay')
    assert.equal(store.deliver('customer:1:h1', { n: 2 }, 12), 'replay')
    assert.deepEqual(store.records(), [{ key: 'customer:1:h1', record: { n: 1 }, receivedAt: 10 }])
    assert.equal(store.hasKey('customer:1:h1'), true)
    assert.equal(store.stats().accepted, 1)
    assert.equal(store.stats().replays, 2)
    assert.equal(store.stats().distinctKeys, 1)
  })

  test('a replay does not bring back an older record over a newer one', () => {
    const store = new MockAnalyticsStore()
    store.deliver('customer:1:old', { v: 'old' }, 1)
    store.deliver('customer:1:new', { v: 'new' }, 2)
    store.deliver('customer:1:old', { v: 'old' }, 3)
    assert.deepEqual(store.views().get('customer:1'), {
      key: 'customer:1:new',
      record: { v: 'new' },
      receivedAt: 2,
    })
  })

  test('keeps the latest accepted record of each view, separately per view', () => {
    const store = new MockAnalyticsStore()
    store.deliver('customer:1:a', { v: 1 }, 1)
    store.deliver('product:1:b', { v: 2 }, 2)
    store.deliver('customer:1:c', { v: 3 }, 3)
    assert.deepEqual([...store.views().keys()].sort(), ['customer:1', 'product:1'])
    assert.deepEqual(store.views().get('customer:1')?.record, { v: 3 })
    assert.equal(store.views().get('customer:1')?.key, 'customer:1:c')
    assert.deepEqual(store.views().get('product:1')?.record, { v: 2 })
    assert.equal(store.stats().views, 2)
  })

  test('a deletion removes the view but is an accepted record', () => {
    const store = new MockAnalyticsStore()
    store.deliver('customer:1:a', { v: 1 })
    assert.equal(store.deliver('customer:1:gone', { deleted: true }), 'accepted')
    assert.equal(store.views().has('customer:1'), false)
    assert.equal(store.stats().accepted, 2)
    assert.equal(store.recordCount, 2)
    assert.equal(store.deliver('customer:1:gone', { deleted: true }), 'replay')
    store.deliver('customer:1:back', { v: 2 })
    assert.deepEqual(store.views().get('customer:1')?.record, { v: 2 })
  })

  test('only `deleted: true` is a deletion', () => {
    assert.equal(isDeletion({ deleted: true }), true)
    for (const record of [{ deleted: 'true' }, { deleted: false }, {}, null, [true], 'deleted']) {
      assert.equal(isDeletion(record), false, JSON.stringify(record))
    }
  })

  test('records are pages of the arrival order', () => {
    const store = new MockAnalyticsStore()
    for (let i = 0; i < 5; i++) store.deliver(`product:${i}:h`, { i })
    assert.deepEqual(
      store.records(1, 2).map((stored) => stored.key),
      ['product:1:h', 'product:2:h'],
    )
    assert.deepEqual(store.records(4, 10).length, 1)
    assert.deepEqual(store.records(9, 10), [])
  })

  test('received equals accepted + replays + rejected', () => {
    const store = new MockAnalyticsStore()
    store.countReceived(4)
    store.deliver('customer:1:a', {})
    store.deliver('customer:1:a', {})
    store.countRejected(2)
    const stats = store.stats()
    assert.deepEqual(stats, {
      received: 4,
      accepted: 1,
      replays: 1,
      rejected: 2,
      distinctKeys: 1,
      views: 1,
      batches: 0,
    })
    assert.equal(stats.received, stats.accepted + stats.replays + stats.rejected)
  })

  test('refuses to store a malformed key', () => {
    assert.throws(() => new MockAnalyticsStore().deliver('no-colons', {}), RangeError)
  })

  test('reset forgets keys, records, views, counters and fault rules', () => {
    const store = new MockAnalyticsStore()
    store.countReceived()
    store.deliver('customer:1:a', {})
    store.faults.add({ status: 500 })
    store.reset()
    assert.deepEqual(store.stats(), {
      received: 0,
      accepted: 0,
      replays: 0,
      rejected: 0,
      distinctKeys: 0,
      views: 0,
      batches: 0,
    })
    assert.equal(store.hasKey('customer:1:a'), false)
    assert.deepEqual(store.faults.list(), [])
    assert.equal(store.deliver('customer:1:a', {}), 'accepted')
  })
})

describe('FaultRules', () => {
  test('a counted rule applies to exactly that many deliveries, then leaves the list', () => {
    const rules = new FaultRules()
    rules.add({ status: 500, count: 3 })
    const taken = Array.from({ length: 5 }, () => rules.take(['customer:1:a'])?.status)
    assert.deepEqual(taken, [500, 500, 500, undefined, undefined])
    assert.deepEqual(rules.list(), [])
  })

  test('a rule without count never runs out', () => {
    const rules = new FaultRules()
    rules.add({ drop: true })
    for (let i = 0; i < 100; i++) assert.equal(rules.take(['x:1:h'])?.drop, true)
    assert.equal(rules.list()[0]?.remaining, undefined)
  })

  test('rules are evaluated in order; the first match is consumed', () => {
    const rules = new FaultRules()
    rules.add({ status: 503, count: 1 })
    rules.add({ status: 429, count: 1, retryAfter: 2 })
    assert.equal(rules.take(['a:1:h'])?.status, 503)
    assert.equal(rules.take(['a:1:h'])?.status, 429)
    assert.equal(rules.take(['a:1:h']), undefined)
  })

  test('match limits a rule to keys with its prefix and is not consumed by others', () => {
    const rules = new FaultRules()
    rules.add({ status: 500, count: 1, match: 'product:' })
    assert.equal(rules.take(['customer:1:h']), undefined)
    assert.deepEqual(rules.list()[0]?.remaining, 1)
    assert.equal(rules.take(['product:1:h'])?.status, 500)
    assert.equal(rules.take(['product:1:h']), undefined)
  })

  test('a batch matches when any of its keys has the prefix', () => {
    const rules = new FaultRules()
    rules.add({ status: 500, match: 'product:7:' })
    assert.equal(rules.take(['customer:1:h', 'product:6:h']), undefined)
    assert.equal(rules.take(['customer:1:h', 'product:7:h'])?.status, 500)
  })

  test('list shows each rule with an id and its remaining uses; clear empties it', () => {
    const rules = new FaultRules()
    const first = rules.add({ delayMs: 10, count: 2 })
    const second = rules.add({ status: 502 })
    rules.take(['a:1:h'])
    assert.deepEqual(rules.list(), [
      { id: first.id, rule: { delayMs: 10, count: 2 }, remaining: 1 },
      { id: second.id, rule: { status: 502 }, remaining: undefined },
    ])
    assert.notEqual(first.id, second.id)
    assert.equal(rules.clear(), 2)
    assert.equal(rules.take(['a:1:h']), undefined)
  })
})

describe('request parsing', () => {
  test('the Idempotency-Key must be present and of the form <viewType>:<id>:<contentHash>', () => {
    assert.deepEqual(parseIdempotencyKey('customer:1:abc'), { ok: true, value: 'customer:1:abc' })
    const missing = parseIdempotencyKey(undefined)
    assert.equal(missing.ok, false)
    assert.match(missing.ok ? '' : missing.error, /missing Idempotency-Key/)
    const malformed = parseIdempotencyKey('customer-1')
    assert.match(malformed.ok ? '' : malformed.error, /"customer-1" is not <viewType>:<id>:<contentHash>/)
    assert.equal(parseIdempotencyKey(['a:1:h', 'b:2:h']).ok, false)
  })

  test('a record must be a JSON object; the error names the problem', () => {
    assert.deepEqual(parseRecord(json({ a: 1 })), { ok: true, value: { a: 1 } })
    const broken = parseRecord(Buffer.from('{"a":'))
    assert.match(broken.ok ? '' : broken.error, /^invalid JSON body: /)
    const array = parseRecord(json([1]))
    assert.equal(array.ok ? '' : array.error, 'record must be a JSON object, got an array')
    const empty = parseRecord(Buffer.alloc(0))
    assert.match(empty.ok ? '' : empty.error, /invalid JSON body/)
  })

  test('a batch names the item that is wrong', () => {
    const good = parseBatch({ items: [{ idempotencyKey: 'customer:1:h', record: { a: 1 } }] })
    assert.deepEqual(good, { ok: true, value: [{ idempotencyKey: 'customer:1:h', record: { a: 1 } }] })
    const bad = parseBatch({
      items: [{ idempotencyKey: 'customer:1:h', record: {} }, { idempotencyKey: 'x' }],
    })
    assert.equal(bad.ok, false)
    assert.match(bad.ok ? '' : bad.error, /items\.1\.idempotencyKey: must be <viewType>:<id>:<contentHash>/)
    assert.match(bad.ok ? '' : bad.error, /items\.1\.record/)
    assert.equal(parseBatch([]).ok, false)
  })

  test('a page has defaults and bounds', () => {
    assert.deepEqual(parsePage(''), { ok: true, value: { offset: 0, limit: 100 } })
    assert.deepEqual(parsePage('limit=5&offset=10'), { ok: true, value: { offset: 10, limit: 5 } })
    for (const query of ['limit=0', 'limit=100000', 'offset=-1', 'limit=abc', 'page=2']) {
      assert.equal(parsePage(query).ok, false, query)
    }
  })

  test('a fault rule is validated, naming what was wrong', () => {
    assert.deepEqual(parseFaultRule({ status: 500, count: 3 }), {
      ok: true,
      value: { status: 500, count: 3 },
    })
    const cases: Array<[unknown, RegExp]> = [
      [{ status: 'x' }, /status: /],
      [{ count: 3 }, /needs at least one of status, drop or delayMs/],
      [{ status: 500, drop: true }, /drop and status exclude each other/],
      [{ delayMs: 10, retryAfter: 1 }, /retryAfter .* needs status/],
      [{ status: 500, count: 0 }, /count: /],
      [{ status: 500, typo: 1 }, /typo/],
      [[], /fault rule/],
    ]
    for (const [body, expected] of cases) {
      const result = parseFaultRule(body)
      assert.equal(result.ok, false, JSON.stringify(body))
      assert.match(result.ok ? '' : result.error, expected)
    }
  })
})

test('a listener that cannot keep a delivery (a journal failing to write) leaves nothing stored', () => {
  const store = new MockAnalyticsStore()
  const kept: string[] = []
  let full = false
  store.listen({
    accepted: (stored) => {
      if (full) throw new Error('ENOSPC: no space left on device, write')
      kept.push(stored.key)
    },
    reset: () => kept.splice(0),
  })
  assert.equal(store.deliver('customer:1:a', { id: '1' }), 'accepted')
  full = true
  assert.throws(() => store.deliver('customer:2:a', { id: '2' }), /ENOSPC/)
  assert.equal(store.hasKey('customer:2:a'), false, 'not acknowledged, not stored: a retry is accepted')
  full = false
  assert.equal(store.deliver('customer:2:a', { id: '2' }), 'accepted')
  assert.deepEqual(kept, ['customer:1:a', 'customer:2:a'])
  store.reset()
  assert.deepEqual(kept, [], 'a reset reaches the listener')
})
