/**
 * A full scan of one source: every page of its listing, each record validated and hashed. A scan
 * either completes (then absence means deletion) or fails as a whole: nothing from a half-read
 * listing is trusted. Pages are fetched here and parsed, validated and hashed by a
 * {@link PageScanner} (a worker thread in the service); the next page is requested as soon as the
 * current one is parsed, while its records are still being worked through (one page ahead).
 */
import { ErrorCodes, PipelineError } from '../errors.ts'
import type { SourceSpec } from './catalog.ts'
import type { ScannedRecord } from './change-detection.ts'
import { fetchPage, type PageRequestOptions, type PageResponse } from './http-page.ts'
import { type InvalidRecord, type PageRecords, unpackRecords } from './page-scan.ts'
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

/** Options of {@link scanSource}. */
export interface ScanOptions extends Omit<PageRequestOptions, 'token' | 'etag'> {
  readonly maxPages: number
  /**
   * Most invalid records dead-lettered from one listing; one more fails the scan. A source answering
   * millions of junk items (`[0,0,0,…]` fits 32M of them in 64 MiB) is broken, not a source of
   * millions of DLQ entries: a cap keeps the memory and the DLQ bounded.
   */
  readonly maxInvalid: number
  /** Parses, validates and hashes the pages. */
  readonly scanner: PageScanner
  /** The ETag of the last single-page listing, if any. */
  readonly etag?: string | undefined
  /** The poll time written into each envelope; default now. */
  readonly polledAt?: string | undefined
}

/**
 * Reads the whole listing of `source`.
 *
 * @throws {PipelineError} `PIPELINE_SOURCE_*` when any page fails: the cycle then publishes nothing
 */
export async function scanSource(source: SourceSpec, options: ScanOptions): Promise<ScanResult> {
  const visited = new Set<string>([source.url.href])
  const request = (url: URL, etag: string | undefined): Promise<PageResponse> => {
    const pending = fetchPage(url, { ...options, token: source.token, etag })
    // Settled later by the loop; until then a failure must not count as unhandled.
    pending.catch(() => undefined)
    return pending
  }
  const session = options.scanner.open({
    name: source.name,
    entity: source.entity,
    polledAt: options.polledAt ?? new Date().toISOString(),
    maxInvalid: options.maxInvalid,
  })
  const worked: Promise<PageRecords>[] = []
  // The records of the first `upTo` pages, in listing order. On a failure, the pages before it are
  // collected first: an earlier page's error (too many invalid records) is the scan's error, as
  // when the pages were worked through one by one.
  const collect = async (upTo = worked.length) => {
    const records: ScannedRecord<Buffer>[] = []
    const invalid: InvalidRecord[] = []
    let fetched = 0
    for (const page of worked.slice(0, upTo)) {
      const result = await page
      unpackRecords(result.records, records)
      for (const item of result.invalid) invalid.push(item)
      fetched += result.fetched
    }
    return { records, invalid, fetched }
  }
  try {
    let url = source.url
    let pending = request(url, options.etag)
    let pages = 0
    let etag: string | undefined
    for (;;) {
      let next: URL | undefined
      try {
        const response = await pending
        pages++
        if (response.kind === 'not-modified') {
          if (pages === 1) return { kind: 'not-modified', pages: 1 }
          throw new PipelineError(
            ErrorCodes.SOURCE_BAD_SHAPE,
            `${url.href} answered 304 to an unconditional request`,
          )
        }
        const page = session.page(url.href, response.raw)
        worked.push(page.records)
        const link = await page.read
        next = link === undefined ? undefined : new URL(link)
        if (next === undefined && pages === 1) etag = response.etag
      } catch (error) {
        await collect()
        throw error
      }
      if (next === undefined) return { kind: 'listing', ...(await collect()), pages, etag }
      // The page's own records come after its link in that order.
      if (visited.has(next.href)) {
        await collect(pages - 1)
        throw new PipelineError(
          ErrorCodes.SOURCE_BAD_SHAPE,
          `${url.href} links back to a page already read (${next.href})`,
        )
      }
      if (pages >= options.maxPages) {
        await collect(pages - 1)
        throw new PipelineError(
          ErrorCodes.SOURCE_TOO_MANY_PAGES,
          `${source.url.href} has more than ${options.maxPages} pages (SOURCE_MAX_PAGES)`,
        )
      }
      visited.add(next.href)
      pending = request(next, undefined)
      url = next
    }
  } finally {
    session.close()
  }
}
