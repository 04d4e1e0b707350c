/**
 * A full scan of one source: every page of its listing, each record validated and hashed. A scan
 * either completes (then absence means deletion) or fails as a whole: nothing from a half-read
 * listing is trusted. The next page is requested before the records of the current one are
 * validated, so the source prepares it meanwhile (one page ahead, never more). The loop runs on a
 * scan worker thread in the service (see scan-pool.ts), or inline. A listing paged by numbers
 * alone can be split after its first page: every page's URL is then known, and two threads each
 * read every other page. Read out of order, a listing that changes meanwhile could hide a record
 * (an insert shifts one from a page not yet read to one already read) and so delete it: every page
 * must then report the first page's numbers, and if one does not, the listing is read again in
 * order on one thread, as a listing paged otherwise always is.
 */
import { ErrorCodes, isPipelineError, PipelineError } from '../errors.ts'
import { parseBody } from './body.ts'
import type { SourceSpec } from './catalog.ts'
import type { ScannedRecord } from './change-detection.ts'
import { fetchPage, type PageRequestOptions, type PageResponse } from './http-page.ts'
import {
  duplicateRecord,
  type InvalidRecord,
  type PageRecords,
  PageScan,
  tooManyInvalid,
  unpackRecords,
} from './page-scan.ts'
import { type PageNumbers, pageCount, pageUrl, parsePage } from './pagination.ts'
import type { PageScanner } from './scan-pool.ts'

export type { InvalidRecord } from './page-scan.ts'

/** The outcome of a scan. */
export type ScanResult =
  | { readonly kind: 'not-modified'; readonly pages: 1 }
  | {
      readonly kind: 'listing'
      /** The valid records, each with the UTF-8 of its envelope JSON (what is published). */
      readonly records: ScannedRecord<Buffer>[]
      readonly invalid: InvalidRecord[]
      readonly pages: number
      readonly fetched: number
      /** The ETag of a single-page listing, to make the next poll conditional. */
      readonly etag: string | undefined
    }

/** How a listing ended, its records aside. */
export type ListingEnd =
  | { readonly kind: 'not-modified' }
  | { readonly kind: 'listing'; readonly pages: number; readonly etag: string | undefined }

/** What a scan loop needs besides the source; all of it can be copied to a worker thread. */
export interface ScanSettings
  extends Omit<PageRequestOptions, 'token' | 'etag' | 'dispatcher' | 'signal' | 'onRetry'> {
  readonly maxPages: number
  /**
   * Most invalid records dead-lettered from one listing; one more fails the scan. A source answering
   * millions of junk items (`[0,0,0,…]` fits 32M of them in 64 MiB) is broken, not a source of
   * millions of DLQ entries: a cap keeps the memory and the DLQ bounded.
   */
  readonly maxInvalid: number
  /** The ETag of the last single-page listing, if any. */
  readonly etag?: string | undefined
  /** The poll time written into each envelope. */
  readonly polledAt: string
}

/** Options of {@link scanSource}. */
export interface ScanOptions
  extends Omit<ScanSettings, 'polledAt'>,
    Omit<PageRequestOptions, 'token' | 'etag'> {
  /** Runs the scan loop: on a worker thread, or inline on `dispatcher`. */
  readonly scanner: PageScanner
  /** The poll time written into each envelope; default now. */
  readonly polledAt?: string | undefined
  /** Hears that a listing read on two threads changed meanwhile and is read again on one. */
  readonly onRescan?: ((reason: string) => void) | undefined
}

/**
 * Reads the whole listing of `source`.
 *
 * @throws {PipelineError} `PIPELINE_SOURCE_*` when any page fails: the cycle then publishes nothing
 */
export async function scanSource(source: SourceSpec, options: ScanOptions): Promise<ScanResult> {
  try {
    return await scanOnce(source, options, false)
  } catch (error) {
    if (!isPipelineError(error, ErrorCodes.SOURCE_LISTING_CHANGED)) throw error
    options.onRescan?.(error.message)
    return scanOnce(source, options, true)
  }
}

async function scanOnce(source: SourceSpec, options: ScanOptions, inOrder: boolean): Promise<ScanResult> {
  const { scanner, dispatcher, signal, onRetry, onRescan: _, ...rest } = options
  const records: ScannedRecord<Buffer>[] = []
  const invalid: InvalidRecord[] = []
  let fetched = 0
  const settings: ScanSettings = { ...rest, polledAt: options.polledAt ?? new Date().toISOString() }
  // Each thread of a split scan sees only its own pages: an id repeated across them is found here.
  const seen = new Set<string>()
  const addInvalid = (item: InvalidRecord) => {
    if (invalid.length >= settings.maxInvalid) throw tooManyInvalid(item, settings.maxInvalid)
    invalid.push(item)
  }
  const end = await scanner.scan(source, settings, { signal, onRetry, inOrder }, (page) => {
    for (const item of page.invalid) addInvalid(item)
    let items: readonly unknown[] | undefined
    const repeated: InvalidRecord[] = []
    unpackRecords(page.records, records, (id, position) => {
      if (!seen.has(id)) {
        seen.add(id)
        return true
      }
      items ??= pageItems(page)
      repeated.push(duplicateRecord(items[position], id, page.url))
      return false
    })
    for (const item of repeated) addInvalid(item)
    fetched += page.fetched
  })
  if (end.kind === 'not-modified') return { kind: 'not-modified', pages: 1 }
  return { kind: 'listing', records, invalid, pages: end.pages, fetched, etag: end.etag }
}

/** The raw items of a page already read once (so its body parses), if it came with its body. */
function pageItems(page: PageRecords): readonly unknown[] {
  if (page.body === undefined) return []
  const url = new URL(page.url)
  const parsed = parsePage(parseBody(url, page.body), url)
  return parsed.ok ? parsed.items : []
}

/** One page a scan loop is to read: its URL and its position in the listing (from 0). */
export interface PlannedPage {
  readonly url: string
  readonly index: number
}

/**
 * The part of a listing paged by numbers one scan loop reads: pages planned from the first page's
 * `numbers`, in listing order. Each must report those numbers.
 */
export interface ScanPart {
  readonly pages: readonly PlannedPage[]
  readonly numbers: PageNumbers
}

/** How {@link scanListing} may share a listing paged by numbers with another thread. */
export type SplitListing = (theirs: ScanPart) => void

/**
 * After the first page of a listing paged by `numbers`, its other pages shared every other one:
 * `mine` starts with page 2, `theirs` with page 3.
 */
export function splitPages(firstUrl: URL, numbers: PageNumbers): { mine: ScanPart; theirs: ScanPart } {
  const mine: PlannedPage[] = []
  const theirs: PlannedPage[] = []
  for (let page = 2; page <= pageCount(numbers); page++) {
    const planned = { url: pageUrl(firstUrl, page, numbers.pageSize).href, index: page - 1 }
    ;(page % 2 === 0 ? mine : theirs).push(planned)
  }
  return { mine: { pages: mine, numbers }, theirs: { pages: theirs, numbers } }
}

/** What {@link scanListing} needs from the thread it runs on. */
export interface ScanIo extends Pick<PageRequestOptions, 'dispatcher' | 'signal' | 'onRetry'> {}

/** Options of {@link scanListing}. */
export interface ScanLoopOptions {
  /** The pages to read; by default the whole listing, from the source's URL. */
  readonly part?: ScanPart | undefined
  /**
   * Given, a listing paged by numbers alone with 3 pages or more is shared after its first page:
   * this loop reads every other page and hands the rest to `split`. A planned page that does not
   * report the first page's numbers then fails the scan with `SOURCE_LISTING_CHANGED`.
   */
  readonly split?: SplitListing | undefined
}

/**
 * The scan loop: fetches the pages of `source`'s listing (all of it, or `options.part`) and hands
 * each page's records to `onPage` with its position in the listing, in listing order, as they are
 * worked through.
 *
 * @returns how the listing ended, with the number of pages this loop read
 * @throws {PipelineError} `PIPELINE_SOURCE_*` when any page fails
 */
export async function scanListing(
  source: Pick<SourceSpec, 'name' | 'entity' | 'url' | 'token'>,
  settings: ScanSettings,
  io: ScanIo,
  onPage: (page: PageRecords, index: number) => void,
  options: ScanLoopOptions = {},
): Promise<ListingEnd> {
  const scan = new PageScan({
    name: source.name,
    entity: source.entity,
    polledAt: settings.polledAt,
    maxInvalid: settings.maxInvalid,
  })
  const planned = [...(options.part?.pages ?? [{ url: source.url.href, index: 0 }])]
  /** The numbers every planned page must report: the first page's. */
  let expected = options.part?.numbers
  const visited = new Set<string>(planned.map((page) => page.url))
  const request = (url: URL, etag: string | undefined): Promise<PageResponse> => {
    const pending = fetchPage(url, { ...settings, ...io, token: source.token, etag })
    // Settled later by the loop; until then a failure must not count as unhandled.
    pending.catch(() => undefined)
    return pending
  }
  const first = planned.shift()
  if (first === undefined) return { kind: 'listing', pages: 0, etag: undefined }
  let url = new URL(first.url)
  let index = first.index
  let pending = request(url, index === 0 ? settings.etag : undefined)
  let pages = 0
  let etag: string | undefined
  for (;;) {
    const response = await pending
    pages++
    if (response.kind === 'not-modified') {
      if (index === 0) return { kind: 'not-modified' }
      throw new PipelineError(
        ErrorCodes.SOURCE_BAD_SHAPE,
        `${url.href} answered 304 to an unconditional request`,
      )
    }
    const page = scan.read(url.href, response.raw)
    if (!page.ok) throw new PipelineError(page.code, page.message)
    if (expected !== undefined && index > 0) checkPlanned(url, index, page.numbers, expected)
    if (index === 0 && options.split !== undefined && page.numbers?.page === 1 && page.next !== undefined) {
      const count = pageCount(page.numbers)
      if (count > settings.maxPages) throw tooManyPages(source.url, settings.maxPages)
      if (count >= 3) {
        const { mine, theirs } = splitPages(url, page.numbers)
        options.split(theirs)
        planned.push(...mine.pages)
        expected = page.numbers
      }
    }
    let next: PlannedPage | undefined = planned.shift()
    // Planned pages end where the first page's numbers said; only an unplanned listing follows links.
    if (next === undefined && expected === undefined && page.next !== undefined) {
      const link = new URL(page.next)
      if (visited.has(link.href)) {
        throw new PipelineError(
          ErrorCodes.SOURCE_BAD_SHAPE,
          `${url.href} links back to a page already read (${link.href})`,
        )
      }
      if (index + 1 >= settings.maxPages) throw tooManyPages(source.url, settings.maxPages)
      visited.add(link.href)
      next = { url: link.href, index: index + 1 }
    }
    if (next !== undefined) pending = request(new URL(next.url), undefined)
    else if (index === 0) etag = response.etag
    onPage(page.records(), index)
    if (next === undefined) return { kind: 'listing', pages, etag }
    url = new URL(next.url)
    index = next.index
  }
}

const tooManyPages = (url: URL, maxPages: number) =>
  new PipelineError(
    ErrorCodes.SOURCE_TOO_MANY_PAGES,
    `${url.href} has more than ${maxPages} pages (SOURCE_MAX_PAGES)`,
  )

/**
 * A page planned from the first page's numbers must report them (its own page number, the same
 * page size and total): pages read out of order are only a complete listing if nothing moved
 * between them.
 */
function checkPlanned(url: URL, index: number, numbers: PageNumbers | undefined, first: PageNumbers): void {
  if (numbers?.page === index + 1 && numbers.pageSize === first.pageSize && numbers.total === first.total)
    return
  const said =
    numbers === undefined
      ? 'no page numbers'
      : `page ${numbers.page}, pageSize ${numbers.pageSize}, total ${numbers.total}`
  throw new PipelineError(
    ErrorCodes.SOURCE_LISTING_CHANGED,
    `${url.href} should be page ${index + 1} (pageSize ${first.pageSize}, total ${first.total}) but says ${said}: the listing changed while it was read`,
  )
}
