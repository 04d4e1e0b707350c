/**
 * The mock's memory on disk, when asked for one: every accepted delivery appended as one JSON line,
 * read back at start. A real Analytics keeps what it acknowledged; the pipeline's delivery records
 * in Redis assume so, and a local stack restarted with its Kafka and Redis state would otherwise
 * show an empty mock that the consumer believes holds every view.
 */
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  type WriteStream,
  writeFileSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { type StoredRecord, viewIdentityOf } from './store.ts'

/** What a journal file held, and the writer that appends to it. */
export interface Journal {
  /** The deliveries read back, in the order they were accepted. */
  readonly restored: readonly StoredRecord[]
  /** Lines that could not be read back (a line cut short by a crash): skipped, and dropped from the file. */
  readonly unreadable: number
  append(stored: StoredRecord): void
  /** Empties the file (the mock was reset). */
  truncate(): void
  close(): Promise<void>
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

/** Opens (creating it and its folder when missing) the journal at `path` and reads it back. */
export function openJournal(path: string): Journal {
  mkdirSync(dirname(path), { recursive: true })
  const restored: StoredRecord[] = []
  let unreadable = 0
  if (existsSync(path)) {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line === '') continue
      try {
        const value: unknown = JSON.parse(line)
        if (isStoredRecord(value)) restored.push(value)
        else unreadable++
      } catch {
        unreadable++
      }
    }
  }
  // Appending after a line cut short would glue the next record to it: write back what was readable.
  if (unreadable > 0) writeFileSync(path, restored.map((stored) => `${JSON.stringify(stored)}\n`).join(''))
  let out: WriteStream = createWriteStream(path, { flags: 'a' })
  return {
    restored,
    unreadable,
    append(stored) {
      out.write(`${JSON.stringify(stored)}\n`)
    },
    truncate() {
      out.destroy()
      writeFileSync(path, '')
      out = createWriteStream(path, { flags: 'a' })
    },
    close: () => new Promise<void>((resolve) => out.end(resolve)),
  }
}
