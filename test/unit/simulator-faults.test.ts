import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FaultBook } from '../../src/simulator/faults.ts'
import { makeInvalidRecords } from '../../src/simulator/records.ts'
import { RequestLog } from '../../src/simulator/request-log.ts'

describe('simulator fault rules', () => {
  it('applies a counted rule that many times, then retires it', () => {
    const book = new FaultBook()
    book.add([{ path: '/customers', status: 500, count: 2 }])
    assert.equal(book.take('/customers')?.rule.status, 500)
    const second = book.take('/customers')
    assert.equal(second?.hits, 2)
    assert.equal(second?.remaining, 0)
    assert.equal(book.take('/customers'), undefined)
    assert.deepEqual(book.list(), [])
  })

  it('matches by path, and a rule without a path matches every source path', () => {
    const book = new FaultBook()
    book.add([{ path: '/products', status: 503, count: 1 }])
    assert.equal(book.take('/customers'), undefined, 'a /products rule leaves /customers alone')
    assert.equal(book.take('/products')?.rule.status, 503)
    book.add([{ status: 502, count: 2 }])
    assert.equal(book.take('/customers')?.rule.status, 502)
    assert.equal(book.take('/products')?.rule.status, 502)
    assert.equal(book.take('/products'), undefined)
  })

  it('matches by page: the page parameter, none counting as page 1', () => {
    const book = new FaultBook()
    book.add([{ path: '/customers', page: 2, status: 500, count: 1 }])
    assert.equal(book.take('/customers', 'page=3&pageSize=2'), undefined, 'page 3 is left alone')
    assert.equal(book.take('/customers', ''), undefined, 'no page parameter is page 1')
    assert.equal(book.take('/customers', 'pageSize=2&page=2')?.rule.status, 500)
    book.add([{ page: 1, status: 503, count: 1 }])
    assert.equal(book.take('/products')?.rule.status, 503)
  })

  it('keeps a rule without count forever and lets the first match win', () => {
    const book = new FaultBook()
    book.add([
      { path: '/customers', delayMs: 10 },
      { path: '/customers', status: 500 },
    ])
    for (let i = 0; i < 5; i++) assert.equal(book.take('/customers')?.rule.delayMs, 10)
    assert.equal(book.list()[0]?.hits, 5)
    assert.equal(book.list()[0]?.remaining, null)
  })

  it('consumes counted rules in order, so 500, 500 then a 429 can be scripted', () => {
    const book = new FaultBook()
    book.add([
      { path: '/customers', status: 500, count: 2 },
      { path: '/customers', status: 429, retryAfter: 1, count: 1 },
    ])
    const statuses = [1, 2, 3, 4].map(() => book.take('/customers')?.rule.status)
    assert.deepEqual(statuses, [500, 500, 429, undefined])
  })

  it('gives ids, returns copies, replaces and clears', () => {
    const book = new FaultBook()
    const [a] = book.add([{ status: 500 }])
    const [b] = book.add([{ status: 501 }])
    assert.ok(a !== undefined && b !== undefined && b.id > a.id)
    const listed = book.list()
    if (listed[0] !== undefined) listed[0].hits = 99
    assert.equal(book.list()[0]?.hits, 0, 'list() hands out copies')
    book.set([{ status: 418 }])
    assert.deepEqual(
      book.list().map((f) => f.rule.status),
      [418],
    )
    book.clear()
    assert.equal(book.take('/customers'), undefined)
  })
})

describe('simulator invalid records', () => {
  it('makes records that break the schema in several ways, never with a real id', () => {
    const customers = makeInvalidRecords('customers', 3, 0) as Record<string, unknown>[]
    assert.equal(customers.length, 3)
    assert.ok(
      customers.some((r) => !('id' in r)),
      'one has no id',
    )
    assert.ok(
      customers.some((r) => typeof r.productIds === 'string'),
      'one has productIds that are not an array',
    )
    assert.ok(
      customers.some((r) => r.id === null),
      'one has a null id',
    )
    const products = makeInvalidRecords('products', 3, 0) as Record<string, unknown>[]
    assert.ok(products.some((r) => !('id' in r)))
    assert.ok(
      products.some((r) => typeof r.price === 'string'),
      'one has its price as a string',
    )
    for (const r of [...customers, ...products]) {
      assert.ok(r.id === undefined || r.id === null || String(r.id).startsWith('invalid-'))
    }
  })
})

describe('simulator request log', () => {
  it('counts requests and outcomes per path and remembers the last If-None-Match', () => {
    const log = new RequestLog()
    const a = log.start('GET', '/customers', 'page=1', null)
    log.settle(a, 500)
    const b = log.start('GET', '/customers', 'page=1', '"v1"')
    log.settle(b, 200)
    log.settle(b, 'aborted')
    const c = log.start('GET', '/products', '', null)
    log.settle(c, 'dropped')
    const snapshot = log.snapshot()
    assert.equal(snapshot.total, 3)
    assert.deepEqual(snapshot.paths['/customers'], {
      count: 2,
      statuses: { 500: 1, 200: 1 },
      lastIfNoneMatch: '"v1"',
    })
    assert.deepEqual(snapshot.paths['/products']?.statuses, { dropped: 1 })
    assert.deepEqual(
      snapshot.recent.map((r) => r.outcome),
      [500, 200, 'dropped'],
    )
    log.reset()
    assert.equal(log.snapshot().total, 0)
  })

  it('keeps only the most recent requests', () => {
    const log = new RequestLog(10)
    for (let i = 0; i < 35; i++) log.settle(log.start('GET', '/customers', `i=${i}`, null), 200)
    const { recent, total, paths } = log.snapshot()
    assert.equal(total, 35)
    assert.equal(paths['/customers']?.count, 35)
    assert.deepEqual(
      recent.map((r) => r.query),
      Array.from({ length: 10 }, (_, i) => `i=${25 + i}`),
    )
  })
})
