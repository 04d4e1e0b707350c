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
import { type ListingEnd, type ScanPart, type ScanSettings, scanListing } from './scan.ts'
import { type FromWorker, fromWire, type ToWorker } from './scan-protocol.ts'

/** The main thread's part of a scan: abort it, hear of its retries, keep it on one thread. */
export interface ScanHooks {
  readonly signal?: AbortSignal | undefined
  readonly onRetry?: ((info: RetryInfo) => void) | undefined
  /** Read the pages in listing order on one thread, even a listing paged by numbers. */
  readonly inOrder?: boolean | undefined
}

/** Runs scan loops. */
export interface PageScanner {
  /**
   * Scans `source`, handing each page's records to `onPage` in listing order. Ids are unique within
   * what one thread read; a listing split between two threads can repeat an id across them, which
   * `scanSource` finds.
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
    scan: (source, settings, { signal, onRetry }, onPage) =>
      scanListing(source, settings, { signal, onRetry, dispatcher }, (page) => onPage(page)),
    ready: async () => undefined,
    close: async () => undefined,
  }
}

interface Running {
  readonly onPage: (page: PageRecords, index: number) => void
  readonly onDelegate: ((part: ScanPart) => void) | undefined
  readonly onRetry: ((info: RetryInfo) => void) | undefined
  readonly done: PromiseWithResolvers<ListingEnd>
}

/** What one session on a worker reads, and what it may hand back. */
interface SessionRequest {
  readonly part?: ScanPart | undefined
  readonly onDelegate?: ((part: ScanPart) => void) | undefined
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
    onPage: (page: PageRecords, index: number) => void,
    request: SessionRequest = {},
  ): Promise<ListingEnd> {
    if (this.#dead !== undefined) throw this.#dead
    const done = Promise.withResolvers<ListingEnd>()
    this.#running.set(session, { onPage, onDelegate: request.onDelegate, onRetry: hooks.onRetry, done })
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
        part: request.part,
        split: request.onDelegate !== undefined,
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
      case 'delegate':
        try {
          if (message.kind === 'page') running.onPage(fromWire(message.result), message.index)
          else running.onDelegate?.(message.part)
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
 * Hands pages on in listing order, whichever thread read them first; a page that comes early
 * waits for those before it.
 */
class PageOrder {
  readonly #onPage: (page: PageRecords) => void
  readonly #early = new Map<number, PageRecords>()
  #next = 0

  constructor(onPage: (page: PageRecords) => void) {
    this.#onPage = onPage
  }

  /** Pages handed on so far. */
  get delivered(): number {
    return this.#next
  }

  add(page: PageRecords, index: number): void {
    this.#early.set(index, page)
    for (let ready = this.#early.get(this.#next); ready !== undefined; ready = this.#early.get(this.#next)) {
      this.#early.delete(this.#next)
      this.#next++
      this.#onPage(ready)
    }
  }
}

/**
 * A pool of `threads` scan workers; a scan goes to the one running the fewest, and a worker that
 * died is replaced for the scans that follow (those it ran fail with `SOURCE_SCAN_FAILED`, and
 * their cycles publish nothing). With two threads or more, a listing paged by numbers is read by
 * two of them at once, every other page each, after its first page (unless `inOrder`).
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
  /** The live thread running the fewest scans, another than `besides` if one is alive. */
  const leastLoaded = (besides?: ScanThread): ScanThread => {
    const alive = pool.filter((thread) => !thread.dead)
    const others = alive.filter((thread) => thread !== besides)
    const candidates = others.length > 0 ? others : alive
    // All dead: the first one's scan fails with the reason it died.
    let chosen = candidates[0] ?? (pool[0] as ScanThread)
    for (const thread of candidates) if (thread.load < chosen.load) chosen = thread
    return chosen
  }
  return {
    async scan(source, settings, hooks, onPage) {
      const order = new PageOrder(onPage)
      // The first failure of either thread stops both, and is the one reported.
      const stop = new AbortController()
      let failure: { error: unknown } | undefined
      const failed = (error: unknown): never => {
        failure ??= { error }
        stop.abort()
        throw failure.error
      }
      const session = {
        signal: AbortSignal.any([stop.signal, ...(hooks.signal ? [hooks.signal] : [])]),
        onRetry: hooks.onRetry,
      }
      const toOrder = (page: PageRecords, index: number) => order.add(page, index)
      const first = leastLoaded()
      const others: Promise<ListingEnd>[] = []
      const onDelegate =
        pool.length > 1 && hooks.inOrder !== true
          ? (part: ScanPart) => {
              const other = leastLoaded(first).scan(nextSession++, source, settings, session, toOrder, {
                part,
              })
              const settled = other.catch(failed)
              // Awaited once the first thread is done; a failure before that must not count as unhandled.
              settled.catch(() => undefined)
              others.push(settled)
            }
          : undefined
      let end: ListingEnd
      try {
        end = await first
          .scan(nextSession++, source, settings, session, toOrder, {
            onDelegate,
          })
          .catch(failed)
        const rest = await Promise.all(others)
        if (end.kind === 'listing' && rest.length > 0) {
          const pages = rest.reduce(
            (sum, part) => sum + (part.kind === 'listing' ? part.pages : 0),
            end.pages,
          )
          end = { ...end, pages }
        }
      } catch (error) {
        await Promise.allSettled(others)
        throw failure?.error ?? error
      }
      if (end.kind === 'listing' && order.delivered !== end.pages) {
        throw new PipelineError(
          ErrorCodes.SOURCE_SCAN_FAILED,
          `${source.url.href}: the scan threads read ${end.pages} pages but ${order.delivered} followed each other`,
        )
      }
      return end
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
