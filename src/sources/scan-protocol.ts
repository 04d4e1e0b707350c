/**
 * The messages between the main thread and a scan worker (pure): a scan request in; each page's
 * records, retries and the end of the listing (or its failure) out.
 */

import type { EntityName } from '../domain/records.ts'
import type { ErrorCode } from '../errors.ts'
import type { RetryInfo } from './http-page.ts'
import type { InvalidRecord, PageRecords } from './page-scan.ts'
import type { ListingEnd, ScanPart, ScanSettings } from './scan.ts'

/** Messages from the main thread to a scan worker. */
export type ToWorker =
  | {
      readonly kind: 'scan'
      readonly session: number
      readonly source: {
        readonly name: string
        readonly entity: EntityName
        readonly url: string
        readonly token: string | undefined
      }
      readonly settings: ScanSettings
      /** The pages to read; by default the whole listing. */
      readonly part?: ScanPart | undefined
      /** Whether the worker may hand half of a listing paged by numbers back (`delegate`). */
      readonly split: boolean
    }
  | { readonly kind: 'abort'; readonly session: number }

/** Messages from a scan worker to the main thread. */
export type FromWorker =
  | { readonly kind: 'ready' }
  | {
      readonly kind: 'page'
      readonly session: number
      /** The page's position in the listing. */
      readonly index: number
      readonly result: WirePageRecords
    }
  /** Pages of the listing for another worker to read. */
  | { readonly kind: 'delegate'; readonly session: number; readonly part: ScanPart }
  | { readonly kind: 'retry'; readonly session: number; readonly info: RetryInfo }
  | { readonly kind: 'end'; readonly session: number; readonly end: ListingEnd }
  | {
      readonly kind: 'failed'
      readonly session: number
      readonly code?: ErrorCode | undefined
      readonly message: string
    }

/**
 * An invalid record as it crosses threads: its raw value as JSON text, because a hostile value
 * (100k levels deep) overflows the stack of the structured clone, while JSON.parse on the other
 * side is iterative; or, when not even JSON.stringify could write it, why.
 */
export interface WireInvalidRecord extends Omit<InvalidRecord, 'raw'> {
  readonly rawJson?: string | undefined
  readonly rawError?: string | undefined
}

/** A page's records as they cross threads. */
export interface WirePageRecords extends Omit<PageRecords, 'invalid'> {
  readonly invalid: WireInvalidRecord[]
}

/** `page` ready to be posted to the main thread. */
export function toWire(page: PageRecords): WirePageRecords {
  const invalid = page.invalid.map(({ raw, ...item }): WireInvalidRecord => {
    try {
      return { ...item, rawJson: JSON.stringify(raw) }
    } catch (error) {
      return { ...item, rawError: (error as Error).message }
    }
  })
  return { ...page, invalid }
}

/** `page` as posted by a worker, with each invalid record's raw value back. */
export function fromWire(page: WirePageRecords): PageRecords {
  const invalid = page.invalid.map(({ rawJson, rawError, ...item }): InvalidRecord => {
    if (rawError !== undefined) {
      // Stands for a value nothing could serialize: serializing it fails again with the worker's
      // reason, so the DLQ entry and the repeat fingerprint say what they said when it was here.
      const raw = {
        toJSON: () => {
          throw new Error(rawError)
        },
      }
      return { ...item, raw }
    }
    return { ...item, raw: rawJson === undefined ? undefined : JSON.parse(rawJson) }
  })
  return { ...page, invalid }
}
