/**
 * Which invalid records of a listing were already dead-lettered by an earlier poll (pure). A record
 * that stays broken at the source is listed again every interval; dead-lettering it each time
 * would grow the DLQ by one entry per record per poll and bury the new failures among the old.
 */
import { hash } from 'node:crypto'
import type { InvalidRecord } from './scan.ts'

/**
 * A fingerprint of an invalid record: its id, its reason and its content. The same broken record
 * listed again has the same fingerprint; any change to it (or a new reason) makes a new one.
 */
export function invalidFingerprint(item: InvalidRecord): string {
  let content: string
  try {
    content = JSON.stringify(item.raw) ?? 'undefined'
  } catch {
    // Too deep to serialize (see the DLQ's storable payload): the reason and the id still tell
    // one such record from another.
    content = '(not serializable)'
  }
  return hash('sha256', `${item.listedId ?? ''}\n${item.reason}\n${content}`, 'hex')
}

/** The invalid records of one listing, split by whether an earlier poll dead-lettered them. */
export interface InvalidSplit {
  /** Not seen broken before (or changed since): to dead-letter now. */
  readonly fresh: readonly InvalidRecord[]
  /** How many were dead-lettered by an earlier poll and are listed unchanged. */
  readonly repeated: number
  /** The fingerprints of every invalid record of this listing: what to remember for the next poll. */
  readonly fingerprints: readonly string[]
}

/**
 * Splits `invalid` against the fingerprints remembered from the last complete listing.
 *
 * @param invalid the invalid records of this listing
 * @param previous fingerprints dead-lettered before (see {@link invalidFingerprint})
 */
export function splitRepeatedInvalid(
  invalid: readonly InvalidRecord[],
  previous: ReadonlySet<string>,
): InvalidSplit {
  const fresh: InvalidRecord[] = []
  const fingerprints: string[] = []
  let repeated = 0
  for (const item of invalid) {
    const fingerprint = invalidFingerprint(item)
    fingerprints.push(fingerprint)
    if (previous.has(fingerprint)) repeated++
    else fresh.push(item)
  }
  return { fresh, repeated, fingerprints }
}
