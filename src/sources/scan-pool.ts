/**
 * Where scans run: on a pool of worker threads, so the main thread of a producer is free to
 * publish (a first sync was bound by it doing both), or inline. A worker runs a scan's whole loop,
 * fetching included: a page then goes from the source to the worker and back to the source for
 * the next one without waiting for the main thread, which only receives each page's records.
 */
import { Worker } from 'node:worker_threads'
import type { Dispatcher } from 'undici'
import { ErrorCodes, PipelineError } from '../errors.ts'
import type { SourceSpec } from './catalog.ts'
import type { RetryInfo } from './http-page.ts'
import type { PageRecords } from './page-scan.ts'
import { type ListingEnd, type ScanSettings, scanListing } from './scan.ts'
import { type FromWorker, fromWire, type ToWorker } from './scan-protocol.ts'

/** The main thread's part of a scan: abort it, hear of its retries. */
export interface ScanHooks {
  readonly signal?: AbortSignal | undefined
  readonly onRetry?: ((info: RetryInfo) => void) | undefined
}

/** Runs scan loops. */
export interface PageScanner {
  /**
   * Scans `source`, handing each page's records to `onPage` in listing order.
   *
   * @throws {PipelineError} the scan's `PIPELINE_SOURCE_*` error; `SOURCE_SCAN_FAILED` when its
   *   worker died
   */
  scan(
    source: SourceSpec,
    settings: ScanSettings,
    hooks: ScanHooks,
    onPage: (page: PageRecords) => void,
  ): Promise<ListingEnd>
  /** Resolves once the worker threads, if any, have loaded their code (or failed to). */
  ready(): Promise<void>
  /** Stops the worker threads, if any. */
  close(): Promise<void>
}

/** Scans on the calling thread, fetching through `dispatcher`. */
export function inlineScanner(dispatcher: Dispatcher): PageScanner {
  return {
    scan: (source, settings, hooks, onPage) =>
      scanListing(source, settings, { ...hooks, dispatcher }, onPage),
    ready: async () => undefined,
    close: async () => undefined,
  }
}

interface Running {
  readonly onPage: (page: PageRecords) => void
  readonly onRetry: ((info: RetryInfo) => void) | undefined
  readonly done: PromiseWithResolvers<ListingEnd>
}

// Run as TypeScript from src/, or compiled to dist/ as JavaScript.
const workerUrl = new URL(
  import.meta.url.endsWith('.ts') ? './scan-worker.ts' : './scan-worker.js',
  import.meta.url,
)

/** One worker thread and the scans it runs. */
class ScanThread {
  readonly #worker: Worker
  readonly #running = new Map<number, Running>()
  readonly #ready = Promise.withResolvers<void>()
  #dead: PipelineError | undefined

  constructor(onExit: (thread: ScanThread) => void) {
    this.#worker = new Worker(workerUrl)
    // Held only while it runs scans: an idle pool must not keep the process alive.
    this.#worker.unref()
    this.#worker.on('message', (message: FromWorker) => this.#answer(message))
    this.#worker.on('error', (error) => this.#fail(`a scan worker failed: ${error.message}`))
    // A message that cannot be read here leaves its scan unanswered: give up on the worker.
    this.#worker.on('messageerror', (error) => {
      this.#fail(`a scan worker's answer could not be read: ${error.message}`)
      void this.#worker.terminate()
    })
    this.#worker.on('exit', (code) => {
      this.#fail(`a scan worker exited with code ${code}`)
      onExit(this)
    })
  }

  /** Settles once the worker has loaded its modules, or died trying. */
  get ready(): Promise<void> {
    return this.#ready.promise
  }

  get load(): number {
    return this.#running.size
  }

  get dead(): boolean {
    return this.#dead !== undefined
  }

  async scan(
    session: number,
    source: SourceSpec,
    settings: ScanSettings,
    hooks: ScanHooks,
    onPage: (page: PageRecords) => void,
  ): Promise<ListingEnd> {
    if (this.#dead !== undefined) throw this.#dead
    const done = Promise.withResolvers<ListingEnd>()
    this.#running.set(session, { onPage, onRetry: hooks.onRetry, done })
    if (this.#running.size === 1) this.#worker.ref()
    const abort = () => this.#worker.postMessage({ kind: 'abort', session } satisfies ToWorker)
    hooks.signal?.addEventListener('abort', abort, { once: true })
    try {
      const { name, entity, url, token } = source
      const message: ToWorker = {
        kind: 'scan',
        session,
        source: { name, entity, url: url.href, token },
        settings,
      }
      this.#worker.postMessage(message)
      if (hooks.signal?.aborted) abort()
      return await done.promise
    } finally {
      hooks.signal?.removeEventListener('abort', abort)
      this.#running.delete(session)
      if (this.#running.size === 0) this.#worker.unref()
    }
  }

  #answer(message: FromWorker): void {
    if (message.kind === 'ready') {
      this.#ready.resolve()
      return
    }
    const running = this.#running.get(message.session)
    if (running === undefined) return
    switch (message.kind) {
      case 'page':
        try {
          running.onPage(fromWire(message.result))
        } catch (error) {
          running.done.reject(error)
          this.#worker.postMessage({ kind: 'abort', session: message.session } satisfies ToWorker)
        }
        return
      case 'retry':
        running.onRetry?.(message.info)
        return
      case 'end':
        running.done.resolve(message.end)
        return
      case 'failed':
        running.done.reject(new PipelineError(message.code ?? ErrorCodes.SOURCE_SCAN_FAILED, message.message))
    }
  }

  #fail(reason: string): void {
    if (this.#dead !== undefined) return
    this.#dead = new PipelineError(ErrorCodes.SOURCE_SCAN_FAILED, reason)
    this.#ready.resolve()
    for (const running of this.#running.values()) running.done.reject(this.#dead)
  }

  async close(): Promise<void> {
    this.#fail('the producer is stopping')
    await this.#worker.terminate()
  }
}

/** {@link workerScanner} with `threads` workers, or the {@link inlineScanner} on `dispatcher` for 0. */
export function createScanner(threads: number, dispatcher: Dispatcher): PageScanner {
  return threads > 0 ? workerScanner(threads) : inlineScanner(dispatcher)
}

/**
 * A pool of `threads` scan workers; a scan goes to the one running the fewest, and a worker that
 * died is replaced for the scans that follow (those it ran fail with `SOURCE_SCAN_FAILED`, and
 * their cycles publish nothing).
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
    scan(source, settings, hooks, onPage) {
      let chosen = pool[0] as ScanThread
      for (const thread of pool)
        if (!thread.dead && (chosen.dead || thread.load < chosen.load)) chosen = thread
      return chosen.scan(nextSession++, source, settings, hooks, onPage)
    },
    async ready() {
      await Promise.all(pool.map((thread) => thread.ready))
    },
    async close() {
      closing = true
      await Promise.all(pool.map((thread) => thread.close()))
    },
  }
}
