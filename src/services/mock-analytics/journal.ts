/**
 * The mock's memory on disk, when asked for one: every accepted delivery appended as one JSON line
 * before it is acknowledged, read back at start. A real Analytics keeps what it acknowledged; the
 * pipeline's delivery records in Redis assume so, and a local stack restarted with its Kafka and
 * Redis state would otherwise show an empty mock that the consumer believes holds every view.
 *
 * Appends are synchronous: a delivery is on its way to disk (in the page cache, which survives the
 * process) before its 200, and a failed write fails the delivery instead of the process. Meant for
 * local stacks and demos: the file grows with every accepted delivery and is read whole at start.
 */
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { type StoredRecord, viewIdentityOf } from './store.ts'

/** What a journal file held, and the writer that appends to it. */
export interface Journal {
  /** The deliveries read back, in the order they were accepted. */
  readonly restored: readonly StoredRecord[]
  /** Lines that could not be read back (a line cut short by a crash): skipped, and dropped from the file. */
  readonly unreadable: number
  /** Appends one accepted delivery; throws when it cannot be written. */
  append(stored: StoredRecord): void
  /** Empties the file (the mock was reset). */
  truncate(): void
  close(): void
}

function isStoredRecord(value: unknown): value is StoredRecord {
  if (value === null || typeof value !== 'object') return false
  const { key, receivedAt } = value as Partial<StoredRecord>
  return (
    typeof key === 'string' &&
    viewIdentityOf(key) !== undefined &&
    typeof receivedAt === 'number' &&
    'record' in value
  )
}

const line = (stored: StoredRecord): string => `${JSON.stringify(stored)}\n`

/**
 * Opens (creating it and its folder when missing) the journal at `path` and reads it back.
 *
 * @throws when the file cannot be read or written (a clear start-up failure rather than a mock that
 *   forgets)
 */
export function openJournal(path: string): Journal {
  mkdirSync(dirname(path), { recursive: true })
  const restored: StoredRecord[] = []
  let unreadable = 0
  if (existsSync(path)) {
    for (const text of readFileSync(path, 'utf8').split('\n')) {
      if (text === '') continue
      try {
        const value: unknown = JSON.parse(text)
        if (isStoredRecord(value)) restored.push(value)
        else unreadable++
      } catch {
        unreadable++
      }
    }
  }
  if (unreadable > 0) {
    // Appending after a line cut short would glue the next record to it: write back what was
    // readable, through a copy, so a crash meanwhile leaves the old file whole.
    const copy = `${path}.tmp`
    writeFileSync(copy, restored.map(line).join(''))
    renameSync(copy, path)
  }
  const fd = openSync(path, 'a')
  return {
    restored,
    unreadable,
    append: (stored) => void writeSync(fd, line(stored)),
    // Appends go to the end of the file, wherever that is: emptied, the next one starts it again.
    truncate: () => ftruncateSync(fd, 0),
    close: () => closeSync(fd),
  }
}
