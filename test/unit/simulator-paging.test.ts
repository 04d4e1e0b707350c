import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  decodeCursor,
  encodeCursor,
  type Listing,
  type Page,
  type PageLimits,
  type PagingStyle,
  paginate,
  parsePageRequest,
  renderPage,
} from '../../src/simulator/paging.ts'

const limits: PageLimits = { defaultPageSize: 100, maxPageSize: 500 }
const relative = (offset: number, limit: number) => `/customers?offset=${offset}&limit=${limit}`

function listingOf(count: number): Listing<{ id: string }> {
  const records = Array.from({ length: count }, (_, i) => ({ id: String(i + 1) }))
  return { records, seqs: records.map((_, i) => i + 1) }
}

function request(style: PagingStyle, query: string) {
  const parsed = parsePageRequest(style, new URLSearchParams(query), limits)
  if (!parsed.ok) throw new Error(parsed.error)
  return parsed.request
}

/** Follows a style's own continuation (page numbers, next links, cursors) to the end, as a client would. */
function walk(style: PagingStyle, listing: Listing<{ id: string }>, firstQuery = ''): Page<{ id: string }>[] {
  const pages: Page<{ id: string }>[] = []
  let query: string | null = firstQuery
  while (query !== null && pages.length < 100) {
    const page: Page<{ id: string }> = paginate(listing, request(style, query), relative)
    pages.push(page)
    const meta = page.meta
    if (meta.style === 'array') query = null
    else if (meta.style === 'page')
      query = meta.page * meta.pageSize < meta.total ? `page=${meta.page + 1}` : null
    else if (meta.style === 'next') query = meta.next === null ? null : (meta.next.split('?')[1] ?? '')
    else query = meta.cursor === null ? null : `cursor=${meta.cursor}`
  }
  return pages
}

describe('simulator pagination', () => {
  for (const style of ['array', 'page', 'next', 'cursor'] as const) {
    it(`${style}: 250 records arrive exactly once and in order`, () => {
      const listing = listingOf(250)
      const pages = walk(style, listing)
      const ids = pages.flatMap((p) => p.items.map((r) => r.id))
      assert.deepEqual(
        ids,
        listing.records.map((r) => r.id),
      )
      assert.deepEqual(
        pages.map((p) => p.items.length),
        style === 'array' ? [250] : [100, 100, 50],
      )
    })
  }

  it('page: reports page, pageSize and total; past the end is empty', () => {
    const listing = listingOf(250)
    const pages = walk('page', listing)
    assert.deepEqual(
      pages.map((p) => p.meta),
      [1, 2, 3].map((page) => ({ style: 'page', page, pageSize: 100, total: 250 })),
    )
    const beyond = paginate(listing, request('page', 'page=4'), relative)
    assert.deepEqual(beyond.items, [])
    assert.deepEqual(beyond.meta, { style: 'page', page: 4, pageSize: 100, total: 250 })
  })

  it('next: links carry offset and limit and end with null', () => {
    const metas = walk('next', listingOf(250)).map((p) => p.meta)
    assert.deepEqual(metas, [
      { style: 'next', next: '/customers?offset=100&limit=100' },
      { style: 'next', next: '/customers?offset=200&limit=100' },
      { style: 'next', next: null },
    ])
  })

  it('an exact multiple of the page size ends without an empty trailing page', () => {
    for (const style of ['page', 'next', 'cursor'] as const) {
      assert.equal(walk(style, listingOf(200)).length, 2, style)
    }
  })

  it('an empty listing is one empty page', () => {
    for (const style of ['array', 'page', 'next', 'cursor'] as const) {
      const pages = walk(style, listingOf(0))
      assert.equal(pages.length, 1, style)
      assert.deepEqual(pages[0]?.items, [])
    }
  })

  it('cursor: resumes after the last record seen even when records before it were deleted', () => {
    const full = listingOf(250)
    const first = paginate(full, request('cursor', ''), relative)
    assert.equal(first.meta.style === 'cursor' && typeof first.meta.cursor, 'string')
    const cursor = first.meta.style === 'cursor' ? first.meta.cursor : null
    // Delete records 1–50 (already seen) and 120 (not yet seen) between the two requests.
    const keep = (_: unknown, i: number) => i >= 50 && i !== 119
    const shrunk = { records: full.records.filter(keep), seqs: full.seqs.filter(keep) }
    const second = paginate(shrunk, request('cursor', `cursor=${cursor}`), relative)
    assert.equal(second.items[0]?.id, '101')
    assert.equal(second.items.length, 100)
    assert.ok(!second.items.some((r) => r.id === '120'))
  })

  it('uses the page size from the query, clamped to the maximum', () => {
    assert.deepEqual(request('page', 'pageSize=20&page=3'), { style: 'page', page: 3, pageSize: 20 })
    assert.deepEqual(request('next', 'limit=9999'), { style: 'next', offset: 0, limit: 500 })
    assert.deepEqual(request('cursor', 'limit=7'), { style: 'cursor', after: 0, limit: 7 })
  })

  it('rejects malformed parameters with a message naming the parameter', () => {
    const cases: [PagingStyle, string, RegExp][] = [
      ['page', 'page=0', /page must be a whole number ≥ 1/],
      ['page', 'pageSize=abc', /pageSize/],
      ['page', 'page=1.5', /page/],
      ['next', 'offset=-1', /offset/],
      ['cursor', 'cursor=bogus', /cursor/],
      ['cursor', 'limit=0', /limit/],
    ]
    for (const [style, query, message] of cases) {
      const parsed = parsePageRequest(style, new URLSearchParams(query), limits)
      assert.equal(parsed.ok, false, `${style} ${query}`)
      if (!parsed.ok) assert.match(parsed.error, message)
    }
  })

  it('cursors round-trip and foreign ones are refused', () => {
    assert.equal(decodeCursor(encodeCursor(12345)), 12345)
    assert.equal(decodeCursor('not-a-cursor'), undefined)
    assert.equal(decodeCursor(Buffer.from('after:x').toString('base64url')), undefined)
  })

  it('renders a bare array or an envelope with items first', () => {
    const items = [{ id: '1' }]
    assert.equal(renderPage({ items, meta: { style: 'array' } }), '[{"id":"1"}]')
    assert.equal(
      renderPage({ items, meta: { style: 'page', page: 1, pageSize: 1, total: 1 } }),
      '{"items":[{"id":"1"}],"page":1,"pageSize":1,"total":1}',
    )
    assert.equal(
      renderPage({ items, meta: { style: 'next', next: null } }),
      '{"items":[{"id":"1"}],"next":null}',
    )
    assert.equal(
      renderPage({ items, meta: { style: 'cursor', cursor: 'x' } }),
      '{"items":[{"id":"1"}],"cursor":"x"}',
    )
  })
})
