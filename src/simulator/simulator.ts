/**
 * The simulator's state and every operation on it, without the network: the data set, fault rules,
 * request log, settings, and rendering of listing pages (cached per collection version, since
 * stringifying a 1000-record page per request would dominate a benchmark). The HTTP server and the
 * in-process API of tests both drive this one object, so they cannot drift apart.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import {
  Dataset,
  type DatasetOptions,
  type DatasetSnapshot,
  type MutationRequest,
  type MutationResult,
  type RecordPatch,
} from './dataset.ts'
import { type ActiveFault, FaultBook, type FaultRule } from './faults.ts'
import {
  type PageRequest,
  type PagingStyle,
  pageCacheKey,
  paginate,
  parsePageRequest,
  renderPage,
} from './paging.ts'
import { type CollectionName, collectionNames, makeInvalidRecords, type RecordTypes } from './records.ts'
import { RequestLog, type RequestLogSnapshot } from './request-log.ts'

/** How the simulated sources answer; all of it can change at run time. */
export interface SimulatorSettings {
  readonly paging: { readonly customers: PagingStyle; readonly products: PagingStyle }
  readonly pageSize: number
  readonly maxPageSize: number
  /** `next` links as a path (`/customers?offset=…`) or an absolute URL built from the Host header. */
  readonly nextLinks: 'relative' | 'absolute'
  /** Bearer token the source endpoints require; null for none. */
  readonly token: string | null
}

/** A change to {@link SimulatorSettings}; absent fields stay as they are. */
export interface SettingsPatch {
  readonly paging?: { readonly customers?: PagingStyle; readonly products?: PagingStyle }
  readonly pageSize?: number
  readonly maxPageSize?: number
  readonly nextLinks?: 'relative' | 'absolute'
  readonly token?: string | null
}

/** Counts, versions and ETags, for `GET /control/state`. */
export interface SimulatorState {
  readonly seed: number
  readonly customers: CollectionState
  readonly products: CollectionState
  readonly faults: number
  readonly requests: number
}

/** One collection in {@link SimulatorState}. */
export interface CollectionState {
  readonly count: number
  readonly version: number
  readonly etag: string
  readonly paging: PagingStyle
}

/** The answer to a listing request, ready to send. */
export type Listing =
  | { readonly kind: 'body'; readonly body: Buffer; readonly etag: string }
  | { readonly kind: 'not-modified'; readonly etag: string }
  | { readonly kind: 'bad-request'; readonly message: string }

/** Per-collection cache of rendered pages; only ever holds pages of one version. */
interface PageCache {
  version: number
  epoch: string
  pages: Map<string, Buffer>
}

/** Bounds memory when a client walks many distinct page sizes or offsets. */
const maxCachedPages = 4096

/** Parses an If-None-Match header into its entity tags (weak or strong compare the same here). */
function entityTags(header: string): string[] {
  return header.split(',').map((tag) => tag.trim().replace(/^W\//, ''))
}

/** Spreads `extra` records through `items` so valid records sit on both sides of the broken ones. */
function interleave(items: readonly unknown[], extra: readonly unknown[]): unknown[] {
  const out = [...items]
  for (let i = extra.length - 1; i >= 0; i--) {
    out.splice(Math.floor(((i + 1) * items.length) / (extra.length + 1)), 0, extra[i])
  }
  return out
}

/** The state and operations of one source simulator. */
export class Simulator {
  readonly dataset: Dataset
  readonly #faults = new FaultBook()
  readonly #log = new RequestLog()
  #settings: SimulatorSettings
  /** Part of every ETag: a restarted simulator or changed settings never answers 304 to an old tag. */
  #epoch = randomBytes(4).toString('hex')
  readonly #caches = new Map<CollectionName, PageCache>()
  #invalidSerial = 0

  constructor(dataset: DatasetOptions, settings: SimulatorSettings, now: () => number = Date.now) {
    this.#settings = settings
    this.dataset = new Dataset(dataset, now)
  }

  settings(): SimulatorSettings {
    return this.#settings
  }

  /** Changes how the sources answer (paging style, page size, token…); cached pages are dropped. */
  configure(patch: SettingsPatch): SimulatorSettings {
    const current = this.#settings
    this.#settings = {
      paging: { ...current.paging, ...patch.paging },
      pageSize: patch.pageSize ?? current.pageSize,
      maxPageSize: patch.maxPageSize ?? current.maxPageSize,
      nextLinks: patch.nextLinks ?? current.nextLinks,
      token: patch.token === undefined ? current.token : patch.token,
    }
    this.#epoch = randomBytes(4).toString('hex')
    this.#caches.clear()
    return this.#settings
  }

  state(): SimulatorState {
    const data = this.dataset.state()
    const collection = (name: CollectionName): CollectionState => ({
      ...data[name],
      etag: this.etag(name),
      paging: this.#settings.paging[name],
    })
    return {
      seed: data.seed,
      customers: collection('customers'),
      products: collection('products'),
      faults: this.#faults.list().length,
      requests: this.#log.total,
    }
  }

  snapshot(): DatasetSnapshot {
    return this.dataset.snapshot()
  }

  /** The current ETag of a collection's listing (the same for all its pages). */
  etag(name: CollectionName): string {
    return `"${this.#epoch}-${name[0]}${this.dataset.collection(name).version}"`
  }

  get<K extends CollectionName>(name: K, key: string): RecordTypes[K] | undefined {
    return this.dataset.collection(name).get(key)
  }

  patch<K extends CollectionName>(name: K, key: string, fields: RecordPatch<K>): RecordTypes[K] | undefined {
    return this.dataset.patch(name, key, fields)
  }

  put<K extends CollectionName>(name: K, record: RecordTypes[K]): 'created' | 'replaced' {
    return this.dataset.put(name, record)
  }

  remove(name: CollectionName, key: string): boolean {
    return this.dataset.remove(name, key)
  }

  mutate(request: MutationRequest): MutationResult {
    return this.dataset.mutate(request)
  }

  /** Replaces the whole data set. */
  replaceDataset(options: DatasetOptions): SimulatorState {
    this.dataset.replace(options)
    return this.state()
  }

  faults(): ActiveFault[] {
    return this.#faults.list()
  }

  /** Appends fault rules after the installed ones. */
  addFaults(rules: readonly FaultRule[]): ActiveFault[] {
    return this.#faults.add(rules)
  }

  /** Replaces every fault rule. */
  setFaults(rules: readonly FaultRule[]): ActiveFault[] {
    return this.#faults.set(rules)
  }

  clearFaults(): void {
    this.#faults.clear()
  }

  /** The rule a request to `path` with query string `query` gets (consuming one use), if any. */
  takeFault(path: string, query?: string): ActiveFault | undefined {
    return this.#faults.take(path, query)
  }

  get log(): RequestLog {
    return this.#log
  }

  requests(): RequestLogSnapshot {
    return this.#log.snapshot()
  }

  resetRequests(): void {
    this.#log.reset()
  }

  /** True when no token is configured, or the Authorization header carries it as a Bearer token. */
  authorized(authorization: string | undefined): boolean {
    const token = this.#settings.token
    if (token === null) return true
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')
    const given = Buffer.from(match?.[1] ?? '')
    const expected = Buffer.from(token)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  /**
   * The answer to `GET /<name>?<query>`.
   * @param origin `http://host:port` as the client addressed us, for absolute `next` links.
   * @param ifNoneMatch the request's If-None-Match header, if any.
   * @param invalidRecords broken records to mix in; such a response is neither cached nor a 304.
   */
  listing(
    name: CollectionName,
    query: string,
    origin: string,
    ifNoneMatch: string | undefined,
    invalidRecords = 0,
  ): Listing {
    const etag = this.etag(name)
    if (invalidRecords === 0 && ifNoneMatch !== undefined) {
      const tags = entityTags(ifNoneMatch)
      if (tags.includes(etag) || tags.includes('*')) return { kind: 'not-modified', etag }
    }
    const settings = this.#settings
    const style = settings.paging[name]
    const parsed = parsePageRequest(style, new URLSearchParams(query), {
      defaultPageSize: settings.pageSize,
      maxPageSize: settings.maxPageSize,
    })
    if (!parsed.ok) return { kind: 'bad-request', message: parsed.error }
    if (invalidRecords > 0) {
      const page = this.#page(name, parsed.request, origin)
      const broken = makeInvalidRecords(name, invalidRecords, this.#invalidSerial)
      this.#invalidSerial += invalidRecords
      const body = Buffer.from(renderPage({ ...page, items: interleave(page.items, broken) }))
      return { kind: 'body', body, etag: `"${etag.slice(1, -1)}-x${this.#invalidSerial}"` }
    }
    const cache = this.#cache(name)
    const absolute = style === 'next' && settings.nextLinks === 'absolute'
    const key = absolute ? `${pageCacheKey(parsed.request)}@${origin}` : pageCacheKey(parsed.request)
    let body = cache.pages.get(key)
    if (body === undefined) {
      body = Buffer.from(renderPage(this.#page(name, parsed.request, origin)))
      if (cache.pages.size >= maxCachedPages) cache.pages.clear()
      cache.pages.set(key, body)
    }
    return { kind: 'body', body, etag }
  }

  #page(name: CollectionName, request: PageRequest, origin: string) {
    const prefix = this.#settings.nextLinks === 'absolute' ? `${origin}/${name}` : `/${name}`
    return paginate(this.dataset.collection(name).view(), request, (offset, limit) => {
      return `${prefix}?offset=${offset}&limit=${limit}`
    })
  }

  #cache(name: CollectionName): PageCache {
    const version = this.dataset.collection(name).version
    const cache = this.#caches.get(name)
    if (cache !== undefined && cache.version === version && cache.epoch === this.#epoch) return cache
    const fresh: PageCache = { version, epoch: this.#epoch, pages: new Map() }
    this.#caches.set(name, fresh)
    return fresh
  }
}

/** The collection a source path serves, or undefined for any other path. */
export function collectionOfPath(path: string): CollectionName | undefined {
  return collectionNames.find((name) => path === `/${name}`)
}
