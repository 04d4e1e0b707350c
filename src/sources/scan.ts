/**
 * A full scan of one source: every page of its listing, each record validated and hashed. A scan
 * either completes (then absence means deletion) or fails as a whole: nothing from a half-read
 * listing is trusted.
 */
import { contentHash } from '../domain/canonical.ts'
import { type EntityRecord, validateRecord } from '../domain/records.ts'
import { ErrorCodes, PipelineError } from '../errors.ts'
import type { SourceSpec } from './catalog.ts'
import type { ScannedRecord } from './change-detection.ts'
import { fetchPage, type PageRequestOptions } from './http-page.ts'
import { parsePage } from './pagination.ts'

/** A record that failed validation, with what the DLQ needs to explain it. */
export interface InvalidRecord {
  readonly raw: unknown
  readonly reason: string
  readonly url: string
  /** The id, when one could be read, for the DLQ key. */
  readonly id: string | undefined
}

/** The outcome of a scan. */
export type ScanResult =
  | { readonly kind: 'not-modified'; readonly pages: 1 }
  | {
      readonly kind: 'listing'
      readonly records: ScannedRecord<EntityRecord>[]
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
  /** The ETag of the last single-page listing, if any. */
  readonly etag?: string | undefined
}

/** Longest id shown for an invalid record (in its log line and DLQ key); the payload keeps it whole. */
const MAX_SHOWN_ID = 256

function rawId(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== 'object') return undefined
  const id = (raw as { id?: unknown }).id
  if (typeof id !== 'string' && typeof id !== 'number') return undefined
  const text = String(id)
  return text.length > MAX_SHOWN_ID ? `${text.slice(0, MAX_SHOWN_ID)}…` : text
}

function addInvalid(invalid: InvalidRecord[], item: InvalidRecord, options: ScanOptions): void {
  if (invalid.length >= options.maxInvalid) {
    throw new PipelineError(
      ErrorCodes.SOURCE_TOO_MANY_INVALID,
      `${item.url}: more than ${options.maxInvalid} invalid records in one listing (SOURCE_MAX_INVALID_RECORDS), last: ${item.reason}`,
    )
  }
  invalid.push(item)
}

/**
 * Reads the whole listing of `source`.
 *
 * @throws {PipelineError} `PIPELINE_SOURCE_*` when any page fails: the cycle then publishes nothing
 */
export async function scanSource(source: SourceSpec, options: ScanOptions): Promise<ScanResult> {
  const records: ScannedRecord<EntityRecord>[] = []
  const invalid: InvalidRecord[] = []
  const seen = new Set<string>()
  const visited = new Set<string>()
  let url: URL | undefined = source.url
  let pages = 0
  let fetched = 0
  let etag: string | undefined
  while (url !== undefined) {
    if (pages >= options.maxPages) {
      throw new PipelineError(
        ErrorCodes.SOURCE_TOO_MANY_PAGES,
        `${source.url.href} has more than ${options.maxPages} pages (SOURCE_MAX_PAGES)`,
      )
    }
    visited.add(url.href)
    const response = await fetchPage(url, {
      ...options,
      token: source.token,
      etag: pages === 0 ? options.etag : undefined,
    })
    pages++
    if (response.kind === 'not-modified') {
      if (pages === 1) return { kind: 'not-modified', pages: 1 }
      throw new PipelineError(
        ErrorCodes.SOURCE_BAD_SHAPE,
        `${url.href} answered 304 to an unconditional request`,
      )
    }
    const page = parsePage(response.body, url)
    if (!page.ok) throw new PipelineError(ErrorCodes.SOURCE_BAD_SHAPE, `${url.href}: ${page.reason}`)
    for (const raw of page.items) {
      fetched++
      const validation = validateRecord(source.entity, raw)
      if (!validation.ok) {
        addInvalid(invalid, { raw, reason: validation.reason, url: url.href, id: rawId(raw) }, options)
        continue
      }
      const { record } = validation
      // A duplicate id within one listing: the first occurrence wins (it is the one published and
      // hashed) and every later one is dead-lettered with stage `source`, so a source that repeats
      // an id, with the same content or not, is visible and never decides which version is published.
      if (seen.has(record.id)) {
        addInvalid(
          invalid,
          {
            raw,
            reason: `duplicate id ${record.id} in one listing`,
            url: url.href,
            id: record.id,
          },
          options,
        )
        continue
      }
      seen.add(record.id)
      records.push({ id: record.id, hash: contentHash(record), record })
    }
    if (page.next && visited.has(page.next.href)) {
      throw new PipelineError(
        ErrorCodes.SOURCE_BAD_SHAPE,
        `${url.href} links back to a page already read (${page.next.href})`,
      )
    }
    if (pages === 1 && page.next === undefined) etag = response.etag
    url = page.next
  }
  return { kind: 'listing', records, invalid, pages, fetched, etag }
}
