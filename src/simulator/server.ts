/**
 * The HTTP face of the source simulator: `GET /customers`, `GET /products` (with paging, ETags, the
 * optional Bearer check and injected faults) and the control API under `/control/`. node:http, because
 * a benchmark fetches 110k records through it and the serving path must stay a cache lookup.
 */
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { handleControl } from './control.ts'
import type {
  DatasetOptions,
  DatasetSnapshot,
  MutationRequest,
  MutationResult,
  RecordPatch,
} from './dataset.ts'
import type { ActiveFault, FaultRule } from './faults.ts'
import type { PagingStyle } from './paging.ts'
import type { CollectionName, RecordTypes } from './records.ts'
import type { LoggedRequest, RequestLogSnapshot } from './request-log.ts'
import {
  collectionOfPath,
  type SettingsPatch,
  Simulator,
  type SimulatorSettings,
  type SimulatorState,
} from './simulator.ts'

/** How to start a simulator; every field has a default suited to a quick test. */
export interface SourceSimulatorOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 0: any free port (read it back from the result). */
  readonly port?: number
  /** Default 250. */
  readonly customers?: number
  /** Default 50. */
  readonly products?: number
  /** Default 1. */
  readonly seed?: number
  /** Page size when the client names none; default 100. */
  readonly pageSize?: number
  /** Larger requested page sizes are clamped to this; default 10000. */
  readonly maxPageSize?: number
  /** Paging style per source; default `page` for both. */
  readonly paging?: { readonly customers?: PagingStyle; readonly products?: PagingStyle }
  /** `next` links relative (default) or absolute. */
  readonly nextLinks?: 'relative' | 'absolute'
  /** When set, source endpoints require `Authorization: Bearer <token>` (the control API does not). */
  readonly token?: string
  /** Customers reference between min and max products; default 1–5. */
  readonly productsPerCustomer?: { readonly min: number; readonly max: number }
  /** Share (0–1) of records whose id is a JSON number; default 0. */
  readonly numericIdShare?: number
  /** Clock for `updatedAt` of changed records; default Date.now. */
  readonly now?: () => number
}

/** A running simulator: its address, and in-process access to everything the control API does. */
export interface SourceSimulator {
  /** `http://host:port`, without a trailing slash. */
  readonly url: string
  readonly port: number
  /** Stops listening and destroys every connection, keep-alive ones included; idempotent. */
  close(): Promise<void>
  state(): SimulatorState
  /** The current records as served (ids may be numbers). Do not mutate them. */
  snapshot(): DatasetSnapshot
  settings(): SimulatorSettings
  configure(patch: SettingsPatch): SimulatorSettings
  get<K extends CollectionName>(name: K, id: string): RecordTypes[K] | undefined
  patch<K extends CollectionName>(name: K, id: string, fields: RecordPatch<K>): RecordTypes[K] | undefined
  put<K extends CollectionName>(name: K, record: RecordTypes[K]): 'created' | 'replaced'
  remove(name: CollectionName, id: string): boolean
  mutate(request: MutationRequest): MutationResult
  replaceDataset(options: DatasetOptions): SimulatorState
  faults(): ActiveFault[]
  addFaults(rules: readonly FaultRule[]): ActiveFault[]
  setFaults(rules: readonly FaultRule[]): ActiveFault[]
  clearFaults(): void
  requests(): RequestLogSnapshot
  resetRequests(): void
}

/** Control bodies are small; anything bigger is a mistake, not data. */
const maxControlBody = 1024 * 1024
const json = 'application/json'

/** Timers of delayed and dribbled responses, so close() can cancel them. */
class Timers {
  readonly #pending = new Set<NodeJS.Timeout>()

  after(ms: number, run: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#pending.delete(timer)
      run()
    }, ms)
    this.#pending.add(timer)
    return timer
  }

  cancel(timer: NodeJS.Timeout): void {
    clearTimeout(timer)
    this.#pending.delete(timer)
  }

  cancelAll(): void {
    for (const timer of this.#pending) clearTimeout(timer)
    this.#pending.clear()
  }
}

function errorBody(message: string, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ error: message, ...extra }))
}

function splitBuffer(body: Buffer, pieces: number): Buffer[] {
  const size = Math.max(1, Math.ceil(body.length / pieces))
  const chunks: Buffer[] = []
  for (let start = 0; start < body.length; start += size) chunks.push(body.subarray(start, start + size))
  return chunks
}

/** One answer to a source request, before faults that shape how it is sent. */
interface Reply {
  status: number
  headers: OutgoingHttpHeaders
  body: Buffer | undefined
}

function send(res: ServerResponse, reply: Reply): void {
  if (reply.body === undefined) {
    res.writeHead(reply.status, reply.headers).end()
    return
  }
  res.writeHead(reply.status, { ...reply.headers, 'content-length': reply.body.length }).end(reply.body)
}

class SourceServer {
  readonly #sim: Simulator
  readonly #timers = new Timers()

  constructor(sim: Simulator) {
    this.#sim = sim
  }

  cancelTimers(): void {
    this.#timers.cancelAll()
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? '/'
    const q = raw.indexOf('?')
    const path = q === -1 ? raw : raw.slice(0, q)
    const query = q === -1 ? '' : raw.slice(q + 1)
    if (path.startsWith('/control/')) {
      this.#control(req, res, path.slice('/control'.length))
      return
    }
    const ifNoneMatch = req.headers['if-none-match']
    const entry = this.#sim.log.start(req.method ?? 'GET', path, query, ifNoneMatch ?? null)
    const name = collectionOfPath(path)
    if (name === undefined) {
      this.#reply(res, entry, {
        status: 404,
        headers: { 'content-type': json },
        body: errorBody(`no route ${path}`),
      })
      return
    }
    if (req.method !== 'GET') {
      const body = errorBody(`${req.method ?? ''} is not allowed on ${path}`)
      this.#reply(res, entry, { status: 405, headers: { 'content-type': json, allow: 'GET' }, body })
      return
    }
    if (!this.#sim.authorized(req.headers.authorization)) {
      const headers = { 'content-type': json, 'www-authenticate': 'Bearer' }
      this.#reply(res, entry, { status: 401, headers, body: errorBody('missing or wrong Bearer token') })
      return
    }
    const fault = this.#sim.takeFault(path, query)
    if (fault === undefined) {
      this.#reply(res, entry, this.#listing(req, name, query, ifNoneMatch, {}))
      return
    }
    entry.faultId = fault.id
    const rule = fault.rule
    const act = () => this.#faulty(req, res, entry, name, query, ifNoneMatch, rule)
    if (rule.delayMs === undefined || rule.delayMs === 0) {
      act()
      return
    }
    const timer = this.#timers.after(rule.delayMs, act)
    res.once('close', () => {
      this.#timers.cancel(timer)
      this.#sim.log.settle(entry, 'aborted')
    })
  }

  #reply(res: ServerResponse, entry: LoggedRequest, reply: Reply): void {
    this.#sim.log.settle(entry, reply.status)
    send(res, reply)
  }

  #listing(
    req: IncomingMessage,
    name: CollectionName,
    query: string,
    ifNoneMatch: string | undefined,
    rule: FaultRule,
  ): Reply {
    const origin = `http://${req.headers.host ?? 'localhost'}`
    const listing = this.#sim.listing(name, query, origin, ifNoneMatch, rule.invalidRecords ?? 0)
    switch (listing.kind) {
      case 'not-modified':
        return { status: 304, headers: { etag: listing.etag }, body: undefined }
      case 'bad-request':
        return { status: 400, headers: { 'content-type': json }, body: errorBody(listing.message) }
      case 'body':
        return { status: 200, headers: { 'content-type': json, etag: listing.etag }, body: listing.body }
    }
  }

  #faulty(
    req: IncomingMessage,
    res: ServerResponse,
    entry: LoggedRequest,
    name: CollectionName,
    query: string,
    ifNoneMatch: string | undefined,
    rule: FaultRule,
  ): void {
    if (res.destroyed) return
    if (rule.drop === true) {
      this.#sim.log.settle(entry, 'dropped')
      req.socket.destroy()
      return
    }
    // A fault that replaces the status or body is what a broken source or proxy sends whatever the
    // client cached, so it is never turned into a 304.
    const replaces = rule.status !== undefined || rule.body !== undefined
    const reply = this.#listing(req, name, query, replaces ? undefined : ifNoneMatch, rule)
    if (rule.status !== undefined) {
      reply.status = rule.status
      if (rule.status < 200 || rule.status >= 300) {
        reply.headers = { 'content-type': json }
        reply.body = errorBody(`injected fault ${describeRule(rule)}`, { status: rule.status })
      }
    }
    if (rule.body !== undefined) reply.body = Buffer.from(rule.body)
    if (rule.contentType !== undefined && reply.body !== undefined)
      reply.headers['content-type'] = rule.contentType
    if (rule.retryAfter !== undefined) reply.headers['retry-after'] = String(rule.retryAfter)
    if (rule.slowBodyMs === undefined || reply.body === undefined) {
      this.#reply(res, entry, reply)
      return
    }
    this.#dribble(res, entry, reply, reply.body, rule.slowBodyMs, rule.slowBodyChunks ?? 5)
  }

  /** Slow-loris: headers at once, then the body in pieces with a pause before each. */
  #dribble(
    res: ServerResponse,
    entry: LoggedRequest,
    reply: Reply,
    body: Buffer,
    pauseMs: number,
    pieces: number,
  ) {
    this.#sim.log.settle(entry, reply.status)
    res.writeHead(reply.status, reply.headers)
    res.flushHeaders()
    const chunks = splitBuffer(body, pieces)
    let next = 0
    const step = () => {
      if (res.destroyed) return
      const chunk = chunks[next++]
      if (chunk === undefined) {
        res.end()
        return
      }
      res.write(chunk)
      if (next === chunks.length) res.end()
      else this.#timers.after(pauseMs, step)
    }
    const first = this.#timers.after(pauseMs, step)
    res.once('close', () => this.#timers.cancel(first))
  }

  #control(req: IncomingMessage, res: ServerResponse, path: string): void {
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxControlBody) tooLarge = true
      else chunks.push(chunk)
    })
    req.on('end', () => {
      if (tooLarge) {
        sendJson(res, 413, { error: `control bodies are limited to ${maxControlBody} bytes` })
        return
      }
      const text = Buffer.concat(chunks).toString('utf8')
      let body: unknown
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text)
        } catch (error) {
          sendJson(res, 400, { error: `body is not valid JSON: ${(error as Error).message}` })
          return
        }
      }
      try {
        const result = handleControl(this.#sim, req.method ?? 'GET', path, body)
        sendJson(res, result.status, result.body)
      } catch (error) {
        sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) })
      }
    })
  }
}

/** A short description of a rule for the error body, so a client log shows the failure was injected. */
function describeRule(rule: FaultRule): string {
  return rule.path === undefined ? '(all paths)' : `on ${rule.path}`
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (status === 204 || body === undefined) {
    res.writeHead(status).end()
    return
  }
  const text = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { 'content-type': json, 'content-length': text.length }).end(text)
}

/**
 * Starts a simulated CRM + Inventory source on an HTTP port.
 * @example
 * const sim = await startSourceSimulator({ customers: 250, pageSize: 100, paging: { customers: 'cursor' } })
 * sim.addFaults([{ path: '/customers', status: 500, count: 2 }])
 * // … poll `${sim.url}/customers` …
 * await sim.close()
 */
export async function startSourceSimulator(options: SourceSimulatorOptions = {}): Promise<SourceSimulator> {
  const dataset: DatasetOptions = {
    customers: options.customers ?? 250,
    products: options.products ?? 50,
    seed: options.seed ?? 1,
    ...(options.productsPerCustomer === undefined
      ? {}
      : { productsPerCustomer: options.productsPerCustomer }),
    ...(options.numericIdShare === undefined ? {} : { numericIdShare: options.numericIdShare }),
  }
  const settings: SimulatorSettings = {
    paging: { customers: options.paging?.customers ?? 'page', products: options.paging?.products ?? 'page' },
    pageSize: options.pageSize ?? 100,
    maxPageSize: options.maxPageSize ?? 10_000,
    nextLinks: options.nextLinks ?? 'relative',
    token: options.token ?? null,
  }
  const sim = new Simulator(dataset, settings, options.now)
  const source = new SourceServer(sim)
  const server = createServer((req, res) => {
    try {
      source.handle(req, res)
    } catch (error) {
      if (!res.headersSent)
        sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) })
      else res.destroy()
    }
  })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  let closing: Promise<void> | undefined
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        source.cancelTimers()
        server.close((error) => (error === undefined ? resolve() : reject(error)))
        server.closeAllConnections()
      })
      return closing
    },
    state: () => sim.state(),
    snapshot: () => sim.snapshot(),
    settings: () => sim.settings(),
    configure: (patch) => sim.configure(patch),
    get: (name, id) => sim.get(name, id),
    patch: (name, id, fields) => sim.patch(name, id, fields),
    put: (name, record) => sim.put(name, record),
    remove: (name, id) => sim.remove(name, id),
    mutate: (request) => sim.mutate(request),
    replaceDataset: (options) => sim.replaceDataset(options),
    faults: () => sim.faults(),
    addFaults: (rules) => sim.addFaults(rules),
    setFaults: (rules) => sim.setFaults(rules),
    clearFaults: () => sim.clearFaults(),
    requests: () => sim.requests(),
    resetRequests: () => sim.resetRequests(),
  }
}
