/**
 * The CPU-bound part of a scan, one page at a time (pure, no I/O): decode and parse the body, find
 * the next page, then validate, hash and wrap each record in its envelope. A scan worker runs it
 * off the main thread; its output is packed into one string per page, because copying one string
 * between threads is cheap and copying 1 000 small objects costs what the worker saves.
 */
import { canonicalJson, hashOfCanonical } from '../domain/canonical.ts'
import { envelopeJson } from '../domain/envelope.ts'
import { type EntityName, validateRecord } from '../domain/records.ts'
import { type ErrorCode, ErrorCodes, PipelineError } from '../errors.ts'
import { parseBody } from './body.ts'
import { type PageNumbers, parsePage } from './pagination.ts'

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

/** What every page of one scan shares. */
export interface PageScanSpec {
  /** The source's name, written into each envelope. */
  readonly name: string
  readonly entity: EntityName
  /** The poll time written into each envelope. */
  readonly polledAt: string
  /** Most invalid records in one listing; one more fails the scan (`SOURCE_TOO_MANY_INVALID`). */
  readonly maxInvalid: number
}

/**
 * The valid records of one page, packed to cross threads cheaply: `keys` holds each record's id
 * and content hash one after the other (`keyLengths`: two per record), `envelopes` the UTF-8 of
 * their envelope JSON (`ends`: where each ends). The bytes move between threads without a copy
 * and are what Kafka is sent, so the main thread never encodes or measures them.
 */
export interface PackedRecords {
  readonly keys: string
  readonly keyLengths: Int32Array
  readonly envelopes: Uint8Array
  readonly ends: Int32Array
  /** Each record's position among the page's items. */
  readonly positions: Int32Array
}

/** One page's outcome. */
export interface PageRecords {
  readonly records: PackedRecords
  readonly invalid: InvalidRecord[]
  /** Items the page listed, valid or not. */
  readonly fetched: number
  /** Where the page was read. */
  readonly url: string
  /**
   * The page's body. A listing scanned on two threads can repeat an id across them, which only the
   * main thread sees: it reads the later occurrence's raw record from here to dead-letter it. A
   * scan thread leaves it out of pages nobody else read a part of the listing of.
   */
  readonly body: Uint8Array | undefined
}

/** A page read far enough to know where the listing goes on. */
export type ReadPage =
  | {
      readonly ok: true
      readonly next: string | undefined
      /** Set when the listing is paged by numbers alone (see `parsePage`). */
      readonly numbers: PageNumbers | undefined
      readonly records: () => PageRecords
    }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string }

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

/** The error that fails a scan whose invalid records went over `max` with `item`. */
export function tooManyInvalid(item: InvalidRecord, max: number): PipelineError {
  return new PipelineError(
    ErrorCodes.SOURCE_TOO_MANY_INVALID,
    `${item.url}: more than ${max} invalid records in one listing (SOURCE_MAX_INVALID_RECORDS), last: ${item.reason}`,
  )
}

/** A later occurrence of `id` in one listing, read from `url`: dead-lettered, never published. */
export function duplicateRecord(raw: unknown, id: string, url: string): InvalidRecord {
  return { raw, reason: `duplicate id ${shownId(id)} in one listing`, url, id: shownId(id), listedId: id }
}

/**
 * The state of one scan across its pages (the ids seen so far, the invalid records counted), fed
 * the pages in listing order.
 */
export class PageScan {
  readonly #spec: PageScanSpec
  readonly #seen = new Set<string>()
  #invalid = 0

  constructor(spec: PageScanSpec) {
    this.#spec = spec
  }

  /**
   * Parses the page fetched from `url` and says where the next one is; its records are worked
   * through only when `records` is called, so the next request can go out first.
   */
  read(url: string, body: Uint8Array): ReadPage {
    const where = new URL(url)
    let items: readonly unknown[]
    let next: URL | undefined
    let numbers: PageNumbers | undefined
    try {
      const page = parsePage(parseBody(where, body), where)
      if (!page.ok) return { ok: false, code: ErrorCodes.SOURCE_BAD_SHAPE, message: `${url}: ${page.reason}` }
      items = page.items
      next = page.next
      numbers = page.numbers
    } catch (error) {
      if (error instanceof PipelineError) return { ok: false, code: error.code, message: error.message }
      throw error
    }
    return { ok: true, next: next?.href, numbers, records: () => this.#records(url, body, items) }
  }

  #records(url: string, body: Uint8Array, items: readonly unknown[]): PageRecords {
    const spec = this.#spec
    const invalid: InvalidRecord[] = []
    const addInvalid = (item: InvalidRecord) => {
      if (this.#invalid >= spec.maxInvalid) throw tooManyInvalid(item, spec.maxInvalid)
      this.#invalid++
      invalid.push(item)
    }
    let keys = ''
    const keyLengths = new Int32Array(2 * items.length)
    const ends = new Int32Array(items.length)
    const positions = new Int32Array(items.length)
    let count = 0
    // Not from Node's shared pool: this memory is handed to the other thread whole.
    let bytes = Buffer.allocUnsafeSlow(4096 + 400 * items.length)
    let used = 0
    for (let position = 0; position < items.length; position++) {
      const raw = items[position]
      const validation = validateRecord(spec.entity, raw)
      if (!validation.ok) {
        const listed = listedId(raw)
        addInvalid({ raw, reason: validation.reason, url, id: shownId(listed), listedId: listed })
        continue
      }
      const { id } = validation.record
      // A duplicate id within one listing: the first occurrence wins (it is the one published and
      // hashed) and every later one is dead-lettered with stage `source`, so a source that repeats
      // an id, with the same content or not, is visible and never decides which version is published.
      if (this.#seen.has(id)) {
        addInvalid(duplicateRecord(raw, id, url))
        continue
      }
      this.#seen.add(id)
      const data = canonicalJson(validation.record)
      const hash = hashOfCanonical(data)
      const envelope = envelopeJson(spec, id, data, hash, spec.polledAt)
      // Three bytes per UTF-16 unit at most.
      if (used + 3 * envelope.length > bytes.length) {
        const grown = Buffer.allocUnsafeSlow(2 * bytes.length + 3 * envelope.length)
        bytes.copy(grown, 0, 0, used)
        bytes = grown
      }
      used += bytes.write(envelope, used)
      keys += id + hash
      keyLengths[2 * count] = id.length
      keyLengths[2 * count + 1] = hash.length
      positions[count] = position
      ends[count++] = used
    }
    const records = {
      keys,
      keyLengths: keyLengths.subarray(0, 2 * count),
      envelopes: bytes.subarray(0, used),
      ends: ends.subarray(0, count),
      positions: positions.subarray(0, count),
    }
    return { records, invalid, fetched: items.length, url, body }
  }
}

/** One valid record of a scan: its id, content hash and the UTF-8 of its envelope (what is published). */
export interface UnpackedRecord {
  readonly id: string
  readonly hash: string
  readonly record: Buffer
}

/**
 * Appends the records of `packed` to `into`, in page order, except those `keep` refuses (it is
 * given each record's position among the page's items).
 */
export function unpackRecords(
  packed: PackedRecords,
  into: UnpackedRecord[],
  keep?: (id: string, position: number) => boolean,
): void {
  const { keys, keyLengths, envelopes, ends, positions } = packed
  let at = 0
  let start = 0
  for (let i = 0; i < ends.length; i++) {
    const idEnd = at + (keyLengths[2 * i] as number)
    const hashEnd = idEnd + (keyLengths[2 * i + 1] as number)
    const end = ends[i] as number
    const id = keys.slice(at, idEnd)
    if (keep === undefined || keep(id, positions[i] as number)) {
      const record = Buffer.from(envelopes.buffer, envelopes.byteOffset + start, end - start)
      into.push({ id, hash: keys.slice(idEnd, hashEnd), record })
    }
    at = hashEnd
    start = end
  }
}
