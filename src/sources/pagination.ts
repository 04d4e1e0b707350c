/**
 * Understanding one page of a source listing (pure). Sources answer with a plain JSON array, or an
 * envelope whose records sit under `items` (or `data`, `results`, `records`) with one of three
 * ways to the next page: a `next` link, a `cursor`, or `page`/`pageSize`/`total` numbers.
 */

/** A page understood: its raw records and the URL of the next page, if any. */
export type ParsedPage =
  | { readonly ok: true; readonly items: readonly unknown[]; readonly next: URL | undefined }
  | { readonly ok: false; readonly reason: string }

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

function nextFromPageNumbers(body: Record<string, unknown>, requestUrl: URL): URL | undefined | false {
  const { page, pageSize, total } = body
  if (page === undefined && total === undefined) return undefined
  if (!Number.isInteger(page) || !Number.isInteger(pageSize) || !Number.isInteger(total)) return false
  const [p, size, count] = [page as number, pageSize as number, total as number]
  if (size <= 0 || p < 1 || count < 0) return false
  if (p * size >= count) return undefined
  const next = new URL(requestUrl)
  next.searchParams.set('page', String(p + 1))
  next.searchParams.set('pageSize', String(size))
  return next
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
  const candidates: Array<[string, URL | undefined | false]> = [
    ['next', nextFromLink(body.next ?? body.nextPage ?? body.next_page, requestUrl)],
    ['cursor', nextFromCursor(body.cursor ?? body.nextCursor ?? body.next_cursor, requestUrl)],
    ['page numbers', nextFromPageNumbers(body, requestUrl)],
  ]
  for (const [how, next] of candidates) {
    if (next === false) return { ok: false, reason: `the page's ${how} is not usable` }
    if (next !== undefined) return { ok: true, items, next }
  }
  return { ok: true, items, next: undefined }
}

function typeName(value: unknown): string {
  if (value === null) return 'null'
  return typeof value
}
