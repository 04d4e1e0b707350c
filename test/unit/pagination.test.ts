import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parsePage } from '../../src/sources/pagination.ts'

const url = new URL('http://source.test/customers?pageSize=2')

test('a plain array is one complete page', () => {
  assert.deepEqual(parsePage([1, 2], url), { ok: true, items: [1, 2], next: undefined })
})

test('page numbers lead to the next page until total is reached', () => {
  const first = parsePage({ items: [1, 2], page: 1, pageSize: 2, total: 3 }, url)
  assert.ok(first.ok)
  assert.equal(first.next?.searchParams.get('page'), '2')
  assert.equal(first.next?.searchParams.get('pageSize'), '2')
  const last = parsePage({ items: [3], page: 2, pageSize: 2, total: 3 }, url)
  assert.ok(last.ok)
  assert.equal(last.next, undefined)
})

test('a relative next link resolves against the request URL; null ends the listing', () => {
  const page = parsePage({ data: [1], next: '/customers?after=9' }, url)
  assert.ok(page.ok)
  assert.equal(page.next?.href, 'http://source.test/customers?after=9')
  const end = parsePage({ data: [1], next: null }, url)
  assert.ok(end.ok && end.next === undefined)
})

test('a cursor becomes a cursor query parameter', () => {
  const page = parsePage({ results: [1], cursor: 'abc' }, url)
  assert.ok(page.ok)
  assert.equal(page.next?.searchParams.get('cursor'), 'abc')
})

test('anything else is refused with a reason', () => {
  for (const body of [
    null,
    'html',
    42,
    { customers: 'x' },
    { items: [1], page: 'one', pageSize: 2, total: 3 },
  ]) {
    const page = parsePage(body, url)
    assert.ok(!page.ok, JSON.stringify(body))
    assert.ok(page.reason.length > 0)
  }
})
