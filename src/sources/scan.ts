/**
 * A full scan of one source: every page of its listing, each record validated and hashed. A scan
 * either completes (then absence means deletion) or fails as a whole: nothing from a half-read
 * listing is trusted. The next page is requested before the records of the current one are
 * validated, so the source prepares it meanwhile (one page ahead, never more).
 */
import { canonicalJson, hashOfCanonical } from '../domain/canonical.ts'
import { validateRecord } from '../domain/records.ts'
import { ErrorCodes, PipelineError } from '../errors.ts'
import type { SourceSpec } from './catalog.ts'
import type { ScannedRecord } from './change-detection.ts'
import { fetchPage, type PageRequestOptions, type PageResponse } from './http-page.ts'
import { parsePage } from './pagination.ts'

/** A record that failed validation, with what the DLQ needs to explain it. */
export interface InvalidRecord {
  readonly raw: unknown
  readonly reason: string
  readonly url: string
  /** The id, when one could be read, for the DLQ key (cut to {@link MAX_SHOWN_ID} characters). */
  readonly id: string | undefined
  /** The whole id as listed, when one could be read: its last valid version is kept, not deleted. */
  readonly listedId: string | undefined
}

/** The outcome of a scan. */
export type ScanResult =
  | { readonly kind: 'not-modified'; readonly pages: 1 }
  | {
      readonly kind: 'listing'
      /** The valid records, each as its canonical JSON (what was hashed, and what is published). */
      readonly records: ScannedRecord<string>[]
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

function listedId(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== 'object') return undefined
  const id = (raw as { id?: unknown }).id
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined
}

function shownId(id: string | undefined): string | undefined {
  return id !== undefined && id.length > MAX_SHOWN_ID ? `${id.slice(0, MAX_SHOWN_ID)}…` : id
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
  const records: ScannedRecord<string>[] = []
  const invalid: InvalidRecord[] = []
  const seen = new Set<string>()
  const visited = new Set<string>([source.url.href])
  const request = (url: URL, etag: string | undefined): Promise<PageResponse> => {
    const pending = fetchPage(url, { ...options, token: source.token, etag })
    // Settled later by the loop; until then a failure must not count as unhandled.
    pending.catch(() => undefined)
    return pending
  }
  let url = source.url
  let pending = request(url, options.etag)
  let pages = 0
  let fetched = 0
  let etag: string | undefined
  for (;;) {
    const response = await pending
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
    const next = page.next
    if (next !== undefined) {
      if (visited.has(next.href)) {
        throw new PipelineError(
          ErrorCodes.SOURCE_BAD_SHAPE,
          `${url.href} links back to a page already read (${next.href})`,
        )
      }
      if (pages >= options.maxPages) {
        throw new PipelineError(
          ErrorCodes.SOURCE_TOO_MANY_PAGES,
          `${source.url.href} has more than ${options.maxPages} pages (SOURCE_MAX_PAGES)`,
        )
      }
      visited.add(next.href)
      pending = request(next, undefined)
    } else if (pages === 1) {
      etag = response.etag
    }
    const where = url.href
    for (const raw of page.items) {
      fetched++
      const validation = validateRecord(source.entity, raw)
      if (!validation.ok) {
        const listed = listedId(raw)
        const item = { raw, reason: validation.reason, url: where, id: shownId(listed), listedId: listed }
        addInvalid(invalid, item, options)
        continue
      }
      const { id } = validation.record
      // A duplicate id within one listing: the first occurrence wins (it is the one published and
      // hashed) and every later one is dead-lettered with stage `source`, so a source that repeats
      // an id, with the same content or not, is visible and never decides which version is published.
      if (seen.has(id)) {
        const reason = `duplicate id ${id} in one listing`
        addInvalid(invalid, { raw, reason, url: where, id, listedId: id }, options)
        continue
      }
      seen.add(id)
      const json = canonicalJson(validation.record)
      records.push({ id, hash: hashOfCanonical(json), record: json })
    }
    if (next === undefined) return { kind: 'listing', records, invalid, pages, fetched, etag }
    url = next
  }
}
