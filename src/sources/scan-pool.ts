/**
 * Where a scan's pages are parsed, validated and hashed: in a pool of worker threads (the main
 * thread of a producer is busy publishing the other source, and a first sync is bound by it), or
 * inline. Each scan runs all its pages on one thread, so the ids seen and the invalid records
 * counted across its pages stay in one place.
 */
import { Worker } from 'node:worker_threads'
import { ErrorCodes, PipelineError } from '../errors.ts'
import { type PageRecords, PageScan, type PageScanSpec } from './page-scan.ts'
import { type FromWorker, fromWire, type ToWorker } from './scan-protocol.ts'

/** One page handed to a scanner: where the listing goes on, and later the page's records. */
export interface ScannedPage {
  /** The next page's URL (undefined: the last page); rejects with the page's `PIPELINE_SOURCE_*` error. */
  readonly read: Promise<string | undefined>
  /** Rejects with `SOURCE_TOO_MANY_INVALID`, or `SOURCE_SCAN_FAILED` if the worker died. */
  readonly records: Promise<PageRecords>
}

/** The pages of one scan, fed in listing order. */
export interface ScanSession {
  page(url: string, body: Buffer): ScannedPage
  /** Frees the session's state (the ids seen); call once the scan is over, however it ended. */
  close(): void
}

/** Opens scan sessions. */
export interface PageScanner {
  open(spec: PageScanSpec): ScanSession
  /** Stops the worker threads, if any. */
  close(): Promise<void>
}

/** Pages are parsed where the producer runs: no worker, no copies. For tests and comparisons. */
export function inlineScanner(): PageScanner {
  return {
    open(spec) {
      const scan = new PageScan(spec)
      return {
        page(url, body) {
          const read = scan.read(url, body)
          if (!read.ok) {
            const failed = Promise.reject(new PipelineError(read.code, read.message))
            failed.catch(() => undefined)
            return { read: failed, records: failed }
          }
          // After a macrotask, so the caller's request for the next page goes out first.
          const records = new Promise<PageRecords>((resolve, reject) =>
            setImmediate(() => {
              try {
                resolve(read.records())
              } catch (error) {
                reject(error)
              }
            }),
          )
          records.catch(() => undefined)
          return { read: Promise.resolve(read.next), records }
        },
        close() {},
      }
    },
    close: async () => undefined,
  }
}

interface Deferred<T> {
  readonly promise: Promise<T>
  readonly resolve: (value: T) => void
  readonly reject: (error: unknown) => void
}

function deferred<T>(): Deferred<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>()
  // Settled for the caller, who may stop listening after an earlier failure.
  promise.catch(() => undefined)
  return { promise, resolve, reject }
}

interface PendingPage {
  readonly read: Deferred<string | undefined>
  readonly records: Deferred<PageRecords>
}

// Run as TypeScript from src/, or compiled to dist/ as JavaScript.
const workerUrl = new URL(
  import.meta.url.endsWith('.ts') ? './scan-worker.ts' : './scan-worker.js',
  import.meta.url,
)

/** One worker thread and the pages it has not answered yet. */
class ScanThread {
  readonly #worker: Worker
  readonly #pending = new Map<string, PendingPage>()
  #sessions = 0
  #dead: PipelineError | undefined

  constructor(onExit: (thread: ScanThread) => void) {
    this.#worker = new Worker(workerUrl)
    // Held only while it has open scans: an idle pool must not keep the process alive.
    this.#worker.unref()
    this.#worker.on('message', (message: FromWorker) => this.#answer(message))
    this.#worker.on('error', (error) => this.#fail(`a scan worker failed: ${error.message}`))
    // A message that cannot be read here leaves its page unanswered: give up on the worker.
    this.#worker.on('messageerror', (error) => {
      this.#fail(`a scan worker's answer could not be read: ${error.message}`)
      void this.#worker.terminate()
    })
    this.#worker.on('exit', (code) => {
      this.#fail(`a scan worker exited with code ${code}`)
      onExit(this)
    })
  }

  get load(): number {
    return this.#sessions
  }

  open(id: number, spec: PageScanSpec): ScanSession {
    if (this.#sessions++ === 0) this.#worker.ref()
    this.#post({ kind: 'open', session: id, spec })
    let open = true
    let pages = 0
    return {
      page: (url, body) => {
        const page = pages++
        const pending: PendingPage = { read: deferred(), records: deferred() }
        if (this.#dead !== undefined) {
          pending.read.reject(this.#dead)
          pending.records.reject(this.#dead)
        } else {
          this.#pending.set(`${id}:${page}`, pending)
          // A body that owns its whole memory moves to the worker; one in Node's shared pool is copied.
          const own =
            body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body)
          this.#post({ kind: 'page', session: id, page, url, body: own }, [own.buffer as ArrayBuffer])
        }
        return { read: pending.read.promise, records: pending.records.promise }
      },
      close: () => {
        if (!open) return
        open = false
        if (--this.#sessions === 0) this.#worker.unref()
        for (const key of [...this.#pending.keys()]) if (key.startsWith(`${id}:`)) this.#pending.delete(key)
        if (this.#dead === undefined) this.#post({ kind: 'close', session: id })
      },
    }
  }

  #post(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.#worker.postMessage(message, transfer)
  }

  #answer(message: FromWorker): void {
    const key = `${message.session}:${message.page}`
    const pending = this.#pending.get(key)
    if (pending === undefined) return
    switch (message.kind) {
      case 'read':
        if (message.ok) pending.read.resolve(message.next)
        else {
          const error = new PipelineError(message.code, message.message)
          pending.read.reject(error)
          pending.records.reject(error)
          this.#pending.delete(key)
        }
        return
      case 'records':
        pending.records.resolve(fromWire(message.result))
        this.#pending.delete(key)
        return
      case 'failed': {
        const error = new PipelineError(message.code ?? ErrorCodes.SOURCE_SCAN_FAILED, message.message)
        pending.read.reject(error)
        pending.records.reject(error)
        this.#pending.delete(key)
      }
    }
  }

  #fail(reason: string): void {
    if (this.#dead !== undefined) return
    this.#dead = new PipelineError(ErrorCodes.SOURCE_SCAN_FAILED, reason)
    for (const pending of this.#pending.values()) {
      pending.read.reject(this.#dead)
      pending.records.reject(this.#dead)
    }
    this.#pending.clear()
  }

  get dead(): boolean {
    return this.#dead !== undefined
  }

  async close(): Promise<void> {
    this.#fail('the producer is stopping')
    await this.#worker.terminate()
  }
}

/** {@link workerScanner} with `threads` workers, or the {@link inlineScanner} for 0. */
export function createScanner(threads: number): PageScanner {
  return threads > 0 ? workerScanner(threads) : inlineScanner()
}

/**
 * A pool of `threads` scan workers; a scan goes to the one with the fewest open scans, and a
 * worker that died is replaced for the scans that follow (those it held fail with
 * `SOURCE_SCAN_FAILED`, and their cycles publish nothing).
 */
export function workerScanner(threads: number): PageScanner {
  let closing = false
  let nextSession = 0
  const pool: ScanThread[] = []
  const onExit = (thread: ScanThread) => {
    const at = pool.indexOf(thread)
    if (!closing && at >= 0) pool[at] = new ScanThread(onExit)
  }
  for (let i = 0; i < threads; i++) pool.push(new ScanThread(onExit))
  return {
    open(spec) {
      let chosen = pool[0] as ScanThread
      for (const thread of pool)
        if (!thread.dead && (chosen.dead || thread.load < chosen.load)) chosen = thread
      return chosen.open(nextSession++, spec)
    },
    async close() {
      closing = true
      await Promise.all(pool.map((thread) => thread.close()))
    },
  }
}
