/**
 * Understanding one page of a source listing (pure). Sources answer with a plain JSON array, or an
 * envelope whose records sit under `items` (or `data`, `results`, `records`) with one of three
 * ways to the next page: a `next` link, a `cursor`, or `page`/`pageSize`/`total` numbers.
 */

/** The numbers of a page of a listing paged by `page`/`pageSize`/`total`. */
export interface PageNumbers {
  readonly page: number
  readonly pageSize: number
  readonly total: number
}

/**
 * A page understood: its raw records and the URL of the next page, if any. `numbers` is set when
 * the next page comes from the page numbers alone (no link, no cursor): every page's URL is then
 * known from the first one (see {@link pageUrl}).
 */
export type ParsedPage =
  | {
      readonly ok: true
      readonly items: readonly unknown[]
      readonly next: URL | undefined
      readonly numbers?: PageNumbers | undefined
    }
  | { readonly ok: false; readonly reason: string }

/** The URL of page `page` (from 1) of a listing paged by numbers, from any page's URL. */
export function pageUrl(requestUrl: URL, page: number, pageSize: number): URL {
  const url = new URL(requestUrl)
  url.searchParams.set('page', String(page))
  url.searchParams.set('pageSize', String(pageSize))
  return url
}

/** How many pages a listing paged by `numbers` has. */
export const pageCount = (numbers: PageNumbers): number =>
  Math.max(1, Math.ceil(numbers.total / numbers.pageSize))

const ITEM_FIELDS = ['items', 'data', 'results', 'records'] as const

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function nextFromLink(link: unknown, requestUrl: URL): URL | undefined | false {
  if (link === undefined || link === null || link === '') return undefined
  if (typeof link !== 'string') return false
  let next: URL
  try {
    next = new URL(link, requestUrl)
  } catch {
    return false
  }
  // The next request carries the source's bearer token: a link to another origin would hand it to
  // whoever the page names.
  return next.origin === requestUrl.origin ? next : false
}

function nextFromCursor(cursor: unknown, requestUrl: URL): URL | undefined | false {
  if (cursor === undefined || cursor === null || cursor === '') return undefined
  if (typeof cursor !== 'string' && typeof cursor !== 'number') return false
  const next = new URL(requestUrl)
  next.searchParams.set('cursor', String(cursor))
  return next
}

function readPageNumbers(body: Record<string, unknown>): PageNumbers | undefined | false {
  const { page, pageSize, total } = body
  if (page === undefined && total === undefined) return undefined
  if (!Number.isInteger(page) || !Number.isInteger(pageSize) || !Number.isInteger(total)) return false
  const numbers = { page: page as number, pageSize: pageSize as number, total: total as number }
  if (numbers.pageSize <= 0 || numbers.page < 1 || numbers.total < 0) return false
  return numbers
}

function nextFromPageNumbers(numbers: PageNumbers | undefined, requestUrl: URL): URL | undefined {
  if (numbers === undefined || numbers.page * numbers.pageSize >= numbers.total) return undefined
  return pageUrl(requestUrl, numbers.page + 1, numbers.pageSize)
}

/**
 * Reads a parsed JSON body as a page of a listing.
 *
 * @param body the parsed JSON of the response
 * @param requestUrl the URL this page was fetched from (relative links resolve against it)
 */
export function parsePage(body: unknown, requestUrl: URL): ParsedPage {
  if (Array.isArray(body)) return { ok: true, items: body, next: undefined }
  if (!isObject(body)) {
    return { ok: false, reason: `expected a JSON array or an object with items, got ${typeName(body)}` }
  }
  const field = ITEM_FIELDS.find((name) => Array.isArray(body[name]))
  if (field === undefined) {
    return {
      ok: false,
      reason: `expected a JSON array or an object with an array under one of ${ITEM_FIELDS.join(', ')}`,
    }
  }
  const items = body[field] as unknown[]
  const numbers = readPageNumbers(body)
  const candidates: Array<[string, URL | undefined | false]> = [
    ['next', nextFromLink(body.next ?? body.nextPage ?? body.next_page, requestUrl)],
    ['cursor', nextFromCursor(body.cursor ?? body.nextCursor ?? body.next_cursor, requestUrl)],
    ['page numbers', numbers === false ? false : nextFromPageNumbers(numbers, requestUrl)],
  ]
  for (const [how, next] of candidates) {
    if (next === false) return { ok: false, reason: `the page's ${how} is not usable` }
    if (next !== undefined)
      return { ok: true, items, next, numbers: how === 'page numbers' ? numbers || undefined : undefined }
  }
  return { ok: true, items, next: undefined, numbers: numbers || undefined }
}

function typeName(value: unknown): string {
  if (value === null) return 'null'
  return typeof value
}
