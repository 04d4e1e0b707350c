/**
 * A full scan of one source: every page of its listing, each record validated and hashed. A scan
 * either completes (then absence means deletion) or fails as a whole: nothing from a half-read
 * listing is trusted. The next page is requested before the records of the current one are
 * validated, so the source prepares it meanwhile (one page ahead, never more). The loop runs on a
 * scan worker thread in the service (see scan-pool.ts), or inline. A listing paged by numbers
 * alone can be split after its first page: every page's URL is then known, and two threads each
 * read every other page.
 */
import { ErrorCodes, PipelineError } from '../errors.ts'
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
}

/**
 * Reads the whole listing of `source`.
 *
 * @throws {PipelineError} `PIPELINE_SOURCE_*` when any page fails: the cycle then publishes nothing
 */
export async function scanSource(source: SourceSpec, options: ScanOptions): Promise<ScanResult> {
  const { scanner, dispatcher, signal, onRetry, ...rest } = options
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
  const end = await scanner.scan(source, settings, { signal, onRetry }, (page) => {
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

/** The raw items of a page already read once (so its body parses). */
function pageItems(page: PageRecords): readonly unknown[] {
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
 * The part of a listing one scan loop reads: the planned pages, in listing order, then (with
 * `follow`) the pages the last of them links to.
 */
export interface ScanPart {
  readonly pages: readonly PlannedPage[]
  readonly follow: boolean
}

/** How {@link scanListing} may share a listing paged by numbers with another thread. */
export type SplitListing = (theirs: ScanPart) => void

/**
 * After the first page of a listing of `count` pages paged by numbers, the pages left (2 to
 * `count`) shared every other one: `mine` starts with page 2, `theirs` with page 3, and whichever
 * holds the last page follows its links, if it has any by then.
 */
export function splitPages(
  firstUrl: URL,
  numbers: PageNumbers,
  count: number,
): { mine: ScanPart; theirs: ScanPart } {
  const mine: PlannedPage[] = []
  const theirs: PlannedPage[] = []
  for (let page = 2; page <= count; page++) {
    const planned = { url: pageUrl(firstUrl, page, numbers.pageSize).href, index: page - 1 }
    ;(page % 2 === 0 ? mine : theirs).push(planned)
  }
  return {
    mine: { pages: mine, follow: count % 2 === 0 },
    theirs: { pages: theirs, follow: count % 2 === 1 },
  }
}

/** What {@link scanListing} needs from the thread it runs on. */
export interface ScanIo extends Pick<PageRequestOptions, 'dispatcher' | 'signal' | 'onRetry'> {}

/** Options of {@link scanListing}. */
export interface ScanLoopOptions {
  /** The pages to read; by default the whole listing, from the source's URL. */
  readonly part?: ScanPart | undefined
  /**
   * Given, a listing paged by numbers alone with 3 pages or more is shared after its first page:
   * this loop reads every other page and hands the rest to `split`.
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
  const part = options.part ?? { pages: [{ url: source.url.href, index: 0 }], follow: true }
  const planned = [...part.pages]
  let follow = part.follow
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
  // Whether this page's URL was planned from page numbers (rather than the source's or a link).
  let fromNumbers = options.part !== undefined
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
    if (fromNumbers) checkPlanned(url, index, page.numbers)
    if (index === 0 && options.split !== undefined && page.numbers?.page === 1 && page.next !== undefined) {
      const count = pageCount(page.numbers)
      if (count > settings.maxPages) throw tooManyPages(source.url, settings.maxPages)
      if (count >= 3) {
        const { mine, theirs } = splitPages(url, page.numbers, count)
        options.split(theirs)
        planned.push(...mine.pages)
        for (const p of mine.pages) visited.add(p.url)
        follow = mine.follow
      }
    }
    let next: PlannedPage | undefined = planned.shift()
    const nextFromNumbers = next !== undefined
    if (next === undefined && follow && page.next !== undefined) {
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
    fromNumbers = nextFromNumbers
  }
}

const tooManyPages = (url: URL, maxPages: number) =>
  new PipelineError(
    ErrorCodes.SOURCE_TOO_MANY_PAGES,
    `${url.href} has more than ${maxPages} pages (SOURCE_MAX_PAGES)`,
  )

/**
 * A page planned from the first page's numbers must say it is that page: a listing whose paging
 * changed while it was read is not trusted as complete.
 */
function checkPlanned(url: URL, index: number, numbers: PageNumbers | undefined): void {
  if (numbers?.page === index + 1) return
  throw new PipelineError(
    ErrorCodes.SOURCE_BAD_SHAPE,
    `${url.href} should be page ${index + 1} of the listing but says ${numbers === undefined ? 'nothing of its page number' : `page ${numbers.page}`}; the listing changed its paging while it was read`,
  )
}
