/**
 * Pagination styles real sources use, as pure functions from a listing and a query to one page.
 * Offset styles (`page`, `next`) shift when records before the offset are deleted between requests,
 * as real offset APIs do; `cursor` is keyset pagination and does not.
 */

/** Every paging style. */
export const pagingStyles = ['array', 'page', 'next', 'cursor'] as const

/** How a source pages its listing. */
export type PagingStyle = (typeof pagingStyles)[number]

/** A parsed request for one page. */
export type PageRequest =
  | { readonly style: 'array' }
  /** `?page=1&pageSize=1000`, 1-based. */
  | { readonly style: 'page'; readonly page: number; readonly pageSize: number }
  /** `?offset=0&limit=1000`; what the `next` links carry. */
  | { readonly style: 'next'; readonly offset: number; readonly limit: number }
  /** `?cursor=…&limit=1000`; `after` is the sequence number of the last record already seen (0: start). */
  | { readonly style: 'cursor'; readonly after: number; readonly limit: number }

/** Page sizes a source allows. */
export interface PageLimits {
  readonly defaultPageSize: number
  /** Larger requested sizes are clamped to this, as most APIs do, rather than refused. */
  readonly maxPageSize: number
}

/** The listing a page is cut from; `seqs` strictly increasing, one per record. */
export interface Listing<T> {
  readonly records: readonly T[]
  readonly seqs: readonly number[]
}

/** The envelope fields of a page besides its items. */
export type PageMeta =
  | { readonly style: 'array' }
  | { readonly style: 'page'; readonly page: number; readonly pageSize: number; readonly total: number }
  | { readonly style: 'next'; readonly next: string | null }
  | { readonly style: 'cursor'; readonly cursor: string | null }

/** One page: its records and envelope. */
export interface Page<T> {
  readonly items: readonly T[]
  readonly meta: PageMeta
}

/** Builds the URL of the next page (relative or absolute: the caller decides). */
export type NextLink = (offset: number, limit: number) => string

type Parsed =
  | { readonly ok: true; readonly request: PageRequest }
  | { readonly ok: false; readonly error: string }

function wholeNumber(query: URLSearchParams, name: string, fallback: number, min: number): number | string {
  const raw = query.get(name)
  if (raw === null || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value < min || !/^\d+$/.test(raw)) {
    return `query parameter ${name} must be a whole number ≥ ${min}, got ${JSON.stringify(raw)}`
  }
  return value
}

/** The opaque cursor for "after sequence number `seq`". */
export function encodeCursor(seq: number): string {
  return Buffer.from(`after:${seq}`).toString('base64url')
}

/** The sequence number inside a cursor, or undefined when it is not one of ours. */
export function decodeCursor(cursor: string): number | undefined {
  const match = /^after:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString())
  return match?.[1] === undefined ? undefined : Number(match[1])
}

/**
 * Reads the paging parameters of `style` from a query string. Unknown parameters are ignored;
 * malformed ones are an error naming the parameter (the server answers 400 with it).
 */
export function parsePageRequest(style: PagingStyle, query: URLSearchParams, limits: PageLimits): Parsed {
  if (style === 'array') return { ok: true, request: { style } }
  const sizeName = style === 'page' ? 'pageSize' : 'limit'
  const size = wholeNumber(query, sizeName, limits.defaultPageSize, 1)
  if (typeof size === 'string') return { ok: false, error: size }
  const clamped = Math.min(size, limits.maxPageSize)
  if (style === 'page') {
    const page = wholeNumber(query, 'page', 1, 1)
    if (typeof page === 'string') return { ok: false, error: page }
    return { ok: true, request: { style, page, pageSize: clamped } }
  }
  if (style === 'next') {
    const offset = wholeNumber(query, 'offset', 0, 0)
    if (typeof offset === 'string') return { ok: false, error: offset }
    return { ok: true, request: { style, offset, limit: clamped } }
  }
  const cursor = query.get('cursor')
  if (cursor === null || cursor === '') return { ok: true, request: { style, after: 0, limit: clamped } }
  const after = decodeCursor(cursor)
  if (after === undefined)
    return { ok: false, error: `query parameter cursor is not a cursor this source issued` }
  return { ok: true, request: { style, after, limit: clamped } }
}

/** A string identifying the request, for caching rendered pages. */
export function pageCacheKey(request: PageRequest): string {
  switch (request.style) {
    case 'array':
      return 'array'
    case 'page':
      return `page:${request.page}:${request.pageSize}`
    case 'next':
      return `next:${request.offset}:${request.limit}`
    case 'cursor':
      return `cursor:${request.after}:${request.limit}`
  }
}

/** Index of the first element of the sorted `seqs` greater than `after`. */
function firstAfter(seqs: readonly number[], after: number): number {
  let low = 0
  let high = seqs.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if ((seqs[mid] as number) <= after) low = mid + 1
    else high = mid
  }
  return low
}

/** Cuts the requested page out of a listing. */
export function paginate<T>(listing: Listing<T>, request: PageRequest, nextLink: NextLink): Page<T> {
  const { records, seqs } = listing
  const total = records.length
  switch (request.style) {
    case 'array':
      return { items: records, meta: { style: 'array' } }
    case 'page': {
      const start = (request.page - 1) * request.pageSize
      const items = records.slice(start, start + request.pageSize)
      return { items, meta: { style: 'page', page: request.page, pageSize: request.pageSize, total } }
    }
    case 'next': {
      const end = request.offset + request.limit
      const next = end < total ? nextLink(end, request.limit) : null
      return { items: records.slice(request.offset, end), meta: { style: 'next', next } }
    }
    case 'cursor': {
      const start = firstAfter(seqs, request.after)
      const end = start + request.limit
      const last = seqs[Math.min(end, total) - 1]
      const cursor = end < total && last !== undefined ? encodeCursor(last) : null
      return { items: records.slice(start, end), meta: { style: 'cursor', cursor } }
    }
  }
}

/** The JSON body of a page: a bare array, or an envelope with `items` first. */
export function renderPage(page: Page<unknown>): string {
  const { meta, items } = page
  switch (meta.style) {
    case 'array':
      return JSON.stringify(items)
    case 'page':
      return JSON.stringify({ items, page: meta.page, pageSize: meta.pageSize, total: meta.total })
    case 'next':
      return JSON.stringify({ items, next: meta.next })
    case 'cursor':
      return JSON.stringify({ items, cursor: meta.cursor })
  }
}
