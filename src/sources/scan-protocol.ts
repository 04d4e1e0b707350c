/**
 * The messages between the main thread and a scan worker (pure): pages in; where the listing
 * goes on, and then the page's records, out.
 */
import type { ErrorCode } from '../errors.ts'
import type { InvalidRecord, PageRecords, PageScanSpec } from './page-scan.ts'

/** Messages from the main thread to a scan worker. */
export type ToWorker =
  | { readonly kind: 'open'; readonly session: number; readonly spec: PageScanSpec }
  | { readonly kind: 'close'; readonly session: number }
  | {
      readonly kind: 'page'
      readonly session: number
      readonly page: number
      readonly url: string
      readonly body: Uint8Array
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
      return {
        ...item,
        raw: {
          toJSON: () => {
            throw new Error(rawError)
          },
        },
      }
    }
    return { ...item, raw: rawJson === undefined ? undefined : JSON.parse(rawJson) }
  })
  return { ...page, invalid }
}

/** Messages from a scan worker to the main thread. */
export type FromWorker =
  | {
      readonly kind: 'read'
      readonly session: number
      readonly page: number
      readonly ok: true
      readonly next: string | undefined
    }
  | {
      readonly kind: 'read'
      readonly session: number
      readonly page: number
      readonly ok: false
      readonly code: ErrorCode
      readonly message: string
    }
  | {
      readonly kind: 'records'
      readonly session: number
      readonly page: number
      readonly result: WirePageRecords
    }
  | {
      readonly kind: 'failed'
      readonly session: number
      readonly page: number
      readonly code?: ErrorCode | undefined
      readonly message: string
    }
