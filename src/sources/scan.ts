/**
 * A full scan of one source: every page of its listing, each record validated and hashed. A scan
 * either completes (then absence means deletion) or fails as a whole: nothing from a half-read
 * listing is trusted. The next page is requested before the records of the current one are
 * validated, so the source prepares it meanwhile (one page ahead, never more). The loop runs on a
 * scan worker thread in the service (see scan-pool.ts), or inline.
 */
import { ErrorCodes, PipelineError } from '../errors.ts'
import type { SourceSpec } from './catalog.ts'
import type { ScannedRecord } from './change-detection.ts'
import { fetchPage, type PageRequestOptions, type PageResponse } from './http-page.ts'
import { type InvalidRecord, type PageRecords, PageScan, unpackRecords } from './page-scan.ts'
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
  const end = await scanner.scan(source, settings, { signal, onRetry }, (page) => {
    unpackRecords(page.records, records)
    for (const item of page.invalid) invalid.push(item)
    fetched += page.fetched
  })
  if (end.kind === 'not-modified') return { kind: 'not-modified', pages: 1 }
  return { kind: 'listing', records, invalid, pages: end.pages, fetched, etag: end.etag }
}

/** What {@link scanListing} needs from the thread it runs on. */
export interface ScanIo extends Pick<PageRequestOptions, 'dispatcher' | 'signal' | 'onRetry'> {}

/**
 * The scan loop: fetches every page of `source`'s listing and hands each page's records to
 * `onPage`, in listing order, as they are worked through.
 *
 * @throws {PipelineError} `PIPELINE_SOURCE_*` when any page fails
 */
export async function scanListing(
  source: Pick<SourceSpec, 'name' | 'entity' | 'url' | 'token'>,
  settings: ScanSettings,
  io: ScanIo,
  onPage: (page: PageRecords) => void,
): Promise<ListingEnd> {
  const scan = new PageScan({
    name: source.name,
    entity: source.entity,
    polledAt: settings.polledAt,
    maxInvalid: settings.maxInvalid,
  })
  const visited = new Set<string>([source.url.href])
  const request = (url: URL, etag: string | undefined): Promise<PageResponse> => {
    const pending = fetchPage(url, { ...settings, ...io, token: source.token, etag })
    // Settled later by the loop; until then a failure must not count as unhandled.
    pending.catch(() => undefined)
    return pending
  }
  let url = source.url
  let pending = request(url, settings.etag)
  let pages = 0
  let etag: string | undefined
  for (;;) {
    const response = await pending
    pages++
    if (response.kind === 'not-modified') {
      if (pages === 1) return { kind: 'not-modified' }
      throw new PipelineError(
        ErrorCodes.SOURCE_BAD_SHAPE,
        `${url.href} answered 304 to an unconditional request`,
      )
    }
    const page = scan.read(url.href, response.raw)
    if (!page.ok) throw new PipelineError(page.code, page.message)
    const next = page.next === undefined ? undefined : new URL(page.next)
    if (next !== undefined) {
      if (visited.has(next.href)) {
        throw new PipelineError(
          ErrorCodes.SOURCE_BAD_SHAPE,
          `${url.href} links back to a page already read (${next.href})`,
        )
      }
      if (pages >= settings.maxPages) {
        throw new PipelineError(
          ErrorCodes.SOURCE_TOO_MANY_PAGES,
          `${source.url.href} has more than ${settings.maxPages} pages (SOURCE_MAX_PAGES)`,
        )
      }
      visited.add(next.href)
      pending = request(next, undefined)
    } else if (pages === 1) {
      etag = response.etag
    }
    onPage(page.records())
    if (next === undefined) return { kind: 'listing', pages, etag }
    url = next
  }
}
